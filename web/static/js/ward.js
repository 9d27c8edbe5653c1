/* Nurse ward view: replace a bed's tile when the server sends its new rendering; cue new alerts. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const tiles = document.getElementById("tiles");
    if (!tiles || !window.EventSource) return;
    Areya.connect(tiles.dataset.events, {
      tile: function (data) {
        const old = document.getElementById("tile-" + data.bed_id);
        const fresh = Areya.fragment(data.html);
        if (!fresh) return;
        if (old) old.replaceWith(fresh); else tiles.appendChild(fresh);
        fresh.classList.add("updated");
        Areya.tickTimes(fresh);
      },
      alert: function (data) {
        if (data.type === "alert.opened" || data.type === "alert.escalated") {
          const tile = document.querySelector('.tile[data-patient="' + data.patient_id + '"]');
          const where = tile ? tile.querySelector(".bed").textContent : "this ward";
          Areya.showBanner((data.type === "alert.opened" ? "New alert: " : "Alert escalated: ") + where);
          Areya.beep(data.type === "alert.escalated" ? 3 : 2);
        }
      },
    });
  });
})();
