"""Whole-file (batch) path: the live pipeline's beats and spectra for RR lists, with numpy.

``vagus analyze`` of a plain RR list does not need the pipeline's per-beat ``Metrics``
events, only the corrected beats and the spectra (coherence ratio and peak frequency)
at the pipeline's spectrum times. This module computes exactly those, block by block,
and gives the **same values** as :class:`vagus.core.pipeline.Pipeline` fed with the
same RR values (``tests/test_batch_equivalence.py`` compares them bit for bit).

:class:`BatchCorrector` is the causal corrector of :mod:`vagus.core.artifacts`
(Lipponen & Tarvainen 2019 with a two-beat decision delay; SCIENCE.md "Artifacts (real
time)") rewritten for blocks of beats. What a decision of beat ``j`` depends on:

- ``medRR``: the median of the *measured* in-range RR of the beats ``j-8 .. j+2`` of the
  segment (the last 8 in-range measured values before ``j`` plus the in-range ones of
  ``RR_j, RR_j+1, RR_j+2``). It never depends on a correction, so it is computed for a
  whole block at once: a median of 11 over a sliding window of the in-range values
  (``numpy.lib.stride_tricks.sliding_window_view`` and ``np.partition``), shorter windows
  (segment starts, out-of-range neighbours) one by one.
- ``dRR_j = RR_j - NN_j-1`` and the Th1/Th2 windows (the last 91 values of ``|dRR|``
  and ``|mRR|``) depend on earlier corrections. They are the only sequential part.

The shortcut: a beat ``j`` whose predecessor was accepted unchanged (``NN_j-1 = RR_j-1``)
is certainly normal when ``RR_j`` and ``RR_j+1`` are in range, ``|RR_j - RR_j-1| <=
0.12 medRR`` (Th1 is never below 12 % of medRR, so ``|dRR / Th1| <= 1``: not "strong"),
``|RR_j - median(RR_j-1, RR_j+1, medRR)| <= 0.3 medRR`` and not both ``RR_j`` and
``RR_j+1`` are below 70 % of medRR: none of the corrector's entry tests then holds,
whatever the thresholds (module doc of :mod:`vagus.core.artifacts`). These tests need no
threshold, so they are evaluated for the whole block with numpy; a run of such beats is
accepted at once (their ``|dRR|`` and ``|mRR|`` join the windows as a slice).

For the other beats, Th1 and Th2 are computed with numpy from the *speculative* windows
(the values the 91 beats before would have added, each accepted unchanged: exact
quartiles of a sorted copy, the same interpolation and floors), and the corrector's
whole decision (entry test, rule 2, missed, extra, ectopic, ectopic pair, long/short) is
evaluated with them, element-wise with the same float operations. Those thresholds hold
as long as every beat since the block start, or for the last 91 beats, added exactly its
speculative values; a beat that did not (an artifact, the beat after it, a segment start)
makes the next 91 beats take their thresholds from the actual windows. So only the
artifacts and, after each, the beats whose shortcut test fails are decided one at a time,
by the same rules as :meth:`Lipponen2019._decide <vagus.core.artifacts.Lipponen2019>`
(about 1.5 % of the beats of ``vagus bench import``'s file, which has 0.2 % artifacts).

:class:`BatchPipeline` puts the beats on the timeline as :meth:`Pipeline.receive_rr
<vagus.core.pipeline.Pipeline.receive_rr>` does for cumulative input (``t = t + RR``, in
the same order of float additions), breaks the chain at values above ``max_rr_ms`` (an
``"rr_out_of_range"`` gap, a new segment) and computes the coherence spectra at the
pipeline's spectrum times, from the same segment history (SCIENCE.md "Coherence
ratio"; :mod:`vagus.core.spectrum`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from vagus.core.artifacts import (
    ECTOPIC_ENTRY_FRACTION,
    ECTOPIC_MIN_FRACTION,
    EXTRA_SHORT_FRACTION,
    LEVEL_FRACTION,
    LEVEL_SPREAD_FRACTION,
    LONG_SHORT_MIN_FRACTION,
    MS_TOL_MAX_FRACTION,
    MS_TOL_MIN_FRACTION,
    TH1_FLOOR_FRACTION,
    TH2_FLOOR_FRACTION,
    TH_PRIOR_FRACTION,
    WARMUP_VALUES,
    check_corrector_params,
    starts_new_level,
)
from vagus.core.events import Beat
from vagus.core.spectrum import COHERENCE_WINDOW_S, WELCH_WINDOW_S, _coherence_values
from vagus.exceptions import InvalidInput

__all__ = [
    "ARTIFACT_CODES",
    "BatchCorrector",
    "BatchPipeline",
    "BatchResults",
    "BeatArrays",
    "SpectrumArrays",
]

FloatArray = npt.NDArray[np.float64]

#: Artifact class of each code in :attr:`BeatArrays.artifact` (0: a normal beat).
ARTIFACT_CODES: tuple[str | None, ...] = (
    None,
    "ectopic",
    "missed",
    "extra",
    "long",
    "short",
    "range",
)
_ECTOPIC, _MISSED, _EXTRA, _LONG, _SHORT, _RANGE = 1, 2, 3, 4, 5, 6

#: The pipeline's spectrum history: NN beats kept (its ``_HIST_CAPACITY``) and how much
#: beat time survives a trim (the Welch window, the spline's context, one interval).
HIST_CAPACITY = 2048
HIST_KEEP_S = max(WELCH_WINDOW_S, COHERENCE_WINDOW_S) + 60.0


def _quartile_pos(n: int) -> tuple[int, float, int, float]:
    """Index and fraction of the 25th and 75th percentiles of ``n`` sorted values (linear
    interpolation, as ``numpy.percentile`` and the live corrector)."""
    pos = 0.25 * (n - 1)
    i1 = int(pos)
    pos3 = 0.75 * (n - 1)
    i3 = int(pos3)
    return i1, pos - i1, i3, pos3 - i3


def _median3(a: float, b: float, c: float) -> float:
    """Median of three numbers."""
    if a > b:
        a, b = b, a
    return b if c > b else (a if c < a else c)


def _median3_arr(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """Element-wise median of three arrays (the same values as :func:`_median3`)."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _median_list(vals: list[float]) -> float:
    """Median of a non-empty list, as the live corrector takes it (mean of the middle two
    for an even count)."""
    vals = sorted(vals)
    k = len(vals)
    h = k >> 1
    return vals[h] if k & 1 else 0.5 * (vals[h - 1] + vals[h])


