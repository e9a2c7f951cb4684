// The practitioner dashboard (and the viewer's read-only copy at /s/<id>/view).
// UI.md "The practitioner dashboard"; docs/protocol.md for the frames.

import { DrawnPacer, breathShape, pacerOn } from "./pacer.js";
import { SessionSocket, pageContext } from "./ws.js";
import { SessionView } from "./sessionview.js";
import { METRICS, clock } from "./metrics.js";
import { cssVar } from "./charts.js";
import { copyText, h, installTooltips, qrSvg } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ctx = pageContext();
const preview = new DrawnPacer();
let role = "practitioner";
let ended = false;
let helloFrame = null;
let pendingStamp = null; // session time when M was pressed
let lastSentPacer = null; // {at, fields}

const sock = new SessionSocket(ctx.ws, {
  onHello,
  onFrame,
  onConnection: renderConnection,
  onClock: (d) => {
    const n = sock.serverNow();
    if (n !== null) preview.clockShift(d, n);
  },
});
const view = new SessionView($("cards"), () => sock.serverNow());
view.onMarkers = renderMarkers;
view.onResonance = (r) => {
  scanTable(r);
  $("resonance").textContent =
    r && typeof r.rate_bpm === "number"
      ? `resonance ${Number(r.rate_bpm.toFixed(2))}/min (${r.method}${r.final ? "" : ", running"}; confidence ${Math.round(100 * r.confidence)} %)`
      : "";
};
view.onRsa = (p, r) => scanRsa(p, r);
view.onPacer = (p) => {
  preview.update(p, sock.serverNow() ?? (p ? p.t_s : 0));
  renderPacer(p);
  scanPacer(p);
};

// ---------- the resonance scan as a plot: RSA amplitude per pacer rate ----------
// While a scan runs: the mean amplitude of the clean paced breaths at each rate so far
// (the participant the pacer follows: the resonance event names it; before that, the
// first card). At the end: the scan's own table from the `resonance` event.
const scan = { live: new Map(), table: null, inScan: false, follows: null, startS: 0 };

function scanPacer(p) {
  const inScan = !!p && p.mode === "scan";
  if (inScan && !scan.inScan) {
    scan.live.clear();
    scan.table = null;
    scan.startS = p.t_s; // breaths that began before the scan are not its
  }
  scan.inScan = inScan;
  drawScan();
}

function scanRsa(who, r) {
  if (!scan.inScan || !r.paced || !r.clean || typeof r.amplitude_bpm !== "number") return;
  if (r.start_s < scan.startS - 0.05) return;
  const followed = scan.follows ?? [...view.cards.keys()][0];
  if (who !== followed) return;
  const key = Math.round(r.rate_bpm * 100) / 100;
  const cell = scan.live.get(key) || { sum: 0, n: 0 };
  cell.sum += r.amplitude_bpm;
  cell.n += 1;
  scan.live.set(key, cell);
  drawScan();
}

function scanTable(r) {
  if (!r) return;
  scan.follows = r.participant ?? scan.follows;
  if (r.method === "scan" && Array.isArray(r.rates_bpm) && r.rates_bpm.length) {
    scan.table = r;
    drawScan();
  }
}

