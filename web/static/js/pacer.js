// The pacer's maths in the browser: the same phase and breath-shape functions as
// vagus.core.pacer (SCIENCE.md "Phase-continuous rate change"; UI.md "The breathing view").
//
// Phase φ runs from 0 to 1 over one breath cycle of period T = 60 / rate_bpm seconds and
// advances linearly in time: φ(t) = φ0 + (t − t0) · rate_bpm / 60 (mod 1), where (t0, φ0)
// come from the server's latest `pacer_state`. A rate change only changes the speed, never
// the position: the server stamps the new state's phase with the old phase at t0.
//
// The cycle is inhale → hold → exhale → hold. The holds last hold_in_s and hold_out_s
// seconds; the remaining breathing time B = T − hold_in_s − hold_out_s is split by the
// inhale fraction: inhale = inhale_fraction · B, exhale = (1 − inhale_fraction) · B.
// A ratio or hold change never redraws the cycle under way: the server's pacer_state
// then carries that cycle's own shares, and a new pacer_state at the next inhale brings
// the new shape (vagus.core.pacer), so drawing from the latest state alone is exact.
// Lung volume (0 = empty, 1 = full) eases with a raised cosine over each half (as the
// simulator's breathing does): inhale v = (1 − cos πu) / 2, exhale v = (1 + cos πu) / 2,
// u the fraction of the half done; holds keep v at 1 (after inhale) or 0 (after exhale).

/** Wrap x into [0, 1). */
export function wrap01(x) {
  const y = x - Math.floor(x);
  return y >= 1 ? 0 : y;
}

/** Wrap a phase difference into [−0.5, 0.5). */
export function wrapHalf(x) {
  return wrap01(x + 0.5) - 0.5;
}

/** Is the pacer running (a rate and a mode other than off)? */
export function pacerOn(state) {
  return !!state && state.mode !== "off" && typeof state.rate_bpm === "number" && state.rate_bpm > 0;
}

/**
 * The phase boundaries of one cycle: {inhaleEnd, holdInEnd, exhaleEnd} (phase units,
 * 0 ≤ inhaleEnd ≤ holdInEnd ≤ exhaleEnd ≤ 1), exactly as vagus.core.pacer.CycleShape.of:
 * hin = hold_in_s / T, exhaleEnd = 1 − hold_out_s / T, inhaleEnd = f · (exhaleEnd − hin).
 * (The server checks every setting, so the breathing time is never negative here.)
 */
export function cycleBounds(state) {
  const period = 60 / state.rate_bpm;
  const hin = (state.hold_in_s || 0) / period;
  const exhaleEnd = 1 - (state.hold_out_s || 0) / period;
  const inhaleEnd = (state.inhale_fraction ?? 0.4) * (exhaleEnd - hin);
  return { inhaleEnd, holdInEnd: inhaleEnd + hin, exhaleEnd };
}

/**
 * The breath shape at phase φ: {volume (0-1), segment, progress (0-1 within the segment)}.
 * segment is "inhale", "hold_in", "exhale" or "hold_out".
 */
export function breathShape(phase, state) {
  const b = cycleBounds(state);
  const p = wrap01(phase);
  if (p < b.inhaleEnd) {
    const u = p / b.inhaleEnd;
    return { volume: (1 - Math.cos(Math.PI * u)) / 2, segment: "inhale", progress: u };
  }
  if (p < b.holdInEnd) {
    return { volume: 1, segment: "hold_in", progress: (p - b.inhaleEnd) / (b.holdInEnd - b.inhaleEnd) };
  }
  if (p < b.exhaleEnd) {
    const u = (p - b.holdInEnd) / (b.exhaleEnd - b.holdInEnd);
    return { volume: (1 + Math.cos(Math.PI * u)) / 2, segment: "exhale", progress: u };
  }
  return { volume: 0, segment: "hold_out", progress: b.exhaleEnd < 1 ? (p - b.exhaleEnd) / (1 - b.exhaleEnd) : 0 };
}

/** The phase at session time t_s from a pacer_state, or null when the pacer is off. */
export function phaseAt(state, t_s) {
  if (!pacerOn(state)) return null;
  return wrap01(state.phase + ((t_s - state.t_s) * state.rate_bpm) / 60);
}

/** How fast a drawn pacer absorbs a correction, as a share of its own speed. */
const SLEW = 0.3;

/**
 * A pacer as drawn: the latest state plus a short blend that absorbs the differences a
 * new state or a better clock estimate makes (a few ms of network delay at a rate change;
 * the session clock starting), so the drawn phase never jumps: the correction is worked
 * off at 30 % of the pacer's speed. A real discontinuity (the pacer switched on) is taken
 * at once.
 */
export class DrawnPacer {
  constructor() {
    this.state = null;
    this._corr = 0; // phase correction, cycles
    this._corrAt = 0; // session time of the correction
  }

  /** Take a new pacer_state; nowS is the session time now (the client's estimate). */
  update(state, nowS) {
    const before = this.phase(nowS);
    this.state = state;
    const after = phaseAt(state, nowS);
    if (before !== null && after !== null) {
      this._corr = wrapHalf(before - after);
      this._corrAt = nowS;
    } else {
      this._corr = 0;
    }
  }

  /** The clock estimate moved by deltaS seconds (the same instant now reads deltaS later). */
  clockShift(deltaS, nowS) {
    if (!pacerOn(this.state)) return;
    // Keep what is drawn now: compensate the phase the shift adds, then let it decay.
    // (The correction so far is read on the old clock, where it was set.)
    const before = this._currentCorr(nowS - deltaS);
    this._corr = wrapHalf(before - (deltaS * this.state.rate_bpm) / 60);
    this._corrAt = nowS;
  }

  _currentCorr(nowS) {
    if (this._corr === 0 || !pacerOn(this.state)) return 0;
    // Absorbed at a bounded speed (30 % of the pacer's), so the drawn shape only runs a
    // little faster or slower for a moment: never a jump, never backwards.
    const left = Math.abs(this._corr) - SLEW * (this.state.rate_bpm / 60) * Math.max(0, nowS - this._corrAt);
    return left > 0 ? Math.sign(this._corr) * left : 0;
  }

  /** The phase to draw at session time nowS (null when off). */
  phase(nowS) {
    const p = phaseAt(this.state, nowS);
    if (p === null) return null;
    return wrap01(p + this._currentCorr(nowS));
  }
}
