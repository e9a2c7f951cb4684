"""Offline HRV helpers: the live pipeline's formulas over a whole NN array.

For reports, ``vagus analyze`` and tests. The formulas are those of SCIENCE.md ("Time
domain", "Frequency domain", "Coherence ratio") and of :class:`vagus.core.pipeline.Pipeline`;
only the window differs (the whole recording instead of the last 30/60 s).

Gaps: no successive difference is taken across a gap in the beat chain. Every function
that uses ΔNN accepts either ``segment`` (an integer segment id per NN value; a new id
starts after each gap) or ``gap_before`` (True where a gap precedes the value).

Too little data gives ``None``, never a number: SDNN needs 2 NN values, RMSSD and pNN50
1 ΔNN, SDSD 2 ΔNN.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vagus.core.events import Beat, Event, Gap
from vagus.core.spectrum import COHERENCE_WINDOW_S, POWER_FLOOR_MS2, coherence, welch_lf_hf
from vagus.exceptions import InvalidInput

__all__ = [
    "MIN_SUMMARY_BEATS",
    "REPORT_WELCH_WINDOW_S",
    "CoherencePoint",
    "FrequencySummary",
    "Summary",
    "coherence_series",
    "frequency_summary",
    "hr",
    "mean_nn",
    "pnn50",
    "rmssd",
    "sdnn",
    "sdsd",
    "segment_ids",
    "successive_differences",
    "summarize",
    "summarize_events",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer]
SegmentLike = Sequence[int] | npt.NDArray[np.integer] | None
GapLike = Sequence[bool] | npt.NDArray[np.bool_] | None

#: Welch segments of a whole-recording analysis (SCIENCE.md: "in reports over the whole
#: session (5-min segments)").
REPORT_WELCH_WINDOW_S = 300.0
#: :func:`summarize` reports no time-domain metric from fewer NN values than this (the
#: live pipeline's ``MIN_VALUES``): never a number from too little data.
MIN_SUMMARY_BEATS = 5
#: Step (s of beat time) of the sliding 64 s coherence windows, as live.
COHERENCE_STEP_S = 5.0
#: A window may start this much after the first beat (np.interp holds the first value).
_EDGE_TOLERANCE_S = 2.5


def _as_nn(nn_ms: ArrayLike) -> FloatArray:
    nn = np.asarray(nn_ms, dtype=np.float64).ravel()
    if not np.all(np.isfinite(nn)):
        raise InvalidInput("NN intervals must be finite numbers (ms)")
    return nn


def segment_ids(n: int, segment: SegmentLike = None, gap_before: GapLike = None) -> FloatArray:
    """Segment id of each of ``n`` NN values, from ``segment`` or ``gap_before`` (one of them).

    Without either, all values form one segment (id 0).

    Raises:
        InvalidInput: both given, or a length differs from ``n``.
    """
    if segment is not None and gap_before is not None:
        raise InvalidInput("give either segment or gap_before, not both")
    if segment is not None:
        seg = np.asarray(segment).ravel().astype(np.float64)
    elif gap_before is not None:
        seg = np.cumsum(np.asarray(gap_before, dtype=bool).ravel()).astype(np.float64)
    else:
        return np.zeros(n)
    if seg.size != n:
        raise InvalidInput(f"segment/gap_before has {seg.size} values for {n} NN intervals")
    return seg


def successive_differences(
    nn_ms: ArrayLike, *, segment: SegmentLike = None, gap_before: GapLike = None
) -> FloatArray:
    """ΔNN (ms): ``NN[i] - NN[i-1]`` for every pair of adjacent beats with no gap between them."""
    nn = _as_nn(nn_ms)
    seg = segment_ids(nn.size, segment, gap_before)
    d: FloatArray = np.diff(nn)[np.diff(seg) == 0]
    return d


def mean_nn(nn_ms: ArrayLike) -> float | None:
    """Mean NN interval (ms): ``mean(NN)`` over the whole array. None if empty."""
    nn = _as_nn(nn_ms)
    return float(nn.mean()) if nn.size else None


def hr(nn_ms: ArrayLike) -> float | None:
    """Heart rate (beats/min): ``60000 / mean(NN)`` (SCIENCE.md "Time domain"). None if empty."""
    m = mean_nn(nn_ms)
    return 60000.0 / m if m else None


def sdnn(nn_ms: ArrayLike) -> float | None:
    """SDNN (ms): ``std(NN, ddof=1)`` over the whole array (Task Force 1996). None if < 2 NN."""
    nn = _as_nn(nn_ms)
    return float(np.std(nn, ddof=1)) if nn.size >= 2 else None


def rmssd(
    nn_ms: ArrayLike, *, segment: SegmentLike = None, gap_before: GapLike = None
) -> float | None:
    """RMSSD (ms): ``sqrt(mean(ΔNN²))``, ΔNN only between adjacent beats with no gap.

    SCIENCE.md "Time domain" (all libraries agree). None without any ΔNN.
    """
    d = successive_differences(nn_ms, segment=segment, gap_before=gap_before)
    return float(np.sqrt(np.mean(d * d))) if d.size else None


def pnn50(
    nn_ms: ArrayLike, *, segment: SegmentLike = None, gap_before: GapLike = None
) -> float | None:
    """pNN50 (%): ``100 · #(|ΔNN| > 50 ms) / #ΔNN`` (divided by the number of ΔNN, N − 1
    for one segment; neurokit2 divides by N). None without any ΔNN."""
    d = successive_differences(nn_ms, segment=segment, gap_before=gap_before)
    return float(100.0 * np.count_nonzero(np.abs(d) > 50.0) / d.size) if d.size else None


def sdsd(
    nn_ms: ArrayLike, *, segment: SegmentLike = None, gap_before: GapLike = None
) -> float | None:
    """SDSD (ms): ``std(ΔNN, ddof=1)`` (pyhrv uses the std of |ΔNN| instead). None if < 2 ΔNN."""
    d = successive_differences(nn_ms, segment=segment, gap_before=gap_before)
    return float(np.std(d, ddof=1)) if d.size >= 2 else None


# ------------------------------------------------------------------ frequency domain


@dataclass(frozen=True, slots=True)
class CoherencePoint:
    """Coherence of the 64 s window ending at ``t_s`` (:func:`vagus.core.spectrum.coherence`)."""

    t_s: float
    peak_hz: float
    coherence_ratio: float


@dataclass(frozen=True, slots=True)
class FrequencySummary:
    """Whole-recording spectral summary.

    Attributes:
        vlf_ms2, lf_ms2, hf_ms2: band power (ms²) averaged over the 5-min Welch windows
            (VLF 0.0033-0.04, LF 0.04-0.15, HF 0.15-0.40 Hz); None without a full window.
        lf_hf: ratio of the averaged LF and HF powers.
        welch_windows: number of 5-min windows averaged.
        coherence: the 64 s coherence windows, every 5 s of beat time.
    """

    vlf_ms2: float | None
    lf_ms2: float | None
    hf_ms2: float | None
    lf_hf: float | None
    welch_windows: int
    coherence: tuple[CoherencePoint, ...] = field(default=())


def _segments(t: FloatArray, seg: FloatArray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of each contiguous segment."""
    if t.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(seg) != 0) + 1
    bounds = [0, *cuts.tolist(), int(t.size)]
    return list(itertools.pairwise(bounds))


