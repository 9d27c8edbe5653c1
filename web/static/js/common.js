/* Areya dashboard helpers: relative times, confirmations, the live-event connection and the audible cue.
   No inline script anywhere (CSP script-src 'self'). */
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function formatAge(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function tickTimes(root) {
    (root || document).querySelectorAll("time[data-since]").forEach(function (el) {
      const since = el.getAttribute("data-since");
      if (!since) return;
      const t = Date.parse(since);
      if (!isNaN(t)) el.textContent = formatAge((Date.now() - t) / 1000);
    });
  }

  // WebAudio beep: no sound file needed. Browsers allow audio after a user gesture, so the context is
  // (re)started on the first click/key press on the page.
  let audio = null;
  let soundOn = false;
  function ensureAudio() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
    }
    if (audio.state === "suspended") audio.resume();
    return audio;
  }
  function beep(times) {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    if (!soundOn) return;
    const ctx = ensureAudio();
    if (!ctx) return;
    let t = ctx.currentTime;
    for (let i = 0; i < (times || 2); i++) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.3);
      t += 0.35;
    }
  }
  function setSound(on) {
    soundOn = on;
    try { localStorage.setItem("areya.sound", on ? "1" : "0"); } catch (e) { /* private mode */ }
    if (on) ensureAudio();
    const blocked = on && audio && audio.state === "suspended";  // the browser waits for a click before sound
    document.querySelectorAll("#sound-toggle").forEach(function (b) {
      b.textContent = "Sound: " + (on ? (blocked ? "on (click to allow)" : "on") : "off");
    });
  }

  function fragment(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    return tpl.content.firstElementChild;
  }

  function showBanner(text) {
    const banner = document.getElementById("alert-banner");
    if (!banner) return;
    banner.textContent = text;
    banner.hidden = false;
    clearTimeout(showBanner.timer);
    showBanner.timer = setTimeout(function () { banner.hidden = true; }, 20000);
  }

  // EventSource with a visible connection state; the browser reconnects by itself after a dropped stream. A
  // refused one (429: too many live views open) is closed for good by the browser: try again after a while.
  const REFUSED_RETRY_MS = 30000;
  function connect(url, handlers) {
    const status = document.getElementById("live-status");
    const dot = document.getElementById("live-dot");
    function state(s, text) {
      if (status) { status.dataset.state = s; status.textContent = text; }
      if (dot) dot.hidden = s !== "live";
    }
    const source = new EventSource(url);
    source.onopen = function () { state("live", "Live"); };
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) { state("offline", "Reconnecting…"); return; }
      state("offline", "Live updates paused (too many open views?): retrying in 30 s");
      setTimeout(function () { connect(url, handlers); }, REFUSED_RETRY_MS);
    };
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (ev) {
        let data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        handlers[name](data);
      });
    });
    window.addEventListener("beforeunload", function () { source.close(); });
    return source;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickTimes();
    setInterval(tickTimes, 1000);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
    let stored = "1";  // sound on unless the user turned it off on this device
    try { stored = localStorage.getItem("areya.sound") || "1"; } catch (e) { /* ignore */ }
    setSound(stored === "1");
    document.querySelectorAll("#sound-toggle").forEach(function (b) {
      b.addEventListener("click", function () { setSound(!soundOn); if (soundOn) beep(1); });
    });
    document.addEventListener("pointerdown", function () { if (soundOn) { ensureAudio(); setSound(true); } },
                              { once: true });
  });

  window.Areya = { csrfToken: csrfToken, tickTimes: tickTimes, beep: beep, connect: connect, fragment: fragment,
                   showBanner: showBanner };
})();
