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

  // keep the server's order: priority (high first), then patient before technical conditions (an admin's list:
  // technical first), then urgency (reminders sent), then oldest first
  function key(card, technicalFirst) {
    const technical = Number(card.dataset.technical || 0);
    return [Number(card.dataset.priority || 0), technicalFirst ? 1 - technical : technical,
            -Number(card.dataset.urgency || 0), Date.parse(card.dataset.opened || "") || 0];
  }
  function before(a, b) {
    for (let i = 0; i < a.length; i++) { if (a[i] !== b[i]) return a[i] < b[i]; }
    return false;
  }
  function insertSorted(list, card) {
    const technicalFirst = list.dataset.technicalFirst === "1";
    const mine = key(card, technicalFirst);
    const next = Array.from(list.querySelectorAll(".alert-card")).find(function (other) {
      return before(mine, key(other, technicalFirst));
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
          Areya.clearBanner(data.alert_id);
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
          if (Areya.alertBanner(data)) Areya.beep(data.type === "alert.escalated" ? 3 : 2);
        } else if (data.type === "alert.acknowledged") {
          Areya.clearBanner(data.alert_id);
        }
      },
    });
    count();
  });
})();
