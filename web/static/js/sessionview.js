// The practitioner's view of a session: one card per participant, side by side (stacked
// on a phone). Used live by the dashboard and, fed by a replay, by review.
// UI.md "The practitioner dashboard".

import { SpectrumChart, Tachogram, TimeWindow, drawSparkline, cssVar, ARTIFACT_COLOURS } from "./charts.js";
import { METRICS, coherenceColour, coherenceLevel, fmt, waitHint } from "./metrics.js";
import { h, installTooltips } from "./ui.js";

const TREND_S = 300;

class ParticipantCard {
  constructor(name, parent) {
    this.name = name;
    this.metrics = null;
    this.spectrum = null;
    this.rsa = null; // the last breath (rsa event)
    this.rsaPaced = null; // the last paced breath (its HR-pacer phase)
    this.connected = null;
    this.contact = null;
    this.battery = null;
    this.reconnects = 0;
    this.gaps = 0;
    this.chainStartS = null; // first beat after the last gap (for "RMSSD in 12 s")
    this.lastBeatS = null;
    this.beatCount = 0;
    this.trend = new TimeWindow(TREND_S, ["hr", "rmssd30", "rmssd60", "cr"]);
    this.el = this._build();
    parent.append(this.el);
    this.tacho = new Tachogram(this.el.querySelector(".tacho"), { spanS: 180, height: 170 });
    this.spec = new SpectrumChart(this.el.querySelector(".spec"), { height: 140 });
  }

  _num(key, label, withTrend = true) {
    return h(
      "div",
      { class: "num", "data-tip": key, dataset: { metric: key } },
      h("div", { class: "l", text: label }),
      h("div", { class: "v" }, h("span", { class: "val", text: "—" }), h("span", { class: "u", text: METRICS[key] ? METRICS[key].unit : "" })),
      h("div", { class: "wait" }),
      withTrend ? h("canvas", { class: "trend", "aria-hidden": "true" }) : null,
    );
  }

  _build() {
    const legend = h(
      "div",
      { class: "legend" },
      ...Object.entries(ARTIFACT_COLOURS).map(([k, c]) => h("span", {}, h("i", { style: `background:${c}` }), k)),
      h("span", {}, h("i", { style: "background:var(--gap);border-radius:2px" }), "gap"),
      h("span", {}, h("i", { style: "background:var(--marker);border-radius:0;width:2px" }), "marker"),
    );
    return h(
      "section",
      { class: "panel card", dataset: { participant: this.name }, "aria-label": `participant ${this.name}` },
      h(
        "h2",
        {},
        h("span", { class: "pname", text: this.name }),
        h("span", { class: "chip link", dataset: { state: "connecting" } }, h("span", { class: "dot" }), h("span", { class: "text", text: "…" })),
      ),
      h(
        "div",
        { class: "numbers" },
        this._num("hr_bpm", "HR"),
        this._num("rmssd_30s_ms", "RMSSD 30 s"),
        this._num("rmssd_60s_ms", "RMSSD 60 s"),
        this._num("coherence_ratio", "coherence"),
        this._num("peak_hz", "peak rhythm", false),
        this._num("rsa_60s_bpm", "RSA 60 s", false),
        this._num("rsa_breath_bpm", "RSA breath", false),
        this._num("rsa_phase_deg", "HR–breath phase", false),
        this._num("artifact_rate_60s", "artifacts 60 s", false),
      ),
      h("div", { class: "chart-title", "data-tip-text": "Tachogram: corrected NN intervals (ms) over the last 3 minutes of beat time. Artifacts are the dots, coloured by class (Lipponen & Tarvainen 2019); gaps are shaded and the line breaks there (no beat is invented); markers are dashed lines.", text: "tachogram · NN (ms), last 3 min" }),
      h("div", { class: "chart tacho" }),
      legend,
      h("div", { class: "chart-title", "data-tip-text": "The 64 s coherence spectrum (periodogram of 2 Hz linearly interpolated NN, Hann, 1024 points) in ms²/Hz, every 5 s. Shaded: VLF 0.0033–0.04, LF 0.04–0.15, HF 0.15–0.40 Hz. Dashed line: the pacer's frequency; triangle: the peak in 0.04–0.26 Hz.", text: "spectrum · ms²/Hz against Hz" }),
      h("div", { class: "chart spec" }),
      h(
        "div",
        { class: "quality small" },
        h("span", { class: "chip q-contact", text: "contact —" }),
        h("span", { class: "chip q-battery", "data-tip": "battery_pct", text: "battery —" }),
        h("span", { class: "chip q-reconnects", "data-tip-text": "How often the strap's link dropped and came back in this view.", text: "reconnects 0" }),
        h("span", { class: "chip q-gaps", "data-tip-text": "Gaps in the beat chain (dropout, link or contact lost): no successive difference is taken across a gap.", text: "gaps 0" }),
        h("span", { class: "chip q-lfhf", "data-tip": "lf_hf", text: "LF/HF —" }),
      ),
    );
  }