def _check_times(t_s: ArrayLike, nn: FloatArray, seg: FloatArray) -> FloatArray:
    """Beat times as an array: finite, strictly increasing within each segment (a clock
    re-anchoring after a gap may move the next segment back in time)."""
    t = np.asarray(t_s, dtype=np.float64).ravel()
    if t.size != nn.size:
        raise InvalidInput(f"{t.size} beat times for {nn.size} NN intervals")
    if not np.all(np.isfinite(t)) or np.any((np.diff(t) <= 0) & (np.diff(seg) == 0)):
        raise InvalidInput("beat times must be finite and strictly increasing (s)")
    return t


def coherence_series(
    t_s: ArrayLike,
    nn_ms: ArrayLike,
    *,
    segment: SegmentLike = None,
    gap_before: GapLike = None,
    step_s: float = COHERENCE_STEP_S,
) -> tuple[CoherencePoint, ...]:
    """Coherence ratio and peak frequency of sliding 64 s windows.

    Windows end at every multiple of ``step_s`` of beat time (as the live pipeline) and
    lie within one contiguous segment; formula: :mod:`vagus.core.spectrum` (our
    implementation of McCraty & Childre 2010).
    """
    nn = _as_nn(nn_ms)
    seg = segment_ids(nn.size, segment, gap_before)
    t = _check_times(t_s, nn, seg)
    out: list[CoherencePoint] = []
    for a, b in _segments(t, seg):
        ts, ns = t[a:b], nn[a:b]
        first = math.ceil((ts[0] + COHERENCE_WINDOW_S - _EDGE_TOLERANCE_S) / step_s)
        last = math.floor(ts[-1] / step_s)
        for k in range(first, last + 1):
            t_end = k * step_s
            lo = int(np.searchsorted(ts, t_end - COHERENCE_WINDOW_S - 5.0))
            hi = int(np.searchsorted(ts, t_end, side="right")) + 1
            res = coherence(ts[lo:hi], ns[lo:hi], t_end)
            if res is not None:
                out.append(CoherencePoint(t_end, res.peak_hz, res.coherence_ratio))
    return tuple(out)


