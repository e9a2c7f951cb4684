// The breathing view (participant): one moving shape, one word, one soft colour.
// UI.md "The breathing view". The pacer phase comes from the server's pacer_state and the
// clock offset, advanced locally every animation frame (never from counted frames).

import { DrawnPacer, breathShape, pacerOn } from "./pacer.js";
import { SessionSocket, pageContext } from "./ws.js";
import { TimeWindow, drawSparkline, cssVar } from "./charts.js";
import { METRICS, clock, coherenceColour, coherenceLevel, fmt } from "./metrics.js";
import { installTooltips } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ctx = pageContext();
const canvas = $("pacer");
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");

const pacer = new DrawnPacer();
const coherence = new TimeWindow(300, ["cr"]);
const view = {
  me: null,
  solo: false,
  recording: null,
  ended: false,
  connected: null, // the strap's link (status.connected)
  contact: null,
  metrics: null,
  spectrum: null,
  cohLevel: null, // smoothed (10 s) position on the colour ramp
  alpha: 1, // how strongly the pacer is drawn: 1 full, SUBTLE_ALPHA when guidance fades it
  lastFrameS: null,
  paused: false, // the participant pressed stop (not solo): breathe normally
  lastSegment: "",
  plan: null, // the session plan's phase now (a `plan` frame: phase, number, of, ends_s), or null
};

const sock = new SessionSocket(ctx.ws, {
  onHello: hello,
  onFrame: frame,
  onConnection: () => renderState(),
  onClock: (delta) => {
    const now = sock.serverNow();
    if (now !== null) pacer.clockShift(delta, now);
  },
});

function hello(h) {
  view.me = h.participant;
  view.solo = h.solo === true;
  view.recording = h.recording;
  view.ended = h.ended;
  const me = (h.participants || []).find((p) => p.name === view.me) || (h.participants || [])[0] || {};
  view.connected = me.connected ?? null;
  view.contact = me.contact ?? null;
  const st = h.state || {};
  coherence.clear();
  view.metrics = st.metrics && view.me ? st.metrics[view.me] || null : null;
  view.spectrum = st.spectrum && view.me ? st.spectrum[view.me] || null : null;
  if (st.contact && view.me && st.contact[view.me]) view.contact = st.contact[view.me].contact;
  if (view.spectrum && view.spectrum.coherence_ratio !== null) coherence.push(view.spectrum.t_s, { cr: view.spectrum.coherence_ratio });
  setPlan(st.plan || null);
  const now = sock.serverNow();
  pacer.update(st.pacer || null, now ?? 0);
  for (const id of ["open-controls", "mark"]) $(id).classList.toggle("hidden", !view.solo);
  $("stop").classList.remove("hidden");
  syncControls(st.pacer);
  renderNumbers();
  renderState();
  document.body.dataset.participant = view.me || "";
  document.body.dataset.ready = "1";
}

function frame(f) {
  // Only this participant's events and the session-wide ones reach a participant (the
  // server enforces it); anything else is ignored here as well.
  if (f.participant != null && view.me != null && f.participant !== view.me) return;
  switch (f.type) {
    case "pacer_state":
      pacer.update(f, sock.serverNow() ?? f.t_s);
      syncControls(f);
      renderNumbers();
      document.body.dataset.pacerSeenUnixMs = String(Date.now());
      break;
    case "metrics":
      view.metrics = f;
      renderNumbers();
      break;
    case "spectrum":
      view.spectrum = f;
      if (f.coherence_ratio !== null) coherence.push(f.t_s, { cr: f.coherence_ratio });
      renderNumbers();
      break;
    case "contact":
      view.contact = f.contact;
      renderState();
      break;
    case "plan":
      setPlan(f);
      break;
    case "status":
      if (f.participant == null) {
        if (f.recording !== undefined && f.recording !== null) view.recording = f.recording;
        if (f.ended) view.ended = true;
      } else {
        if (f.connected !== undefined) view.connected = f.connected;
        if (f.contact !== undefined && f.contact !== null) view.contact = f.contact;
      }
      renderState();
      break;
    default:
      break;
  }
}