function drawScan() {
  let rates;
  let amps;
  let best = null;
  if (scan.table) {
    rates = scan.table.rates_bpm;
    amps = scan.table.amplitude_bpm;
    best = scan.table.rate_bpm;
  } else {
    rates = [...scan.live.keys()].sort((a, b) => b - a);
    amps = rates.map((k) => scan.live.get(k).sum / scan.live.get(k).n);
  }
  const c = $("scan-plot");
  $("scan-box").classList.toggle("hidden", !rates.length);
  $("scan-title").textContent = scan.table ? `resonance scan: ${best === null ? "no rate found" : `${Number(best.toFixed(2))}/min`}` : "resonance scan (running)";
  c.dataset.rates = rates.join(",");
  c.dataset.amps = amps.map((a) => (typeof a === "number" ? a.toFixed(2) : "")).join(",");
  c.dataset.best = best === null ? "" : String(best);
  if (!rates.length) return;
  const dpr = devicePixelRatio || 1;
  const w = Math.round(c.clientWidth * dpr);
  const hh = Math.round(c.clientHeight * dpr);
  if (!w || !hh) return;
  c.width = w;
  c.height = hh;
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, hh);
  const lo = Math.min(...rates) - 0.5;
  const hi = Math.max(...rates) + 0.5;
  const top = Math.max(1, ...amps.filter((a) => typeof a === "number")) * 1.15;
  const pad = 18 * dpr;
  const x = (r) => pad + ((r - lo) / (hi - lo)) * (w - 2 * pad);
  const y = (a) => hh - pad - (a / top) * (hh - 2 * pad);
  const bw = Math.max(4 * dpr, ((w - 2 * pad) / (hi - lo)) * 0.35);
  g.font = `${11 * dpr}px system-ui, sans-serif`;
  g.textAlign = "center";
  rates.forEach((r, i) => {
    const a = amps[i];
    const isBest = best !== null && Math.abs(r - best) < 0.13;
    g.fillStyle = isBest ? cssVar("--accent") : cssVar("--faint");
    if (typeof a === "number") g.fillRect(x(r) - bw / 2, y(a), bw, hh - pad - y(a));
    g.fillStyle = cssVar("--muted");
    g.fillText(String(r), x(r), hh - 4 * dpr);
    if (typeof a === "number") g.fillText(a.toFixed(1), x(r), y(a) - 3 * dpr);
  });
  if (best !== null) {
    g.strokeStyle = cssVar("--accent");
    g.setLineDash([4 * dpr, 3 * dpr]);
    g.beginPath();
    g.moveTo(x(best), pad / 2);
    g.lineTo(x(best), hh - pad);
    g.stroke();
    g.setLineDash([]);
  }
}
addEventListener("resize", drawScan);

function onHello(hello) {
  helloFrame = hello;
  role = hello.role;
  ended = hello.ended;
  document.body.dataset.role = role;
  for (const el of document.querySelectorAll(".practitioner-only")) el.classList.toggle("hidden", role !== "practitioner");
  $("role-chip").classList.toggle("hidden", role === "practitioner");
  $("rec-toggle").classList.toggle("hidden", role !== "practitioner");
  $("title").textContent = hello.title || `session ${hello.session}`;
  document.title = `vagus · ${hello.title || hello.session}`;
  view.load(hello.participants, hello.state);
  renderRecording(hello.recording);
  renderLinks(hello.links);
  renderEnded();
  document.body.dataset.ready = "1";
}

function onFrame(f) {
  if (f.type === "status" && f.participant == null) {
    if (typeof f.recording === "boolean") renderRecording(f.recording);
    if (f.ended) {
      ended = true;
      renderEnded();
    }
  }
  if (f.type === "pacer_state" && lastSentPacer) {
    const ms = Math.round(performance.now() - lastSentPacer.at);
    $("p-sent").textContent = `applied at ${clock(f.t_s)} (in ${ms} ms); every breathing view follows from now`;
    lastSentPacer = null;
  }
  view.handle(f);
}

function renderConnection(state) {
  const chip = $("conn");
  chip.dataset.state = state;
  const text = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", ended: "ended" }[state] || state;
  chip.querySelector(".text").textContent = text;
  document.body.dataset.connection = state;
}

function renderRecording(on) {
  $("rec").textContent = on ? "● recording" : "not recording";
  $("rec").dataset.recording = String(!!on);
  $("rec-toggle").textContent = on ? "stop recording" : "start recording";
}

function renderEnded() {
  for (const id of ["end", "p-apply", "marker-add", "rec-toggle"]) $(id).disabled = ended;
  if (!ended) return;
  const a = $("review-link");
  a.href = `/s/${encodeURIComponent(ctx.session)}/review?token=${encodeURIComponent(ctx.token)}`;
  a.classList.remove("hidden");
}