  beat(b) {
    this.tacho.addBeat(b);
    if (this.chainStartS === null) this.chainStartS = b.t_s;
    this.lastBeatS = b.t_s;
    this.beatCount += 1;
  }

  gap(g) {
    this.tacho.addGap(g);
    this.gaps += 1;
    this.chainStartS = null;
  }

  metric(m) {
    this.metrics = m;
    this.trend.push(m.t_s, { hr: m.hr_bpm, rmssd30: m.rmssd_30s_ms, rmssd60: m.rmssd_60s_ms, cr: null });
  }

  spectrumEvent(s) {
    this.spectrum = s;
    this.trend.push(s.t_s, { hr: null, rmssd30: null, rmssd60: null, cr: s.coherence_ratio });
  }

  rsaEvent(r) {
    this.rsa = r;
    if (r.paced) this.rsaPaced = r;
  }

  status(st) {
    if (st.connected === false && this.connected === true) this.reconnects += 1;
    if (st.connected !== undefined && st.connected !== null) this.connected = st.connected;
    if (st.contact !== undefined && st.contact !== null) this.contact = st.contact;
    if (st.battery_pct !== undefined && st.battery_pct !== null) this.battery = st.battery_pct;
  }

  _setNum(key, value, digits, wait) {
    const el = this.el.querySelector(`.num[data-metric="${key}"]`);
    el.querySelector(".val").textContent = fmt(value, digits);
    el.querySelector(".wait").textContent = value === null || value === undefined ? wait : "";
    el.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  render(nowS, pacerHz) {
    const m = this.metrics || {};
    const covered = this.chainStartS === null || this.lastBeatS === null ? 0 : this.lastBeatS - this.chainStartS;
    this._setNum("hr_bpm", m.hr_bpm ?? null, 0, waitHint(10 / 0.75 / 2, covered));
    this._setNum("rmssd_30s_ms", m.rmssd_30s_ms ?? null, 0, waitHint(30, covered));
    this._setNum("rmssd_60s_ms", m.rmssd_60s_ms ?? null, 0, waitHint(60, covered));
    this._setNum("artifact_rate_60s", m.artifact_rate_60s ?? null, 1, waitHint(60, covered));
    this._setNum("rsa_60s_bpm", this.rsa ? this.rsa.mean_60s_bpm ?? null : null, 1, this.rsa ? "computing" : "after a breath");
    const r = this.rsa;
    this._setNum("rsa_breath_bpm", r ? r.amplitude_bpm ?? null : null, 1, r ? "too few beats" : "after a breath");
    this.el.querySelector('.num[data-metric="rsa_breath_bpm"]').classList.toggle("unclean", !!r && !r.clean);
    // The phase of the current pacer's breaths only (a breath from before the pacer went off is stale).
    const rp = pacerHz !== null && this.rsaPaced && this.rsa === this.rsaPaced ? this.rsaPaced : null;
    this._setNum("rsa_phase_deg", rp ? rp.phase_deg ?? null : null, 0, pacerHz === null ? "pacer off" : "after a paced breath");
    const phEl = this.el.querySelector('.num[data-metric="rsa_phase_deg"] .wait');
    if (rp && typeof rp.phase_deg === "number") {
      phEl.textContent =
        Math.abs(rp.phase_deg) <= 20 ? "near resonance" : rp.phase_deg > 0 ? "HR leads · pacer below resonance" : "HR lags · pacer above resonance";
    }
    const s = this.spectrum || {};
    this._setNum("coherence_ratio", s.coherence_ratio ?? null, 1, waitHint(64, covered));
    this._setNum("peak_hz", s.peak_hz === null || s.peak_hz === undefined ? null : s.peak_hz * 60, 1, waitHint(64, covered));
    const cohEl = this.el.querySelector('.num[data-metric="coherence_ratio"] .val');
    const lvl = coherenceLevel(s.coherence_ratio ?? null);
    cohEl.style.color = lvl === null ? "" : coherenceColour(lvl);
    const trends = { hr_bpm: "hr", rmssd_30s_ms: "rmssd30", rmssd_60s_ms: "rmssd60", coherence_ratio: "cr" };
    for (const [key, field] of Object.entries(trends)) {
      const c = this.el.querySelector(`.num[data-metric="${key}"] canvas`);
      drawSparkline(c, this.trend, field, nowS, { colour: key === "coherence_ratio" ? coherenceColour(lvl ?? 0.5) : cssVar("--accent"), min: key === "coherence_ratio" ? 0 : null });
    }
    this.tacho.render(nowS);
    this.spec.set(this.spectrum, pacerHz);
    const link = this.el.querySelector(".chip.link");
    if (this.review) {
      link.dataset.state = "open";
      link.querySelector(".text").textContent = "recorded";
    } else {
      link.dataset.state = this.connected === false ? "reconnecting" : this.connected ? "open" : "connecting";
      link.querySelector(".text").textContent =
        this.connected === false ? "strap not connected" : this.connected ? "connected" : "waiting for strap";
    }
    this.el.querySelector(".q-contact").textContent =
      this.contact === false ? "no skin contact" : this.contact === true ? "contact ok" : "contact —";
    this.el.querySelector(".q-battery").textContent = this.battery === null ? "battery —" : `battery ${this.battery} %`;
    this.el.querySelector(".q-reconnects").textContent = `reconnects ${this.reconnects}`;
    this.el.querySelector(".q-gaps").textContent = `gaps ${this.gaps}`;
    this.el.querySelector(".q-lfhf").textContent = `LF/HF ${fmt(s.lf_hf ?? null, 2)}`;
  }
}

/** All participants' cards, fed with hello/state/events, rendered at most 4 times a second. */
export class SessionView {
  constructor(container, nowFn) {
    this.container = container;
    this.nowFn = nowFn;
    this.cards = new Map();
    this.pacer = null;
    this.markers = [];
    this.onMarkers = () => {};
    this.onPacer = () => {};
    this.onResonance = () => {};
    this.onRsa = () => {};
    this.review = false; // a replay: no live link state to show
    this._dirty = true;
    setInterval(() => this.render(), 250);
  }