// ---------- state chip: said gently, always in the same place ----------
function renderState() {
  const chip = $("state");
  let state = sock.connection;
  let text;
  if (view.ended || state === "ended") {
    state = "ended";
    text = "session ended · saved";
  } else if (state === "reconnecting") {
    text = "reconnecting…";
  } else if (state === "connecting") {
    text = "connecting…";
  } else if (view.connected === false) {
    text = "strap not connected: check it is on and nearby";
    state = "reconnecting";
  } else if (view.contact === false) {
    text = "no skin contact: moisten the strap's electrodes";
    state = "reconnecting";
  } else if (view.recording === false) {
    text = "connected · not recording";
  } else {
    text = "connected";
  }
  chip.dataset.state = state;
  chip.querySelector(".text").textContent = text;
  document.body.dataset.connection = sock.connection;
}

function renderNumbers() {
  const m = view.metrics;
  $("hr").textContent = m && m.hr_bpm !== null ? fmt(m.hr_bpm, 0) : "—";
  $("hr-label").textContent = m && m.hr_bpm !== null ? "heart rate" : "heart rate: computing";
  const s = view.spectrum;
  const cr = s ? s.coherence_ratio : null;
  $("coh-label").textContent = cr === null || cr === undefined ? "coherence: computing (64 s)" : `coherence ${fmt(cr, 1)}`;
  const st = pacer.state;
  $("rate").textContent = pacerOn(st) ? String(Number(st.rate_bpm.toFixed(2))) : "off";
  // Scan and adaptive: the pacer is looking for this person's rate; say so gently.
  const finding = st && (st.mode === "scan" || st.mode === "adaptive") ? st.mode : "";
  if (document.body.dataset.finding !== finding) {
    document.body.dataset.finding = finding;
    $("finding").textContent = FINDING[finding] || "";
    $("finding").classList.toggle("hidden", !finding);
  }
  document.body.dataset.hr = m && m.hr_bpm !== null ? String(m.hr_bpm) : "";
  document.body.dataset.coherence = cr === null || cr === undefined ? "" : String(cr);
}

// ---------- the session plan: its phase and the time left, small and dim ----------
// From the server's `plan` frames (a plan's phase markers, which participants are not sent).
function setPlan(p) {
  view.plan = p && typeof p.phase === "string" && typeof p.ends_s === "number" ? p : null;
  const el = $("plan");
  el.classList.toggle("hidden", view.plan === null);
  el.dataset.phase = view.plan ? view.plan.phase : "";
  el.title = view.plan
    ? `The session plan: phase ${view.plan.number} of ${view.plan.of}, "${view.plan.phase}", and the time left in it`
    : "";
  if (view.plan === null) el.dataset.leftS = "";
}

function renderPlan(now) {
  const p = view.plan;
  if (p === null || now === null) return;
  const left = Math.max(0, Math.ceil(p.ends_s - now));
  const el = $("plan");
  if (el.dataset.leftS === String(left)) return;
  el.dataset.leftS = String(left);
  el.textContent = `${p.phase} · ${clock(left)} left`;
}

// ---------- the pacer, every animation frame ----------
const CUES = { inhale: "breathe in", hold_in: "hold", exhale: "breathe out", hold_out: "hold" };
const FINDING = {
  scan: "finding your rate · just follow the shape, it slows a little every 2 minutes",
  adaptive: "finding your rate · the shape adjusts to you, slowly",
};
// Coherence-adaptive guidance (pacer_state.guidance "subtle"): while coherence stays high
// the pacer fades to a faint cue (over ~3 s) and comes back quickly (~0.7 s) when it drops.
const SUBTLE_ALPHA = 0.22;
const FADE_S = 3;
const RETURN_S = 0.7;

// The canvas follows its box (and devicePixelRatio) through a ResizeObserver, so a frame
// never has to ask the layout for sizes.
const box = { w: 0, h: 0 };
new ResizeObserver((entries) => {
  const r = entries[entries.length - 1].contentRect;
  box.w = r.width;
  box.h = r.height;
}).observe(canvas);

