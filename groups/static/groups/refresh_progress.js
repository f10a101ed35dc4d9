/* The Settings tab's refresh progress: asks the server every second while a refresh is queued or
 * running, moves the bar, and reloads the page once it has finished (its runs and counts change). */
(function () {
  "use strict";
  const box = document.getElementById("refresh-progress");
  if (!box) return;
  const bar = box.querySelector("progress");
  const sentence = box.querySelector(".progress-sentence");

  async function poll() {
    let data;
    try {
      const response = await fetch(box.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return setTimeout(poll, 5000);
      data = await response.json();
    } catch (e) {
      return setTimeout(poll, 5000);
    }
    if (!data.progress) {
      window.location.reload();
      return;
    }
    if (data.progress.percent === null) bar.removeAttribute("value");
    else bar.value = data.progress.percent;
    sentence.textContent = data.progress.sentence;
    setTimeout(poll, 1000);
  }

  setTimeout(poll, 1000);
})();
