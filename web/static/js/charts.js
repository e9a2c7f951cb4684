// Charts for the dashboard and review: uPlot (vendored from npm, web/static/vendor/uplot)
// for the tachogram and the spectrum, a few lines of canvas for the small trend lines.
// Series live in time-trimmed ring buffers, so memory stays flat over a two-hour session.

import uPlot from "../vendor/uplot/uPlot.esm.js";

/** CSS custom property of the page (the themes live in vagus.css). */
export function cssVar(name, fallback = "#888") {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Samples (t, ...values) kept for the last spanS seconds of session time. */
export class TimeWindow {
  constructor(spanS, fields) {
    this.spanS = spanS;
    this.fields = fields;
    this.t = [];
    this.cols = Object.fromEntries(fields.map((f) => [f, []]));
  }

  clear() {
    this.t.length = 0;
    for (const f of this.fields) this.cols[f].length = 0;
  }

  push(t, row) {
    // Out-of-order samples (a late beat) are inserted in place; times stay sorted.
    let i = this.t.length;
    while (i > 0 && this.t[i - 1] > t) i -= 1;
    this.t.splice(i, 0, t);
    for (const f of this.fields) this.cols[f].splice(i, 0, row[f] ?? null);
    this.trim(this.t[this.t.length - 1]);
  }

  trim(nowS) {
    const cut = nowS - this.spanS;
    let n = 0;
    while (n < this.t.length && this.t[n] < cut) n += 1;
    if (n > 0) {
      this.t.splice(0, n);
      for (const f of this.fields) this.cols[f].splice(0, n);
    }
  }

  get length() {
    return this.t.length;
  }

  last(field) {
    const c = this.cols[field];
    for (let i = c.length - 1; i >= 0; i -= 1) if (c[i] !== null && c[i] !== undefined) return c[i];
    return null;
  }
}

export const ARTIFACT_COLOURS = {
  ectopic: "#d55e00",
  missed: "#0072b2",
  extra: "#cc79a7",
  long: "#e69f00",
  short: "#56b4e9",
  range: "#999999",
};

function baseOpts(width, height) {
  const fg = cssVar("--muted", "#888");
  const grid = cssVar("--grid", "rgba(128,128,128,0.15)");
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "11px system-ui, sans-serif" };
  return { width, height, legend: { show: false }, cursor: { drag: { x: false, y: false } }, axes: [axis, { ...axis }] };
}

/**
 * Tachogram: NN (ms) against session time over the last spanS seconds; artifacts as small
 * markers coloured by class; gaps as shaded bands (the line breaks there: no beat is
 * invented); markers as dashed vertical lines.
 */
export class Tachogram {
  constructor(el, { spanS = 180, height = 160 } = {}) {
    this.el = el;
    this.spanS = spanS;
    this.beats = new TimeWindow(spanS + 30, ["nn", "rr", "artifact"]);
    this.gaps = []; // {t0, t1 or null}
    this.markers = []; // {t_s, text}
    this.nowS = 0;
    const opts = baseOpts(el.clientWidth || 300, height);
    opts.scales = { x: { time: false }, y: { auto: true } };
    opts.axes[0].values = (u, vals) => vals.map((v) => fmtAxisTime(v));
    opts.axes[1].size = 50;
    opts.axes[1].values = (u, vals) => vals.map((v) => String(Math.round(v)));
    opts.series = [{}, { stroke: cssVar("--accent", "#1aa39a"), width: 1.5, spanGaps: false, points: { show: false } }];
    opts.hooks = {
      drawClear: [(u) => this._drawBands(u)],
      draw: [(u) => this._drawOverlay(u)],
    };
    this.plot = new uPlot(opts, [[], []], el);
    this._observe();
  }

  _observe() {
    new ResizeObserver(() => {
      const w = this.el.clientWidth;
      if (w > 0 && Math.abs(w - this.plot.width) > 1) this.plot.setSize({ width: w, height: this.plot.height });
    }).observe(this.el);
  }

  clear() {
    this.beats.clear();
    this.gaps = [];
    this.markers = [];
  }