function resizeCanvas() {
  const dpr = devicePixelRatio || 1;
  const w = Math.round(box.w * dpr);
  const h = Math.round(box.h * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { w, h, dpr };
}

let traceDrawnS = -Infinity; // the 5-minute trace changes every 5 s: redraw it once a second

const frameCost = { n: 0, totalMs: 0, maxMs: 0 }; // script time per frame (UI.md: < 2 ms)

// Theme colours, read once and again when the system switches light/dark (reading CSS
// every frame would cost a style recalculation each time).
const theme = {};
function readTheme() {
  for (const name of ["--faint", "--shape", "--shape-hi", "--fg"]) theme[name] = cssVar(name);
}
readTheme();
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", readTheme);

function drawFrame() {
  const t0 = performance.now();
  const frameS = t0 / 1000;
  const now = sock.serverNow(frameS);
  const dtS = view.lastFrameS === null ? 0 : Math.min(1, frameS - view.lastFrameS);
  view.lastFrameS = frameS;

  // Coherence colour follows slowly (10 s smoothing).
  const target = coherenceLevel(view.spectrum ? view.spectrum.coherence_ratio : null);
  if (target !== null) {
    view.cohLevel = view.cohLevel === null ? target : view.cohLevel + (target - view.cohLevel) * (1 - Math.exp(-dtS / 10));
  }

  const subtle = !!pacer.state && pacer.state.guidance === "subtle";
  const alphaTarget = subtle ? SUBTLE_ALPHA : 1;
  const tau = alphaTarget < view.alpha ? FADE_S : RETURN_S;
  view.alpha += (alphaTarget - view.alpha) * (1 - Math.exp(-dtS / tau));
  if (Math.abs(view.alpha - alphaTarget) < 0.002) view.alpha = alphaTarget;
  const guidance = subtle ? "subtle" : "full";
  if (document.body.dataset.guidance !== guidance) document.body.dataset.guidance = guidance;

  const phase = now === null || view.paused || view.ended ? null : pacer.phase(now);
  const shape = phase === null ? null : breathShape(phase, pacer.state);
  const scale = shape ? 0.42 + 0.58 * shape.volume : null;

  const { w, h, dpr } = resizeCanvas();
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  const useBar = reducedMotion.matches;
  $("fillbar").classList.toggle("hidden", !useBar || !shape);
  if (shape && useBar) {
    $("fillbar").firstElementChild.style.width = `${(shape.volume * 100).toFixed(1)}%`;
  }
  if (shape && !useBar) {
    const rMax = Math.min(w * 0.42, h * 0.36);
    const r = rMax * scale;
    const cx = w / 2;
    const cy = h * 0.46;
    const lvl = view.cohLevel === null ? 0 : view.cohLevel;
    const grad = g.createRadialGradient(cx, cy, r * 0.9, cx, cy, r * 1.35);
    grad.addColorStop(0, coherenceColour(lvl, view.cohLevel === null ? 0.25 : 0.8));
    grad.addColorStop(1, coherenceColour(lvl, 0));
    g.globalAlpha = view.alpha;
    g.fillStyle = grad;
    g.beginPath();
    g.arc(cx, cy, r * 1.35, 0, 2 * Math.PI);
    g.fill();
    const body = g.createRadialGradient(cx, cy - r * 0.3, r * 0.1, cx, cy, r);
    body.addColorStop(0, theme["--shape-hi"]);
    body.addColorStop(1, theme["--shape"]);
    g.fillStyle = body;
    g.beginPath();
    g.arc(cx, cy, r, 0, 2 * Math.PI);
    g.fill();
    if (shape.segment === "hold_in" || shape.segment === "hold_out") {
      // A hold: the shape stays still; a slow ring goes round once over the hold.
      g.strokeStyle = theme["--fg"];
      g.globalAlpha = 0.5 * view.alpha;
      g.lineWidth = 3 * dpr;
      g.beginPath();
      g.arc(cx, cy, r + 10 * dpr, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * shape.progress);
      g.stroke();
      g.globalAlpha = 1;
    }
    g.globalAlpha = 1;
  }

  // Test hook: what is drawn, read by the browser tests (UI.md "Structure").
  canvas.dataset.scale = scale === null ? "" : scale.toFixed(5);
  canvas.dataset.phase = phase === null ? "" : phase.toFixed(5);
  canvas.dataset.segment = shape ? shape.segment : "";
  canvas.dataset.t = frameS.toFixed(4); // the client time (s) the drawn phase is for
  const alphaText = view.alpha.toFixed(2);
  if (canvas.dataset.alpha !== alphaText) {
    canvas.dataset.alpha = alphaText;
    $("fillbar").style.opacity = alphaText;
    // The word fades less than the shape (still readable as a cue).
    $("cue").style.setProperty("--cue-alpha", String(Math.max(0.35, view.alpha)));
  }

  const cue = $("cue");
  let word = "";
  if (view.ended) word = "session ended";
  else if (view.paused) word = "paused · breathe normally";
  else if (shape) word = CUES[shape.segment];
  else if (pacer.state) word = "pacer off · breathe normally";
  if (word !== view.lastSegment) {
    view.lastSegment = word;
    cue.classList.add("fading");
    setTimeout(() => {
      cue.textContent = word;
      cue.classList.remove("fading");
    }, reducedMotion.matches ? 0 : 180);
  }
  const elapsed = clock(now);
  if ($("elapsed").textContent !== elapsed) $("elapsed").textContent = elapsed;
  renderPlan(now);
  if (frameS - traceDrawnS >= 1) {
    traceDrawnS = frameS;
    drawSparkline($("coh-trace"), coherence, "cr", now ?? 0, {
      colour: view.cohLevel === null ? theme["--faint"] : coherenceColour(view.cohLevel),
      min: 0,
    });
  }
  tone.update(now);
  const ms = performance.now() - t0;
  frameCost.n += 1;
  frameCost.totalMs += ms;
  frameCost.maxMs = Math.max(frameCost.maxMs, ms);
  requestAnimationFrame(drawFrame);
}

// ---------- the optional tone (off by default; started by a tap) ----------
const tone = {
  ctx: null,
  osc: null,
  gain: null,
  on: false,
  scheduledUntil: 0,
  toggle() {
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      this.ctx = new AC();
      this.osc = this.ctx.createOscillator();
      this.osc.type = "sine";
      this.gain = this.ctx.createGain();
      this.gain.gain.value = 0;
      this.osc.connect(this.gain).connect(this.ctx.destination);
      this.osc.start();
    }
    this.on = !this.on;
    this.ctx.resume();
    const t = this.ctx.currentTime;
    this.gain.gain.cancelScheduledValues(t);
    this.gain.gain.setTargetAtTime(this.on ? 0.05 : 0, t, 0.3);
    this.scheduledUntil = 0;
    $("sound").setAttribute("aria-pressed", String(this.on));
    $("sound").textContent = this.on ? "sound on" : "sound off";
  },
  // Schedule the pitch on the audio clock ahead of time, from the pacer's phase at each
  // audio time (so a throttled background tab still sounds right).
  update(now) {
    if (!this.on || !this.ctx || now === null) return;
    const a = this.ctx.currentTime;
    if (this.scheduledUntil > a + 0.5) return;
    const f = this.osc.frequency;
    f.cancelScheduledValues(a);
    for (let k = 0; k <= 40; k += 1) {
      const at = a + k * 0.05;
      const ph = view.paused ? null : pacer.phase(now + (at - a));
      const v = ph === null ? 0 : breathShape(ph, pacer.state).volume;
      f.linearRampToValueAtTime(196 + 98 * v, at);
    }
    this.scheduledUntil = a + 2;
  },
};

