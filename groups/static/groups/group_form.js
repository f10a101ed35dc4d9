/* The group form: show only the schedule fields that the chosen frequency uses, none in "events only" mode,
 * and no refresh settings for a manual group. */
(function () {
  "use strict";
  const USES = { hourly: ["minute"], daily: ["time"], weekly: ["weekdays", "time"], monthly: ["day", "time"], cron: ["cron"] };

  function row(name) {
    const input = document.getElementById("id_schedule_" + name) || document.querySelector(`[name=schedule_${name}]`);
    return input ? input.closest(".form-row") : null;
  }

  function update() {
    // A manual group is never refreshed: its refresh settings mean nothing.
    const kind = document.getElementById("id_kind");
    const mode = document.getElementById("id_refresh_mode");
    if (kind && mode) mode.closest("fieldset").style.display = kind.value === "manual" ? "none" : "";
    const frequency = document.getElementById("id_schedule_frequency");
    if (!mode || !frequency) return;
    const scheduled = mode.value === "events_and_schedule";
    const frequencyRow = frequency.closest(".form-row");
    // A schedule kept in "events only" mode stays visible, so it is never a hidden surprise.
    if (frequencyRow) frequencyRow.style.display = scheduled || frequency.value ? "" : "none";
    const used = scheduled || frequency.value ? USES[frequency.value] || [] : [];
    for (const name of ["minute", "time", "weekdays", "day", "cron"]) {
      const r = row(name);
      if (r) r.style.display = used.includes(name) ? "" : "none";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["id_kind", "id_refresh_mode", "id_schedule_frequency"]) {
      const field = document.getElementById(id);
      if (field) field.addEventListener("change", update);
    }
    update();
  });
})();