  addBeat(b) {
    this.beats.push(b.t_s, { nn: b.nn_ms, rr: b.rr_ms, artifact: b.artifact });
  }

  addGap(g) {
    const t1 = g.duration_s === null || g.duration_s === undefined ? null : g.t_s + g.duration_s;
    const same = this.gaps.find((x) => Math.abs(x.t0 - g.t_s) < 1e-6);
    if (same) {
      same.t1 = t1;
      return;
    }
    this.gaps.push({ t0: g.t_s, t1 });
    this.gaps.sort((a, b) => a.t0 - b.t0);
    if (this.gaps.length > 200) this.gaps.shift();
  }

  addMarker(m) {
    this.markers.push({ t_s: m.t_s, text: m.text });
    if (this.markers.length > 500) this.markers.shift();
  }

  render(nowS) {
    this.nowS = nowS;
    this.beats.trim(nowS);
    const xs = [];
    const ys = [];
    const { t, cols } = this.beats;
    // The line breaks at every gap (a gap starts at the last beat before it).
    let g = 0;
    for (let i = 0; i < t.length; i += 1) {
      if (i > 0) {
        while (g < this.gaps.length && this.gaps[g].t0 < t[i - 1]) g += 1;
        if (g < this.gaps.length && this.gaps[g].t0 < t[i]) {
          xs.push((t[i - 1] + t[i]) / 2);
          ys.push(null);
        }
      }
      if (cols.nn[i] === null || cols.nn[i] === undefined) continue; // a removed beat
      xs.push(t[i]);
      ys.push(cols.nn[i]);
    }
    this.plot.batch(() => {
      this.plot.setScale("x", { min: nowS - this.spanS, max: nowS });
      this.plot.setData([xs, ys], false);
      this.plot.setScale("x", { min: nowS - this.spanS, max: nowS });
    });
  }

  _drawBands(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.fillStyle = cssVar("--gap", "rgba(128,128,128,0.22)");
    for (const g of this.gaps) {
      const x0 = Math.max(left, u.valToPos(g.t0, "x", true));
      const x1 = Math.min(left + width, u.valToPos(g.t1 === null ? this.nowS : g.t1, "x", true));
      if (x1 > x0) ctx.fillRect(x0, top, x1 - x0, height);
    }
    ctx.restore();
  }

