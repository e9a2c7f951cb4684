// Review of a recorded session: the dashboard fed by the server's replay of the stored
// input (docs/protocol.md "Review"), a timeline with the markers and pacer changes on it,
// seek, play at 1×, 4× or as fast as possible, pause; per participant.

import { SessionSocket, pageContext } from "./ws.js";
import { SessionView } from "./sessionview.js";
import { clock } from "./metrics.js";
import { h } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ctx = pageContext();
const rv = { duration: 0, t: 0, playing: false, speed: 1, timeline: [], latestEventS: null };

const sock = new SessionSocket(ctx.ws, {
  query: "&mode=review",
  onHello,
  onFrame,
  onConnection: (state) => {
    const chip = $("conn");
    chip.dataset.state = state;
    chip.querySelector(".text").textContent = { connecting: "connecting…", open: "replay ready", reconnecting: "reconnecting…", ended: "closed" }[state] || state;
    document.body.dataset.connection = state;
  },
});
const view = new SessionView($("cards"), () => nowS());
view.review = true;

function nowS() {
  return Math.max(rv.t, rv.latestEventS ?? -Infinity);
}

function onHello(hello) {
  const r = hello.review || {};
  rv.duration = r.duration_s || 0;
  rv.t = r.t_s || 0;
  rv.playing = !!r.playing;
  rv.speed = r.speed ?? 1;
  rv.timeline = r.timeline || [];
  rv.latestEventS = null;
  $("title").textContent = `review · ${hello.title || hello.session}`;
  view.load(hello.participants, hello.state);
  const sel = $("who");
  const keep = sel.value;
  sel.replaceChildren(h("option", { value: "", text: "all" }), ...(hello.participants || []).map((p) => h("option", { value: p.name, text: p.name })));
  sel.value = keep;
  filter();
  if (r.report_url) {
    // the report route needs this page's token: add it when the URL carries none
    $("report").href = r.report_url.includes("?") ? r.report_url : r.report_url + location.search;
    $("report").classList.remove("hidden");
  } else {
    $("report-cmd").textContent = `report: vagus report ${hello.session}`;
    $("report-cmd").classList.remove("hidden");
  }
  drawTimeline();
  renderTransport();
  document.body.dataset.ready = "1";
}

function onFrame(f) {
  if (f.type === "review_state") {
    rv.t = f.t_s;
    rv.playing = f.playing;
    rv.speed = f.speed;
    if (typeof f.duration_s === "number") rv.duration = f.duration_s;
    renderTransport();
    return;
  }
  if (f.type === "snapshot") {
    rv.t = f.t_s;
    rv.latestEventS = null;
    view.load([...view.cards.keys()].map((name) => ({ name })), f.state);
    filter();
    renderTransport();
    return;
  }
  if (typeof f.t_s === "number" && ["beat", "metrics", "spectrum"].includes(f.type)) {
    rv.latestEventS = Math.max(rv.latestEventS ?? -Infinity, f.t_s);
  }
  view.handle(f);
  if (f.type === "marker" || f.type === "pacer_state") {
    if (!rv.timeline.some((e) => e.type === f.type && Math.abs(e.t_s - f.t_s) < 1e-6)) {
      rv.timeline.push(f);
      drawTimeline();
    }
  }
}

function filter() {
  const who = $("who").value;
  for (const [name, c] of view.cards) c.el.classList.toggle("hidden", !!who && name !== who);
}
$("who").addEventListener("change", filter);

// ---------- the timeline ----------
function drawTimeline() {
  const tl = $("timeline");
  for (const el of tl.querySelectorAll(".tick")) el.remove();
  const d = rv.duration || 1;
  for (const e of rv.timeline) {
    const cls = e.type === "marker" ? "marker" : "pacer";
    const label =
      e.type === "marker"
        ? `${clock(e.t_s)} ${e.text}`
        : `${clock(e.t_s)} pacer ${e.mode === "off" || e.rate_bpm == null ? "off" : `${Number(e.rate_bpm.toFixed(2))}/min`}`;
    tl.append(h("div", { class: `tick ${cls}`, style: `left:calc(${(100 * e.t_s) / d}% - 1px)`, title: label, dataset: { t: String(e.t_s), kind: e.type } }));
  }
  const markers = rv.timeline.filter((e) => e.type === "marker");
  $("markers").replaceChildren(
    ...markers.map((m) => {
      const li = h("li", { dataset: { t: String(m.t_s) } }, h("a", { href: "#", text: clock(m.t_s) }), ` ${m.text}`);
      li.querySelector("a").addEventListener("click", (e) => {
        e.preventDefault();
        seek(m.t_s);
      });
      return li;
    }),
  );
  $("timeline").setAttribute("aria-valuemax", String(rv.duration));
}

function renderTransport() {
  const d = rv.duration || 1;
  const t = Math.min(rv.duration, Math.max(0, rv.t));
  $("played").style.width = `${(100 * t) / d}%`;
  $("cursor").style.left = `calc(${(100 * t) / d}% - 1px)`;
  $("time").textContent = `${clock(t)} / ${clock(rv.duration)}`;
  $("timeline").setAttribute("aria-valuenow", String(t));
  $("play").textContent = rv.playing ? "pause" : "play";
  $("play").setAttribute("aria-label", rv.playing ? "pause" : "play");
  for (const b of document.querySelectorAll(".speed")) b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === rv.speed));
  document.body.dataset.reviewT = String(t);
  document.body.dataset.playing = String(rv.playing);
}

async function command(frame) {
  try {
    await sock.send({ type: "review", ...frame });
  } catch (err) {
    $("time").textContent = `not done: ${err.message}`;
  }
}

function seek(t) {
  const tt = Math.min(rv.duration, Math.max(0, t));
  rv.t = tt;
  renderTransport();
  command({ action: "seek", t_s: tt });
}

$("play").addEventListener("click", () => command({ action: rv.playing ? "pause" : "play" }));
for (const b of document.querySelectorAll(".speed")) {
  b.addEventListener("click", () => command({ action: "speed", speed: Number(b.dataset.speed) }));
}

const tl = $("timeline");
let dragging = false;
function timeAt(ev) {
  const r = tl.getBoundingClientRect();
  return ((ev.clientX - r.left) / r.width) * rv.duration;
}
tl.addEventListener("pointerdown", (ev) => {
  dragging = true;
  tl.setPointerCapture(ev.pointerId);
  rv.t = timeAt(ev);
  renderTransport();
});
tl.addEventListener("pointermove", (ev) => {
  if (!dragging) return;
  rv.t = Math.min(rv.duration, Math.max(0, timeAt(ev)));
  renderTransport();
});
tl.addEventListener("pointerup", (ev) => {
  if (!dragging) return;
  dragging = false;
  seek(timeAt(ev));
});
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  if (e.key === "ArrowRight") seek(rv.t + 10);
  else if (e.key === "ArrowLeft") seek(rv.t - 10);
  else if (e.key === " ") {
    e.preventDefault();
    command({ action: rv.playing ? "pause" : "play" });
  }
});

sock.connect();
window.vagusReview = { view, rv, sock };