def frequency_summary(
    t_s: ArrayLike,
    nn_ms: ArrayLike,
    *,
    segment: SegmentLike = None,
    gap_before: GapLike = None,
    window_s: float = REPORT_WELCH_WINDOW_S,
) -> FrequencySummary:
    """Whole-recording LF/HF (Welch over 5-min windows) and the coherence series.

    Each contiguous segment holds ``floor((t_last − t_first + 2.5 s) / 300 s)`` windows of
    300 s laid back to back, ending at its last beat; in each,
    :func:`vagus.core.spectrum.welch_lf_hf` (4 Hz natural cubic spline, Hann segments of
    64 s, 50 % overlap, linear detrend, trapezoid band power; Task Force 1996). Band
    powers are averaged over all windows of all segments.
    """
    nn = _as_nn(nn_ms)
    seg = segment_ids(nn.size, segment, gap_before)
    t = _check_times(t_s, nn, seg)
    vlf: list[float] = []
    lf: list[float] = []
    hf: list[float] = []
    for a, b in _segments(t, seg):
        ts, ns = t[a:b], nn[a:b]
        n_win = math.floor((float(ts[-1]) - float(ts[0]) + _EDGE_TOLERANCE_S) / window_s)
        for j in range(n_win):
            t_end = float(ts[-1]) - (n_win - 1 - j) * window_s
            lo = int(np.searchsorted(ts, t_end - window_s - 5.0))
            hi = int(np.searchsorted(ts, t_end, side="right")) + 1
            res = welch_lf_hf(ts[lo:hi], ns[lo:hi], t_end, window_s=window_s)
            if res is not None:
                vlf.append(res.vlf_ms2)
                lf.append(res.lf_ms2)
                hf.append(res.hf_ms2)
    coh = coherence_series(t, nn, segment=seg.astype(np.int64))
    if not lf:
        return FrequencySummary(None, None, None, None, 0, coh)
    lf_m, hf_m = float(np.mean(lf)), float(np.mean(hf))
    return FrequencySummary(
        vlf_ms2=float(np.mean(vlf)),
        lf_ms2=lf_m,
        hf_ms2=hf_m,
        lf_hf=lf_m / hf_m if hf_m >= POWER_FLOOR_MS2 else None,
        welch_windows=len(lf),
        coherence=coh,
    )