function renderPacer(p) {
  $("pacer-now").textContent = pacerOn(p)
    ? `now ${Number(p.rate_bpm.toFixed(2))}/min · in:out ${ratioLabel(p.inhale_fraction)}${p.hold_in_s || p.hold_out_s ? ` · holds ${p.hold_in_s}/${p.hold_out_s} s` : ""}${p.mode !== "fixed" ? ` · ${p.mode}` : ""}`
    : "off";
  // Coherence-adaptive guidance: its level, and whether the participants' pacer is faded.
  const guidance = p && p.guidance_level ? `guidance ${p.guidance_level}` : "";
  const faded = p && p.guidance === "subtle" ? "faded (coherence high)" : "";
  const gText = [guidance, faded].filter(Boolean).join(": ");
  if (gText) $("pacer-now").textContent += ` · ${gText}`;
  const nowEl = $("pacer-now");
  nowEl.dataset.guidance = p && p.guidance === "subtle" ? "subtle" : "full";
  nowEl.dataset.guidanceLevel = (p && p.guidance_level) || "off";
  if (!p || document.activeElement && $("pacer-form").contains(document.activeElement)) return;
  if (typeof p.rate_bpm === "number") $("p-rate").value = p.rate_bpm;
  $("p-ratio").value = String([0.5, 0.4, 0.3333].reduce((a, b) => (Math.abs(b - p.inhale_fraction) < Math.abs(a - p.inhale_fraction) ? b : a)));
  $("p-hold-in").value = p.hold_in_s ?? 0;
  $("p-hold-out").value = p.hold_out_s ?? 0;
  $("p-mode").value = pacerOn(p) ? p.mode : "off";
  $("p-guidance").value = p.guidance_level || "off";
}

function ratioLabel(f) {
  const r = (1 - f) / f;
  return `1:${Number(r.toFixed(1))}`;
}

// ---------- pacer controls ----------
function clampNum(v, lo, hi, dflt) {
  const x = Number(v);
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : dflt;
}

$("rate-down").addEventListener("click", () => {
  $("p-rate").value = clampNum(Number($("p-rate").value) - 0.25, 1, 40, 6);
});
$("rate-up").addEventListener("click", () => {
  $("p-rate").value = clampNum(Number($("p-rate").value) + 0.25, 1, 40, 6);
});
$("pacer-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const mode = $("p-mode").value;
  const fields =
    mode === "off"
      ? { mode: "off", rate_bpm: null }
      : {
          mode,
          rate_bpm: Math.round(clampNum($("p-rate").value, 1, 40, 6) * 4) / 4,
          inhale_fraction: Number($("p-ratio").value),
          hold_in_s: clampNum($("p-hold-in").value, 0, 30, 0),
          hold_out_s: clampNum($("p-hold-out").value, 0, 30, 0),
        };
  // Guidance only when it changes (left out, the server keeps it as it is).
  const level = $("p-guidance").value;
  if (level !== ((view.pacer && view.pacer.guidance_level) || "off")) fields.guidance = level;
  $("p-sent").textContent = "sending…";
  lastSentPacer = { at: performance.now(), fields };
  try {
    await sock.send({ type: "pacer", ...fields });
    if (lastSentPacer) $("p-sent").textContent = "sent";
  } catch (err) {
    lastSentPacer = null;
    $("p-sent").textContent = `not applied: ${err.message}`;
  }
});

// ---------- markers: M stamps the moment, Enter sends ----------
document.addEventListener("keydown", (e) => {
  if (role !== "practitioner" || ended) return;
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
  if (!typing && (e.key === "m" || e.key === "M") && !e.ctrlKey && !e.metaKey && !e.altKey) {
    e.preventDefault();
    pendingStamp = sock.serverNow();
    $("marker-sent").textContent = pendingStamp === null ? "" : `stamped at ${clock(pendingStamp)}: type a note, Enter to add`;
    $("marker-text").focus();
  } else if (e.key === "Escape" && e.target === $("marker-text")) {
    pendingStamp = null;
    $("marker-sent").textContent = "";
    $("marker-text").blur();
  }
});
$("marker-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("marker-text").value.trim() || "marker";
  const t = pendingStamp ?? sock.serverNow();
  pendingStamp = null;
  try {
    await sock.send({ type: "marker", text, ...(t !== null ? { t_s: Math.max(0, t) } : {}) });
    $("marker-text").value = "";
    $("marker-sent").textContent = `added at ${clock(t)}`;
    $("marker-text").blur();
  } catch (err) {
    $("marker-sent").textContent = `not added: ${err.message}`;
  }
});

// The session plan's phase: its markers read "phase 2/3: practice (10 min)"; "plan end" ends it.
const PHASE_RE = /^phase (\d+)\/(\d+): (.+) \(([\d.]+) min\)$/;
let planPhase = null; // {n, of, name, endS}

function renderPlan(markers) {
  planPhase = null;
  for (const m of markers) {
    const g = PHASE_RE.exec(m.text);
    if (g) planPhase = { n: g[1], of: g[2], name: g[3], endS: m.t_s + 60 * Number(g[4]) };
    else if (m.text === "plan end") planPhase = null;
  }
  $("plan-chip").classList.toggle("hidden", planPhase === null);
}

