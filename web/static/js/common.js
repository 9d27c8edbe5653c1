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

  // WebAudio beep: no sound file needed. Browsers allow audio only after a user gesture: until then the switch
  // says so ("Sound: click to turn on"), and one click on it (or anywhere on the page) turns it on.
  let audio = null;
  let soundWanted = false;
  function ensureAudio() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
      audio.onstatechange = showSound;
    }
    if (audio.state === "suspended") audio.resume().then(showSound, showSound);
    return audio;
  }
  function soundState() {
    if (!soundWanted) return "off";
    return audio && audio.state === "running" ? "on" : "blocked";
  }
  function showSound() {
    const state = soundState();
    const text = { on: "Sound on", off: "Sound off", blocked: "Sound: click to turn on" }[state];
    document.querySelectorAll("#sound-toggle").forEach(function (b) {
      b.textContent = text;
      b.dataset.sound = state;
      b.setAttribute("aria-pressed", state === "on" ? "true" : "false");
      b.title = state === "blocked" ? "the browser plays sound only after a click on the page" : "";
    });
  }
  function beep(times) {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    if (!soundWanted) return;
    const ctx = ensureAudio();
    if (!ctx) return;
    function play() {
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
      document.body.dataset.sounded = String(Number(document.body.dataset.sounded || 0) + 1);  // heard
    }
    if (ctx.state === "running") play();
    else ctx.resume().then(function () { if (ctx.state === "running") play(); }, function () { /* blocked */ });
  }
  function setSound(on) {
    soundWanted = on;
    try { localStorage.setItem("areya.sound", on ? "1" : "0"); } catch (e) { /* private mode */ }
    if (on) ensureAudio();
    showSound();
  }

  function fragment(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    return tpl.content.firstElementChild;
  }

  // New alerts stack in #alert-banner (newest first), each naming the patient and the bed, with Acknowledge
  // (when this user may) and Dismiss. A technical alert (a camera) is shown to clinicians on the bed itself.
  function bannerWho(info) {
    const who = info.patient ? info.patient + " — " + (info.bed || "no bed") : "camera " + (info.camera || "");
    return who + (info.ward ? ", ward " + info.ward : "") + " · " + info.title;
  }
  function bannerText(info, type) {
    return (type === "alert.escalated" ? "Still not acknowledged: " : "New alert: ") + bannerWho(info);
  }
  function button(text, cls) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (cls) b.className = cls;
    return b;
  }
  function alertBanner(data) {
    const stack = document.getElementById("alert-banner");
    const info = data.banner;
    if (!stack || !info) return false;
    if (info.technical && document.body.dataset.role !== "admin") return false;
    clearBanner(info.alert_id);
    const item = document.createElement("div");
    item.className = "banner" + (info.technical ? " technical" : "");
    item.dataset.alert = String(info.alert_id);
    item.setAttribute("role", "alert");
    const text = document.createElement("span");
    text.className = "banner-text";
    text.textContent = bannerText(info, data.type);
    item.appendChild(text);
    if (info.may_acknowledge) {
      const ack = button("Acknowledge", "ack");
      ack.addEventListener("click", function () { acknowledge(stack, item, info, ack); });
      item.appendChild(ack);
    }
    const dismiss = button("Dismiss", "link dismiss");
    dismiss.addEventListener("click", function () { item.remove(); });
    item.appendChild(dismiss);
    stack.insertBefore(item, stack.firstChild);
    return true;
  }
  function acknowledge(stack, item, info, ack) {
    ack.disabled = true;
    item.classList.add("acking");  // the live "acknowledged" event may come before this answer: keep the banner
    const url = stack.dataset.ackUrl.replace("/0/", "/" + info.alert_id + "/");
    const body = new URLSearchParams({ csrf_token: csrfToken(), note: "" });
    fetch(url, { method: "POST", body: body, credentials: "same-origin",
                 headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok && j.ok, body: j }; }); })
      .then(function (res) {
        const text = item.querySelector(".banner-text");
        if (res.ok) {
          item.classList.add("done");
          text.textContent = res.body.already ? res.body.message : "Acknowledged: " + bannerWho(info);
          ack.remove();
          setTimeout(function () { item.remove(); }, 8000);
        } else {
          text.textContent = "Could not acknowledge: " + (res.body.error || "try the alert page");
          ack.disabled = false;
          item.classList.remove("acking");
        }
      })
      .catch(function () { ack.disabled = false; item.classList.remove("acking"); });
  }
  function clearBanner(alertId) {
    document.querySelectorAll('#alert-banner .banner[data-alert="' + alertId + '"]').forEach(function (el) {
      if (!el.classList.contains("done") && !el.classList.contains("acking")) el.remove();
    });
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
      b.addEventListener("click", function () {
        const wasBlocked = soundState() === "blocked";
        setSound(wasBlocked ? true : !soundWanted);  // blocked: this click is the one the browser waited for
        if (soundWanted) beep(1);
      });
    });
    document.addEventListener("pointerdown", function () { if (soundWanted) ensureAudio(); }, { once: true });
  });

  window.Areya = { csrfToken: csrfToken, tickTimes: tickTimes, beep: beep, connect: connect, fragment: fragment,
                   alertBanner: alertBanner, clearBanner: clearBanner, soundState: soundState };
})();