# ------------------------------------------------------------------ summaries


@dataclass(frozen=True, slots=True)
class Summary:
    """Whole-recording HRV summary (``vagus analyze``, reports).

    Time-domain values over all corrected NN (formulas: the functions of this module);
    frequency values: :func:`frequency_summary`. ``artifacts`` counts measured beats by
    artifact class (only filled by :func:`summarize_events`); ``gaps`` counts breaks in
    the beat chain.
    """

    beats: int
    duration_s: float
    mean_nn_ms: float | None
    hr_bpm: float | None
    sdnn_ms: float | None
    rmssd_ms: float | None
    pnn50_pct: float | None
    sdsd_ms: float | None
    frequency: FrequencySummary
    beats_measured: int | None = None
    artifacts: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    peak_hz_median: float | None = None
    coherence_median: float | None = None


def summarize(
    t_s: ArrayLike,
    nn_ms: ArrayLike,
    *,
    segment: SegmentLike = None,
    gap_before: GapLike = None,
    beats_measured: int | None = None,
    artifacts: dict[str, int] | None = None,
) -> Summary:
    """Summarise a whole recording of NN intervals (ms) at beat times ``t_s`` (s).

    ``duration_s`` is the time covered by beats: the sum of NN values (so gaps are not
    counted). With fewer than :data:`MIN_SUMMARY_BEATS` NN values every time-domain
    metric is None.
    """
    nn = _as_nn(nn_ms)
    seg = segment_ids(nn.size, segment, gap_before)
    t = _check_times(t_s, nn, seg)
    seg_i = seg.astype(np.int64)
    freq = frequency_summary(t, nn, segment=seg_i)
    coh = freq.coherence
    enough = nn.size >= MIN_SUMMARY_BEATS
    return Summary(
        beats=int(nn.size),
        duration_s=float(nn.sum() / 1000.0),
        mean_nn_ms=mean_nn(nn) if enough else None,
        hr_bpm=hr(nn) if enough else None,
        sdnn_ms=sdnn(nn) if enough else None,
        rmssd_ms=rmssd(nn, segment=seg_i) if enough else None,
        pnn50_pct=pnn50(nn, segment=seg_i) if enough else None,
        sdsd_ms=sdsd(nn, segment=seg_i) if enough else None,
        frequency=freq,
        beats_measured=beats_measured,
        artifacts=dict(artifacts or {}),
        gaps=int(np.count_nonzero(np.diff(seg))) if seg.size else 0,
        peak_hz_median=float(np.median([c.peak_hz for c in coh])) if coh else None,
        coherence_median=float(np.median([c.coherence_ratio for c in coh])) if coh else None,
    )


def summarize_events(events: Iterable[Event]) -> Summary:
    """Summarise the events of a :class:`~vagus.core.pipeline.Pipeline` run (whole recording).

    Uses the corrected NN of every :class:`~vagus.core.events.Beat` (beats with
    ``nn_ms=None`` left out), starts a new segment at every
    :class:`~vagus.core.events.Gap`, and counts measured beats and artifact classes
    (inserted beats are not measured beats).
    """
    t: list[float] = []
    nn: list[float] = []
    seg: list[int] = []
    current = 0
    measured = 0
    artifacts: dict[str, int] = {}
    pending_gap = False
    for ev in events:
        if isinstance(ev, Gap):
            pending_gap = True
        elif isinstance(ev, Beat):
            if not ev.inserted:
                measured += 1
                if ev.artifact is not None:
                    artifacts[ev.artifact] = artifacts.get(ev.artifact, 0) + 1
            if ev.nn_ms is None:
                continue
            if pending_gap and t:
                current += 1
            pending_gap = False
            t.append(ev.t_s)
            nn.append(ev.nn_ms)
            seg.append(current)
    return summarize(
        np.asarray(t),
        np.asarray(nn),
        segment=np.asarray(seg, dtype=np.int64),
        beats_measured=measured,
        artifacts=artifacts,
    )