function renderMarkers(markers) {
  renderPlan(markers);
  const ul = $("markers");
  ul.replaceChildren(
    ...markers
      .slice()
      .reverse()
      .map((m) => h("li", { dataset: { t: String(m.t_s) } }, h("span", { class: "muted", text: `${clock(m.t_s)}  ` }), m.text)),
  );
  if (!markers.length) ul.append(h("li", { class: "muted", text: "no markers yet" }));
}

// ---------- end session / recording ----------
$("end").addEventListener("click", () => $("end-dialog").showModal());
$("end-dialog").addEventListener("close", async () => {
  if ($("end-dialog").returnValue !== "end") return;
  try {
    await sock.send({ type: "end" });
  } catch (err) {
    $("p-sent").textContent = `not ended: ${err.message}`;
  }
});
$("rec-toggle").addEventListener("click", async () => {
  const on = $("rec").dataset.recording === "true";
  if (on && !confirm("Stop recording? The recording so far is saved; the live view goes on and nothing more is stored until you start again (as a new recording).")) return;
  try {
    await sock.send({ type: "recording", on: !on });
  } catch (err) {
    $("p-sent").textContent = `recording unchanged: ${err.message}`;
  }
});

// ---------- invite links, copy buttons, QR ----------
function absolute(url) {
  return new URL(url, location.href).href;
}

function renderLinks(links) {
  const box = $("links");
  box.replaceChildren();
  $("qr-box").replaceChildren();
  const rows = [];
  if (links && links.participants) for (const [name, url] of Object.entries(links.participants)) if (url) rows.push([name, "breathing view", url]);
  if (links && links.viewer) rows.push(["viewer", "read-only dashboard", links.viewer]);
  if (!rows.length) {
    box.append(h("p", { class: "small muted", text: "The links are in the server's output (vagus demo / live print them; vagus serve's admin page lists them)." }));
    return;
  }
  const showQr = (url, who) => {
    $("qr-box").replaceChildren(h("div", { class: "small muted", text: `QR code for ${who}: scan with the phone's camera` }), h("div", { class: "qr" }, qrSvg(url)));
  };
  for (const [who, what, url] of rows) {
    const abs = absolute(url);
    const copy = h("button", { type: "button", text: "copy" });
    copy.addEventListener("click", () => copyText(copy, abs));
    const qr = h("button", { type: "button", text: "QR" });
    qr.addEventListener("click", () => showQr(abs, who));
    box.append(h("div", { class: "link-row" }, h("span", { class: "who", text: `${who} · ${what}` }), h("code", { title: abs, text: abs }), copy, qr));
  }
  showQr(absolute(rows[0][2]), rows[0][0]);
}
$("invite").addEventListener("click", () => $("invite-dialog").showModal());

// ---------- elapsed time and the live preview of the pacer ----------
function tick() {
  const now = sock.serverNow();
  $("elapsed").textContent = clock(now);
  if (planPhase !== null && now !== null) {
    const text = `${planPhase.name} (${planPhase.n}/${planPhase.of}) · ${clock(Math.max(0, Math.ceil(planPhase.endS - now)))} left`;
    if ($("plan-chip").textContent !== text) $("plan-chip").textContent = text;
  }
  const c = $("preview");
  const dpr = devicePixelRatio || 1;
  const w = Math.round(c.clientWidth * dpr);
  const hh = Math.round(c.clientHeight * dpr);
  if (c.width !== w || c.height !== hh) {
    c.width = w;
    c.height = hh;
  }
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, hh);
  const ph = now === null ? null : preview.phase(now);
  if (ph !== null && w > 0) {
    const v = breathShape(ph, preview.state).volume;
    const r = (Math.min(w, hh) / 2) * (0.42 + 0.58 * v) * 0.9;
    g.fillStyle = cssVar("--shape");
    g.beginPath();
    g.arc(w / 2, hh / 2, r, 0, 2 * Math.PI);
    g.fill();
    c.dataset.scale = (0.42 + 0.58 * v).toFixed(4);
  } else {
    c.dataset.scale = "";
  }
  requestAnimationFrame(tick);
}

installTooltips(METRICS);
renderMarkers([]);
sock.connect();
requestAnimationFrame(tick);
// For the tests and the console: the live state of this page.
window.vagusDashboard = { view, sock, hello: () => helloFrame };
