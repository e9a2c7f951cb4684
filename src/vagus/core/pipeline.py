"""The sans-I/O real-time HRV pipeline.

Like the protocol core of the ``websockets`` library, :class:`Pipeline` holds no
socket, no event loop, no clock and no file: input arrives through the
``receive_*`` methods with its time, and the resulting events are collected with
:meth:`Pipeline.events_received`. Live strap data, replay of a recording and offline
analysis therefore run exactly the same code and give exactly the same events.

Calling contract::

    pipeline = Pipeline()
    pipeline.receive_packet(t_arrival_s, payload)   # or receive_rr / receive_gap / receive_control
    for event in pipeline.events_received():        # call after any receive method
        ...
    pipeline.close()                                # end of input: decide the pending beats
    events = pipeline.events_received()

What happens to each beat (SCIENCE.md):

1. **Beat timeline** ("Beats and time"). Beat time = previous beat time + RR. The chain
   is anchored to the arrival time at the start and after every gap (the last RR of the
   anchoring packet ends at its arrival time). Packet arrival times are used for nothing
   but anchoring and for checking the chain: the *lag* of a packet is its arrival time
   minus the time of its last beat. The lag floor (the smallest lag over the last 30 s)
   follows the slow drift between the strap's and the host's clocks; a lag more than
   ``gap_tolerance_s`` above the floor means beats were lost (a ``"dropout"`` gap), a
   lag more than ``gap_tolerance_s`` below it means the chain ran ahead of the clock
   (a ``"clock"`` gap). RR values sent while the strap reports no skin contact are not
   trusted ("contact_lost" gap). No successive difference is taken across a gap and no
   beat is invented to fill one.
2. **Artifacts**: :class:`vagus.core.artifacts.Lipponen2019`, causal, decides each beat
   at most two beats late, and hands out :class:`~vagus.core.events.Beat` events with
   the artifact class and the corrected NN value.
3. **Metrics** (:class:`~vagus.core.events.Metrics`) on every beat with an NN value,
   from running sums over windows of beat time (O(1) per beat).
4. **Spectrum and coherence** (:class:`~vagus.core.events.Spectrum`) every 5 s of beat
   time (at multiples of 5 s), from the current contiguous segment only
   (:mod:`vagus.core.spectrum`).
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from vagus.core.artifacts import Lipponen2019
from vagus.core.events import (
    MAX_HOLD_S,
    PACER_MODES,
    Beat,
    Contact,
    ControlEvent,
    Event,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    Spectrum,
    _new_metrics,
    _new_spectrum,
)
from vagus.core.hrm import RR_TICKS_PER_S, parse_fields
from vagus.core.spectrum import (
    _EDGE_TOLERANCE_S,
    COHERENCE_WINDOW_S,
    POWER_FLOOR_MS2,
    WELCH_FS_HZ,
    WELCH_WINDOW_S,
    IncrementalTachogram,
    _coherence_plan,
    _coherence_values,
    _welch_bands,
    _welch_bands_of_grid,
)
from vagus.exceptions import InvalidInput

__all__ = ["Pipeline"]

#: A metric needs beats covering at least this fraction of its window (else None).
MIN_COVERAGE = 0.75
#: ... and at least this many values.
MIN_VALUES = 5
# The coverage thresholds as constants (the per-beat code compares against them).
_MIN_COVER_60_S = MIN_COVERAGE * 60.0
_MIN_COVER_60_MS = MIN_COVERAGE * 60_000.0
_MIN_COVER_30_S = MIN_COVERAGE * 30.0
HR_WINDOW_S = 10.0
_HR_MIN_SUM_MS = 500.0 * HR_WINDOW_S  # HR needs beats covering half its window
#: Beat, arrival and event times (s) must lie within ±this: about 317 years, so any Unix
#: time up to the year 2286 and any monotonic or recording clock. Beyond it float64
#: seconds lose the resolution the beat timeline needs (at 1e18 s one float step is
#: 128 s, and ``t − 10 s`` equals ``t``); such a time is :class:`InvalidInput`.
MAX_ABS_TIME_S = 1e10
_LAG_HISTORY_S = 30.0
#: Cumulative input spanning more than this (s) is checked against MAX_ABS_TIME_S (one
#: comparison per call otherwise: ordinary RR input never comes near it).
_CUMULATIVE_CHECK_S = 1e6
#: ΔNN² sums (ms²) below this are recomputed exactly (1 µs² per ΔNN is far below any RR
#: resolution: a real difference of one 1/1024 s tick is 0.95 ms²).
_EXACT_BELOW_MS2 = 1e-6
_TRIM_AT = 4096  # expired beats kept before the lists are trimmed and the sums recomputed
_HIST_CAPACITY = 2048  # NN beats of the current segment kept for the spectrum
_DISPLAY_STEP = 2  # display PSD: every 2nd bin of the coherence periodogram (spectrum.py)
# 0x2A37 flags (hrm.py): bits 0 (uint16 heart rate), 3 (energy field) and 4 (RR present)
# fix where the RR values start; 0x10 of these three is the usual layout (RR at byte 2).
_FLAGS_LAYOUT = 0x19
_FLAG_RR_PRESENT = 0x10


#: _Windows state. NN windows: i10, i30, i60 (first beat of each window), n10, n30, n60,
#: nd60, ov60 (counts), s10, s30d2, c30, s60, s60sq, s60d2, cd60 (sums). Artifact window:
#: ia (first beat), na, na_art (counts), cover (s).
_Sums = tuple[
    int, int, int, int, int, int, int, int, float, float, float, float, float, float, float,
    int, int, int, float,
]  # fmt: skip
_NNSums = tuple[
    int, int, int, int, int, int, int, int, float, float, float, float, float, float, float
]


class _Windows:
    """Running sums over sliding windows of beat time, O(1) amortised per beat: the NN
    windows of the metrics (10, 30, 60 s) and the 60 s artifact window.

    The NN beats are kept in parallel lists (all segments); each window keeps the
    index of its first beat and running sums, advanced as beats arrive. The ΔNN sums
    (RMSSD, pNN50) hold only differences between two beats both inside the window: the
    ΔNN of a window's first beat (to the beat before the window) is left out, as in
    Kubios and neurokit2 over the same beats; so are differences across a gap
    (:meth:`new_segment`). Coverage is the time the values stand for (their NN in
    seconds: ``sum(NN) / 1000`` for HR, SDNN and the mean, the NN of beats with a counted
    ΔNN for RMSSD and pNN50), so a window with a gap inside reports less coverage than
    its length. The artifact window holds the measured beats (every beat but the
    inserted half of a split one, NN or not) and their RR as its coverage.

    Per-beat work is plain Python arithmetic (no numpy call) in one call per beat; the
    sums live in one tuple, unpacked into locals and stored back once per beat (cheaper
    than a dozen attribute reads and writes).
    """

    __slots__ = (
        "a_art",
        "a_rr_s",
        "a_t",
        "d2",
        "dcov",
        "has_d",
        "last_nn",
        "nn",
        "over",
        "sums",
        "t",
    )

    def __init__(self) -> None:
        self.t: list[float] = []
        self.nn: list[float] = []
        self.d2: list[float] = []  # ΔNN² to the previous beat of the segment, else 0
        self.has_d: list[int] = []  # 1 when the beat has a ΔNN
        self.over: list[int] = []  # 1 when |ΔNN| > 50 ms
        self.dcov: list[float] = []  # NN (s) of beats with a ΔNN
        self.last_nn: float | None = None  # last NN of the current segment
        self.a_t: list[float] = []  # measured beats: time (s),
        self.a_art: list[int] = []  # 1 when classified as an artifact,
        self.a_rr_s: list[float] = []  # RR (s)
        self.sums: _Sums = (
            0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0.0
        )  # fmt: skip

    def new_segment(self) -> None:
        """A gap: the next NN beat has no ΔNN."""
        self.last_nn = None

    def push(self, beat: Beat) -> Metrics | None:
        """Add one beat, expire old beats and return the metrics at its time (formulas:
        :class:`~vagus.core.events.Metrics`), or None for a beat without an NN value.

        A measured beat enters the artifact window; a beat with an NN value enters the
        NN windows, with its ΔNN to the previous NN beat of the segment. Each metric is
        None until its window holds at least :data:`MIN_VALUES` values covering
        :data:`MIN_COVERAGE` of the window (HR: 3 beats covering half of 10 s); so is
        the artifact rate (% of the measured beats of the last 60 s that are artifacts).
        """
        (
            i10, i30, i60, n10, n30, n60, nd60, ov60, s10, s30d2, c30, s60, s60sq, s60d2, cd60,
            ia, na, na_art, cover,
        ) = self.sums  # fmt: skip
        t = beat.t_s
        if not beat.inserted:
            # 60 s artifact window: measured beats.
            a = 0 if beat.artifact is None else 1
            rr_s = beat.rr_ms / 1000.0
            ats = self.a_t
            aarts = self.a_art
            arrs = self.a_rr_s
            ats.append(t)
            aarts.append(a)
            arrs.append(rr_s)
            na += 1
            na_art += a
            cover += rr_s
            t_min = t - 60.0
            while ats[ia] <= t_min:
                na -= 1
                na_art -= aarts[ia]
                cover -= arrs[ia]
                ia += 1
            if ia > _TRIM_AT:
                del ats[:ia], aarts[:ia], arrs[:ia]
                ia = 0
                cover = math.fsum(arrs)
        nn = beat.nn_ms
        if nn is None:
            self.sums = (
                i10, i30, i60, n10, n30, n60, nd60, ov60, s10, s30d2, c30, s60, s60sq, s60d2,
                cd60, ia, na, na_art, cover,
            )  # fmt: skip
            return None
        rate = None if na < MIN_VALUES or cover < _MIN_COVER_60_S else 100.0 * na_art / na
        last = self.last_nn
        self.last_nn = nn
        ts = self.t
        nns = self.nn
        d2s = self.d2
        dcovs = self.dcov
        has_ds = self.has_d
        ts.append(t)
        nns.append(nn)
        if last is None:
            d2 = dc = 0.0
            hd = ov = 0
        else:
            d = nn - last
            d2 = d * d
            hd = 1
            ov = 1 if d > 50.0 or d < -50.0 else 0
            dc = nn / 1000.0
        d2s.append(d2)
        has_ds.append(hd)
        self.over.append(ov)
        dcovs.append(dc)
        # 10 s window: NN sum (HR).
        s10 += nn
        n10 += 1
        t_min = t - 10.0
        while ts[i10] <= t_min:
            s10 -= nns[i10]
            n10 -= 1
            i10 += 1
        # 30 s window: ΔNN² sum and its coverage (RMSSD).
        s30d2 += d2
        c30 += dc
        n30 += hd
        t_min = t - 30.0
        while ts[i30] <= t_min:
            i30 += 1  # the ΔNN of the new first beat reaches outside the window
            s30d2 -= d2s[i30]
            c30 -= dcovs[i30]
            n30 -= has_ds[i30]
        # 60 s window: NN sums (SDNN, mean), ΔNN² sum, pNN50 count.
        s60 += nn
        s60sq += nn * nn
        n60 += 1
        s60d2 += d2
        cd60 += dc
        nd60 += hd
        ov60 += ov
        t_min = t - 60.0
        if ts[i60] <= t_min:
            overs = self.over
            while ts[i60] <= t_min:
                v = nns[i60]
                s60 -= v
                s60sq -= v * v
                n60 -= 1
                i60 += 1
                s60d2 -= d2s[i60]
                cd60 -= dcovs[i60]
                nd60 -= has_ds[i60]
                ov60 -= overs[i60]
        # A ΔNN² sum this small means every ΔNN in the window is (near) zero, and the
        # running sum holds only the round-off of values that left it: recompute it
        # exactly, so that identical NN give RMSSD 0, not 1e-6 ms (flat input only).
        if s30d2 < _EXACT_BELOW_MS2:
            s30d2 = math.fsum(d2s[i30 + 1 :])
        if s60d2 < _EXACT_BELOW_MS2:
            s60d2 = math.fsum(d2s[i60 + 1 :])
        if i60 > _TRIM_AT:
            i10, i30, i60, n10, n30, n60, nd60, ov60, s10, s30d2, c30, s60, s60sq, s60d2, cd60 = (
                self._trim(i10, i30, i60, n10, n30, n60, nd60, ov60)
            )
        self.sums = (
            i10, i30, i60, n10, n30, n60, nd60, ov60, s10, s30d2, c30, s60, s60sq, s60d2, cd60,
            ia, na, na_art, cover,
        )  # fmt: skip
        # The metrics, from the sums just updated (coverage of NN sums: sum / 1000 s).
        hr_bpm = 60000.0 * n10 / s10 if n10 >= 3 and s10 >= _HR_MIN_SUM_MS else None
        sdnn = mean_nn = None
        if n60 >= MIN_VALUES and s60 >= _MIN_COVER_60_MS:
            mean_nn = s60 / n60
            var = (s60sq - n60 * mean_nn * mean_nn) / (n60 - 1)
            sdnn = math.sqrt(var) if var > 0 else 0.0
        rmssd30 = None
        if n30 >= MIN_VALUES and c30 >= _MIN_COVER_30_S:
            rmssd30 = math.sqrt(s30d2 / n30 if not s30d2 <= 0.0 else 0.0)
        rmssd60 = pnn50 = None
        if nd60 >= MIN_VALUES and cd60 >= _MIN_COVER_60_S:
            rmssd60 = math.sqrt(s60d2 / nd60 if not s60d2 <= 0.0 else 0.0)
            pnn50 = 100.0 * ov60 / nd60
        return _new_metrics(t, hr_bpm, rmssd30, rmssd60, sdnn, pnn50, rate, mean_nn)

    def _trim(
        self, i10: int, i30: int, k: int, n10: int, n30: int, n60: int, nd60: int, ov60: int
    ) -> _NNSums:
        """Drop the expired NN beats (before the 60 s window, first beat ``k``) and
        recompute every NN sum exactly."""
        for name in ("t", "nn", "d2", "has_d", "over", "dcov"):
            del getattr(self, name)[:k]
        i10 -= k
        i30 -= k
        nn = self.nn
        return (
            i10,
            i30,
            0,
            n10,
            n30,
            n60,
            nd60,
            ov60,
            math.fsum(nn[i10:]),
            math.fsum(self.d2[i30 + 1 :]),
            math.fsum(self.dcov[i30 + 1 :]),
            math.fsum(nn),
            math.fsum(v * v for v in nn),
            math.fsum(self.d2[1:]),
            math.fsum(self.dcov[1:]),
        )


def _finite(value: object, name: str) -> float:
    """``value`` as a finite float (numpy scalars included), else :class:`InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a number, got {value!r:.60}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be finite, got {v}")
    return v


def _time(value: object, name: str) -> float:
    """A time (s) as a float within ±:data:`MAX_ABS_TIME_S`, else :class:`InvalidInput`."""
    v = _finite(value, name)
    if not -MAX_ABS_TIME_S <= v <= MAX_ABS_TIME_S:
        raise InvalidInput(
            f"{name} must be a time within ±{MAX_ABS_TIME_S:.0e} s (seconds of a clock), got {v}"
        )
    return v


def _text(value: object, name: str) -> str:
    """``value`` if it is a string that UTF-8 can encode, else :class:`InvalidInput`."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{name} must be valid Unicode text, got {value!r:.60} (a lone surrogate)"
        ) from None
    return value


def _control_event(event: object) -> ControlEvent:
    """A control event with validated fields, as :meth:`Pipeline.receive_control` passes it on.

    Times are checked as :func:`_time`, a marker's text as :func:`_text`; a pacer's
    ``rate_bpm`` is None (pacer off) or a finite number > 0, its ``inhale_fraction`` a
    number strictly between 0 and 1. Numbers other than int and float (a ``Fraction``,
    numpy scalars) are passed on as floats, so the event's JSON form always serialises.

    Raises:
        InvalidInput: not a :class:`Marker` or :class:`PacerChange`, or a field out of range.
    """
    if isinstance(event, Marker):
        t_s = _time(event.t_s, "marker t_s")
        text = _text(event.text, "marker text")
        if type(event.t_s) in (int, float) and type(text) is str:
            return event
        return Marker(t_s=t_s, text=str(text))
    if isinstance(event, PacerChange):
        t_s = _time(event.t_s, "pacer t_s")
        rate = event.rate_bpm
        if rate is not None:
            rate = _finite(rate, "pacer rate_bpm")
            if not rate > 0:
                raise InvalidInput(f"pacer rate_bpm must be > 0 breaths/min (or None), got {rate}")
        frac = _finite(event.inhale_fraction, "pacer inhale_fraction")
        if not 0.0 < frac < 1.0:
            raise InvalidInput(f"pacer inhale_fraction must be between 0 and 1, got {frac}")
        # The pacer's mode and holds (events.PacerChange; checked as its JSON form is).
        if event.mode not in PACER_MODES:
            raise InvalidInput(f"pacer mode must be one of {PACER_MODES}, got {event.mode!r:.40}")
        hold_in = _finite(event.hold_in_s, "pacer hold_in_s")
        hold_out = _finite(event.hold_out_s, "pacer hold_out_s")
        if not (0.0 <= hold_in <= MAX_HOLD_S and 0.0 <= hold_out <= MAX_HOLD_S):
            raise InvalidInput(f"pacer holds must be 0-{MAX_HOLD_S:g} s, got {hold_in}, {hold_out}")
        if all(
            type(v) in (int, float)
            for v in (event.t_s, event.inhale_fraction, event.hold_in_s, event.hold_out_s)
        ) and type(event.rate_bpm) in (int, float, type(None)):
            return event
        return PacerChange(t_s, rate, frac, event.mode, hold_in, hold_out)
    raise InvalidInput(f"not a control event (Marker or PacerChange): {event!r:.60}")


def _rr_values(rr_ms: object) -> list[float]:
    """RR input other than a plain int/float: a numpy scalar or an iterable of numbers.

    Raises:
        InvalidInput: not a number or an iterable of numbers (a string is neither), or a
            value that is not finite and positive.
    """
    if isinstance(rr_ms, numbers.Real) and not isinstance(rr_ms, bool):
        items: Iterable[object] = (rr_ms,)
    elif isinstance(rr_ms, str | bytes) or not isinstance(rr_ms, Iterable):
        raise InvalidInput(
            f"rr_ms must be a number or an iterable of numbers (ms), got {rr_ms!r:.60}"
        )
    else:
        items = rr_ms
    values = []
    try:
        for item in items:
            if type(item) is not float and (
                isinstance(item, bool) or not isinstance(item, numbers.Real)
            ):
                raise InvalidInput(f"RR intervals must be numbers (ms), got {item!r:.40}")
            values.append(_rr_float(item))
    except TypeError:  # iterable in name only (a 0-d array)
        raise InvalidInput(
            f"rr_ms must be a number or an iterable of numbers (ms), got {rr_ms!r:.60}"
        ) from None
    return values


def _rr_float(item: float | numbers.Real) -> float:
    """One RR value (ms) as a float, or :class:`InvalidInput` if not finite and > 0."""
    try:
        v = float(item)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v) or v <= 0:
        raise InvalidInput(f"RR intervals must be finite and > 0 ms, got {v}")
    return v


class Pipeline:
    """Turns strap packets or RR intervals into beat, metrics, spectrum and gap events.

    Args:
        gap_tolerance_s: a lag change of the RR chain against the arrival clock beyond
            this declares a gap (SCIENCE.md suggests 2 s).
        spectrum_interval_s: spectrum and coherence are computed at every multiple of
            this much beat time.
        corrector: the artifact corrector; a new :class:`Lipponen2019` by default.
    """

    def __init__(
        self,
        *,
        gap_tolerance_s: float = 2.0,
        spectrum_interval_s: float = 5.0,
        corrector: Lipponen2019 | None = None,
    ) -> None:
        if not gap_tolerance_s > 0:
            raise InvalidInput(f"gap_tolerance_s must be > 0, got {gap_tolerance_s}")
        if not spectrum_interval_s > 0:
            raise InvalidInput(f"spectrum_interval_s must be > 0, got {spectrum_interval_s}")
        self.gap_tolerance_s = gap_tolerance_s
        self.spectrum_interval_s = spectrum_interval_s
        self._corrector = corrector if corrector is not None else Lipponen2019()
        # Longer RR values break the chain (see _receive_long_rr); duck-typed correctors
        # without the attribute get the default physiological range.
        self._max_rr_ms: float = getattr(self._corrector, "max_rr_ms", 2500.0)
        self._events: list[Event] = []
        # Beat timeline.
        self._t_last_s: float | None = None  # time of the last measured beat in the chain
        self._gap_start: tuple[float, str] | None = None  # (t of last beat, reason)
        # Cumulative input resumes no earlier than this after a gap (receive_gap's t_s).
        self._resume_not_before_s: float | None = None
        # (t_arrival_s, lag_s) of the last 30 s, kept as a monotonic (increasing-lag) deque.
        self._lags: deque[tuple[float, float]] = deque()
        self._contact: bool | None = None
        self._closed = False
        # NN history of the current segment: for ΔNN and the spectrum.
        self._segment = 0
        # NN of the current segment for the spectrum, in preallocated arrays (the first
        # _hist_n entries). New beats wait in plain lists and are copied into the arrays
        # when a spectrum is due (a list append costs a tenth of a numpy element write).
        self._hist_t = np.empty(_HIST_CAPACITY)
        self._hist_nn = np.empty(_HIST_CAPACITY)
        self._hist_n = 0
        self._new_t: list[float] = []
        self._new_nn: list[float] = []
        # Beats kept: the Welch window, the spline's context knots before it (at most
        # SPLINE_CONTEXT_KNOTS × 2.5 s) and one spectrum interval.
        self._hist_keep_s = max(WELCH_WINDOW_S, COHERENCE_WINDOW_S) + 60.0
        self._tach = IncrementalTachogram()
        self._next_spectrum_t: float | None = None
        # Metric windows.
        self._win = _Windows()
        # Counters for status displays.
        self.packets = 0
        self.beats_measured = 0

    # ------------------------------------------------------------------ input

    def receive_packet(self, t_arrival_s: float, payload: bytes) -> None:
        """Feed one Heart Rate Measurement (0x2A37) notification and its arrival time.

        Raises:
            MalformedPacket: the payload is malformed; the pipeline is unchanged.
            InvalidInput: ``t_arrival_s`` is not a number within ±:data:`MAX_ABS_TIME_S`,
                or ``payload`` is not bytes; the pipeline is unchanged.
        """
        if self._closed:
            self._check_open()
        # Everything is checked before any state changes.
        if type(t_arrival_s) is not float or not -MAX_ABS_TIME_S <= t_arrival_s <= MAX_ABS_TIME_S:
            if isinstance(t_arrival_s, bool) or not isinstance(t_arrival_s, numbers.Real):
                raise InvalidInput(
                    "receive_packet takes the arrival time (s, a number) and the payload "
                    f"(bytes), got {type(t_arrival_s).__name__} and {type(payload).__name__}"
                )
            t_arrival_s = _time(t_arrival_s, "t_arrival_s")
        if type(payload) is not bytes:
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise InvalidInput(
                    "receive_packet takes the arrival time (s, a number) and the payload "
                    f"(bytes), got {type(t_arrival_s).__name__} and {type(payload).__name__}"
                )
            payload = bytes(payload)
        # The usual notifications (flags, a uint8 heart rate, one or two RR values; no
        # energy field) are read here, as parse_fields reads them; any other goes through it.
        # RR (ms) = ticks * 1000 / 1024 = ticks * 0.9765625, exactly (a binary fraction).
        rr_ms: Sequence[float]
        n_bytes = len(payload)
        one_rr: float | None = None
        if n_bytes == 4 and payload[0] & _FLAGS_LAYOUT == _FLAG_RR_PRESENT:
            flags = payload[0]
            ticks = payload[2] | (payload[3] << 8)
            rr = ticks * 0.9765625
            rr_ms = (rr,)
            one_rr = rr
            too_long = rr > self._max_rr_ms
            span_s = ticks / RR_TICKS_PER_S
        elif n_bytes == 6 and payload[0] & _FLAGS_LAYOUT == _FLAG_RR_PRESENT:
            flags = payload[0]
            ticks = payload[2] | (payload[3] << 8)
            ticks2 = payload[4] | (payload[5] << 8)
            rr = ticks * 0.9765625
            rr2 = ticks2 * 0.9765625
            rr_ms = (rr, rr2)
            too_long = rr > self._max_rr_ms or rr2 > self._max_rr_ms
            span_s = (ticks + ticks2) / RR_TICKS_PER_S
        else:
            flags, _, _, rr_ticks = parse_fields(payload)  # MalformedPacket before any change
            rr_ms = [v * 0.9765625 for v in rr_ticks]
            too_long = bool(rr_ms) and max(rr_ms) > self._max_rr_ms
            span_s = sum(rr_ticks) / RR_TICKS_PER_S
        self.packets += 1
        contact = bool(flags & 0x02) if flags & 0x04 else None  # flags bits 1, 2 (hrm.py)
        if contact is not self._contact:
            self._contact = contact
            self._events.append(Contact(t_s=t_arrival_s, contact=contact))
            if contact is False:
                self._break_chain("contact_lost")
        if not rr_ms or contact is False:
            return
        if too_long:
            self._receive_long_rr(rr_ms, t_arrival_s)
            return
        if self._t_last_s is None or self._gap_start is not None:
            self._anchor(t_arrival_s - span_s)
        else:
            lag_s = t_arrival_s - (self._t_last_s + span_s)
            # The lag floor: the front of the monotonic deque, after expiring old entries.
            lags = self._lags
            t_old = t_arrival_s - _LAG_HISTORY_S
            while lags and lags[0][0] < t_old:
                lags.popleft()
            floor_s = lags[0][1] if lags else None
            if floor_s is not None and lag_s - floor_s > self.gap_tolerance_s:
                self._break_chain("dropout")
                self._anchor(t_arrival_s - span_s)
            elif floor_s is not None and floor_s - lag_s > self.gap_tolerance_s:
                self._break_chain("clock")
                self._anchor(t_arrival_s - span_s)
        t_last = self._t_last_s
        assert t_last is not None
        if one_rr is not None:  # _add_beats for the one beat of the usual packet
            t_last += one_rr / 1000.0
            self.beats_measured += 1
            for beat in self._corrector.push(t_last, one_rr):
                self._emit_beat(beat)
            self._t_last_s = t_last
        else:
            self._add_beats(rr_ms)
            t_last = self._t_last_s
            assert t_last is not None
        # Monotonic deque: lags increase from front to back, so the front is the floor.
        lag_now = t_arrival_s - t_last
        lags = self._lags
        while lags and lags[-1][1] >= lag_now:
            lags.pop()
        lags.append((t_arrival_s, lag_now))

    def receive_rr(self, rr_ms: float | Iterable[float], t_s: float | None = None) -> None:
        """Feed RR intervals directly (offline input: files, imports, tests).

        Args:
            rr_ms: one RR interval (ms) or several in order.
            t_s: the time (s) of the beat that ends the (last) interval, if known.
                Without it beat times are cumulative (the first beat at its own RR).
                With it, a beat time that disagrees with the chain by more than
                ``gap_tolerance_s`` declares a gap and re-anchors.

        Raises:
            InvalidInput: a value is not finite or not positive, ``t_s`` is not a time
                within ±:data:`MAX_ABS_TIME_S`, or (without ``t_s``) the RR values
                would put a beat beyond that time; the pipeline is unchanged.
        """
        self._check_open()
        values: tuple[float] | list[float]
        if isinstance(rr_ms, (int, float)) and not isinstance(rr_ms, bool):
            # One value (replay feeds beat by beat): the fast path.
            v = _rr_float(rr_ms)
            values = (v,)
            span_s = v / 1000.0
        else:
            values = _rr_values(rr_ms)
            span_s = sum(values) / 1000.0
        if t_s is not None:
            if type(t_s) is not float or not -MAX_ABS_TIME_S <= t_s <= MAX_ABS_TIME_S:
                t_s = _time(t_s, "t_s")
        elif span_s > _CUMULATIVE_CHECK_S:
            self._check_cumulative_end(span_s)
        if not values:
            return
        if max(values) > self._max_rr_ms:
            self._receive_long_rr(values, t_s)
            return
        if t_s is not None:
            if self._t_last_s is None or self._gap_start is not None:
                self._anchor(t_s - span_s)
            else:
                err_s = t_s - (self._t_last_s + span_s)
                if abs(err_s) > self.gap_tolerance_s:
                    self._break_chain("dropout" if err_s > 0 else "clock")
                    self._anchor(t_s - span_s)
        elif self._t_last_s is None:
            self._anchor(0.0)
        elif self._gap_start is not None:
            self._resume_cumulative()
        self._add_beats(values)

    def receive_gap(self, t_s: float, reason: str = "link_lost") -> None:
        """Declare a break in the beat chain at ``t_s`` (e.g. the strap's link was lost).

        The :class:`~vagus.core.events.Gap` event starts at the last beat of the chain
        and is emitted when beats resume, with its duration; :meth:`close` emits it with
        ``duration_s=None`` if they never do. Where the beats resume is known from the
        packets' arrival times, or from ``t_s`` given to :meth:`receive_rr`; for
        cumulative input (no beat times) the chain resumes at ``t_s`` here, or at the
        last beat if ``t_s`` is earlier, so the gap lasts at least until ``t_s``.

        Raises:
            InvalidInput: ``t_s`` is not a time within ±:data:`MAX_ABS_TIME_S` or
                ``reason`` is not a string; the pipeline is unchanged.
        """
        self._check_open()
        t_s = _time(t_s, "t_s")
        reason = _text(reason, "gap reason")
        self._break_chain(reason)
        if self._gap_start is not None:
            self._resume_not_before_s = t_s

    def receive_control(self, event: ControlEvent) -> None:
        """Feed a control event (a marker or a pacer change); it is passed through in order.

        Raises:
            InvalidInput: not a :class:`Marker` or :class:`PacerChange`, or a field out of
                its domain (see :func:`_control_event`); the pipeline is unchanged.
        """
        self._check_open()
        self._events.append(_control_event(event))

    def close(self) -> None:
        """End of input: decide the beats still pending in the artifact corrector."""
        if self._closed:
            return
        self._flush_corrector()
        if self._gap_start is not None and self._t_last_s is not None:
            t_gap, reason = self._gap_start
            self._events.append(Gap(t_s=t_gap, duration_s=None, reason=reason))
        self._closed = True

    def events_received(self) -> list[Event]:
        """Return the events produced since the last call (call after any receive method)."""
        events, self._events = self._events, []
        return events

    # --------------------------------------------------------------- timeline

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput("the pipeline is closed; create a new Pipeline for new input")

    def _break_chain(self, reason: str) -> None:
        if self._t_last_s is None or self._gap_start is not None:
            return
        self._flush_corrector()
        self._gap_start = (self._t_last_s, reason)
        self._resume_not_before_s = None

    def _check_cumulative_end(self, span_s: float) -> None:
        """Raise :class:`InvalidInput` if cumulative RR values spanning ``span_s`` would
        put a beat beyond :data:`MAX_ABS_TIME_S` (checked before any state changes)."""
        t_s = self._t_last_s if self._t_last_s is not None else 0.0
        resume_s = self._resume_not_before_s
        if self._gap_start is not None and resume_s is not None and resume_s > t_s:
            t_s = resume_s
        if not t_s + span_s <= MAX_ABS_TIME_S:
            raise InvalidInput(
                f"RR intervals of {span_s * 1000.0:.6g} ms in total would put a beat at "
                f"{t_s + span_s:.6g} s, beyond the ±{MAX_ABS_TIME_S:.0e} s the beat timeline "
                "holds: check the file's RR unit and values"
            )

    def _resume_cumulative(self) -> None:
        """Restart the chain after a gap when beat times are cumulative (no clock)."""
        assert self._t_last_s is not None
        t_s = self._t_last_s
        resume_s = self._resume_not_before_s
        # A gap time within 1 µs of the last beat is that beat (sums of the same RR in
        # another order differ in the last bits): the chain goes on without a jump.
        if resume_s is not None and resume_s > t_s + 1e-6:
            t_s = resume_s
        self._anchor(t_s)

    def _receive_long_rr(self, rr_ms: Sequence[float], t_end_s: float | None) -> None:
        """Input holding an RR longer than the physiological range (``max_rr_ms``, 2.5 s).

        Such a value is not a beat that can be placed or corrected: the strap saw no
        beat for that long, or sent nonsense (as some do right after a reconnect,
        BLE.md). The chain is broken there (a ``"rr_out_of_range"`` gap): the values
        before the first long one go on the running chain, the long values (and any
        between them) produce no beat, and the values after the last one start a new
        chain, anchored at ``t_end_s`` (the packet's arrival or the given beat time).
        Without ``t_end_s`` (cumulative offline input) the long values are taken as
        elapsed time, so the gap lasts as long as they say.
        """
        lim = self._max_rr_ms
        long_idx = [i for i, v in enumerate(rr_ms) if v > lim]
        head = rr_ms[: long_idx[0]]
        tail = rr_ms[long_idx[-1] + 1 :]
        chain_on = self._t_last_s is not None and self._gap_start is None
        if head and (chain_on or t_end_s is None):
            if self._t_last_s is None:
                self._anchor(0.0)
            elif self._gap_start is not None:
                self._resume_cumulative()
            self._add_beats(head)
        if self._t_last_s is None:
            if t_end_s is None:
                self._anchor(0.0)
            else:  # nothing to break yet: the tail starts the chain
                if tail:
                    self._anchor(t_end_s - sum(tail) / 1000.0)
                    self._add_beats(tail)
                return
        self._break_chain("rr_out_of_range")
        if t_end_s is None:
            # Cumulative time: the skipped values elapsed; the next beats continue from there.
            assert self._t_last_s is not None
            self._t_last_s += sum(rr_ms[long_idx[0] : long_idx[-1] + 1]) / 1000.0
            if tail:
                self._resume_cumulative()  # not before a gap time given by receive_gap
                self._add_beats(tail)
            return
        if tail:
            self._anchor(t_end_s - sum(tail) / 1000.0)
            self._add_beats(tail)
            assert self._t_last_s is not None
            self._lags.append((t_end_s, t_end_s - self._t_last_s))

    def _anchor(self, t_start_s: float) -> None:
        """Start (or restart after a gap) the beat chain at ``t_start_s``.

        After a gap the new chain never starts before the last beat of the old one: an
        anchor that would (RR values that disagree with the arrival clock by more than
        the gap, e.g. nonsense sent after a reconnect) is moved to that beat, so beat
        times stay increasing and a gap never has a negative duration.
        """
        if self._gap_start is not None:
            t_gap, reason = self._gap_start
            if t_start_s < t_gap:
                t_start_s = t_gap
            self._events.append(Gap(t_s=t_gap, duration_s=t_start_s - t_gap, reason=reason))
            self._gap_start = None
            self._segment += 1
            self._win.new_segment()
            self._hist_n = 0
            self._new_t.clear()
            self._new_nn.clear()
            self._tach.reset()
        self._lags.clear()
        self._t_last_s = t_start_s

    def _add_beats(self, rr_ms: Iterable[float]) -> None:
        """Put measured beats on the timeline (t = previous t + RR) and through the corrector."""
        t = self._t_last_s
        assert t is not None
        push = self._corrector.push
        emit = self._emit_beat
        n = self.beats_measured
        for rr in rr_ms:
            t += rr / 1000.0
            n += 1
            for beat in push(t, rr):
                emit(beat)
        self._t_last_s = t
        self.beats_measured = n

    def _flush_corrector(self) -> None:
        for beat in self._corrector.flush():
            self._emit_beat(beat)

    # ---------------------------------------------------------------- metrics

    def _emit_beat(self, beat: Beat) -> None:
        events = self._events
        events.append(beat)
        metrics = self._win.push(beat)
        if metrics is None:
            return
        events.append(metrics)
        t = beat.t_s
        nn = beat.nn_ms
        assert nn is not None  # a beat with metrics has an NN value
        # Spectrum history (current segment only), copied into the arrays by _spectrum.
        self._new_t.append(t)
        self._new_nn.append(nn)
        nxt = self._next_spectrum_t
        if nxt is None or t >= nxt:
            step = self.spectrum_interval_s
            if nxt is not None:
                events.append(self._spectrum(nxt))
            self._next_spectrum_t = (math.floor(t / step) + 1) * step

    # --------------------------------------------------------------- spectrum

    def _take_new_beats(self) -> int:
        """Copy the beats waiting in ``_new_t``/``_new_nn`` into the history arrays and
        return how many the arrays hold.

        The arrays keep at most :data:`_HIST_CAPACITY` beats: when a beat finds them
        full, the beats older than ``_hist_keep_s`` before it are dropped (at least one).
        """
        new_t = self._new_t
        m = len(new_t)
        k = self._hist_n
        if not m:
            return k
        hist_t = self._hist_t
        hist_nn = self._hist_nn
        new_nn = self._new_nn
        if k + m <= _HIST_CAPACITY:
            hist_t[k : k + m] = new_t
            hist_nn[k : k + m] = new_nn
            k += m
        else:  # beat by beat, dropping old beats whenever the arrays are full
            for t, nn in zip(new_t, new_nn, strict=True):
                if k == _HIST_CAPACITY:
                    keep = max(int(np.searchsorted(hist_t, t - self._hist_keep_s)), 1)
                    hist_t[: k - keep] = hist_t[keep:k]
                    hist_nn[: k - keep] = hist_nn[keep:k]
                    k -= keep
                hist_t[k] = t
                hist_nn[k] = nn
                k += 1
        new_t.clear()
        new_nn.clear()
        self._hist_n = k
        return k

    def _spectrum(self, t_end: float) -> Spectrum:
        """Spectrum and coherence of the current segment at ``t_end`` (see :mod:`.spectrum`).

        The same computations as :func:`~vagus.core.spectrum.coherence` and
        :func:`~vagus.core.spectrum.welch_lf_hf`, without their result objects.
        """
        k = self._take_new_beats()
        hist_t = self._hist_t[:k]
        hist_nn = self._hist_nn[:k]
        # The whole segment history: np.interp finds the same intervals in it.
        coh = _coherence_values(hist_t, hist_nn, t_end)
        bands: list[float] | None = None
        j_end = round(t_end * WELCH_FS_HZ)
        if k < 8 or hist_t[0] > t_end - WELCH_WINDOW_S + _EDGE_TOLERANCE_S:
            pass  # the window is not covered yet
        elif abs(j_end - t_end * WELCH_FS_HZ) < 1e-6:
            # t_end on the 4 Hz grid (spectrum_interval_s a multiple of 0.25 s): update
            # the segment's tachogram incrementally instead of a spline per window.
            n_win = round(WELCH_WINDOW_S * WELCH_FS_HZ)
            bands = _welch_bands_of_grid(self._tach.window(hist_t, hist_nn, j_end, n_win))
        else:
            bands = _welch_bands(hist_t, hist_nn, t_end)
        lf = hf = lf_hf = None
        if bands is not None:
            lf = bands[1]
            hf = bands[2]
            lf_hf = lf / hf if hf >= POWER_FLOOR_MS2 else None
        if coh is None:
            return _new_spectrum(t_end, None, None, lf, hf, lf_hf, (), ())
        return _new_spectrum(
            t_end,
            coh[0],
            coh[1],
            lf,
            hf,
            lf_hf,
            _coherence_plan().display_freqs,
            tuple(coh[5]),
        )