  _drawOverlay(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const { t, cols } = this.beats;
    for (let i = 0; i < t.length; i += 1) {
      const cls = cols.artifact[i];
      if (!cls) continue;
      const y = cols.nn[i] ?? cols.rr[i];
      if (y === null || y === undefined) continue;
      const x = u.valToPos(t[i], "x", true);
      const yy = Math.min(top + height - 3 * dpr, Math.max(top + 3 * dpr, u.valToPos(y, "y", true)));
      ctx.fillStyle = ARTIFACT_COLOURS[cls] || "#999";
      ctx.beginPath();
      ctx.arc(x, yy, 3.2 * dpr, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.strokeStyle = cssVar("--marker", "#b58900");
    ctx.setLineDash([4 * dpr, 3 * dpr]);
    ctx.lineWidth = dpr;
    for (const m of this.markers) {
      const x = u.valToPos(m.t_s, "x", true);
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }
}

/**
 * The 64 s coherence spectrum (ms²/Hz against Hz, 0-0.4 Hz) with the VLF/LF/HF bands
 * shaded, the pacer's frequency as a vertical line and the peak marked.
 */
export class SpectrumChart {
  constructor(el, { height = 140 } = {}) {
    this.el = el;
    this.pacerHz = null;
    this.peakHz = null;
    const opts = baseOpts(el.clientWidth || 300, height);
    opts.scales = { x: { time: false, min: 0, max: 0.4 }, y: { auto: true, range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } };
    opts.axes[0].values = (u, vals) => vals.map((v) => v.toFixed(2));
    opts.axes[1].size = 50;
    opts.axes[1].values = (u, vals) => vals.map((v) => compact(v));
    opts.series = [
      {},
      { stroke: cssVar("--accent", "#1aa39a"), width: 1.5, fill: cssVar("--accent-fill", "rgba(26,163,154,0.15)"), points: { show: false } },
    ];
    opts.hooks = { drawClear: [(u) => this._drawBands(u)], draw: [(u) => this._drawLines(u)] };
    this.plot = new uPlot(opts, [[], []], el);
    new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - this.plot.width) > 1) this.plot.setSize({ width: w, height: this.plot.height });
    }).observe(el);
  }

  set(spectrum, pacerHz) {
    this.pacerHz = pacerHz;
    this.peakHz = spectrum ? spectrum.peak_hz : null;
    const f = spectrum && spectrum.freqs_hz ? spectrum.freqs_hz : [];
    const p = spectrum && spectrum.psd_ms2_per_hz ? spectrum.psd_ms2_per_hz : [];
    this.plot.setData([f.slice(), p.slice()]);
  }

  _drawBands(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const bands = [
      [0.0033, 0.04, "--band-vlf", "VLF"],
      [0.04, 0.15, "--band-lf", "LF"],
      [0.15, 0.4, "--band-hf", "HF"],
    ];
    ctx.save();
    ctx.font = `${10 * (devicePixelRatio || 1)}px system-ui, sans-serif`;
    for (const [f0, f1, v, name] of bands) {
      const x0 = u.valToPos(f0, "x", true);
      const x1 = u.valToPos(f1, "x", true);
      ctx.fillStyle = cssVar(v, "rgba(128,128,128,0.08)");
      ctx.fillRect(x0, top, x1 - x0, height);
      ctx.fillStyle = cssVar("--muted", "#888");
      ctx.fillText(name, x0 + 3, top + 12 * (devicePixelRatio || 1));
    }
    ctx.restore();
  }

  _drawLines(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    if (this.pacerHz) {
      const x = u.valToPos(this.pacerHz, "x", true);
      ctx.strokeStyle = cssVar("--pacer", "#7c6fd6");
      ctx.lineWidth = 1.5 * dpr;
      ctx.setLineDash([5 * dpr, 4 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    if (this.peakHz) {
      const x = u.valToPos(this.peakHz, "x", true);
      ctx.fillStyle = cssVar("--marker", "#b58900");
      ctx.beginPath();
      ctx.moveTo(x, top + 2 * dpr);
      ctx.lineTo(x - 5 * dpr, top - 6 * dpr + 12 * dpr);
      ctx.lineTo(x + 5 * dpr, top - 6 * dpr + 12 * dpr);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }
}

/** A short number for an axis: 1200 → 1.2k, 50000 → 50k. */
export function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e3) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** m:ss for axis labels (negative times before the session start shown as blanks). */
export function fmtAxisTime(v) {
  if (v < 0) return "";
  const s = Math.round(v);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * A small trend line on a canvas (no axes): values over the last spanS seconds, nulls
 * drawn as breaks, scaled to the canvas and devicePixelRatio.
 */
export function drawSparkline(canvas, win, field, nowS, { colour, min = null, max = null } = {}) {
  const dpr = devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const t = win.t;
  const ys = win.cols[field];
  let lo = min;
  let hi = max;
  if (lo === null || hi === null) {
    let a = Infinity;
    let b = -Infinity;
    for (const y of ys) if (y !== null && y !== undefined) { a = Math.min(a, y); b = Math.max(b, y); }
    if (!Number.isFinite(a)) return;
    if (lo === null) lo = a - 0.1 * (b - a + 1e-9);
    if (hi === null) hi = b + 0.1 * (b - a + 1e-9);
  }
  const t0 = nowS - win.spanS;
  ctx.strokeStyle = colour || cssVar("--accent", "#1aa39a");
  ctx.lineWidth = 1.5 * dpr;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < t.length; i += 1) {
    const y = ys[i];
    if (y === null || y === undefined) { pen = false; continue; }
    const x = ((t[i] - t0) / win.spanS) * w;
    const yy = h - ((y - lo) / (hi - lo || 1)) * (h - 2 * dpr) - dpr;
    if (pen) ctx.lineTo(x, yy);
    else ctx.moveTo(x, yy);
    pen = true;
  }
  ctx.stroke();
}