@dataclass(frozen=True, slots=True)
class BeatArrays:
    """Decided beats, in time order, as arrays (the fields of
    :class:`~vagus.core.events.Beat`).

    Attributes:
        t_s: beat time (s).
        rr_ms: measured RR (ms).
        nn_ms: corrected NN (ms); NaN where the Beat's ``nn_ms`` is None.
        artifact: class code, an index into :data:`ARTIFACT_CODES` (0: normal).
        inserted: True for the beat inserted before a ``missed`` one.
        segment: the chain segment (a new one after every gap).
    """

    t_s: FloatArray
    rr_ms: FloatArray
    nn_ms: FloatArray
    artifact: npt.NDArray[np.int8]
    inserted: npt.NDArray[np.bool_]
    segment: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.t_s.size)

    def to_events(self) -> list[Beat]:
        """The beats as :class:`~vagus.core.events.Beat` events (small inputs, tests)."""
        out = []
        for t, rr, nn, a, ins in zip(
            self.t_s.tolist(),
            self.rr_ms.tolist(),
            self.nn_ms.tolist(),
            self.artifact.tolist(),
            self.inserted.tolist(),
            strict=True,
        ):
            out.append(Beat(t, rr, ARTIFACT_CODES[a], None if math.isnan(nn) else nn, ins))
        return out


def _empty_beats() -> BeatArrays:
    return BeatArrays(
        np.empty(0),
        np.empty(0),
        np.empty(0),
        np.empty(0, np.int8),
        np.empty(0, np.bool_),
        np.empty(0, np.int64),
    )


def _concat_beats(parts: list[BeatArrays]) -> BeatArrays:
    if not parts:
        return _empty_beats()
    if len(parts) == 1:
        return parts[0]
    return BeatArrays(
        np.concatenate([p.t_s for p in parts]),
        np.concatenate([p.rr_ms for p in parts]),
        np.concatenate([p.nn_ms for p in parts]),
        np.concatenate([p.artifact for p in parts]),
        np.concatenate([p.inserted for p in parts]),
        np.concatenate([p.segment for p in parts]),
    )


