/* Bed-zone editor: draw, move and resize normalized rectangles over the camera snapshot with pointer events,
   bind each to a bed, save all at once (the server replaces the camera's zones in one transaction).
   Each zone may hold a head-of-bed (pillow) region: "Draw pillow" arms the next drag to draw it inside the zone;
   "Default pillow" drops it (the server then uses the top of the zone). */
(function () {
  "use strict";
  const MIN_SIZE = 0.02;

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function round(v) { return Math.round(v * 1000) / 1000; }

  document.addEventListener("DOMContentLoaded", function () {
    const editor = document.getElementById("zone-editor");
    if (!editor) return;
    const stage = document.getElementById("stage");
    const list = document.getElementById("zone-list");
    const status = document.getElementById("zone-status");
    const bedIds = JSON.parse(editor.dataset.beds || "[]");
    const bedLabels = JSON.parse(editor.dataset.labels || "[]");
    const labelOf = {};
    bedIds.forEach(function (id, i) { labelOf[id] = bedLabels[i]; });
    let zones = JSON.parse(editor.dataset.zones || "[]");
    let selected = -1;
    let invalid = -1;
    let drag = null;
    let pillowFor = -1;  // the zone whose pillow region the next drag draws

    function point(ev) {
      const r = stage.getBoundingClientRect();
      return { x: clamp((ev.clientX - r.left) / r.width, 0, 1), y: clamp((ev.clientY - r.top) / r.height, 0, 1) };
    }
    function freeBed() {
      const used = zones.map(function (z) { return z.bed_id; });
      const free = bedIds.find(function (id) { return used.indexOf(id) < 0; });
      return free === undefined ? null : free;
    }
    function say(text, kind) {
      status.textContent = text;
      status.className = "zone-status" + (kind ? " " + kind : "");
    }

    function render() {
      stage.querySelectorAll(".zone").forEach(function (el) { el.remove(); });
      list.textContent = "";
      zones.forEach(function (z, i) {
        const box = document.createElement("div");
        box.className = "zone" + (i === selected ? " selected" : "") + (i === invalid ? " invalid" : "");
        box.dataset.index = String(i);
        box.style.left = (z.x0 * 100) + "%";
        box.style.top = (z.y0 * 100) + "%";
        box.style.width = ((z.x1 - z.x0) * 100) + "%";
        box.style.height = ((z.y1 - z.y0) * 100) + "%";
        const label = document.createElement("span");
        label.className = "zone-label";
        label.textContent = z.bed_id != null ? "Bed " + labelOf[z.bed_id] : "choose a bed";
        const handle = document.createElement("span");
        handle.className = "handle";
        handle.dataset.handle = "1";
        box.appendChild(label);
        box.appendChild(handle);
        if (z.head) {
          const pillow = document.createElement("div");
          pillow.className = "pillow";
          pillow.title = "head of the bed (pillow)";
          pillow.style.position = "absolute";
          pillow.style.border = "2px dashed #00e0ff";
          pillow.style.pointerEvents = "none";
          pillow.style.left = ((z.head.x0 - z.x0) / (z.x1 - z.x0) * 100) + "%";
          pillow.style.top = ((z.head.y0 - z.y0) / (z.y1 - z.y0) * 100) + "%";
          pillow.style.width = ((z.head.x1 - z.head.x0) / (z.x1 - z.x0) * 100) + "%";
          pillow.style.height = ((z.head.y1 - z.head.y0) / (z.y1 - z.y0) * 100) + "%";
          box.appendChild(pillow);
        }
        stage.appendChild(box);

        const li = document.createElement("li");
        if (i === invalid) li.className = "invalid";
        const select = document.createElement("select");
        select.setAttribute("aria-label", "bed of zone " + (i + 1));
        select.dataset.index = String(i);
        const none = document.createElement("option");
        none.value = "";
        none.textContent = "choose a bed…";
        select.appendChild(none);
        bedIds.forEach(function (id) {
          const opt = document.createElement("option");
          opt.value = String(id);
          opt.textContent = "Bed " + labelOf[id];
          if (z.bed_id === id) opt.selected = true;
          select.appendChild(opt);
        });
        select.addEventListener("change", function () {
          zones[i].bed_id = select.value ? Number(select.value) : null;
          invalid = -1;
          render();
        });
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "small danger";
        remove.textContent = "Remove";
        remove.addEventListener("click", function () { zones.splice(i, 1); selected = -1; invalid = -1; render(); });
        const coords = document.createElement("span");
        coords.className = "coords";
        coords.textContent = "x " + round(z.x0) + "–" + round(z.x1) + ", y " + round(z.y0) + "–" + round(z.y1);
        const drawPillow = document.createElement("button");
        drawPillow.type = "button";
        drawPillow.className = "small" + (pillowFor === i ? " armed" : "");
        drawPillow.dataset.pillow = String(i);
        drawPillow.textContent = pillowFor === i ? "Drag on the zone…" : "Draw pillow";
        drawPillow.addEventListener("click", function () {
          pillowFor = pillowFor === i ? -1 : i;
          selected = i;
          say(pillowFor === i ? "Drag inside zone " + (i + 1) + " where the patient's head lies." : "", "");
          render();
        });
        const pillowNote = document.createElement("span");
        pillowNote.className = "coords pillow-coords";
        pillowNote.textContent = z.head
          ? " pillow x " + round(z.head.x0) + "–" + round(z.head.x1) + ", y " + round(z.head.y0) + "–" + round(z.head.y1)
          : " pillow: top of the zone (default)";
        li.appendChild(select);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(remove);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(drawPillow);
        if (z.head) {
          const clear = document.createElement("button");
          clear.type = "button";
          clear.className = "small";
          clear.textContent = "Default pillow";
          clear.addEventListener("click", function () { zones[i].head = null; say("Unsaved changes", ""); render(); });
          li.appendChild(document.createTextNode(" "));
          li.appendChild(clear);
        }
        li.appendChild(coords);
        li.appendChild(pillowNote);
        list.appendChild(li);
      });
      if (!zones.length) {
        const li = document.createElement("li");
        li.className = "muted";
        li.textContent = "No zones yet: drag on the picture to draw one.";
        list.appendChild(li);
      }
    }

    stage.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      const p = point(ev);
      const target = ev.target.closest ? ev.target.closest(".zone") : null;
      stage.setPointerCapture(ev.pointerId);
      ev.preventDefault();
      if (pillowFor >= 0 && pillowFor < zones.length) {
        const zp = zones[pillowFor];
        const q = { x: clamp(p.x, zp.x0, zp.x1), y: clamp(p.y, zp.y0, zp.y1) };
        zp.head = { x0: q.x, y0: q.y, x1: q.x, y1: q.y };
        drag = { mode: "pillow", index: pillowFor, start: q };
        render();
        return;
      }
      if (target) {
        const i = Number(target.dataset.index);
        selected = i;
        const z = zones[i];
        drag = { mode: ev.target.dataset.handle ? "resize" : "move", index: i, start: p,
                 orig: { x0: z.x0, y0: z.y0, x1: z.x1, y1: z.y1 },
                 origHead: z.head ? { x0: z.head.x0, y0: z.head.y0, x1: z.head.x1, y1: z.head.y1 } : null };
      } else {
        zones.push({ bed_id: freeBed(), x0: p.x, y0: p.y, x1: p.x, y1: p.y });
        selected = zones.length - 1;
        drag = { mode: "draw", index: selected, start: p };
      }
      invalid = -1;
      render();
    });

    stage.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      const p = point(ev);
      const z = zones[drag.index];
      if (drag.mode === "pillow") {
        const q = { x: clamp(p.x, z.x0, z.x1), y: clamp(p.y, z.y0, z.y1) };
        z.head = { x0: Math.min(drag.start.x, q.x), y0: Math.min(drag.start.y, q.y),
                   x1: Math.max(drag.start.x, q.x), y1: Math.max(drag.start.y, q.y) };
      } else if (drag.mode === "draw") {
        z.x0 = Math.min(drag.start.x, p.x); z.x1 = Math.max(drag.start.x, p.x);
        z.y0 = Math.min(drag.start.y, p.y); z.y1 = Math.max(drag.start.y, p.y);
      } else if (drag.mode === "move") {
        const w = drag.orig.x1 - drag.orig.x0, h = drag.orig.y1 - drag.orig.y0;
        z.x0 = clamp(drag.orig.x0 + p.x - drag.start.x, 0, 1 - w); z.x1 = z.x0 + w;
        z.y0 = clamp(drag.orig.y0 + p.y - drag.start.y, 0, 1 - h); z.y1 = z.y0 + h;
        if (drag.origHead) {  // the pillow moves with its zone
          const dx = z.x0 - drag.orig.x0, dy = z.y0 - drag.orig.y0, o = drag.origHead;
          z.head = { x0: o.x0 + dx, y0: o.y0 + dy, x1: o.x1 + dx, y1: o.y1 + dy };
        }
      } else {
        z.x1 = clamp(p.x, z.x0 + MIN_SIZE, 1); z.y1 = clamp(p.y, z.y0 + MIN_SIZE, 1);
        if (z.head) {  // a pillow keeps inside its zone; one left too small is dropped at the end
          z.head = { x0: z.head.x0, y0: z.head.y0, x1: Math.min(z.head.x1, z.x1), y1: Math.min(z.head.y1, z.y1) };
        }
      }
      render();
    });

    function endDrag(ev) {
      if (!drag) return;
      const z = zones[drag.index];
      if (drag.mode === "pillow") {
        pillowFor = -1;
      }
      if (z.head && (z.head.x1 - z.head.x0 < MIN_SIZE / 2 || z.head.y1 - z.head.y0 < MIN_SIZE / 2)) {
        z.head = null;  // a click, not a drag: no pillow region
      } else if (z.head) {
        ["x0", "y0", "x1", "y1"].forEach(function (k) { z.head[k] = round(z.head[k]); });
        z.head = { x0: Math.max(z.head.x0, z.x0), y0: Math.max(z.head.y0, z.y0),
                   x1: Math.min(z.head.x1, z.x1), y1: Math.min(z.head.y1, z.y1) };
      }
      if (drag.mode === "draw" && (z.x1 - z.x0 < MIN_SIZE || z.y1 - z.y0 < MIN_SIZE)) {
        zones.splice(drag.index, 1);
        selected = -1;
      } else {
        ["x0", "y0", "x1", "y1"].forEach(function (k) { z[k] = round(z[k]); });
        say("Unsaved changes", "");
      }
      drag = null;
      if (ev && stage.hasPointerCapture(ev.pointerId)) stage.releasePointerCapture(ev.pointerId);
      render();
    }
    stage.addEventListener("pointerup", endDrag);
    stage.addEventListener("pointercancel", endDrag);

    document.getElementById("save-zones").addEventListener("click", function () {
      const missing = zones.findIndex(function (z) { return z.bed_id == null; });
      if (missing >= 0) {
        invalid = missing;
        render();
        say("Zone " + (missing + 1) + ": choose its bed.", "error");
        return;
      }
      say("Saving…", "");
      fetch(editor.dataset.save, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": Areya.csrfToken() },
        body: JSON.stringify({ zones: zones }),
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (r) {
        if (r.ok && r.body.ok) {
          zones = r.body.zones;
          invalid = -1;
          render();
          say("Saved " + zones.length + " zone(s).", "ok");
        } else {
          invalid = typeof r.body.index === "number" ? r.body.index : -1;
          render();
          say(r.body.error || "Not saved.", "error");
        }
      }).catch(function () { say("Not saved: the server could not be reached.", "error"); });
    });

    render();
  });
})();
