/* The trigger and send forms: show only the settings of the chosen action (or channel), and on a trigger's
 * form preview the settings as they are on the page, before they are saved. */
(function () {
  "use strict";

  function update(choice) {
    for (const fieldset of document.querySelectorAll("fieldset.action-settings")) {
      fieldset.style.display = fieldset.classList.contains("action-settings-" + choice.value) ? "" : "none";
    }
  }

  async function preview(form) {
    const data = new FormData(document.getElementById("trigger_form"));
    data.set("preview", form.querySelector("[name=preview]").value);
    const response = await fetch(form.dataset.previewUrl, {
      method: "POST", body: data, headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") },
    });
    document.getElementById("message-preview").outerHTML = await response.text();
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "preview-form" || !form.dataset.previewUrl || !document.getElementById("trigger_form")) return;
    event.preventDefault();
    preview(form);
  });

  document.addEventListener("DOMContentLoaded", () => {
    const choice = document.getElementById("id_action") || document.getElementById("id_channel");
    if (!choice) return;
    choice.addEventListener("change", () => update(choice));
    update(choice);
  });
})();