class BatchCorrector:
    """The causal Lipponen & Tarvainen 2019 corrector of
    :class:`~vagus.core.artifacts.Lipponen2019`, for blocks of beats (module doc).

    :meth:`push` takes the times and RR of the next beats of one segment (all in
    ``[min_rr_ms, max_rr_ms]`` or shorter: the pipeline never passes a longer one) and
    returns the beats decided, exactly those ``Lipponen2019.push`` would return beat by
    beat (beat ``j`` is decided once beat ``j + 2`` is known); :meth:`flush` ends the
    segment. Arguments: as :class:`~vagus.core.artifacts.Lipponen2019`.
    """

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
        self._median_beats = int(median_beats)
        self._min_rr = float(min_rr_ms)
        self._max_rr = float(max_rr_ms)
        self._qpos = [_quartile_pos(n) for n in range(self._window + 1)]
        # Undecided beats (at most 2 between calls).
        self._pend_t = np.empty(0)
        self._pend_rr = np.empty(0)
        # The segment's last median_beats - 3 in-range measured RR of decided beats.
        self._hist: list[float] = []
        self._prev_nn: float | None = None
        self._prev_d = 0.0
        self._force_ectopic = False
        # The Th1/Th2 windows: the last window_beats |dRR| and |mRR| (kept across segments).
        self._ent_d = np.empty(0)
        self._ent_m = np.empty(0)

    @property
    def max_rr_ms(self) -> float:
        """Upper end of the physiological RR range (ms)."""
        return self._max_rr

    def push(
        self,
        t_s: FloatArray,
        rr_ms: FloatArray,
        new_segments: npt.NDArray[np.intp] | None = None,
    ) -> BeatArrays:
        """Feed the next beats; returns the beats decided.

        Args:
            t_s, rr_ms: beat times (s) and RR (ms).
            new_segments: increasing indices into ``rr_ms`` where a new segment starts
                (a gap before that beat: as :meth:`flush` there). The returned beats'
                ``segment`` counts the segment starts before them in this call (0: the
                segment that was going on).
        """
        starts = np.asarray([] if new_segments is None else new_segments, dtype=np.intp)
        head = None
        if starts.size and starts[0] == 0:
            head = self.flush()
            starts = starts[1:]
        offset = 0 if head is None else 1
        n_pend = self._pend_rr.size
        tt = np.concatenate([self._pend_t, np.asarray(t_s, dtype=np.float64)])
        x = np.concatenate([self._pend_rr, np.asarray(rr_ms, dtype=np.float64)])
        if x.size < 3 and not starts.size:
            self._pend_t, self._pend_rr = tt, x
            out = _empty_beats()
        else:
            out = self._run(tt, x, final=False, starts=starts + n_pend)
            out.segment[:] += offset
        return out if head is None else _concat_beats([head, out])

    def flush(self) -> BeatArrays:
        """Decide the pending beats and end the segment (the windows are kept)."""
        out = (
            self._run(self._pend_t, self._pend_rr, final=True, starts=np.empty(0, np.intp))
            if self._pend_rr.size
            else None
        )
        self._pend_t = np.empty(0)
        self._pend_rr = np.empty(0)
        self._hist = []
        self._prev_nn = None
        self._prev_d = 0.0
        self._force_ectopic = False
        return out if out is not None else _empty_beats()

    # ------------------------------------------------------------------ internals

    def _medians(
        self, v: FloatArray, start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
    ) -> FloatArray:
        """Median of ``v[start:end]`` per row (NaN for an empty window)."""
        mb = self._median_beats
        k = end - start
        med = np.full(k.size, np.nan)
        full = k == mb
        if v.size >= mb and full.any():
            rows = sliding_window_view(v, mb)[start[full]]
            h = mb >> 1
            if mb & 1:
                med[full] = np.partition(rows, h, axis=1)[:, h]
            else:
                part = np.partition(rows, (h - 1, h), axis=1)
                med[full] = 0.5 * (part[:, h - 1] + part[:, h])
        other = np.flatnonzero(~full & (k > 0))
        if other.size:
            vl = v.tolist()
            for i, s, e in zip(
                other.tolist(), start[other].tolist(), end[other].tolist(), strict=True
            ):
                med[i] = _median_list(vl[s:e])
        return med

    def _spec_rows(
        self,
        x: FloatArray,
        ok: npt.NDArray[np.bool_],
        med_arr: FloatArray,
        rows: npt.NDArray[np.intp],
        src_d: FloatArray,
        src_m: FloatArray,
        offset: int,
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Thresholds and "certainly normal" flags of beats ``rows`` (each >= 2 and with
        both successors known), assuming every beat before each row from the window base
        on was accepted unchanged.

        The Th1/Th2 window of row ``j`` is ``src[j + offset - W : j + offset]`` (``W`` =
        window_beats; ``src`` = the actual values before the base, then the speculative
        ones; a row with fewer than ``W`` values before it gets NaN: the sequential path
        takes it). The flag is the corrector's decision (Lipponen2019._decide: entry test,
        rule 2, missed, extra, ectopic, ectopic pair, long/short) with ``NN_j-1 =
        RR_j-1`` and ``NN_j-1 - NN_j-2 = RR_j-1 - RR_j-2``: True when it finds no
        artifact (the same float operations, so the same outcome).
        """
        big_w = self._window
        th1 = np.full(rows.size, np.nan)
        th2 = np.full(rows.size, np.nan)
        normal = np.zeros(rows.size, dtype=np.bool_)
        pos = rows + offset - big_w
        have = pos >= 0
        if not have.any():
            return th1, th2, normal
        rows_h = rows[have]
        pos = pos[have]
        i1, w1, i3, w3 = self._qpos[big_w]
        med = med_arr[rows_h]
        ths = []
        for src, frac in ((src_d, TH1_FLOOR_FRACTION), (src_m, TH2_FLOOR_FRACTION)):
            srt = np.sort(sliding_window_view(src, big_w)[pos], axis=1)
            q1 = srt[:, i1]
            q3 = srt[:, i3]
            if w1:
                q1 = q1 + (srt[:, i1 + 1] - q1) * w1
            if w3:
                q3 = q3 + (srt[:, i3 + 1] - q3) * w3
            th = self._alpha * (q3 - q1) * 0.5
            floor = frac * med
            ths.append(np.where(th < floor, floor, th))
        t1, t2 = ths
        th1[have] = t1
        th2[have] = t2
        # The decision of each row under the speculative state, vectorised.
        lo = self._min_rr
        c1 = self._c1
        c2 = self._c2
        r0 = x[rows_h]
        prev = x[rows_h - 1]
        prev_d = prev - x[rows_h - 2]
        r1 = x[rows_h + 1]
        r2 = x[rows_h + 2]
        ok1 = ok[rows_h + 1]
        ok2 = ok[rows_h + 2]
        f1 = np.where(ok1, r1, med)
        f2 = np.where(ok2, r2, med)
        d0 = r0 - prev
        m0 = r0 - med
        neg_m = m0 < 0.0
        m0 = np.where(neg_m, -2.0 * m0, m0)
        dd0 = d0 / t1
        ref_m = _median3_arr(prev, f1, med)
        dev = np.abs(r0 - ref_m)
        strong = (dd0 > 1.0) | (dd0 < -1.0)
        short_m = EXTRA_SHORT_FRACTION * med
        entry = (
            strong | (dev > ECTOPIC_ENTRY_FRACTION * med) | (ok1 & (r0 < short_m) & (r1 < short_m))
        )
        lvl_lo = np.minimum(np.minimum(r0, r1), r2)
        lvl_hi = np.maximum(np.maximum(r0, r1), r2)
        dm = r0 - med
        need = LEVEL_FRACTION * dm * dm
        level = (
            ok2
            & (lvl_hi - lvl_lo <= LEVEL_SPREAD_FRACTION * lvl_lo)
            & ~(((r1 - med) * dm < need) | ((r2 - med) * dm < need))
        )
        examine = entry & ~level
        dd1 = (f1 - r0) / t1
        dd2 = (f2 - f1) / t1
        ddm1 = prev_d / t1
        ref_e = _median3_arr(prev, f2, med)
        tol_lo = MS_TOL_MIN_FRACTION * med
        tol_hi = MS_TOL_MAX_FRACTION * med
        tol = np.where(t2 < tol_lo, tol_lo, np.where(t2 > tol_hi, tol_hi, t2))
        missed = (dd0 > 1.0) & (np.abs(0.5 * r0 - ref_m) < tol)
        s = r0 + r1
        short_e = EXTRA_SHORT_FRACTION * ref_e
        extra = (
            ok1
            & ((dd0 < -1.0) | ((r0 < short_e) & (r1 < short_e)))
            & (s <= self._max_rr)
            & (np.abs(s - ref_e) < tol)
        )
        centred = np.where(
            d0 > 0.0,
            np.maximum(ddm1, dd1) < -c1 * dd0 - c2,
            np.minimum(ddm1, dd1) > -c1 * dd0 + c2,
        )
        ectopic = centred & (dev > ECTOPIC_MIN_FRACTION * med)
        abs_dd1 = np.abs(dd1)
        pair = (
            ok1
            & (strong | (dev > ECTOPIC_ENTRY_FRACTION * med))
            & (
                ((dd1 > 1.0) & (np.maximum(dd0, dd2) < -c1 * dd1 - c2))
                | ((dd1 < -1.0) & (np.minimum(dd0, dd2) > -c1 * dd1 + c2))
            )
            & (np.abs(dd0) < abs_dd1)
            & (np.abs(dd2) < abs_dd1)
            & (np.abs(0.5 * f1 - ref_e) >= tol)
            & (np.abs(f1 + f2 - med) >= tol)
        )
        big_m = m0 > 3.0 * t2
        pattern = np.where(
            dd0 > 0.0,
            (dd1 < -1.0) | (big_m & ~neg_m),
            (np.maximum(dd1, dd2) > 1.0) | (big_m & neg_m),
        )
        long_short = strong & pattern & (dev > LONG_SHORT_MIN_FRACTION * med)
        found = missed | extra | ectopic | pair | long_short
        # A too-short successor may be merged backward (before any threshold): not here.
        normal[have] = ok[rows_h] & ~(r1 < lo) & ~(examine & found)
        return th1, th2, normal

    def _run(
        self,
        tt_arr: FloatArray,
        x_arr: FloatArray,
        *,
        final: bool,
        starts: npt.NDArray[np.intp],
    ) -> BeatArrays:
        """Decide the beats of ``x_arr`` whose two successors are known (all if ``final``).

        ``starts``: indices (0 < i < len) where a new segment starts; every segment but
        the last is complete (its last beats decided as at a flush).
        """
        lo = self._min_rr
        hi = self._max_rr
        big_w = self._window
        L = int(x_arr.size)
        ok_arr = (x_arr >= lo) & (x_arr <= hi)
        hist = self._hist
        nh = len(hist)
        keep_hist = self._median_beats - 3
        v = np.concatenate([np.asarray(hist, dtype=np.float64), x_arr[ok_arr]])
        c = np.empty(L + 1, dtype=np.int64)
        c[0] = nh
        np.cumsum(ok_arr, out=c[1:])
        c[1:] += nh
        # Segments: beat j lies in [seg_start[j], seg_end[j]).
        bounds = np.concatenate([[0], starts, [L]]).astype(np.intp)
        n_seg = bounds.size - 1
        seg_of = np.repeat(np.arange(n_seg), np.diff(bounds))
        seg_start = bounds[seg_of]
        seg_end = bounds[seg_of + 1]
        last_start = int(bounds[-2])
        # Beats that may be decided now: 0 .. n_dec - 1 (two successors known).
        n_dec = L if final else max(last_start, L - 2)
        jj = np.arange(n_dec)
        # medRR: the segment's in-range values (the carried history is segment 0's).
        v_start = np.where(seg_of[:n_dec] == 0, 0, c[seg_start[:n_dec]])
        end = c[np.minimum(jj + 3, seg_end[:n_dec])]
        start = np.maximum(c[:n_dec] - keep_hist, v_start)
        med_arr = self._medians(v, start, end)
        # j-1 and j+2 in j's segment (for the shortcut), and j-2 (for the flags).
        idx_all = np.arange(L)
        inside = (idx_all - 1 >= seg_start) & (idx_all + 2 < seg_end)
        inside2 = inside & (idx_all - 2 >= seg_start)

        # Speculative window values of each beat: |dRR| with NN_j-1 = RR_j-1 (beat 0:
        # with the previous NN), and |mRR|.
        d_arr = np.full(L, np.nan)
        m_arr = np.full(L, np.nan)
        if L > 1:
            d_arr[1:] = np.abs(x_arr[1:] - x_arr[:-1])
        if self._prev_nn is not None:
            d_arr[0] = abs(float(x_arr[0]) - self._prev_nn)
        if n_dec:
            m0 = x_arr[:n_dec] - med_arr
            m_arr[:n_dec] = np.where(m0 < 0.0, -2.0 * m0, m0)

        # Beats certainly normal whatever the thresholds (module doc), for 1 .. L-3.
        trivial = np.zeros(L + 1, dtype=np.bool_)
        if L >= 4:
            r0 = x_arr[1 : L - 2]
            rp = x_arr[: L - 3]
            r1 = x_arr[2 : L - 1]
            med = med_arr[1 : L - 2]
            ref = _median3_arr(rp, r1, med)
            short = EXTRA_SHORT_FRACTION * med
            trivial[1 : L - 2] = (
                ok_arr[1 : L - 2]
                & ok_arr[2 : L - 1]
                & (np.abs(r0 - ref) <= ECTOPIC_ENTRY_FRACTION * med)
                & ~((r0 < short) & (r1 < short))
                & (d_arr[1 : L - 2] <= TH1_FLOOR_FRACTION * med)
                & inside[1 : L - 2]
            )
        arange = np.arange(L + 1)
        next_trivial = np.minimum.accumulate(np.where(trivial, L, arange)[::-1])[::-1]
        # Thresholds and "normal" flags of the other beats, from the speculative windows;
        # recomputed from the actual window values after any beat that did not add its
        # speculative values (``refresh``).
        cand = np.zeros(L, dtype=np.bool_)
        if L >= 5:
            cand[2 : L - 2] = ~trivial[2 : L - 2] & ok_arr[2 : L - 2] & inside2[2 : L - 2]
        th1_arr = np.full(L, np.nan)
        th2_arr = np.full(L, np.nan)
        normal = trivial.copy()
        ent0_d = self._ent_d
        ent0_m = self._ent_m
        rows = np.flatnonzero(cand)
        if rows.size:
            t1, t2, nrm = self._spec_rows(
                x_arr,
                ok_arr,
                med_arr,
                rows,
                np.concatenate([ent0_d, d_arr]),
                np.concatenate([ent0_m, m_arr]),
                ent0_d.size,
            )
            th1_arr[rows] = t1
            th2_arr[rows] = t2
            normal[rows] = nrm
        next_normal = np.minimum.accumulate(np.where(normal, L, arange)[::-1])[::-1]
        dx = np.zeros(L)
        if L > 2:
            dx[2:] = x_arr[1:-1] - x_arr[:-2]  # RR_j-1 - RR_j-2: the speculative NN_j-1 - NN_j-2

        # The windows' values: carried ones, then this call's (one per decided beat at most).
        n_ent = ent0_d.size
        eb_d = np.empty(n_ent + L + 1)
        eb_m = np.empty(n_ent + L + 1)
        eb_d[:n_ent] = ent0_d
        eb_m[:n_ent] = ent0_m

        # Outputs: at most two beats per input beat (a missed one is split).
        o_t = np.empty(2 * L)
        o_rr = np.empty(2 * L)
        o_nn = np.empty(2 * L)
        o_art = np.zeros(2 * L, dtype=np.int8)
        o_ins = np.zeros(2 * L, dtype=np.bool_)
        w = 0
        seg_marks: list[int] = []  # output index where each later segment starts

        prev_nn = self._prev_nn
        prev_d = self._prev_d
        force = self._force_ectopic
        alpha = self._alpha
        c1 = self._c1
        c2 = self._c2
        qpos = self._qpos
        nan = math.nan
        xi = x_arr.item
        ti = tt_arr.item
        oki = ok_arr.item
        medi = med_arr.item
        spec_entry = False  # the last decide() added the speculative values of its beat
        # Every beat decided from clean_from on added its speculative values to the
        # windows: th1_arr, th2_arr and ``normal`` (computed with the carried values and
        # the speculative ones) hold for beat p while clean_from is 0 (no exception yet)
        # or the window of p lies after it (p - window_beats >= clean_from). Elsewhere the
        # beats are decided one by one, with thresholds from the actual windows.
        clean_from = 0

        def emit(t: float, rr: float, nn: float, art: int, ins: bool) -> None:
            nonlocal w
            o_t[w] = t
            o_rr[w] = rr
            o_nn[w] = nn
            o_art[w] = art
            o_ins[w] = ins
            w += 1

        def accept(nn: float) -> None:
            nonlocal prev_nn, prev_d
            prev_d = 0.0 if prev_nn is None else nn - prev_nn
            prev_nn = nn

        def decide_range(
            p: int, t0: float, r0: float, has1: bool, r1: float, ok1: bool, med: float | None
        ) -> int:
            """Beat p is out of range: merge it forward or drop its NN (Lipponen2019)."""
            nonlocal force
            force = False
            if has1 and 0.0 <= r0 < lo and med is not None:
                s = r0 + r1
                if lo <= s <= hi and (not ok1 or abs(s - med) < abs(r1 - med)):
                    emit(t0, r0, nan, _RANGE, False)
                    emit(ti(p + 1), r1, s, _EXTRA if ok1 else _RANGE, False)
                    accept(s)
                    return p + 2
            emit(t0, r0, nan, _RANGE, False)
            return p + 1

        def decide(p: int) -> int:
            """Decide beat p (and its merge partner) as Lipponen2019._decide; next index."""
            nonlocal prev_nn, prev_d, force, spec_entry, n_ent
            spec_entry = False
            t0 = ti(p)
            r0 = xi(p)
            e = seg_end.item(p)
            has1 = p + 1 < e
            has2 = p + 2 < e
            r1 = xi(p + 1) if has1 else 0.0
            r2 = xi(p + 2) if has2 else 0.0
            ok0 = oki(p)
            ok1 = has1 and oki(p + 1)
            ok2 = has2 and oki(p + 2)
            med = medi(p)
            if med != med:  # no in-range value at all: only when RR_j is out of range
                return decide_range(p, t0, r0, has1, r1, ok1, prev_nn)
            if not ok0:
                return decide_range(p, t0, r0, has1, r1, ok1, med)
            if has1 and 0.0 <= r1 < lo:
                s = r0 + r1
                if lo <= s <= hi and abs(s - med) < abs(r0 - med):
                    fwd = r1 + r2
                    if not has2 or not lo <= fwd <= hi or abs(s - med) <= abs(fwd - med):
                        force = False
                        emit(t0, r0, s, _EXTRA, False)
                        emit(ti(p + 1), r1, nan, _RANGE, False)
                        accept(s)
                        return p + 2
            prev = prev_nn if prev_nn is not None else med
            f1 = r1 if ok1 else med
            f2 = r2 if ok2 else med
            d0 = r0 - prev
            m0 = r0 - med
            neg_m = m0 < 0.0
            if neg_m:
                m0 = -2.0 * m0
            th1 = th1_arr.item(p) if clean_from == 0 or p - big_w >= clean_from else nan
            if th1 == th1:  # precomputed, and the windows hold the values it assumed
                th2 = th2_arr.item(p)
            else:
                n_win = n_ent if n_ent < big_w else big_w
                if n_win >= 2:
                    sorted_d = sorted(eb_d[n_ent - n_win : n_ent].tolist())
                    sorted_m = sorted(eb_m[n_ent - n_win : n_ent].tolist())
                    i1, w1, i3, w3 = qpos[n_win]
                    q1 = sorted_d[i1]
                    q3 = sorted_d[i3]
                    if w1:
                        q1 += (sorted_d[i1 + 1] - q1) * w1
                    if w3:
                        q3 += (sorted_d[i3 + 1] - q3) * w3
                    th1 = alpha * (q3 - q1) * 0.5
                    q1 = sorted_m[i1]
                    q3 = sorted_m[i3]
                    if w1:
                        q1 += (sorted_m[i1 + 1] - q1) * w1
                    if w3:
                        q3 += (sorted_m[i3 + 1] - q3) * w3
                    th2 = alpha * (q3 - q1) * 0.5
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
            # This beat's |dRR| and |mRR| join the windows after its thresholds.
            abs_d = d0 if d0 >= 0.0 else -d0
            eb_d[n_ent] = abs_d
            eb_m[n_ent] = m0
            n_ent += 1
            spec_entry = abs_d == d_arr.item(p) and m0 == m_arr.item(p)

            cls = 0
            dd0 = d0 / th1
            ref_m = _median3(prev, f1, med)
            dev = r0 - ref_m
            if dev < 0.0:
                dev = -dev
            strong = dd0 > 1.0 or dd0 < -1.0
            examine = False
            if force:
                force = False
                cls = _ECTOPIC
            elif (
                strong
                or dev > ECTOPIC_ENTRY_FRACTION * med
                or (ok1 and r0 < EXTRA_SHORT_FRACTION * med and r1 < EXTRA_SHORT_FRACTION * med)
            ):
                examine = not (ok2 and starts_new_level(r0, r1, r2, med))
            if examine:
                dd1 = (f1 - r0) / th1 if has1 else 0.0
                dd2 = (f2 - f1) / th1 if has2 else 0.0
                ddm1 = prev_d / th1
                ref_e = _median3(prev, f2, med)
                tol = th2
                if tol < MS_TOL_MIN_FRACTION * med:
                    tol = MS_TOL_MIN_FRACTION * med
                elif tol > MS_TOL_MAX_FRACTION * med:
                    tol = MS_TOL_MAX_FRACTION * med
                if dd0 > 1.0 and abs(0.5 * r0 - ref_m) < tol:
                    half = 0.5 * r0
                    emit(t0 - half / 1000.0, r0, half, _MISSED, True)
                    emit(t0, r0, half, _MISSED, False)
                    accept(half)
                    accept(half)
                    return p + 1
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
                    emit(t0, r0, nan, _EXTRA, False)
                    emit(ti(p + 1), r1, s, _EXTRA, False)
                    accept(s)
                    return p + 2
                if d0 > 0.0:
                    centred = max(ddm1, dd1) < -c1 * dd0 - c2
                else:
                    centred = min(ddm1, dd1) > -c1 * dd0 + c2
                if centred and dev > ECTOPIC_MIN_FRACTION * med:
                    cls = _ECTOPIC
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
                    cls = _ECTOPIC
                    force = True
                elif strong:
                    big_m = m0 > 3.0 * th2
                    if dd0 > 0.0:
                        pattern = (has1 and dd1 < -1.0) or (big_m and not neg_m)
                    else:
                        pattern = (has1 and max(dd1, dd2) > 1.0) or (big_m and neg_m)
                    if pattern and dev > LONG_SHORT_MIN_FRACTION * med:
                        cls = _LONG if dd0 > 0.0 else _SHORT
            if cls == 0:
                emit(t0, r0, r0, 0, False)
                accept(r0)
            else:
                nn = 0.5 * (prev + _median3(f1, f2, med))
                emit(t0, r0, nn, cls, False)
                accept(nn)
            return p + 1

        p = 0
        k_next = 1  # the next segment
        nb = int(bounds[1]) if n_seg > 1 else -1  # where it starts
        while p < n_dec:
            if p == nb:
                # A new segment (the pipeline flushed the corrector at the gap): no dRR
                # across it, no ectopic pair; the medRR windows were cut above.
                prev_nn = None
                prev_d = 0.0
                force = False
                seg_marks.append(w)
                k_next += 1
                nb = int(bounds[k_next]) if k_next < n_seg else -1
            q = 0
            if not force and prev_nn is not None and prev_nn == xi(p - 1):
                if (
                    (clean_from == 0 or p - big_w >= clean_from)
                    and normal.item(p)
                    and (trivial.item(p) or prev_d == dx.item(p))
                ):
                    q = int(next_normal.item(p))
                elif trivial.item(p):
                    q = int(next_trivial.item(p))
            if q:
                # A run of normal beats: NN = RR; their |dRR|, |mRR| join the windows.
                if q > n_dec:
                    q = n_dec
                n = q - p
                o_t[w : w + n] = tt_arr[p:q]
                o_rr[w : w + n] = x_arr[p:q]
                o_nn[w : w + n] = x_arr[p:q]
                w += n
                eb_d[n_ent : n_ent + n] = d_arr[p:q]
                eb_m[n_ent : n_ent + n] = m_arr[p:q]
                n_ent += n
                prev_d = xi(q - 1) - xi(q - 2)
                prev_nn = xi(q - 1)
                p = q
            else:
                p_next = decide(p)
                if not (spec_entry and p_next == p + 1):
                    clean_from = p_next  # the windows now differ from the speculative ones
                p = p_next
        if p == nb:  # the pending beats start the last segment
            prev_nn = None
            prev_d = 0.0
            force = False
        k = min(n_ent, big_w)
        self._ent_d = eb_d[n_ent - k : n_ent].copy()
        self._ent_m = eb_m[n_ent - k : n_ent].copy()
        self._prev_nn = prev_nn
        self._prev_d = prev_d
        self._force_ectopic = force
        # The in-range measured RR of the beats decided so far (before p), for medRR.
        v_last = 0 if n_seg == 1 else int(c[last_start])
        self._hist = v[max(v_last, int(c[p]) - keep_hist) : int(c[p])].tolist()
        self._pend_t = tt_arr[p:].copy()
        self._pend_rr = x_arr[p:].copy()
        segment = np.searchsorted(
            np.asarray(seg_marks, dtype=np.int64), np.arange(w), side="right"
        ).astype(np.int64)
        return BeatArrays(
            o_t[:w].copy(),
            o_rr[:w].copy(),
            o_nn[:w].copy(),
            o_art[:w].copy(),
            o_ins[:w].copy(),
            segment,
        )


@dataclass(frozen=True, slots=True)
class SpectrumArrays:
    """Spectra at the pipeline's spectrum times: coherence ratio and peak frequency (NaN
    where the pipeline's :class:`~vagus.core.events.Spectrum` has None)."""

    t_s: FloatArray
    peak_hz: FloatArray
    coherence_ratio: FloatArray