// ---------- solo controls ----------
function syncControls(st) {
  if (!st) return;
  if (document.activeElement && $("controls").contains(document.activeElement)) return;
  if (typeof st.rate_bpm === "number") $("c-rate").value = st.rate_bpm;
  const ratios = [0.5, 0.4, 0.3333];
  const near = ratios.reduce((a, b) => (Math.abs(b - st.inhale_fraction) < Math.abs(a - st.inhale_fraction) ? b : a));
  $("c-ratio").value = String(near);
  $("c-hold-in").value = st.hold_in_s ?? 0;
  $("c-hold-out").value = st.hold_out_s ?? 0;
  $("c-guidance").value = st.guidance_level || "off";
  $("c-toggle").textContent = pacerOn(st) ? "pacer off" : "pacer on";
}

async function sendPacer(fields) {
  $("c-sent").textContent = "sending…";
  try {
    await sock.send({ type: "pacer", ...fields });
    $("c-sent").textContent = "applied";
  } catch (err) {
    $("c-sent").textContent = `not applied: ${err.message}`;
  }
}

function pacerFields() {
  const rate = Math.min(40, Math.max(1, Number($("c-rate").value) || 6));
  const fields = {
    mode: "fixed",
    rate_bpm: rate,
    inhale_fraction: Number($("c-ratio").value),
    hold_in_s: Math.min(30, Math.max(0, Number($("c-hold-in").value) || 0)),
    hold_out_s: Math.min(30, Math.max(0, Number($("c-hold-out").value) || 0)),
  };
  // Guidance only when it changes (left out, the server keeps it as it is).
  const level = $("c-guidance").value;
  if (level !== ((pacer.state && pacer.state.guidance_level) || "off")) fields.guidance = level;
  return fields;
}

