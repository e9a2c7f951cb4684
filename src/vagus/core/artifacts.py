"""Causal real-time artifact classification and correction (after Lipponen & Tarvainen 2019).

Reference: J. A. Lipponen and M. P. Tarvainen, "A robust algorithm for heart rate
variability time series artefact correction using novel beat classification", J Med Eng
Technol 43(3):173-181, 2019 (the method behind Kubios and neurokit2's
``signal_fixpeaks(method="kubios")``). Spec: SCIENCE.md, "Artifacts (real time)".

The paper works on a whole recording with centred windows. :class:`Lipponen2019` makes it
causal with a **two-beat decision delay**: beat ``j`` is decided, at the latest, when beat
``j + 2`` has been pushed, from beats ``<= j + 2`` only. Beats are decided in order.
What is compared against what: the successive difference ``dRR_j`` is taken from the
previous *corrected* interval ``NN_j-1`` (so a corrected artifact does not make its
successor look abnormal; the batch method sees the raw neighbour instead), while the
level ``medRR`` is a median of *measured* RR only, never of the corrector's own output.

Features of beat ``j`` (ms; ``NN`` = corrected history, ``RR`` = measured)
------------------------------------------------------------------------
- ``medRR``: median of the measured in-range ``RR`` of the beats ``j-8 .. j+2`` of this
  segment (the last ``median_beats - 3`` decided ones plus ``RR_j, RR_j+1, RR_j+2``; the
  paper centres 11 measured RR on ``j``, which would need 5 future beats).
- ``dRR_j = RR_j - NN_j-1``; ``dRR_j-1 = NN_j-1 - NN_j-2``; ``dRR_j+1 = RR_j+1 - RR_j``,
  ``dRR_j+2 = RR_j+2 - RR_j+1`` (a future value outside the physiological range is
  replaced by ``medRR``). At a segment start ``NN_j-1 := medRR`` and ``dRR_j-1 := 0``.
- ``mRR_j = RR_j - medRR``, negative values doubled (paper).
- ``Th1 = alpha * IQR(|dRR|) / 2``, ``Th2 = alpha * IQR(|mRR|) / 2`` over the
  ``window_beats`` (91) most recently decided in-range beats, **past beats only** (a
  beat's values enter the windows after its thresholds are taken). Quartiles by linear
  interpolation (numpy's default). Floors (not in the paper): ``Th1 >= 12 %`` and
  ``Th2 >= 4 %`` of ``medRR``, and both ``>= 10 %`` while a window holds < 16 values.
- ``D = dRR / Th1``, ``M = mRR / Th2``; local references ``ref_m = median(NN_j-1,
  RR_j+1, medRR)`` (the interval ``RR_j`` should have) and ``ref_e = median(NN_j-1,
  RR_j+2, medRR)``; tolerance ``tol = Th2`` clamped to 10-25 % of ``medRR``.

Decision for beat ``j`` (first match wins)
------------------------------------------
``dev = |RR_j - ref_m|``. A beat is *examined* when ``|D_j| > 1`` (the paper's entry
test, "strong"), or ``dev > 30 %`` of ``medRR``, or ``RR_j`` and ``RR_j+1`` are both
below 70 % of ``medRR``; every other beat is normal. (The second beat of an ectopic pair
found by rule 6 is ``"ectopic"`` without further test.)

1. ``RR_j`` outside ``[min_rr_ms, max_rr_ms]`` (also NaN, inf, negative): ``"range"``.
2. new level, normal: ``RR_j+1`` and ``RR_j+2`` are in range, on the same side of
   ``medRR`` as ``RR_j`` and each at least 60 % of the way from ``medRR`` to ``RR_j``
   (``(RR_k - medRR) * (RR_j - medRR) >= 0.6 * (RR_j - medRR)^2`` for ``k = j+1, j+2``),
   and the three agree with each other: ``max - min <= 50 %`` of the smallest of them.
3. missed: ``D_j > 1`` and ``|RR_j / 2 - ref_m| < tol``.
4. extra: (``D_j < -1``, or ``RR_j`` and ``RR_j+1`` both below 70 % of ``ref_e``) and
   ``|RR_j + RR_j+1 - ref_e| < tol`` (and the sum <= ``max_rr_ms``).
5. ectopic, zig-zag centred on ``j`` (the paper's rule with neurokit2's signs):
   ``dRR_j > 0`` and ``max(D_j-1, D_j+1) < -c1 * D_j - c2``, or ``dRR_j <= 0`` and
   ``min(D_j-1, D_j+1) > -c1 * D_j + c2``; and ``dev > 15 %`` of ``medRR``.
6. ectopic pair ``(j, j+1)`` (strong, or ``dev > 30 %``): the same zig-zag rule centred
   on ``j + 1`` (``D_j+1`` against ``D_j`` and ``D_j+2``), both flanks smaller than the
   centre, and ``RR_j+1`` explains neither a missed beat nor the start of an extra one.
   A premature beat shortens one interval and lengthens the next (compensatory pause):
   both are classified ``"ectopic"`` (``j + 1`` when its turn comes). Deciding ``j``
   before ``j + 1`` needs this look-ahead; the batch paper only flags the centre.
7. long / short (strong only): ``D_j > 1`` and ``D_j+1 < -1``, or ``D_j < -1`` and
   ``max(D_j+1, D_j+2) > 1``, or ``|M_j| > 3`` (paper); and ``dev > 30 %`` of ``medRR``.
8. otherwise normal.

Why the deviations from the paper (measured on real RR with seeded missed/extra/ectopic
injections, see ``tests/test_artifacts.py``): the paper's rules flagged 2-3 % of the
beats of clean recordings (1-2-beat physiological surges of 15-25 % at rest, zig-zags of
2-5 quanta in 1/128 s Holter data, the huge swings of 6/min breathing) and its
interpolation of those lowered RMSSD by 10-20 %. The relative floors and the
local-reference magnitude tests bring that to < 0.5 % while still finding > 95 % of the
injected artifacts. ``s22`` for long beats uses only ``D_j+1``: a two-beat plateau is
physiological far more often than not. Missed and extra need no ``s22`` pattern (it
fails in the large-RSA swings of slow breathing); rule 2 takes its place where it
matters, at a change of heart rate. For the same reason (Th1 of 300-500 ms during 6/min
breathing) a beat deviating by more than 30 % from its neighbours is examined for the
ectopic and extra patterns even when ``|D_j| <= 1``.

Sustained changes of heart rate (rule 2 and the measured medRR)
---------------------------------------------------------------
SCIENCE.md: "Whatever a beat is compared against, a sustained change of heart rate is
followed within a few beats". An artifact is one or two beats that disagree with their
neighbours on *both* sides; a change of heart rate is a beat whose successors agree with
it. Rule 2 tests that with the two beats of look-ahead: a drop from 75 to 50 bpm (RR 800
-> 1200 ms), or to half the rate, is normal from its first beat, however well
``RR_j / 2`` would fit the old level. A new level reached through transitional beats (a
ramp, a zig-zag) may get its first beats examined, and then medRR can not lock in: it is
a median of measured RR, so from the fourth beat at the new level on (6 of its 11 values
are there) it *is* the new level, whatever the corrector did with the first three. (A
median of the corrector's own output locks in: the halves of a "missed" beat feed a
median that makes the next beat "missed" again, for as long as the slow rhythm lasts.)
Measured on clean and noisy steps of 1.2-2.5x up and down at 40-120 bpm, and on real
recordings with one part rescaled (``tests/test_artifacts_steps.py``): at most 2 beats
classified per step. The price: three or more consecutive missed (or evenly split) beats
read as a change of rate, which from RR alone they can not be told apart from.

Correction (the ``nn_ms`` of the emitted :class:`~vagus.core.events.Beat`)
---------------------------------------------------------------------------
- normal: ``nn = RR``.
- ectopic / long / short: linear interpolation between the previous corrected NN and
  the next plausible interval, ``nn = (NN_j-1 + median(RR_j+1, RR_j+2, medRR)) / 2``
  (the median of three ignores one abnormal successor, e.g. the other half of a pair).
- missed: split in two. An extra Beat (``inserted=True``, ``t_s`` at the midpoint of the
  interval, ``rr_ms`` = the measured RR, ``nn = RR / 2``, class ``"missed"``) is emitted
  immediately before the measured beat, which also gets ``"missed"`` and ``nn = RR / 2``.
- extra: merged with the following beat: the extra beat gets ``nn = None``, the next
  beat (class ``"extra"`` too) gets ``nn = RR_j + RR_j+1``; both are emitted at once.
- range: a too-short interval (``0 <= RR < min_rr_ms``, e.g. a spurious R peak 28 ms
  after the true one) is merged with a neighbour when the sum is in range and closer to
  ``medRR`` than the neighbour alone (backward with ``j - 1`` while ``j - 1`` is decided,
  if that is the better of the two, else forward with ``j + 1``): the out-of-range beat
  gets ``nn = None`` and class ``"range"``, its partner class ``"extra"`` (``"range"``
  when it is out of range itself, e.g. two 200 ms parts) and ``nn = sum``. Every other
  out-of-range beat (too long, 0, negative, NaN/inf, no plausible merge) gets
  ``nn = None`` and stays out of every statistic. (The pipeline never passes a too-long
  one: it breaks the beat chain there, a ``"rr_out_of_range"`` gap.)

So ``nn_ms`` is ``None`` or within ``[min_rr_ms / 2, max_rr_ms]`` (the halves of a missed
beat may be shorter than ``min_rr_ms`` in a very fast rhythm).

Segments: :meth:`Lipponen2019.flush` ends a segment (end of input, or a gap in the beat
chain). The next push starts a new one: no dRR is taken across the gap and the median
history of measured RR is reset (the heart rate may have changed during the gap); the
Th1/Th2 windows are **kept** (the variability scale of the same person and strap stays
valid, and short dropouts are frequent: re-learning the scale after each would leave the
thresholds on the warm-up prior).

Cost: pure Python, no numpy per beat. Most beats take a short path in
:meth:`Lipponen2019.push` that needs neither threshold: when ``RR_j``, ``RR_j+1`` and
``RR_j+2`` are in range, ``|dRR_j| <= 12 %`` of medRR (Th1 is never below that floor, so
``|D_j| <= 1``: not strong), ``dev <= 30 %`` of medRR, ``RR_j`` and ``RR_j+1`` are not
both below 70 % of medRR and ``j`` is not the second beat of an ectopic pair, none of
the entry tests above holds and the beat is normal, whatever Th1 and Th2 are (the same
shortcut as the batch path, :mod:`vagus.core.batch`). Its ``|dRR|`` and ``|mRR|`` are
appended to the windows' FIFOs; the windows' sorted copies (for the quartiles) are
brought up to date only when a beat needs its thresholds: value by value with
``bisect`` when they lag by at most :data:`CATCH_UP_VALUES` values, else re-sorted. The
decisions are the same as with thresholds computed for every beat (the quartiles of
the same values). The median of the 11 RR is a sort of a list of 11 floats. On the
24 h nsr001 Holter record about 1 % of the beats leave the short path.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

import numpy as np

from vagus.core.events import Beat, _BeatTwin, _new_beat
from vagus.exceptions import InvalidInput

__all__ = ["Lipponen2019", "check_corrector_params", "correct_rr", "starts_new_level"]

#: What :meth:`Lipponen2019.push` returns when it decides no beat (one shared tuple).
_NO_BEATS: tuple[Beat, ...] = ()

#: Lower bound of Th1 as a fraction of medRR: a change of RR by less than this is never
#: an artifact (protects quantised and very regular series; injected artifacts are >= 20 %).
TH1_FLOOR_FRACTION = 0.12
#: Lower bound of Th2 as a fraction of medRR.
TH2_FLOOR_FRACTION = 0.04
#: While a threshold window holds fewer values than this, Th >= TH_PRIOR_FRACTION * medRR.
WARMUP_VALUES = 16
TH_PRIOR_FRACTION = 0.10
#: The missed/extra tests accept a deviation of Th2 clamped to these fractions of medRR.
MS_TOL_MIN_FRACTION = 0.10
MS_TOL_MAX_FRACTION = 0.25
#: A single beat classified ectopic (zig-zag centred on it) must deviate at least this
#: fraction of medRR from its local reference.
ECTOPIC_MIN_FRACTION = 0.15
#: A beat classified long/short must deviate at least this fraction of medRR from its
#: local reference (physiological 1-2 beat surges of 15-25 % are common at rest).
LONG_SHORT_MIN_FRACTION = 0.30
#: A beat deviating this fraction of medRR from its local reference is tested for the
#: ectopic patterns even when |dRR| <= Th1 (Th1 is huge during slow deep breathing).
ECTOPIC_ENTRY_FRACTION = 0.30
#: Two successive intervals both shorter than this fraction of the local interval are
#: tested for an extra beat even when |dRR| <= Th1.
EXTRA_SHORT_FRACTION = 0.70
#: RR_j starts a new level (a sustained change of heart rate, never an artifact) when
#: RR_j+1 and RR_j+2 both lie on its side of medRR, at least this fraction of the way
#: from medRR to RR_j.
LEVEL_FRACTION = 0.60
#: ... and the three agree with each other: max - min <= this fraction of the smallest
#: (a level with the RSA of slow deep breathing, +-25 %, passes; an extra beat's two
#: parts followed by a third interval, as an optical sensor gives them, do not).
LEVEL_SPREAD_FRACTION = 0.50
#: The sorted copies of the Th1/Th2 windows, when they lag behind the windows by at most
#: this many values, are brought up to date value by value (a ``bisect`` deletion and
#: insertion each, about a seventh of a sort of 91 values); otherwise they are re-sorted.
CATCH_UP_VALUES = 6


def _quartile_pos(n: int) -> tuple[int, float, int, float]:
    """Index and fraction of the 25th and 75th percentiles of ``n`` sorted values
    (linear interpolation, as ``numpy.percentile``). A threshold is
    ``Th = max(alpha * IQR / 2, floor)`` with the floor and warm-up prior of the module doc.
    """
    pos = 0.25 * (n - 1)
    i1 = int(pos)
    pos3 = 0.75 * (n - 1)
    i3 = int(pos3)
    return i1, pos - i1, i3, pos3 - i3


#: _quartile_pos(n) for window sizes up to 1024 (the corrector's windows are smaller).
_QUARTILE_POS = [_quartile_pos(n) for n in range(1025)]


def check_corrector_params(
    alpha: float, window_beats: int, median_beats: int, min_rr_ms: float, max_rr_ms: float
) -> None:
    """Check the corrector's parameters (:class:`Lipponen2019` and the batch path's
    :class:`~vagus.core.batch.BatchCorrector` take the same).

    Raises:
        InvalidInput: a parameter out of range, named with the paper's value.
    """
    if not alpha > 0:
        raise InvalidInput(f"alpha must be > 0 (the paper uses 5.2), got {alpha!r}")
    if not 4 <= window_beats < len(_QUARTILE_POS):
        raise InvalidInput(
            f"window_beats must be 4-{len(_QUARTILE_POS) - 1} (the paper uses 91), "
            f"got {window_beats!r}"
        )
    if median_beats < 4:
        raise InvalidInput(f"median_beats must be >= 4 (the paper uses 11), got {median_beats!r}")
    if not 0 < min_rr_ms < max_rr_ms:
        raise InvalidInput(
            f"need 0 < min_rr_ms < max_rr_ms (e.g. 250 and 2500), "
            f"got {min_rr_ms!r} and {max_rr_ms!r}"
        )


def starts_new_level(r0: float, r1: float, r2: float, med: float) -> bool:
    """Rule 2 of the corrector (SCIENCE.md "Artifacts (real time)"): RR_j = ``r0`` starts a
    new level of heart rate rather than being an artifact when it and its two measured
    successors ``r1``, ``r2`` agree with each other (spread at most
    :data:`LEVEL_SPREAD_FRACTION` of the smallest) and both successors lie on RR_j's side
    of medRR ``med``, at least :data:`LEVEL_FRACTION` of the way from medRR to RR_j
    (``(r_k - med)·(r0 - med) ≥ LEVEL_FRACTION·(r0 - med)²``). The live corrector and the
    batch path (:mod:`vagus.core.batch`) both decide with this one function."""
    lvl_lo = r0 if r0 < r1 else r1
    if r2 < lvl_lo:
        lvl_lo = r2
    lvl_hi = r0 if r0 > r1 else r1
    if r2 > lvl_hi:
        lvl_hi = r2
    if lvl_hi - lvl_lo > LEVEL_SPREAD_FRACTION * lvl_lo:
        return False
    dm = r0 - med
    need = LEVEL_FRACTION * dm * dm
    return not ((r1 - med) * dm < need or (r2 - med) * dm < need)


def _median3(a: float, b: float, c: float) -> float:
    """Median of three numbers."""
    if a > b:
        a, b = b, a
    return b if c > b else (a if c < a else c)


class Lipponen2019:
    """Causal Lipponen & Tarvainen 2019 classifier/corrector with a two-beat decision delay.

    Feed measured beats with :meth:`push` (beat time in s, RR in ms); it returns the
    beats decided by that push, each a :class:`~vagus.core.events.Beat` with its class
    (``None`` or one of ``"ectopic", "missed", "extra", "long", "short", "range"``) and
    corrected ``nn_ms``. Every pushed beat comes out exactly once, in order; a ``missed``
    beat is preceded by one inserted Beat. Call :meth:`flush` at the end of input or at a
    gap in the beat chain. Algorithm, windows and deviations from the paper: module doc.

    Args:
        alpha: threshold factor (Th = alpha * IQR / 2), 5.2 in the paper.
        c1, c2: slope and offset of the ectopic region (0.13, 0.17 in the paper).
        window_beats: beats in the rolling Th1/Th2 windows (91).
        median_beats: beats in the mRR median: the ``median_beats - 3`` most recent
            measured RR plus the beat under test and its two successors (11); measured,
            never corrected, values, so a sustained change of rate can not lock in.
        min_rr_ms, max_rr_ms: physiological range; outside it a beat is ``"range"``.
    """

    __slots__ = (
        "_alpha",
        "_c1",
        "_c2",
        "_d_sorted",
        "_d_vals",
        "_force_ectopic",
        "_hist",
        "_hist_len",
        "_m_sorted",
        "_m_vals",
        "_max_rr",
        "_min_rr",
        "_pend_rr",
        "_pend_t",
        "_prev_d",
        "_prev_nn",
        "_sorted_n",
        "_vals_base",
        "_vals_cap",
        "_window",
    )

    def __init__(
        self,
        *,
        alpha: float = 5.2,
        c1: float = 0.13,
        c2: float = 0.17,
        window_beats: int = 91,
        median_beats: int = 11,
        min_rr_ms: float = 250.0,
        max_rr_ms: float = 2500.0,
    ) -> None:
        check_corrector_params(alpha, window_beats, median_beats, min_rr_ms, max_rr_ms)
        self._alpha = float(alpha)
        self._c1 = float(c1)
        self._c2 = float(c2)
        self._window = int(window_beats)
        self._min_rr = float(min_rr_ms)
        self._max_rr = float(max_rr_ms)
        # Pending (undecided) beats: at most 3 (j, j+1, j+2).
        self._pend_t: list[float] = []
        self._pend_rr: list[float] = []
        # The last (at most _hist_len) measured in-range RR of the current segment's
        # decided beats, oldest first, for medRR. Never the corrected NN: a median of the
        # corrector's own output locks in (module doc).
        self._hist: list[float] = []
        self._hist_len = int(median_beats) - 3
        self._prev_nn: float | None = None  # NN_j-1 (corrected), None at a segment start
        self._prev_d = 0.0  # NN_j-1 - NN_j-2 (corrected)
        self._force_ectopic = False  # next beat is the second of an ectopic pair
        # Rolling windows of |dRR| and |mRR| (ms). _d_vals/_m_vals: the values in order
        # (FIFOs; the window is their last `window_beats` values; up to CATCH_UP_VALUES
        # expired ones are kept before them for the catch-up). _vals_base: how many values
        # were trimmed off their front. _d_sorted/_m_sorted: the window, sorted, as it was
        # when _sorted_n values had been appended (see _sync_windows).
        self._d_vals: list[float] = []
        self._m_vals: list[float] = []
        self._vals_base = 0
        self._vals_cap = 2 * self._window + CATCH_UP_VALUES
        self._d_sorted: list[float] = []
        self._m_sorted: list[float] = []
        self._sorted_n = 0

    # ------------------------------------------------------------------ public API

    @property
    def max_rr_ms(self) -> float:
        """Upper end of the physiological RR range (ms); longer intervals are ``"range"``."""
        return self._max_rr

    def push(self, t_s: float, rr_ms: float) -> tuple[Beat, ...]:
        """Feed one measured beat (its time and RR). Returns the beats decided now (0..n),
        in time order, as a tuple (one shared empty tuple when none is decided); beat j is
        decided at the latest when beat j+2 has been pushed.

        A beat that is certainly normal (all three pending RR in range and none of the
        entry tests holding even at the lowest Th1: module doc, "Cost") is decided here
        without thresholds; every other one by the full rules (:meth:`_decide`).
        """
        pt = self._pend_t
        pr = self._pend_rr
        pt.append(float(t_s))
        pr.append(float(rr_ms))
        if len(pr) < 3:
            return _NO_BEATS
        r0, r1, r2 = pr
        lo = self._min_rr
        hi = self._max_rr
        if lo <= r0 <= hi and lo <= r1 <= hi and lo <= r2 <= hi and not self._force_ectopic:
            # medRR of the 8 decided in-range RR and the 3 pending ones (all in range).
            hist = self._hist
            vals = hist + pr
            vals.sort()
            k = len(vals)
            h = k >> 1
            med = vals[h] if k & 1 else 0.5 * (vals[h - 1] + vals[h])
            prev_nn = self._prev_nn
            prev = med if prev_nn is None else prev_nn
            d0 = r0 - prev
            abs_d = d0 if d0 >= 0.0 else -d0
            # |dRR_j| <= the lowest Th1 (its floor), so |D_j| <= 1: not strong.
            if abs_d <= TH1_FLOOR_FRACTION * med:
                # ref_m = median(NN_j-1, RR_j+1, medRR), as _median3.
                if prev > r1:
                    a = r1
                    b = prev
                else:
                    a = prev
                    b = r1
                ref_m = b if med > b else (a if med < a else med)
                dev = r0 - ref_m
                if dev < 0.0:
                    dev = -dev
                short = EXTRA_SHORT_FRACTION * med
                if dev <= ECTOPIC_ENTRY_FRACTION * med and not (r0 < short and r1 < short):
                    # Not examined: normal. Its |dRR| and |mRR| join the windows' FIFOs.
                    m0 = r0 - med
                    if m0 < 0.0:
                        m0 = -2.0 * m0
                    d_vals = self._d_vals
                    d_vals.append(abs_d)
                    self._m_vals.append(m0)
                    if len(d_vals) > self._vals_cap:
                        self._trim_windows()
                    hist.append(r0)
                    if len(hist) > self._hist_len:
                        del hist[0]
                    self._prev_d = 0.0 if prev_nn is None else r0 - prev_nn
                    self._prev_nn = r0
                    t0 = pt[0]
                    del pt[0]
                    del pr[0]
                    # _new_beat(t0, r0, None, r0), inlined (events._BeatTwin).
                    beat = _BeatTwin()
                    beat.t_s = t0
                    beat.rr_ms = r0
                    beat.artifact = None
                    beat.nn_ms = r0
                    beat.inserted = False
                    beat.__class__ = Beat
                    return (beat,)
        out: list[Beat] = []
        self._decide(out)
        return tuple(out)

    def flush(self) -> tuple[Beat, ...]:
        """Decide every pending beat with the data available (end of input or a gap in the
        chain); returns them in time order, as a tuple. After flush the next push starts
        a new segment: no dRR is taken across it and the median history is reset; the
        Th1/Th2 windows are kept (see module doc)."""
        out: list[Beat] = []
        while self._pend_rr:
            self._decide(out)
        self._hist.clear()
        self._prev_nn = None
        self._prev_d = 0.0
        self._force_ectopic = False
        return tuple(out)

    # ------------------------------------------------------------------ internals

    def _accept(self, nn: float) -> None:
        """Make ``nn`` the previous corrected NN (for dRR)."""
        prev = self._prev_nn
        self._prev_d = 0.0 if prev is None else nn - prev
        self._prev_nn = nn

    def _remember(self, rr: float) -> None:
        """Add a decided beat's measured in-range RR to the median history (the last
        ``median_beats - 3`` are kept)."""
        hist = self._hist
        hist.append(rr)
        if len(hist) > self._hist_len:
            del hist[0]

    def _trim_windows(self) -> None:
        """Drop the values before the last ``window_beats + CATCH_UP_VALUES`` from the
        windows' FIFOs (called when they exceed ``_vals_cap``: a trim every
        ``window_beats`` values, not one deletion per value)."""
        excess = len(self._d_vals) - self._window - CATCH_UP_VALUES
        del self._d_vals[:excess]
        del self._m_vals[:excess]
        self._vals_base += excess

    def _sync_windows(self) -> None:
        """Bring the windows' sorted copies up to date with their FIFOs.

        ``n`` values have been appended in all, the sorted copies hold the window as it
        was after ``_sorted_n`` of them. A lag of at most :data:`CATCH_UP_VALUES` values
        is caught up value by value, as a window kept sorted on every beat would have
        been (the oldest value leaves a full window, the new one is inserted); the
        values that left are still in the FIFOs (:meth:`_trim_windows` keeps
        ``CATCH_UP_VALUES`` before the window). A longer lag re-sorts the window. Either
        way the sorted copies hold exactly the window's values, in order.
        """
        d_vals = self._d_vals
        base = self._vals_base
        n = base + len(d_vals)
        done = self._sorted_n
        if n == done:
            return
        w = self._window
        if n - done <= CATCH_UP_VALUES:
            m_vals = self._m_vals
            d_sorted = self._d_sorted
            m_sorted = self._m_sorted
            for a in range(done, n):
                i = a - base
                if a >= w:  # the window was full: its oldest value leaves
                    del d_sorted[bisect_left(d_sorted, d_vals[i - w])]
                    del m_sorted[bisect_left(m_sorted, m_vals[i - w])]
                insort(d_sorted, d_vals[i])
                insort(m_sorted, m_vals[i])
        else:
            self._d_sorted = d_vals[-w:]
            self._d_sorted.sort()
            self._m_sorted = self._m_vals[-w:]
            self._m_sorted.sort()
        self._sorted_n = n

    def _decide(self, out: list[Beat]) -> None:
        """Decide the oldest pending beat (and its merge partner) and emit it into ``out``."""
        pt = self._pend_t
        pr = self._pend_rr
        n_pend = len(pr)
        lo = self._min_rr
        hi = self._max_rr
        t0 = pt[0]
        r0 = pr[0]
        has1 = n_pend > 1
        has2 = n_pend > 2
        r1 = pr[1] if has1 else 0.0
        r2 = pr[2] if has2 else 0.0
        ok0 = lo <= r0 <= hi
        ok1 = has1 and lo <= r1 <= hi
        ok2 = has2 and lo <= r2 <= hi

        # medRR: measured in-range RR of this segment, 8 decided + RR_j, RR_j+1, RR_j+2.
        if ok0 and ok1 and ok2:
            vals = [*self._hist, r0, r1, r2]
        else:
            vals = list(self._hist)
            if ok0:
                vals.append(r0)
            if ok1:
                vals.append(r1)
            if ok2:
                vals.append(r2)
        if not vals:  # only possible when RR_j itself is out of range
            self._decide_range(out, t0, r0, has1, r1, ok1, self._prev_nn)
            return
        vals.sort()
        k = len(vals)
        h = k >> 1
        med = vals[h] if k & 1 else 0.5 * (vals[h - 1] + vals[h])
        if not ok0:
            self._decide_range(out, t0, r0, has1, r1, ok1, med)
            return

        # A too-short successor that belongs to this beat: merge it backward when that
        # gives an interval closer to medRR than RR_j alone and than merging it forward.
        if has1 and 0.0 <= r1 < lo:
            s = r0 + r1
            if lo <= s <= hi and abs(s - med) < abs(r0 - med):
                fwd = r1 + r2
                if not has2 or not lo <= fwd <= hi or abs(s - med) <= abs(fwd - med):
                    self._force_ectopic = False
                    out.append(_new_beat(t0, r0, "extra", s))
                    out.append(_new_beat(pt[1], r1, "range", None))
                    self._accept(s)
                    self._remember(r0)
                    del pt[:2]
                    del pr[:2]
                    return

        # Features (ms). Out-of-range future values are replaced by medRR.
        prev = self._prev_nn if self._prev_nn is not None else med
        f1 = r1 if ok1 else med
        f2 = r2 if ok2 else med
        d0 = r0 - prev
        m0 = r0 - med
        neg_m = m0 < 0.0
        if neg_m:
            m0 = -2.0 * m0  # |mRR|, negative values doubled
        # Th1, Th2 = max(alpha * IQR / 2, floor) of both windows (they always hold the
        # same number of values), with the quartile positions from a table.
        self._sync_windows()
        d_sorted = self._d_sorted
        m_sorted = self._m_sorted
        n_win = len(d_sorted)
        if n_win >= 2:
            i1, w1, i3, w3 = _QUARTILE_POS[n_win]
            q1 = d_sorted[i1]
            q3 = d_sorted[i3]
            if w1:
                q1 += (d_sorted[i1 + 1] - q1) * w1
            if w3:
                q3 += (d_sorted[i3 + 1] - q3) * w3
            th1 = self._alpha * (q3 - q1) * 0.5
            q1 = m_sorted[i1]
            q3 = m_sorted[i3]
            if w1:
                q1 += (m_sorted[i1 + 1] - q1) * w1
            if w3:
                q3 += (m_sorted[i3 + 1] - q3) * w3
            th2 = self._alpha * (q3 - q1) * 0.5
        else:
            th1 = th2 = 0.0
        if n_win < WARMUP_VALUES:
            floor1 = max(TH1_FLOOR_FRACTION, TH_PRIOR_FRACTION) * med
            floor2 = max(TH2_FLOOR_FRACTION, TH_PRIOR_FRACTION) * med
        else:
            floor1 = TH1_FLOOR_FRACTION * med
            floor2 = TH2_FLOOR_FRACTION * med
        if th1 < floor1:
            th1 = floor1
        if th2 < floor2:
            th2 = floor2
        # Remember |dRR| and |mRR| after the thresholds (they use the past only), in the
        # FIFOs; the sorted copies catch up when next needed (_sync_windows).
        self._d_vals.append(d0 if d0 >= 0.0 else -d0)
        self._m_vals.append(m0)
        if len(self._d_vals) > self._vals_cap:
            self._trim_windows()

        cls: str | None = None
        dd0 = d0 / th1
        ref_m = _median3(prev, f1, med)  # what RR_j should be
        dev = r0 - ref_m
        if dev < 0.0:
            dev = -dev
        strong = dd0 > 1.0 or dd0 < -1.0  # the paper's entry test
        examine = False
        if self._force_ectopic:
            # Second beat of an ectopic pair found while deciding the first one.
            self._force_ectopic = False
            cls = "ectopic"
        elif (
            strong
            or dev > ECTOPIC_ENTRY_FRACTION * med
            or (ok1 and r0 < EXTRA_SHORT_FRACTION * med and r1 < EXTRA_SHORT_FRACTION * med)
        ):
            # Rule 2: RR_j starts a new level (the three agree with each other, and both
            # measured successors lie on RR_j's side of medRR, at least LEVEL_FRACTION of
            # the way from medRR to RR_j): a change of heart rate, followed at once.
            examine = not (ok2 and starts_new_level(r0, r1, r2, med))
        if examine:
            c1 = self._c1
            c2 = self._c2
            dd1 = (f1 - r0) / th1 if has1 else 0.0
            dd2 = (f2 - f1) / th1 if has2 else 0.0
            ddm1 = self._prev_d / th1
            ref_e = _median3(prev, f2, med)  # what RR_j + RR_j+1 should be
            tol = th2
            if tol < MS_TOL_MIN_FRACTION * med:
                tol = MS_TOL_MIN_FRACTION * med
            elif tol > MS_TOL_MAX_FRACTION * med:
                tol = MS_TOL_MAX_FRACTION * med
            # Missed: a jump up to about twice the local interval -> split in two.
            if dd0 > 1.0 and abs(0.5 * r0 - ref_m) < tol:
                half = 0.5 * r0
                out.append(_new_beat(t0 - half / 1000.0, r0, "missed", half, True))
                out.append(_new_beat(t0, r0, "missed", half))
                self._accept(half)
                self._accept(half)
                self._remember(r0)
                del pt[0]
                del pr[0]
                return
            # Extra: a drop (or two short intervals), and RR_j + RR_j+1 make one local
            # interval -> merge.
            s = r0 + r1
            if (
                ok1
                and (
                    dd0 < -1.0
                    or (r0 < EXTRA_SHORT_FRACTION * ref_e and r1 < EXTRA_SHORT_FRACTION * ref_e)
                )
                and s <= hi
                and abs(s - ref_e) < tol
            ):
                out.append(_new_beat(t0, r0, "extra", None))
                out.append(_new_beat(pt[1], r1, "extra", s))
                self._accept(s)
                self._remember(r0)
                self._remember(r1)
                del pt[:2]
                del pr[:2]
                return
            if d0 > 0.0:
                centred = max(ddm1, dd1) < -c1 * dd0 - c2
            else:
                centred = min(ddm1, dd1) > -c1 * dd0 + c2
            if centred and dev > ECTOPIC_MIN_FRACTION * med:
                cls = "ectopic"
            elif (
                ok1
                and has2
                and (strong or dev > ECTOPIC_ENTRY_FRACTION * med)
                and (
                    (dd1 > 1.0 and max(dd0, dd2) < -c1 * dd1 - c2)
                    or (dd1 < -1.0 and min(dd0, dd2) > -c1 * dd1 + c2)
                )
                and abs(dd0) < abs(dd1)
                and abs(dd2) < abs(dd1)
                and abs(0.5 * f1 - ref_e) >= tol
                and abs(f1 + f2 - med) >= tol
            ):
                # Ectopic pair (j, j+1): RR_j+1 is the centre of the zig-zag and is
                # neither a missed beat nor the first part of an extra one.
                cls = "ectopic"
                self._force_ectopic = True
            elif strong:
                big_m = m0 > 3.0 * th2
                if dd0 > 0.0:
                    pattern = (has1 and dd1 < -1.0) or (big_m and not neg_m)
                else:
                    pattern = (has1 and max(dd1, dd2) > 1.0) or (big_m and neg_m)
                if pattern and dev > LONG_SHORT_MIN_FRACTION * med:
                    cls = "long" if dd0 > 0.0 else "short"

        if cls is None:
            out.append(_new_beat(t0, r0, None, r0))
            # self._accept(r0), inlined: the path of almost every beat.
            self._prev_d = 0.0 if self._prev_nn is None else r0 - self._prev_nn
            self._prev_nn = r0
            self._remember(r0)
        else:
            # Linear interpolation between NN_j-1 and the next plausible interval.
            nn = 0.5 * (prev + _median3(f1, f2, med))
            out.append(_new_beat(t0, r0, cls, nn))
            self._accept(nn)
            self._remember(r0)
        del pt[0]
        del pr[0]

    def _decide_range(
        self,
        out: list[Beat],
        t0: float,
        r0: float,
        has1: bool,
        r1: float,
        ok1: bool,
        med: float | None,
    ) -> None:
        """Beat j is outside the physiological range: merge it forward or drop its NN."""
        pt = self._pend_t
        pr = self._pend_rr
        self._force_ectopic = False
        lo = self._min_rr
        if has1 and 0.0 <= r0 < lo and med is not None:
            s = r0 + r1
            if lo <= s <= self._max_rr and (not ok1 or abs(s - med) < abs(r1 - med)):
                out.append(_new_beat(t0, r0, "range", None))
                out.append(_new_beat(pt[1], r1, "extra" if ok1 else "range", s))
                self._accept(s)
                if ok1:
                    self._remember(r1)
                del pt[:2]
                del pr[:2]
                return
        out.append(_new_beat(t0, r0, "range", None))
        del pt[0]
        del pr[0]


def correct_rr(rr_ms: Sequence[float] | np.ndarray) -> tuple[list[str | None], np.ndarray]:
    """Offline helper running the same causal corrector over a whole RR array (one segment).

    Beat times are the cumulative sum of the RR values (s). Returns ``(classes, nn_ms)``:
    the class of every input beat (``None`` = normal), and the corrected NN intervals in
    time order (ms; inserted halves of missed beats included, beats with ``nn_ms=None``
    left out), as a float array.
    """
    rr = np.asarray(rr_ms, dtype=float).ravel()
    corrector = Lipponen2019()
    classes: list[str | None] = []
    nn: list[float] = []
    t = 0.0
    beats: list[Beat] = []
    for value in rr.tolist():
        t += value / 1000.0
        beats.extend(corrector.push(t, value))
    beats.extend(corrector.flush())
    for beat in beats:
        if not beat.inserted:
            classes.append(beat.artifact)
        if beat.nn_ms is not None:
            nn.append(beat.nn_ms)
    return classes, np.asarray(nn, dtype=float)