@dataclass(frozen=True, slots=True)
class BatchResults:
    """What :meth:`BatchPipeline.results_received` hands out: beats and spectra."""

    beats: BeatArrays
    spectra: SpectrumArrays


class BatchPipeline:
    """The beats and spectra of :class:`~vagus.core.pipeline.Pipeline` for cumulative RR
    input (``receive_rr`` without beat times: files), computed in blocks (module doc).

    Calling contract, as the pipeline's::

        batch = BatchPipeline(spectrum_interval_s=5.0)
        batch.receive_rr(rr_ms_block)          # numpy array of RR (ms), in file order
        results = batch.results_received()     # BatchResults: beats and spectra so far
        batch.close()
        results = batch.results_received()

    Beat times: the first beat at its own RR (or at ``t_s`` given with the very first
    value), then ``t = t + RR / 1000``. A value above ``max_rr_ms`` breaks the chain (a
    gap, as the pipeline's ``"rr_out_of_range"``): it and the values up to the next
    in-range one produce no beat, their time elapses, and the beats after it form a new
    segment (no ΔNN across it, the median history reset, the Th1/Th2 windows kept).
    Spectra: coherence ratio and peak frequency of the current segment's NN (the last 64 s)
    at every multiple of ``spectrum_interval_s`` of beat time, exactly when and how the
    pipeline computes them (its LF/HF is not computed).

    Args:
        spectrum_interval_s: as :class:`~vagus.core.pipeline.Pipeline`.
        corrector: a :class:`BatchCorrector` (the default parameters by default).
    """

    def __init__(
        self, *, spectrum_interval_s: float = 5.0, corrector: BatchCorrector | None = None
    ) -> None:
        if not spectrum_interval_s > 0:
            raise InvalidInput(f"spectrum_interval_s must be > 0, got {spectrum_interval_s}")
        self.spectrum_interval_s = float(spectrum_interval_s)
        self._corrector = corrector if corrector is not None else BatchCorrector()
        self._max_rr = self._corrector.max_rr_ms
        self._t_last: float | None = None
        self._gap_open = False
        self._segment = 0
        self._closed = False
        self._beats: list[BeatArrays] = []
        # Spectra.
        self._next_t: float | None = None
        self._hist_t = np.empty(0)  # NN beats of the segment from the pipeline's history start
        self._hist_nn = np.empty(0)
        self._hist_segment = 0  # the segment the history belongs to
        self._spec_t: list[float] = []
        self._spec_peak: list[float] = []
        self._spec_ratio: list[float] = []
        self.beats_measured = 0

    @property
    def max_rr_ms(self) -> float:
        """Values above this (ms) break the chain (the corrector's physiological range)."""
        return self._max_rr

    def receive_rr(self, rr_ms: FloatArray, t_s: float | None = None) -> None:
        """Feed RR values (ms, finite and > 0) in order.

        Args:
            rr_ms: the values.
            t_s: only with the first values of all: the time (s) of the beat that ends
                the last of them (the pipeline anchors the chain there); the values must
                then all be within the physiological range.

        Raises:
            InvalidInput: a value is not finite and positive, the pipeline is closed, or
                ``t_s`` is given later or with an out-of-range value.
        """
        if self._closed:
            raise InvalidInput("the pipeline is closed; create a new BatchPipeline for new input")
        x = np.asarray(rr_ms, dtype=np.float64).ravel()
        if not x.size:
            return
        if not (np.all(np.isfinite(x)) and x.min() > 0):
            raise InvalidInput("RR intervals must be finite and > 0 ms")
        if t_s is not None:
            if self._t_last is not None or x.max() > self._max_rr:
                raise InvalidInput(
                    "t_s is taken only with the first values, all within the physiological range"
                )
            # As the pipeline: anchored at t_s minus the values' span (a left-to-right sum).
            self._t_last = t_s - sum(x.tolist()) / 1000.0
        if self._t_last is None:
            self._t_last = 0.0  # the pipeline anchors cumulative input at 0
        # Beat times over all values (a long one's time elapses too), added one by one.
        steps = np.empty(x.size + 1)
        steps[0] = self._t_last
        np.divide(x, 1000.0, out=steps[1:])
        t_all = np.cumsum(steps)[1:]
        self._t_last = float(t_all[-1])
        is_long = x > self._max_rr
        if not is_long.any() and not self._gap_open:
            self._take(self._corrector.push(t_all, x), self._segment)
            self.beats_measured += int(x.size)
            return
        # Values after a long one (or after an open gap) resume the chain: a new segment.
        after_long = np.empty(x.size, dtype=np.bool_)
        after_long[0] = self._gap_open
        after_long[1:] = is_long[:-1]
        keep = np.flatnonzero(~is_long)
        starts = np.flatnonzero(after_long[keep])
        if keep.size:
            # Segment 0 of the push is the current one: its pending beats are decided
            # at the first start (the corrector's flush at the gap).
            self._take(self._corrector.push(t_all[keep], x[keep], starts), self._segment)
            self._segment += int(starts.size)
            self.beats_measured += int(keep.size)
        if is_long[-1]:
            # The chain is broken at the end: the pending beats are decided now.
            self._take(self._corrector.flush(), self._segment)
            self._gap_open = True
        else:
            self._gap_open = False

    def close(self) -> None:
        """End of input: decide the pending beats."""
        if self._closed:
            return
        if not self._gap_open:
            self._take(self._corrector.flush(), self._segment)
        self._closed = True

    def results_received(self) -> BatchResults:
        """The beats and spectra produced since the last call."""
        beats = _concat_beats(self._beats)
        self._beats = []
        spectra = SpectrumArrays(
            np.asarray(self._spec_t, dtype=np.float64),
            np.asarray(self._spec_peak, dtype=np.float64),
            np.asarray(self._spec_ratio, dtype=np.float64),
        )
        self._spec_t, self._spec_peak, self._spec_ratio = [], [], []
        return BatchResults(beats, spectra)

    # ------------------------------------------------------------------ internals

    def _take(self, beats: BeatArrays, base: int) -> None:
        """Keep decided beats (their segment offset by ``base``) and compute the spectra
        they complete, segment by segment (the pipeline's spectrum history is the
        current segment's: it starts afresh where the chain resumes)."""
        if not len(beats):
            return
        beats.segment[:] += base
        self._beats.append(beats)
        has = ~np.isnan(beats.nn_ms)
        if not has.any():
            return
        t = beats.t_s[has]
        nn = beats.nn_ms[has]
        seg = beats.segment[has]
        cuts = np.flatnonzero(np.diff(seg)) + 1
        for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, seg.size].tolist(), strict=True):
            s = int(seg[a])
            if s != self._hist_segment:
                self._hist_segment = s
                self._hist_t = np.empty(0)
                self._hist_nn = np.empty(0)
            self._spectra(t[a:b], nn[a:b])

    def _spectra(self, t_new: FloatArray, nn_new: FloatArray) -> None:
        """Replay the pipeline's spectrum history and triggers over new NN beats.

        The pipeline keeps the segment's NN beats in a history of HIST_CAPACITY; when it
        is full at a new beat, the beats more than HIST_KEEP_S before that beat go (at
        least one). A spectrum is due at ``next_t`` when an NN beat at or after it
        arrives (after the beat joins the history); ``next_t`` is then the next multiple
        of the interval after that beat.
        """
        n_old = self._hist_t.size
        ht = np.concatenate([self._hist_t, t_new])
        hn = np.concatenate([self._hist_nn, nn_new])
        n = ht.size
        start = 0  # the pipeline's history is ht[start:i + 1] at beat i
        step = self.spectrum_interval_s
        pos = n_old
        while pos < n:
            nxt = self._next_t
            # The first NN beat at or after the due time (the very first NN beat: now).
            trig = pos if nxt is None else pos + int(np.searchsorted(ht[pos:n], nxt))
            # Trims due before the trigger beat joins (or before the block ends).
            limit = trig if trig < n else n - 1
            while start + HIST_CAPACITY <= limit:
                i = start + HIST_CAPACITY
                keep = int(np.searchsorted(ht[start:i], ht[i] - HIST_KEEP_S))
                start += max(keep, 1)
            if trig >= n:
                break
            t_trig = float(ht[trig])
            if nxt is not None:
                coh = _coherence_values(ht[start : trig + 1], hn[start : trig + 1], nxt)
                self._spec_t.append(nxt)
                if coh is None:
                    self._spec_peak.append(math.nan)
                    self._spec_ratio.append(math.nan)
                else:
                    self._spec_peak.append(coh[0])
                    self._spec_ratio.append(coh[1])
            self._next_t = (math.floor(t_trig / step) + 1) * step
            pos = trig + 1
        self._hist_t = ht[start:].copy()
        self._hist_nn = hn[start:].copy()
