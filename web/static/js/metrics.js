// What each number on screen means: formula and window (SCIENCE.md; the README's
// "What the numbers mean" table). Every displayed number gets its tooltip from here.

export const METRICS = {
  hr_bpm: {
    label: "HR",
    unit: "bpm",
    digits: 0,
    tip: "Heart rate = 60000 / mean(NN), over the last 10 s of beats (needs 3 beats covering half of it).",
  },
  rmssd_30s_ms: {
    label: "RMSSD 30 s",
    unit: "ms",
    digits: 0,
    window_s: 30,
    tip: "RMSSD = √mean(ΔNN²), ΔNN only between adjacent beats both inside the last 30 s with no gap between them. Needs 5 values covering 75 % of the window.",
  },
  rmssd_60s_ms: {
    label: "RMSSD 60 s",
    unit: "ms",
    digits: 0,
    window_s: 60,
    tip: "RMSSD = √mean(ΔNN²), ΔNN only between adjacent beats both inside the last 60 s with no gap between them. Needs 5 values covering 75 % of the window.",
  },
  sdnn_60s_ms: {
    label: "SDNN 60 s",
    unit: "ms",
    digits: 0,
    window_s: 60,
    tip: "SDNN = std(NN, ddof = 1) over the last 60 s.",
  },
  artifact_rate_60s: {
    label: "artifacts",
    unit: "%",
    digits: 1,
    window_s: 60,
    tip: "Artifact rate = % of measured beats in the last 60 s classified as artifacts (Lipponen & Tarvainen 2019: ectopic, missed, extra, long, short, out of range). Metrics use the corrected NN.",
  },
  coherence_ratio: {
    label: "coherence",
    unit: "",
    digits: 1,
    window_s: 64,
    tip: "Coherence ratio (our implementation of the published HeartMath formula, McCraty & Childre 2010; not HeartMath's proprietary score): last 64 s of NN → 2 Hz linear interpolation → detrend → Hann → periodogram (1024 points) → highest peak in 0.04–0.26 Hz → power within ±0.015 Hz of it / (total power 0.0033–0.4 Hz − peak power). Every 5 s.",
  },
  peak_hz: {
    label: "peak",
    unit: "/min",
    digits: 1,
    tip: "Peak frequency of the 64 s coherence spectrum in 0.04–0.26 Hz, shown in cycles per minute (your actual breathing rhythm). Every 5 s.",
  },
  lf_hf: {
    label: "LF/HF",
    unit: "",
    digits: 2,
    tip: "LF/HF (Task Force 1996): last 120 s of NN, 4 Hz cubic spline, Welch with 64 s Hann segments; LF 0.04–0.15 Hz, HF 0.15–0.40 Hz (slow-breathing RSA lies in LF, not HF). Every 5 s.",
  },
  rsa_60s_bpm: {
    label: "RSA 60 s",
    unit: "bpm",
    digits: 1,
    window_s: 60,
    tip: "RSA amplitude: peak-to-trough heart rate, max(HR) − min(HR) within each breath (a pacer cycle while paced; one period of the spectral peak otherwise), HR = 60000 / NN; the mean over the breaths that ended in the last 60 s (SCIENCE.md \"RSA amplitude\").",
  },
  rsa_breath_bpm: {
    label: "RSA breath",
    unit: "bpm",
    digits: 1,
    tip: "The last breath's RSA amplitude: max(HR) − min(HR) over its beats (HR = 60000 / NN at the middle of each interval); a breath is one pacer cycle, or one period of the spectral peak without a pacer. Shown faint when the breath had an artifact, a gap or a missing stretch (SCIENCE.md \"RSA amplitude\").",
  },
  rsa_phase_deg: {
    label: "HR–breath phase",
    unit: "°",
    digits: 0,
    tip: "The last paced breath's phase of heart rate against the pacer's breathing at the breathing frequency (one-cycle DFT of detrended HR and of lung volume): positive = heart rate leads breathing (the pacer is below the resonance rate), about 0° at resonance, negative = heart rate lags (the pacer is above it). Blank while the pacer is off. Vaschillo et al. 2002; SCIENCE.md \"Resonance frequency and the adaptive pacer\".",
  },
  battery_pct: { label: "battery", unit: "%", digits: 0, tip: "The strap's battery level, as the strap reports it." },
};

/** Format a metric value: "—" when null (not enough data yet), never an invented number. */
export function fmt(value, digits = 0) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value.toFixed(digits);
}

/** Session time as m:ss (or h:mm:ss). */
export function clock(t_s) {
  if (t_s === null || t_s === undefined || !Number.isFinite(t_s)) return "–:––";
  const s = Math.max(0, Math.floor(t_s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * How long until a windowed metric can have a value ("in 12 s"), from the beats received
 * since the last gap: the window needs ≥ 5 values covering ≥ 75 % of it.
 */
export function waitHint(windowS, coveredS) {
  if (!windowS) return "computing";
  const need = Math.ceil(0.75 * windowS - Math.max(0, coveredS || 0));
  return need > 0 ? `in ${need} s` : "computing";
}

/**
 * The coherence colour ramp: colour-blind safe, slate → teal → gold (never red: coherence
 * is not a grade). x in [0, 1]; returns "rgb(...)".
 */
export function coherenceColour(x, alpha = 1) {
  const stops = [
    [0, [100, 116, 139]], // slate
    [0.5, [20, 160, 150]], // teal
    [1, [224, 170, 40]], // gold
  ];
  const t = Math.min(1, Math.max(0, x));
  let i = 0;
  while (i < stops.length - 2 && t > stops[i + 1][0]) i += 1;
  const [t0, c0] = stops[i];
  const [t1, c1] = stops[i + 1];
  const u = (t - t0) / (t1 - t0);
  const c = c0.map((v, k) => Math.round(v + (c1[k] - v) * u));
  return alpha === 1 ? `rgb(${c[0]}, ${c[1]}, ${c[2]})` : `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha})`;
}

/** Where a coherence ratio sits on the ramp: log scale, CR 0 → 0, CR 8 and above → 1. */
export function coherenceLevel(cr) {
  if (cr === null || cr === undefined || !Number.isFinite(cr)) return null;
  return Math.min(1, Math.log1p(Math.max(0, cr)) / Math.log1p(8));
}
