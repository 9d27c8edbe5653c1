/* Nurse views (one ward, or the central station: every bed of every ward, ordered by need): replace a bed's tile
   when the server sends its new rendering; on the station keep the order by need and the per-ward counts; stack a
   banner and sound for new alerts. */
(function () {
  "use strict";

  // the server's order (areya.webapp.bed_state.BedState.sort_key, then ward and bed)
  function key(tile) {
    const since = Date.parse(tile.dataset.since || "");
    return [Number(tile.dataset.group || 9), tile.dataset.firing === "1" ? 0 : 1, isNaN(since) ? Infinity : since,
            tile.dataset.wardName || "", tile.dataset.bedLabel || ""];
  }
  function compare(a, b) {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] === kb[i]) continue;
      if (typeof ka[i] === "string") return ka[i].localeCompare(kb[i], undefined, { numeric: true });
      return ka[i] < kb[i] ? -1 : 1;
    }
    return 0;
  }
  function reorder(tiles) {
    const sorted = Array.from(tiles.querySelectorAll(".tile")).sort(compare);
    sorted.forEach(function (tile, i) { if (tiles.children[i] !== tile) tiles.insertBefore(tile, tiles.children[i] || null); });
  }
  function recount(tiles) {
    document.querySelectorAll("#ward-counts li[data-ward]").forEach(function (li) {
      const mine = tiles.querySelectorAll('.tile[data-ward="' + li.dataset.ward + '"]');
      li.querySelectorAll("[data-count]").forEach(function (el) {
        const n = Array.from(mine).filter(function (t) { return t.dataset.state === el.dataset.count; }).length;
        el.querySelector(".n").textContent = String(n);
        el.classList.toggle("zero", n === 0);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const tiles = document.getElementById("tiles");
    if (!tiles || !window.EventSource) return;
    const station = tiles.dataset.station === "1";
    Areya.connect(tiles.dataset.events, {
      tile: function (data) {
        const old = document.getElementById("tile-" + data.bed_id);
        const fresh = Areya.fragment(data.html);
        if (!fresh) return;
        if (old) old.replaceWith(fresh); else tiles.appendChild(fresh);
        fresh.classList.add("updated");
        Areya.tickTimes(fresh);
        if (station) { reorder(tiles); recount(tiles); }
      },
      alert: function (data) {
        if (data.type === "alert.opened" || data.type === "alert.escalated") {
          if (Areya.alertBanner(data)) Areya.beep(data.type === "alert.escalated" ? 3 : 2);
        } else if (data.type === "alert.acknowledged" || data.type === "alert.resolved") {
          Areya.clearBanner(data.alert_id);
        }
      },
    });
  });
})();
