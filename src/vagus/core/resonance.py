"""The resonance strategies of the pacer: ``scan`` and ``adaptive`` (sans-I/O).

SCIENCE.md "Resonance frequency and the adaptive pacer". Both are
:class:`~vagus.core.pacer.PacerMode` strategies: the pacer asks them at the start of
every inhale whether to change the rate (so every change is at an inhale and keeps the
phase: no jump), and the session hands them the computed events of the participant the
pacer follows (:class:`~vagus.core.events.Rsa` per breath, spectra). They use nothing
else, so a replay of the same input gives the same decisions.

**Scan** (:class:`ScanMode`, :class:`ScanConfig`): the stepped assessment (Lehrer et al.
2013; Shaffer & Meehan 2020): by default 6.5 down to 4.5 breaths/min in 0.5 steps, 2 min
each. Each step's first ``settle_s`` is not scored (the heart settles on the new rate).
Per rate: the median peak-to-trough amplitude of the clean paced breaths the heart
followed (``fit`` ≥ ``min_fit``), the mean
pacer-band power (the 64 s coherence spectrum integrated over ±0.015 Hz around the
rate, from spectra whose window lies inside the step), the mean coherence ratio (same
spectra) and the median HR-pacer phase (unwrapped around the circular mean). Score
(criteria in SCIENCE.md's order, phase first)::

    score = (1 − min(|phase|, 90°) / 90°)
            + 0.6 · (amp / amp_max + 0.5 · power / power_max + 0.25 · coh / coh_max) / 1.75

(a missing term counts 0). The best-scored rate is the candidate; where the phase
crosses 0 (heart rate leads below, lags above) between the candidate and a neighbour,
the rate is interpolated linearly to that crossing, kept within a quarter step of the
candidate (the phase is noisy; the candidate's step decides). When the phase crosses
from lead to lag exactly once over the rates scanned, the candidate is the better-scored
of the two rates around that crossing (phase first: a Mayer wave near 0.1 Hz can inflate
one rate's band power). If the candidate is the
highest or lowest rate scanned, or the phase has one sign at every rate (heart rate
leads everywhere: the resonance is faster; lags everywhere: slower), the scan extends
by one step beyond that edge (at most
``max_extensions`` times, within ``min_bpm``-``max_bpm``). It ends with a
:class:`~vagus.core.events.Resonance` event (the rate, a confidence and the per-rate
table) and goes on as ``fixed`` at the rate found.

Confidence: ``0.4 · [a phase crossing at the candidate] + 0.3 · [phase falls with rate:
Spearman ρ of phase against rate, −ρ clipped to 0-1] + 0.3 · min(1, margin / 0.2)``
with ``margin`` the score of the candidate minus the second best.

**Adaptive** (:class:`AdaptiveMode`, :class:`AdaptiveConfig`): the closed loop. From the
clean paced breaths at the current rate (the first after a change skipped) whose ``fit``
shows the heart followed the pacer, it takes the circular mean phase φ̄ and its
resultant length R over the last ``cycles`` breaths, and at an inhale moves the rate by
``Δ = gain · φ̄`` (HR leads → faster; lags → slower), zero inside ``±deadband_deg``,
clipped to ``±max_step_bpm`` and to ``max_bpm_per_min`` times the minutes since the
last change, within ``min_bpm``-``max_bpm``. It does not adapt while R < 0.5
(inconsistent phase), while the followed participant's spectral peak is more than
``adherence_hz`` from the pacer (non-adherence), or on breaths with artifacts or gaps.
At each decision it emits a ``resonance`` event (``method`` ``"adaptive"``): the
estimate ``rate + gain · φ̄`` (clipped to the range; where the loop is heading) and the
confidence ``R · max(0, 1 − |φ̄| / 45°) · min(1, decisions / 3)``; its table lists the
rates the loop ran at (0.05 breaths/min bins) with their amplitude and phase.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from vagus.core.events import MIN_BREATHING_S, ComputedEvent, Resonance, Rsa, Spectrum
from vagus.core.pacer import FixedMode, PacerMode, PacerSettings
from vagus.exceptions import InvalidInput

__all__ = [
    "GUIDANCE_LEVELS",
    "MODES",
    "AdaptiveConfig",
    "AdaptiveMode",
    "Guidance",
    "ScanConfig",
    "ScanMode",
    "circular_mean_deg",
    "circular_median_deg",
    "scan_rates",
]

#: Half-width of the pacer band (Hz), as the coherence peak window (SCIENCE.md).
BAND_HALF_HZ = 0.015
#: Weight of the size terms (amplitude, band power, coherence) against the phase term.
SIZE_WEIGHT = 0.6
#: The coherence spectrum's window (s): a spectrum at t covers [t − 64, t].
SPECTRUM_WINDOW_S = 64.0


def circular_mean_deg(
    phases_deg: list[float], weights: list[float] | None = None
) -> tuple[float, float]:
    """``(mean, R)``: the circular mean of angles (degrees) and the resultant length 0-1."""
    if not phases_deg:
        return 0.0, 0.0
    w = weights if weights is not None else [1.0] * len(phases_deg)
    total = sum(w)
    if total <= 0:
        return 0.0, 0.0
    c = sum(wi * math.cos(math.radians(p)) for p, wi in zip(phases_deg, w, strict=True))
    s = sum(wi * math.sin(math.radians(p)) for p, wi in zip(phases_deg, w, strict=True))
    return math.degrees(math.atan2(s, c)), math.hypot(c, s) / total


def circular_median_deg(phases_deg: list[float]) -> float:
    """The median of angles (degrees) unwrapped around their circular mean: robust to a
    stray breath."""
    mean, _ = circular_mean_deg(phases_deg)
    around = sorted(((p - mean + 180.0) % 360.0) - 180.0 for p in phases_deg)
    n = len(around)
    med = around[n // 2] if n % 2 else (around[n // 2 - 1] + around[n // 2]) / 2.0
    return ((mean + med + 180.0) % 360.0) - 180.0


def _band_power(ev: Spectrum, f_hz: float) -> float | None:
    """Trapezoid integral of the display spectrum over ``f ± BAND_HALF_HZ`` (ms²)."""
    freqs, psd = ev.freqs_hz, ev.psd_ms2_per_hz
    if len(freqs) < 2:
        return None
    pts = [(f, p) for f, p in zip(freqs, psd, strict=True) if abs(f - f_hz) <= BAND_HALF_HZ]
    if len(pts) < 2:
        return None
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2.0 for a, b in itertools.pairwise(pts))


def _at_rate(settings: PacerSettings, rate_bpm: float, mode: str | None = None) -> PacerSettings:
    """``settings`` at another rate; holds that would leave less than
    :data:`~vagus.core.events.MIN_BREATHING_S` of the new cycle shrink in proportion."""
    hold_in, hold_out = settings.hold_in_s, settings.hold_out_s
    room = 60.0 / rate_bpm - MIN_BREATHING_S - 0.01
    if hold_in + hold_out > room:
        k = max(0.0, room) / (hold_in + hold_out)
        hold_in, hold_out = round(hold_in * k, 3), round(hold_out * k, 3)
    return replace(
        settings,
        rate_bpm=rate_bpm,
        mode=settings.mode if mode is None else mode,
        hold_in_s=hold_in,
        hold_out_s=hold_out,
    )


def _check_range(name: str, lo: float, hi: float, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
        raise InvalidInput(
            f"pacer option {name!r} must be a number from {lo:g} to {hi:g}, got {value!r}"
        )


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """The stepped resonance assessment (see the module docstring).

    Attributes:
        start_bpm, stop_bpm, step_bpm: the rates, from ``start_bpm`` to ``stop_bpm``
            (either direction) every ``step_bpm``.
        step_s: time at each rate (s); the step ends at the first inhale after it.
        settle_s: the first seconds of a step that are not scored.
        max_extensions: steps added beyond an edge whose rate scored best.
        min_bpm, max_bpm: extensions stay within these rates.
        min_fit: breaths whose ``fit`` is below this (not breathed with the pacer) are
            not scored.
    """

    start_bpm: float = 6.5
    stop_bpm: float = 4.5
    step_bpm: float = 0.5
    step_s: float = 120.0
    settle_s: float = 20.0
    max_extensions: int = 2
    min_bpm: float = 3.0
    max_bpm: float = 9.5
    min_fit: float = 0.8

    def __post_init__(self) -> None:
        _check_range("min_fit", 0.0, 1.0, self.min_fit)
        for name in ("start_bpm", "stop_bpm", "min_bpm", "max_bpm"):
            _check_range(name, 1.0, 40.0, getattr(self, name))
        _check_range("step_bpm", 0.05, 10.0, self.step_bpm)
        _check_range("step_s", 10.0, 3600.0, self.step_s)
        _check_range("settle_s", 0.0, self.step_s, self.settle_s)
        _check_range("max_extensions", 0, 10, self.max_extensions)


def scan_rates(config: ScanConfig) -> list[float]:
    """The planned rates of a scan, in order (breaths/min, rounded to 0.01)."""
    n = round(abs(config.stop_bpm - config.start_bpm) / config.step_bpm)
    sign = -1.0 if config.stop_bpm < config.start_bpm else 1.0
    return [round(config.start_bpm + sign * i * config.step_bpm, 2) for i in range(n + 1)]


@dataclass(slots=True)
class _Step:
    rate_bpm: float
    t0_s: float
    amps: list[float] = field(default_factory=list)
    phases: list[float] = field(default_factory=list)
    fits: list[float] = field(default_factory=list)
    powers: list[float] = field(default_factory=list)
    cohs: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    rate_bpm: float
    amplitude: float | None
    power: float | None
    coherence: float | None
    phase: float | None
    score: float | None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _scored(steps: list[_Step]) -> list[_Row]:
    """One row per rate (sorted by rate), with the combined score."""
    raw = []
    for st in steps:
        phase = circular_median_deg(st.phases) if st.phases else None
        raw.append((st.rate_bpm, _median(st.amps), _mean(st.powers), _mean(st.cohs), phase))
    raw.sort(key=lambda r: r[0])

    def top(i: int) -> float:
        vals = [v for r in raw if isinstance(v := r[i], float)]
        return max(vals) if vals and max(vals) > 0 else 0.0

    amax, pmax, cmax = top(1), top(2), top(3)
    rows = []
    for rate, amp, power, coh, phase in raw:
        if amp is None and phase is None:
            rows.append(_Row(rate, amp, power, coh, phase, None))
            continue
        size = (
            (amp / amax if amp is not None and amax > 0 else 0.0)
            + 0.5 * (power / pmax if power is not None and pmax > 0 else 0.0)
            + 0.25 * (coh / cmax if coh is not None and cmax > 0 else 0.0)
        ) / 1.75
        ph = 1.0 - min(abs(phase), 90.0) / 90.0 if phase is not None else 0.0
        rows.append(_Row(rate, amp, power, coh, phase, ph + SIZE_WEIGHT * size))
    return rows


def _spearman(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 3:
        return 0.0

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(n), key=lambda i: v[i])
        r = [0.0] * n
        for k, i in enumerate(order):
            r[i] = float(k)
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else 0.0


def resonance_from_rows(
    rows: list[_Row], step_bpm: float
) -> tuple[float | None, float, int | None]:
    """``(rate, confidence, index of the candidate)`` from scored rows sorted by rate."""
    scored = [i for i, r in enumerate(rows) if r.score is not None]
    if not scored:
        return None, 0.0, None
    best = max(scored, key=lambda i: (rows[i].score or 0.0, -i))
    # One clean crossing of the phase from lead to lag: the resonance is there, whatever
    # the sizes say (the first criterion; a Mayer wave can inflate one rate's power).
    ph = [r.phase for r in rows]
    down = [
        i for i in range(len(rows) - 1)
        if (a := ph[i]) is not None and (b := ph[i + 1]) is not None and a > 0.0 >= b
    ]  # fmt: skip
    up = [
        i for i in range(len(rows) - 1)
        if (a := ph[i]) is not None and (b := ph[i + 1]) is not None and a <= 0.0 < b
    ]  # fmt: skip
    if len(down) == 1 and not up and rows[down[0]].score is not None:
        i = down[0]
        best = max((i, i + 1), key=lambda j: (rows[j].score or 0.0, -j))
    rate = rows[best].rate_bpm
    crossing = False
    for a, b in ((best - 1, best), (best, best + 1)):
        if a < 0 or b >= len(rows):
            continue
        pa, pb = rows[a].phase, rows[b].phase
        if pa is None or pb is None or not (pa > 0.0 >= pb):
            continue
        ra, rb = rows[a].rate_bpm, rows[b].rate_bpm
        x = ra + (rb - ra) * pa / (pa - pb)
        quarter = step_bpm / 4.0
        rate = min(max(x, rows[best].rate_bpm - quarter), rows[best].rate_bpm + quarter)
        crossing = True
        break
    phased = [(r.rate_bpm, r.phase) for r in rows if r.phase is not None]
    rho = _spearman([p[0] for p in phased], [p[1] for p in phased]) if len(phased) >= 3 else 0.0
    others = sorted((rows[i].score or 0.0 for i in scored if i != best), reverse=True)
    margin = (rows[best].score or 0.0) - others[0] if others else 0.0
    confidence = 0.4 * crossing + 0.3 * min(1.0, max(0.0, -rho)) + 0.3 * min(1.0, margin / 0.2)
    return round(rate, 2), round(min(1.0, max(0.0, confidence)), 3), best


class ScanMode(PacerMode):
    """``scan``: the stepped resonance assessment (see the module docstring)."""

    wants_breaths = True
    observes = True

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config if config is not None else ScanConfig()
        self._plan = scan_rates(self.config)
        self._steps: list[_Step] = []
        self._extensions = 0
        self._done = False
        self._events: list[ComputedEvent] = []
        self._peak_hz: float | None = None

    @property
    def done(self) -> bool:
        """True once the scan has ended (its ``resonance`` event made)."""
        return self._done

    def observe(self, participant: str | None, event: ComputedEvent) -> None:
        if self._done or not self._steps:
            return
        st = self._steps[-1]
        if isinstance(event, Rsa):
            if (
                event.paced
                and event.clean
                and event.start_s >= st.t0_s + self.config.settle_s - 1e-9
                and abs(event.rate_bpm - st.rate_bpm) < 1e-6
            ):
                # A breath the heart did not follow (low fit: not breathed with the pacer)
                # is not scored.
                if event.phase_deg is not None and event.fit is not None:
                    if event.fit < self.config.min_fit:
                        return
                    st.phases.append(event.phase_deg)
                    st.fits.append(event.fit)
                if event.amplitude_bpm is not None:
                    st.amps.append(event.amplitude_bpm)
        elif isinstance(event, Spectrum) and event.t_s - SPECTRUM_WINDOW_S >= st.t0_s - 1e-9:
            power = _band_power(event, st.rate_bpm / 60.0)
            if power is not None:
                st.powers.append(power)
            if event.coherence_ratio is not None:
                st.cohs.append(event.coherence_ratio)

    def on_breath(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
        if self._done:
            return None
        steps = self._steps
        if not steps:
            return self._start(t_s, self._plan[0], settings)
        st = steps[-1]
        period_s = 60.0 / st.rate_bpm
        if t_s - st.t0_s < self.config.step_s - 0.25 * period_s:
            return None
        done_rates = {s.rate_bpm for s in steps}
        nxt = next((r for r in self._plan if r not in done_rates), None)
        if nxt is None:
            nxt = self._extension()
        if nxt is not None:
            return self._start(t_s, nxt, settings)
        return self._finish(t_s, settings)

    def take_events(self) -> list[ComputedEvent]:
        events, self._events = self._events, []
        return events

    def rows(self) -> list[_Row]:
        """The per-rate table so far (sorted by rate)."""
        return _scored(self._steps)

    # ------------------------------------------------------------------ internals

    def _start(self, t_s: float, rate: float, settings: PacerSettings) -> PacerSettings | None:
        self._steps.append(_Step(rate, t_s))
        if settings.rate_bpm == rate:
            return None
        return _at_rate(settings, rate)

    def _extension(self) -> float | None:
        c = self.config
        if self._extensions >= c.max_extensions:
            return None
        rows = _scored(self._steps)
        _, _, best = resonance_from_rows(rows, c.step_bpm)
        if best is None:
            return None
        phases = [r.phase for r in rows if r.phase is not None]
        if best == 0 or (phases and all(p < 0.0 for p in phases)):
            rate = round(rows[0].rate_bpm - c.step_bpm, 2)  # HR lags everywhere: slower
        elif best == len(rows) - 1 or (phases and all(p > 0.0 for p in phases)):
            rate = round(rows[-1].rate_bpm + c.step_bpm, 2)  # HR leads everywhere: faster
        else:
            return None
        if not (c.min_bpm - 1e-9 <= rate <= c.max_bpm + 1e-9):
            return None
        self._extensions += 1
        self._plan.append(rate)
        return rate

    def _finish(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
        self._done = True
        rows = _scored(self._steps)
        rate, confidence, _ = resonance_from_rows(rows, self.config.step_bpm)
        self._events.append(_resonance_event(t_s, "scan", rate, confidence, True, rows))
        go_on = rate if rate is not None else settings.rate_bpm
        assert go_on is not None
        return _at_rate(settings, go_on, "fixed")


def _resonance_event(
    t_s: float, method: str, rate: float | None, confidence: float, final: bool, rows: list[_Row]
) -> Resonance:
    def rnd(v: float | None, nd: int) -> float | None:
        return None if v is None else round(v, nd)

    return Resonance(
        t_s,
        method,
        rate,
        confidence,
        final,
        tuple(r.rate_bpm for r in rows),
        tuple(rnd(r.amplitude, 3) for r in rows),
        tuple(rnd(r.power, 3) for r in rows),
        tuple(rnd(r.coherence, 3) for r in rows),
        tuple(rnd(r.phase, 2) for r in rows),
        tuple(rnd(r.score, 4) for r in rows),
    )


@dataclass(frozen=True, slots=True)
class AdaptiveConfig:
    """The closed loop (see the module docstring).

    Attributes:
        min_bpm, max_bpm: the loop keeps the rate within these (adult resonance 4.5-6.5
            plus a margin).
        max_step_bpm: the largest single rate change.
        max_bpm_per_min: the largest change per minute since the last change.
        gain_bpm_per_deg: rate change per degree of mean HR-pacer phase.
        deadband_deg: no change while ``|phase|`` is below this.
        cycles: breaths in the estimate (the last ones at the current rate).
        min_cycles: breaths needed before a decision.
        min_fit: a breath whose ``fit`` is below this was not breathed with the pacer.
        adherence_hz: pause while the spectral peak is further than this from the pacer.
    """

    min_bpm: float = 4.0
    max_bpm: float = 7.0
    max_step_bpm: float = 0.25
    max_bpm_per_min: float = 0.25
    gain_bpm_per_deg: float = 0.01
    deadband_deg: float = 5.0
    cycles: int = 4
    min_cycles: int = 2
    min_fit: float = 0.8
    adherence_hz: float = 0.03

    def __post_init__(self) -> None:
        _check_range("min_bpm", 1.0, 40.0, self.min_bpm)
        _check_range("max_bpm", self.min_bpm, 40.0, self.max_bpm)
        _check_range("max_step_bpm", 0.01, 5.0, self.max_step_bpm)
        _check_range("max_bpm_per_min", 0.01, 10.0, self.max_bpm_per_min)
        _check_range("gain_bpm_per_deg", 0.0, 1.0, self.gain_bpm_per_deg)
        _check_range("deadband_deg", 0.0, 90.0, self.deadband_deg)
        _check_range("cycles", 1, 100, self.cycles)
        _check_range("min_cycles", 1, self.cycles, self.min_cycles)
        _check_range("min_fit", 0.0, 1.0, self.min_fit)
        _check_range("adherence_hz", 0.001, 1.0, self.adherence_hz)


class AdaptiveMode(PacerMode):
    """``adaptive``: the closed loop toward the resonance rate (module docstring)."""

    wants_breaths = True
    observes = True

    def __init__(self, config: AdaptiveConfig | None = None) -> None:
        self.config = config if config is not None else AdaptiveConfig()
        self._t_change: float | None = None
        self._rate: float | None = None
        self._breaths: list[Rsa] = []
        self._peak_hz: float | None = None
        self._decisions = 0
        self._events: list[ComputedEvent] = []
        self._bins: dict[float, tuple[list[float], list[float]]] = {}
        self.estimate_bpm: float | None = None
        self.confidence = 0.0

    def observe(self, participant: str | None, event: ComputedEvent) -> None:
        if isinstance(event, Rsa):
            rate, t_change = self._rate, self._t_change
            if (
                rate is None
                or t_change is None
                or not event.paced
                or abs(event.rate_bpm - rate) > 1e-6
            ):
                return
            # The first breath after a change: the heart still settles.
            if event.start_s < t_change + 0.5 * 60.0 / rate:
                return
            self._breaths.append(event)
            del self._breaths[: -4 * self.config.cycles]
        elif isinstance(event, Spectrum) and event.peak_hz is not None:
            self._peak_hz = event.peak_hz

    def on_breath(self, t_s: float, settings: PacerSettings) -> PacerSettings | None:
        c = self.config
        rate = settings.rate_bpm
        assert rate is not None
        if self._rate is None or self._t_change is None:
            self._rate, self._t_change = rate, t_s
            clipped = min(max(rate, c.min_bpm), c.max_bpm)
            if clipped != rate:
                return self._change(t_s, settings, clipped)
            return None
        if self._peak_hz is not None and abs(self._peak_hz - rate / 60.0) > c.adherence_hz:
            return None  # not breathing with the pacer: wait
        usable = [
            b
            for b in self._breaths
            if b.clean and b.phase_deg is not None and b.fit is not None and b.fit >= c.min_fit
        ][-c.cycles :]
        if len(usable) < c.min_cycles:
            return None
        phase, r = circular_mean_deg(
            [b.phase_deg for b in usable if b.phase_deg is not None],
        )
        if r < 0.5:
            return None
        self._decisions += 1
        amps = [b.amplitude_bpm for b in usable if b.amplitude_bpm is not None]
        key = round(round(rate / 0.05) * 0.05, 2)
        bin_amps, bin_phases = self._bins.setdefault(key, ([], []))
        bin_amps.extend(amps)
        bin_phases.append(phase)
        target = rate + c.gain_bpm_per_deg * phase
        self.estimate_bpm = round(min(max(target, c.min_bpm), c.max_bpm), 2)
        self.confidence = round(
            r * max(0.0, 1.0 - abs(phase) / 45.0) * min(1.0, self._decisions / 3.0), 3
        )
        self._events.append(
            _resonance_event(
                t_s, "adaptive", self.estimate_bpm, self.confidence, False, self._rows()
            )
        )
        if abs(phase) < c.deadband_deg:
            return None
        delta = c.gain_bpm_per_deg * phase
        limit = min(c.max_step_bpm, c.max_bpm_per_min * (t_s - self._t_change) / 60.0)
        delta = max(-limit, min(limit, delta))
        new = round(min(max(rate + delta, c.min_bpm), c.max_bpm), 2)
        if abs(new - rate) < 0.005:
            return None
        return self._change(t_s, settings, new)

    def take_events(self) -> list[ComputedEvent]:
        events, self._events = self._events, []
        return events

    def _change(self, t_s: float, settings: PacerSettings, rate: float) -> PacerSettings:
        self._rate, self._t_change = rate, t_s
        self._breaths.clear()
        return _at_rate(settings, rate)

    def _rows(self) -> list[_Row]:
        rows = []
        for key in sorted(self._bins):
            amps, phases = self._bins[key]
            rows.append(_Row(key, _median(amps), None, None, circular_mean_deg(phases)[0], None))
        return rows


#: Challenge levels of the coherence-adaptive guidance: (fade above, come back below), as
#: coherence ratios (SCIENCE.md "Coherence ratio"; clean 6/min breathing scores ~3-8,
#: seated rest ~0.5). Not HeartMath's proprietary levels.
GUIDANCE_LEVELS: dict[str, tuple[float, float]] = {
    "gentle": (1.0, 0.6),
    "medium": (2.0, 1.2),
    "challenging": (3.5, 2.0),
}


class Guidance:
    """Coherence-adaptive guidance (issue 12 §1): when the followed participant's coherence
    ratio has stayed at or above the level's upper threshold for ``hold_s`` (every
    spectrum in that stretch), the pacer fades to a subtle cue; the first spectrum below
    the lower threshold (or without a coherence ratio) brings it back in full.

    Args:
        level: a key of :data:`GUIDANCE_LEVELS`.
        hold_s: how long coherence must stay high before the pacer fades (s).
    """

    def __init__(self, level: str = "medium", hold_s: float = 60.0) -> None:
        if level not in GUIDANCE_LEVELS:
            raise InvalidInput(
                f"unknown guidance level {level!r}; levels: {', '.join(GUIDANCE_LEVELS)}"
            )
        _check_range("hold_s", 0.0, 3600.0, hold_s)
        self.level = level
        self.high, self.low = GUIDANCE_LEVELS[level]
        self.hold_s = hold_s
        self.cue = "full"
        self._high_since: float | None = None

    def observe(self, event: Spectrum) -> str | None:
        """Take a spectrum; return the new cue if it changed, else None."""
        cr = event.coherence_ratio
        if cr is not None and cr >= self.high:
            if self._high_since is None:
                self._high_since = event.t_s
            if self.cue == "full" and event.t_s - self._high_since >= self.hold_s:
                self.cue = "subtle"
                return self.cue
            return None
        self._high_since = None
        if self.cue == "subtle" and (cr is None or cr < self.low):
            self.cue = "full"
            return self.cue
        return None


#: The pacer's strategies by mode (the default of :class:`~vagus.core.pacer.Pacer`).
MODES: Mapping[str, Callable[[], PacerMode]] = {
    "fixed": FixedMode,
    "scan": ScanMode,
    "adaptive": AdaptiveMode,
}
