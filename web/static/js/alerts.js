/* Doctor alert inbox: new alerts appear live (visible banner + beep), changed ones are redrawn, resolved ones go. */
(function () {
  "use strict";

  function count() {
    const n = document.querySelectorAll("#alert-list .alert-card").length;
    const el = document.getElementById("alert-count");
    if (el) el.textContent = String(n);
    const empty = document.getElementById("no-alerts");
    if (empty) empty.hidden = n > 0;
    document.title = (n ? "(" + n + ") " : "") + "Alerts · Areya";
  }

  // keep the server's order: severity (high first), then oldest first
  function insertSorted(list, card) {
    const sev = Number(card.dataset.severity || 0);
    const opened = Date.parse(card.dataset.opened || "") || 0;
    const next = Array.from(list.querySelectorAll(".alert-card")).find(function (other) {
      const s = Number(other.dataset.severity || 0);
      const o = Date.parse(other.dataset.opened || "") || 0;
      return s < sev || (s === sev && o > opened);
    });
    list.insertBefore(card, next || null);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const list = document.getElementById("alert-list");
    if (!list || !window.EventSource) return;
    Areya.connect(list.dataset.events, {
      alert: function (data) {
        const old = document.getElementById("alert-" + data.alert_id);
        if (!data.html) {
          if (old) old.remove();
          count();
          return;
        }
        const card = Areya.fragment(data.html);
        if (!card) return;
        if (old) old.remove();
        insertSorted(list, card);
        card.classList.add("new");
        Areya.tickTimes(card);
        count();
        if (data.type === "alert.opened" || data.type === "alert.escalated") {
          const title = card.querySelector("h2") ? card.querySelector("h2").textContent.trim() : "alert";
          const where = card.querySelector(".where") ? card.querySelector(".where").textContent.replace(/\s+/g, " ").trim() : "";
          Areya.showBanner((data.type === "alert.opened" ? "New alert: " : "Escalated: ") + title + (where ? " — " + where : ""));
          Areya.beep(data.type === "alert.escalated" ? 3 : 2);
        }
      },
    });
    count();
  });
})();
