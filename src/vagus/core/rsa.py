"""RSA amplitude and HR-pacer phase per breath (sans-I/O; SCIENCE.md "RSA amplitude
(peak-to-trough)" and "Resonance frequency and the adaptive pacer").

One :class:`RsaTracker` per participant reads that participant's computed events (beats,
gaps, spectra) and the session's :class:`~vagus.core.pacer.Pacer`, and hands out one
:class:`~vagus.core.events.Rsa` event at the end of every breath:

- **paced** (the pacer runs): a breath is one pacer cycle, from the start of an inhale
  to the start of the next (cycle ``k`` of :meth:`Pacer.cycles_at <vagus.core.pacer.
  Pacer.cycles_at>`, ``k ≤ cycles < k + 1``);
- **unpaced**: a stretch of one period ``1 / peak_hz`` of the latest coherence
  spectrum's peak (the person's own breathing rhythm; straps have no respiration
  channel); no phase (there is no breathing reference).

Each beat with an NN interval gives a heart-rate sample ``HR = 60000 / NN`` at the middle
of its interval, ``t − NN / 2000 + δ`` s, and belongs to the breath that time falls in.

``δ`` corrects the beat chain's anchor for the phase: the pipeline anchors its chain
(beat time = previous + RR) to one packet's arrival, which can be off by up to a
notification interval (~1 s, i.e. ~36° at 6 breaths/min). The session reports each
packet's *lag* (arrival time minus the chain's newest beat, :meth:`RsaTracker.note_lag`);
over the last 60 s of the chain the smallest lag is the anchor's error plus a few tens of
ms (some beat falls just before a notification), so ``δ`` = that floor (0 without packet
times, e.g. RR input with beat times). A gap restarts the chain and the floor.

Per breath (``N`` = usable beats):

- ``amplitude_bpm = max(HR) − min(HR)``, ``amplitude_ms = max(NN) − min(NN)`` (N ≥ 3);
- ``phase_deg`` (paced, N ≥ 4): HR is interpolated linearly onto 32 points evenly
  spaced over the cycle (beats of the neighbouring breaths included at the edges), and
  the drift over the cycle (HR at its end minus at its start) removed as a ramp (a
  least-squares detrend would bend the phase of a one-cycle window); the lung volume
  of the pacer's breath shape (:meth:`~vagus.core.pacer.Pacer.breath_at`) is sampled
  at the same points; the phase is ``arg X_HR(1) − arg X_V(1)`` of their one-cycle DFT
  coefficients, wrapped to (−180°, 180°]. Positive: heart rate leads breathing (the
  person breathes slower than their resonance rate); 0: resonance; negative: lags
  (faster than resonance).
- ``fit = 2 |X_HR(1)|² / (32 · Σ (HR − mean)²)`` (after the ramp): the share of the
  breath's HR variance at the breath frequency (1 for a pure sinusoid; low when the
  heart did not follow the pacer, e.g. the person breathed at their own rate);
- ``clean``: no artifact-classed beat and no gap in the breath, and the usable NN cover at
  least 70 % of it;
- ``mean_60s_bpm``: the mean amplitude of the breaths that ended in the last 60 s.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from itertools import compress, repeat
from operator import is_not

import numpy as np

from vagus.core.events import Beat, Event, Gap, Metrics, Rsa, Spectrum
from vagus.core.pacer import Pacer

__all__ = ["GRID_POINTS", "RsaTracker", "breath_phase"]

#: Points per cycle of the phase estimate's grid.
GRID_POINTS = 32
#: Window of ``mean_60s_bpm`` (s).
MEAN_WINDOW_S = 60.0
#: Usable NN must cover this share of a breath for it to be clean.
MIN_COVER = 0.7


def breath_phase(
    hr_bpm: np.ndarray, volume: np.ndarray, drift_bpm: float = 0.0
) -> tuple[float, float] | None:
    """``(phase_deg, fit)`` of heart rate against lung volume over one cycle, both sampled
    at the ``n`` points ``(j + ½) / n`` of the cycle (see the module docstring), after
    removing the drift ``drift_bpm`` (HR at the cycle's end minus at its start) as a
    linear ramp; None if HR or volume is flat."""
    n = len(hr_bpm)
    frac = (np.arange(n) + 0.5) / n
    hr = hr_bpm - drift_bpm * frac
    hr = hr - hr.mean()
    total = float(np.dot(hr, hr))
    if total <= 1e-12:
        return None
    k = np.exp(-2j * np.pi * frac)
    x_hr = complex(np.dot(hr, k))
    x_v = complex(np.dot(volume - volume.mean(), k))
    if abs(x_v) <= 1e-12:
        return None
    deg = math.degrees(math.atan2(x_hr.imag, x_hr.real) - math.atan2(x_v.imag, x_v.real))
    deg = (deg + 180.0) % 360.0 - 180.0
    if deg == -180.0:
        deg = 180.0
    fit = min(1.0, 2.0 * abs(x_hr) ** 2 / (n * total))
    return deg, fit


class RsaTracker:
    """One participant's breaths (see the module docstring).

    Calling contract: :meth:`feed` every computed event of the participant, in order;
    it returns the :class:`~vagus.core.events.Rsa` events of the breaths that ended.

    Args:
        pacer: the session's pacer (read only).
    """

    def __init__(self, pacer: Pacer) -> None:
        self._pacer = pacer
        # The breath under way: paced cycle number (None unpaced), start, end (unpaced).
        self._key: int | None = None
        self._paced = False
        self._start_s: float | None = None
        self._end_s = -math.inf  # unpaced: the breath's planned end (-inf: none)
        self._rate_bpm = 0.0
        # The breath's samples as parallel float lists (mid t, NN; HR = 60000 / NN is
        # computed when the breath closes): no tuple per beat for the GC to track.
        self._ts: list[float] = []
        self._nns: list[float] = []
        self._before: tuple[float, float] | None = None  # (mid t, NN) of the sample before it
        self._dirty = False  # an artifact or gap in the breath under way
        self._peak_hz: float | None = None
        # The breaths with an amplitude that ended in the last 60 s: ends, amplitudes.
        self._recent_end: deque[float] = deque()
        self._recent_bpm: deque[float] = deque()
        self._lags: deque[tuple[float, float]] = deque()  # (arrival, lag), lags increasing
        self._delta_s = 0.0

    def note_lag(self, t_arrival_s: float, lag_s: float) -> None:
        """A packet arrived at ``t_arrival_s`` when the chain's newest beat was
        ``lag_s`` earlier (see the module docstring)."""
        lags = self._lags
        while lags and lags[-1][1] >= lag_s:
            lags.pop()
        lags.append((t_arrival_s, lag_s))
        while lags[0][0] < t_arrival_s - MEAN_WINDOW_S:
            lags.popleft()
        self._delta_s = lags[0][1]

    def feed(self, event: Event) -> list[Rsa] | tuple[()]:
        """Take one computed event; return the breaths it ended (0 or 1, rarely more)."""
        ended = self.feed_all((event,))
        return ended[0][1] if ended else ()

    def feed_all(self, events: Sequence[Event]) -> list[tuple[int, list[Rsa]]]:
        """:meth:`feed` each event in turn (the same breaths, the same state after);
        returns ``(index, breaths)`` for each event that ended breaths, in order. For a
        batch of one input's events: the pacer must not change during the call."""
        out: list[tuple[int, list[Rsa]]] = []
        # Within an unpaced breath (the common case) a beat only adds a sample: when the
        # pacer is off from `unpaced_from` on and the breath under way is unpaced and ends
        # after it. The pacer holds still during the call; `_sample` may start a breath.
        off = self._pacer.off_since_s
        unpaced_from = off if off is not None else math.inf
        end_s = -math.inf if self._paced else self._end_s
        add_t = self._ts.append
        add_nn = self._nns.append
        delta_s = self._delta_s
        # Metrics (one per beat) play no part here: skipped in C, not looked at in Python.
        wanted = map(is_not, map(type, events), repeat(Metrics))
        for i, event in compress(enumerate(events), wanted):
            if type(event) is Beat:
                if event.artifact is not None:
                    self._dirty = True
                nn = event.nn_ms
                if nn is None:
                    continue
                t = event.t_s - nn / 2000.0 + delta_s
                if unpaced_from <= t < end_s:
                    add_t(t)
                    add_nn(nn)
                    continue
                ended = self._sample(t, nn)
                if ended:
                    out.append((i, ended))
                end_s = -math.inf if self._paced else self._end_s
                add_t = self._ts.append
                add_nn = self._nns.append
            elif type(event) is Gap:
                self._dirty = True
                self._before = None
                self._lags.clear()
            elif type(event) is Spectrum:
                peak_hz = event.peak_hz
                if peak_hz is not None and peak_hz > 0:
                    self._peak_hz = peak_hz
        return out

    # ------------------------------------------------------------------ internals

    def _sample(self, t: float, nn: float) -> list[Rsa] | tuple[()]:
        """Add the sample (mid time ``t``, NN ``nn``); return the breaths it ended."""
        pacer = self._pacer
        cycles = pacer.cycles_at(t)
        if cycles is None and not self._paced and self._start_s is not None and t < self._end_s:
            self._ts.append(t)  # the common unpaced case
            self._nns.append(nn)
            return ()
        out: list[Rsa] = []
        if cycles is not None:
            key = math.floor(cycles)
            if self._paced and self._key is not None and key == self._key:
                self._ts.append(t)
                self._nns.append(nn)
                return ()
            hz = pacer.rate_hz_at(t) or 1.0
            boundary = t - (cycles - key) / hz
            if self._paced and self._key is not None and key == self._key + 1:
                ended = self._close(boundary, t, nn)
                if ended is not None:
                    out.append(ended)
            self._restart(boundary, t, nn, paced=True, key=key)
            return out
        # Unpaced.
        if self._paced:
            self._restart(t, t, nn, paced=False, key=None)
            return out
        peak = self._peak_hz
        if peak is None:
            self._before = (t, nn)
            self._start_s = None
            self._end_s = -math.inf
            return out
        if self._start_s is None:
            self._restart(t, t, nn, paced=False, key=None)
            return out
        if t < self._end_s:
            self._ts.append(t)
            self._nns.append(nn)
            return out
        boundary = self._end_s
        if t - boundary < 1.0 / peak:
            ended = self._close(boundary, t, nn)
            if ended is not None:
                out.append(ended)
            self._restart(boundary, t, nn, paced=False, key=None)
        else:  # a long stretch without beats: start again here
            self._restart(t, t, nn, paced=False, key=None)
        return out

    def _restart(self, start: float, t: float, nn: float, *, paced: bool, key: int | None) -> None:
        """Start a breath at ``start`` with the sample (``t``, ``nn``)."""
        if self._ts:
            self._before = (self._ts[-1], self._nns[-1])
        self._ts = [t]
        self._nns = [nn]
        self._start_s = start
        self._paced = paced
        self._key = key
        self._dirty = False
        if paced:
            hz = self._pacer.rate_hz_at(t) or 0.0
            self._rate_bpm = hz * 60.0
            self._end_s = math.inf
        else:
            peak = self._peak_hz or 0.0
            self._rate_bpm = peak * 60.0
            self._end_s = start + 1.0 / peak if peak > 0 else -math.inf

    def _close(self, end: float, after_t: float, after_nn: float) -> Rsa | None:
        """The breath under way ended at ``end``; (``after_t``, ``after_nn``) is the
        sample after it (the phase's interpolation reaches over the edge)."""
        start = self._start_s
        nns = self._nns
        if start is None or end <= start:
            return None
        n = len(nns)
        hrs = [60000.0 / nn for nn in nns]
        amp_bpm = max(hrs) - min(hrs) if n >= 3 else None
        amp_ms = max(nns) - min(nns) if n >= 3 else None
        covered = sum(nns) / 1000.0
        clean = not self._dirty and covered >= MIN_COVER * (end - start)
        phase: float | None = None
        fit: float | None = None
        if self._paced and n >= 4:
            pts_t = list(self._ts)
            pts_hr = list(hrs)
            if self._before is not None:
                pts_t.insert(0, self._before[0])
                pts_hr.insert(0, 60000.0 / self._before[1])
            pts_t.append(after_t)
            pts_hr.append(60000.0 / after_nn)
            ts = np.array(pts_t)
            hr = np.array(pts_hr)
            grid = start + (np.arange(GRID_POINTS) + 0.5) * ((end - start) / GRID_POINTS)
            hr_grid = np.interp(grid, ts, hr)
            ends = np.interp(np.array([start, end]), ts, hr)
            pacer = self._pacer
            vol = np.array(
                [(b.volume if (b := pacer.breath_at(float(g))) is not None else 0.0) for g in grid]
            )
            got = breath_phase(hr_grid, vol, float(ends[1] - ends[0]))
            if got is not None:
                phase, fit = got
        recent_end = self._recent_end
        recent_bpm = self._recent_bpm
        if amp_bpm is not None:
            recent_end.append(end)
            recent_bpm.append(amp_bpm)
        while recent_end and recent_end[0] <= end - MEAN_WINDOW_S:
            recent_end.popleft()
            recent_bpm.popleft()
        mean = sum(recent_bpm) / len(recent_bpm) if recent_bpm else None
        rate = self._rate_bpm if self._paced else 60.0 / (end - start)
        return Rsa(
            end,
            start,
            rate,
            self._paced,
            amp_bpm,
            amp_ms,
            phase,
            fit,
            n,
            clean,
            mean,
        )