  card(name) {
    if (!this.cards.has(name)) {
      const c = new ParticipantCard(name, this.container);
      c.review = this.review;
      this.cards.set(name, c);
      installTooltips(METRICS, this.container);
    }
    return this.cards.get(name);
  }

  /** Clear everything and draw a state (hello.state or a review snapshot). */
  load(participants, state) {
    for (const c of this.cards.values()) c.el.remove();
    this.cards.clear();
    for (const p of participants || []) {
      const c = this.card(p.name);
      c.status(p);
    }
    const st = state || {};
    this.pacer = st.pacer || null;
    this.markers = (st.markers || []).slice();
    for (const [name, list] of Object.entries(st.beats || {})) {
      const gaps = (st.gaps && st.gaps[name]) || [];
      const items = [...list.map((b) => [b.t_s, 0, b]), ...gaps.map((g) => [g.t_s, 1, g])];
      items.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const c = this.card(name);
      for (const [, kind, ev] of items) (kind === 0 ? c.beat(ev) : c.gap(ev));
    }
    for (const [name, m] of Object.entries(st.metrics || {})) if (m) this.card(name).metric(m);
    for (const [name, s] of Object.entries(st.spectrum || {})) if (s) this.card(name).spectrumEvent(s);
    for (const [name, c] of Object.entries(st.contact || {})) if (c) this.card(name).status({ contact: c.contact });
    for (const [name, r] of Object.entries(st.rsa || {})) if (r) this.card(name).rsaEvent(r);
    for (const m of this.markers) for (const c of this.cards.values()) c.tacho.addMarker(m);
    this.onMarkers(this.markers);
    this.onPacer(this.pacer);
    this.onResonance(st.resonance || null);
    this._dirty = true;
  }

  handle(f) {
    const p = f.participant;
    switch (f.type) {
      case "beat":
        this.card(p).beat(f);
        break;
      case "gap":
        this.card(p).gap(f);
        break;
      case "metrics":
        this.card(p).metric(f);
        break;
      case "spectrum":
        this.card(p).spectrumEvent(f);
        break;
      case "contact":
        this.card(p).status({ contact: f.contact });
        break;
      case "rsa":
        this.card(p).rsaEvent(f);
        this.onRsa(p, f);
        break;
      case "resonance":
        this.onResonance(f);
        break;
      case "status":
        if (p != null) this.card(p).status(f);
        break;
      case "marker":
        this.markers.push(f);
        for (const c of this.cards.values()) c.tacho.addMarker(f);
        this.onMarkers(this.markers);
        break;
      case "pacer_state":
        this.pacer = f;
        this.onPacer(f);
        break;
      default:
        return;
    }
    this._dirty = true;
  }

  render() {
    const now = this.nowFn();
    if (now === null || now === undefined) return;
    const pacerHz = this.pacer && this.pacer.mode !== "off" && this.pacer.rate_bpm ? this.pacer.rate_bpm / 60 : null;
    for (const c of this.cards.values()) c.render(now, pacerHz);
    this._dirty = false;
  }
}