function step(d) {
  const v = Math.min(40, Math.max(1, (Number($("c-rate").value) || 6) + d));
  $("c-rate").value = v;
}

async function addMarker() {
  const t = sock.serverNow();
  try {
    await sock.send({ type: "marker", text: "marker", ...(t !== null ? { t_s: Math.max(0, t) } : {}) });
    flash("marker added");
  } catch (err) {
    flash(`marker not added: ${err.message}`);
  }
}

function flash(text) {
  const cue = $("cue");
  cue.textContent = text;
  view.lastSegment = text;
}

function installControls() {
  $("open-controls").addEventListener("click", () => {
    const hidden = $("controls").classList.toggle("hidden");
    $("open-controls").setAttribute("aria-expanded", String(!hidden));
  });
  $("c-close").addEventListener("click", () => $("controls").classList.add("hidden"));
  $("rate-down").addEventListener("click", () => step(-0.25));
  $("rate-up").addEventListener("click", () => step(0.25));
  $("c-apply").addEventListener("click", () => sendPacer(pacerFields()));
  $("c-toggle").addEventListener("click", () => {
    const on = pacerOn(pacer.state);
    sendPacer(on ? { mode: "off", rate_bpm: null } : pacerFields());
  });
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    sendPacer(pacerFields());
  });
  $("mark").addEventListener("click", addMarker);
  $("stop").addEventListener("click", async () => {
    if (view.solo) {
      if (!confirm("End the session? It is saved.")) return;
      try {
        await sock.send({ type: "end" });
      } catch (err) {
        flash(`not ended: ${err.message}`);
      }
      return;
    }
    view.paused = !view.paused;
    $("stop").textContent = view.paused ? "resume" : "stop";
  });
  $("sound").addEventListener("click", () => tone.toggle());
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (view.solo && (e.key === "m" || e.key === "M")) addMarker();
  });
}

// ---------- first session notice; keep the screen awake ----------
function firstNotice() {
  let seen = false;
  try {
    seen = localStorage.getItem("vagus.firstNoticeSeen") === "1";
  } catch (err) {
    seen = true; // storage blocked: do not nag every time
  }
  if (seen) return;
  $("first-notice").classList.remove("hidden");
  $("fn-ok").addEventListener("click", () => {
    $("first-notice").classList.add("hidden");
    try {
      localStorage.setItem("vagus.firstNoticeSeen", "1");
    } catch (err) {
      /* storage blocked */
    }
  });
}

let wakeLock = null;
async function keepAwake() {
  if (!("wakeLock" in navigator)) {
    // Said once, gently, where the state chip is: the screen may go dark on its own.
    const note = "this browser cannot keep the screen awake: set a longer screen timeout";
    $("elapsed").title = `Session time. ${note}.`;
    $("awake-note").textContent = note;
    $("awake-note").classList.remove("hidden");
    setTimeout(() => $("awake-note").classList.add("hidden"), 15000);
    return;
  }
  if (document.visibilityState !== "visible" || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => {
      wakeLock = null;
    });
  } catch (err) {
    wakeLock = null; // e.g. battery saver; the session goes on
  }
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") keepAwake();
});

installTooltips(METRICS);
installControls();
firstNotice();
keepAwake();
sock.connect();
requestAnimationFrame(drawFrame);
// For the tests and the console: the live state of this page.
window.vagusBreathe = { pacer, sock, view, frameCost };
