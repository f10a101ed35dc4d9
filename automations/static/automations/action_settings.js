/* The trigger and send forms: show only the settings of the chosen action (or channel). */
(function () {
  "use strict";

  function update(choice) {
    for (const fieldset of document.querySelectorAll("fieldset.action-settings")) {
      fieldset.style.display = fieldset.classList.contains("action-settings-" + choice.value) ? "" : "none";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const choice = document.getElementById("id_action") || document.getElementById("id_channel");
    if (!choice) return;
    choice.addEventListener("change", () => update(choice));
    update(choice);
  });
})();
