"""The data of the reports: a stored session replayed per participant and summarised.

- :func:`replay_participants` replays a session once through the one replay
  (:mod:`vagus.store.replay`: one pipeline per participant, markers and pacer changes
  to each, exactly as live) and collects each participant's events into a
  :class:`SessionReplay`;
- :func:`summarize_replay` summarises one participant (:class:`SessionSummary`): our
  whole-session time- and frequency-domain values (:mod:`vagus.core.metrics`,
  SCIENCE.md definitions), session means of the real-time metrics, coherence, signal
  quality and the paced-versus-unpaced spectrum;
- :class:`ProgressRow` is one session's trend values for one participant
  (``vagus progress``).

No plotting and no HTML here: :mod:`vagus.report.plots` draws these, and
:mod:`vagus.report.session` and :mod:`vagus.report.progress` write the documents
(the modules import in that one direction).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vagus.core.events import (
    Beat,
    Contact,
    Event,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    Resonance,
    Rsa,
    Spectrum,
)
from vagus.core.metrics import Summary, summarize
from vagus.core.plans import phase_of_marker
from vagus.core.spectrum import COHERENCE_WINDOW_S, HIGH_COHERENCE_RATIO
from vagus.report._common import RR_RANGE_MS, ProgressCallback, no_progress
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    SessionInfo,
    Store,
    unix_datetime,
)
from vagus.store.replay import (
    Replayed,
    check_participant,
    participant_names,
    session_participants,
)
from vagus.store.replay import replay_records as store_replay_records

__all__ = [
    "HIGH_COHERENCE_RATIO",
    "MIN_RESONANCE_CONFIDENCE",
    "PhaseStats",
    "ProgressRow",
    "SessionReplay",
    "SessionSummary",
    "SpectrumComparison",
    "compare_spectra",
    "plan_phases",
    "replay_participants",
    "replay_records",
    "replay_session",
    "session_resonance_result",
    "summarize_replay",
]

FloatArray = npt.NDArray[np.float64]

#: An adaptive estimate counts as a session's resonance rate only with at least this
#: confidence (the same rule as :mod:`vagus.resonance_history`).
MIN_RESONANCE_CONFIDENCE = 0.5


# ---------------------------------------------------------------------------- replay


@dataclass
class SessionReplay:
    """The events of one replayed session, for one participant, as arrays and lists.

    Beat arrays hold one entry per :class:`~vagus.core.events.Beat` event, in order:
    ``beat_t_s`` (beat time, s, source clock), ``beat_rr_ms`` (RR as measured),
    ``beat_nn_ms`` (corrected NN; NaN where the beat was removed), ``beat_artifact``
    (class or None), ``beat_inserted`` (the corrector inserted the beat to split a missed
    beat), ``beat_segment`` (0, then +1 after each gap: no ΔNN across segments).
    Metrics arrays hold one entry per :class:`~vagus.core.events.Metrics` event (NaN where
    the event's value was None). ``rsa``: the per-breath RSA events
    (:class:`~vagus.core.events.Rsa`); ``resonance``: the resonance estimates made while
    the pacer followed this participant (:class:`~vagus.core.events.Resonance`).
    """

    info: SessionInfo
    participant: str
    records: int = 0
    packets: int = 0
    malformed_packets: int = 0
    beat_t_s: FloatArray = field(default_factory=lambda: np.empty(0))
    beat_rr_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    beat_nn_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    beat_artifact: list[str | None] = field(default_factory=list)
    beat_inserted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=bool))
    beat_segment: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    metrics_t_s: FloatArray = field(default_factory=lambda: np.empty(0))
    hr_bpm: FloatArray = field(default_factory=lambda: np.empty(0))
    rmssd_30s_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    rmssd_60s_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    sdnn_60s_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    pnn50_60s: FloatArray = field(default_factory=lambda: np.empty(0))
    artifact_rate_60s: FloatArray = field(default_factory=lambda: np.empty(0))
    spectra: list[Spectrum] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    pacer_changes: list[PacerChange] = field(default_factory=list)
    rsa: list[Rsa] = field(default_factory=list)
    resonance: list[Resonance] = field(default_factory=list)
    t0_s: float = 0.0
    t_end_s: float = 0.0

    @property
    def beats_measured(self) -> int:
        """Beats measured by the strap (or imported): every beat but the inserted ones."""
        return int(np.count_nonzero(~self.beat_inserted))

    @property
    def beat_out_of_range(self) -> npt.NDArray[np.bool_]:
        """Measured beats whose RR lies outside :data:`RR_RANGE_MS` (or is not finite)."""
        return _out_of_range(self.beat_rr_ms) & ~self.beat_inserted

    def pacer_rate_at(self, t_s: float) -> float | None:
        """The pacer rate (breaths/min) in force at ``t_s``; None when no pacer is set."""
        rate: float | None = None
        for pc in self.pacer_changes:
            if pc.t_s > t_s:
                break
            rate = pc.rate_bpm
        return rate

    def pacer_rates_over(self, t_start_s: float, t_end_s: float) -> list[float | None]:
        """Every pacer rate in force at some time in ``[t_start_s, t_end_s]``."""
        rates = [self.pacer_rate_at(t_start_s)]
        rates += [pc.rate_bpm for pc in self.pacer_changes if t_start_s < pc.t_s <= t_end_s]
        return rates


def _record_time(rec: InputRecord) -> float | None:
    if isinstance(rec, PacketRecord):
        return rec.t_arrival_s
    if isinstance(rec, GapRecord):
        return rec.t_s
    if isinstance(rec, ControlRecord):
        return rec.event.t_s
    return None


def _opt(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _out_of_range(rr_ms: FloatArray) -> npt.NDArray[np.bool_]:
    """True where an RR value (ms) is outside :data:`RR_RANGE_MS` or not finite."""
    lo, hi = RR_RANGE_MS
    with np.errstate(invalid="ignore"):
        return np.asarray(~((rr_ms >= lo) & (rr_ms <= hi)), dtype=bool)


def _gap_end_known(gap: Gap) -> bool:
    """The gap has a usable duration: known and > 0 (a duration <= 0 is a source's
    re-anchoring artefact, e.g. a 63999 ms RR right after a reconnect, not a time span)."""
    return gap.duration_s is not None and gap.duration_s > 0.0


def _replays(
    info: SessionInfo,
    steps: Iterable[Replayed[InputRecord]],
    participants: Iterable[str],
    n: int,
    progress: ProgressCallback,
) -> dict[str, SessionReplay]:
    """Collect the steps of a replay (:mod:`vagus.store.replay`) per participant."""
    outs = {p: SessionReplay(info=info, participant=p) for p in participants}
    events: dict[str, list[Event]] = {p: [] for p in outs}
    first_t: dict[str, float | None] = dict.fromkeys(outs)
    every = max(1, n // 200)
    progress("replay", 0.0)
    for step in steps:
        rec = step.record
        if rec is not None:
            # A control record belongs to everybody: each participant's pipeline got it.
            for who in outs if step.participant is None else (step.participant,):
                out = outs[who]
                out.records += 1
                if isinstance(rec, PacketRecord):
                    out.packets += 1
                if step.malformed:
                    out.malformed_packets += 1
                if first_t[who] is None:
                    first_t[who] = _record_time(rec)
        for who_ev, ev in step.events:
            if who_ev is not None:
                if who_ev in events:
                    events[who_ev].append(ev)
            elif isinstance(ev, Marker | PacerChange):
                for stream in events.values():
                    stream.append(ev)
        if step.index >= 0 and step.index % every == 0:
            progress("replay", min(1.0, step.index / max(n, 1)))
    progress("replay", 1.0)
    for who, out in outs.items():
        _collect(out, events[who], first_t[who])
    return outs


def replay_records(
    info: SessionInfo,
    records: Sequence[InputRecord],
    *,
    participant: str | None = None,
    progress: ProgressCallback = no_progress,
) -> SessionReplay:
    """Replay one participant of ``records`` (:func:`vagus.store.replay.replay_records`:
    its records and every control record, through its own pipeline, as live).

    ``participant`` defaults to the session's first participant. A participant's records
    are found by the name they were recorded under
    (:func:`~vagus.store.replay.participant_names`: a relabelled first participant keeps
    its records). A malformed packet is counted and skipped (the live path skips it too).

    Raises:
        UnknownParticipant: the session has no such participant (the message lists those
            it has).
    """
    names = participant_names(
        info, (r.participant for r in records if not isinstance(r, ControlRecord))
    )
    who = check_participant(info, names, participant) if participant else next(iter(names))
    steps = store_replay_records(records, {who: names[who]})
    return _replays(info, steps, (who,), len(records), progress)[who]


def replay_participants(
    store: Store,
    session_id: str,
    *,
    participants: Sequence[str] | None = None,
    progress: ProgressCallback = no_progress,
) -> list[SessionReplay]:
    """Replay a stored session once, every participant (or ``participants``) through its
    own pipeline (:func:`vagus.store.replay.replay`); one :class:`SessionReplay` each,
    in the session's order.

    Raises:
        SessionNotFound: no such session (the store's error).
        UnknownParticipant: the session has no such participant.
    """
    info = store.get_session(session_id)
    names = session_participants(store, info)
    if participants is not None:
        names = {p: names[check_participant(info, names, p)] for p in participants}
    records = store.iter_input(info.id, participants=set(names.values()))
    n = store.input_count(info.id)
    outs = _replays(info, store_replay_records(records, names), names, n, progress)
    return list(outs.values())


def _collect(out: SessionReplay, events: list[Event], first_t: float | None) -> None:
    """Fill the arrays and lists of ``out`` from the pipeline's events."""
    bt: list[float] = []
    brr: list[float] = []
    bnn: list[float] = []
    bins: list[bool] = []
    bseg: list[int] = []
    mt: list[float] = []
    cols: list[list[float]] = [[], [], [], [], [], []]
    segment = 0
    pending_gap = False
    for ev in events:
        if isinstance(ev, Beat):
            if pending_gap and bt:
                segment += 1
            pending_gap = False
            bt.append(ev.t_s)
            brr.append(ev.rr_ms)
            bnn.append(_opt(ev.nn_ms))
            out.beat_artifact.append(ev.artifact)
            bins.append(ev.inserted)
            bseg.append(segment)
        elif isinstance(ev, Metrics):
            mt.append(ev.t_s)
            for col, v in zip(
                cols,
                (
                    ev.hr_bpm,
                    ev.rmssd_30s_ms,
                    ev.rmssd_60s_ms,
                    ev.sdnn_60s_ms,
                    ev.pnn50_60s,
                    ev.artifact_rate_60s,
                ),
                strict=True,
            ):
                col.append(_opt(v))
        elif isinstance(ev, Spectrum):
            out.spectra.append(ev)
        elif isinstance(ev, Gap):
            pending_gap = True
            out.gaps.append(ev)
        elif isinstance(ev, Contact):
            out.contacts.append(ev)
        elif isinstance(ev, Marker):
            out.markers.append(ev)
        elif isinstance(ev, PacerChange):
            out.pacer_changes.append(ev)
        elif isinstance(ev, Rsa):
            out.rsa.append(ev)
        elif isinstance(ev, Resonance):
            out.resonance.append(ev)
    out.beat_t_s = np.asarray(bt, dtype=np.float64)
    out.beat_rr_ms = np.asarray(brr, dtype=np.float64)
    out.beat_nn_ms = np.asarray(bnn, dtype=np.float64)
    out.beat_inserted = np.asarray(bins, dtype=bool)
    out.beat_segment = np.asarray(bseg, dtype=np.int64)
    out.metrics_t_s = np.asarray(mt, dtype=np.float64)
    (
        out.hr_bpm,
        out.rmssd_30s_ms,
        out.rmssd_60s_ms,
        out.sdnn_60s_ms,
        out.pnn50_60s,
        out.artifact_rate_60s,
    ) = (np.asarray(c, dtype=np.float64) for c in cols)
    out.pacer_changes.sort(key=lambda p: p.t_s)
    starts = [t for t in (first_t,) if t is not None]
    if bt:
        # The start of the first plausible interval: an out-of-range first RR (63999 ms
        # from a strap that just connected) would otherwise move the start a minute back.
        ok = np.flatnonzero(~_out_of_range(out.beat_rr_ms) & ~out.beat_inserted)
        k = int(ok[0]) if ok.size else 0
        starts.append(min(bt[0], bt[k] - brr[k] / 1000.0))
    starts += [m.t_s for m in out.markers[:1]] + [p.t_s for p in out.pacer_changes[:1]]
    out.t0_s = min(starts) if starts else 0.0
    ends = [out.t0_s]
    if bt:
        ends.append(bt[-1])
    ends += [m.t_s for m in out.markers] + [c.t_s for c in out.contacts]
    ends += [g.t_s + (g.duration_s or 0.0) for g in out.gaps if _gap_end_known(g)]
    out.t_end_s = max(ends)


def replay_session(
    store: Store,
    session_id: str,
    *,
    participant: str | None = None,
    progress: ProgressCallback = no_progress,
) -> SessionReplay:
    """Replay one participant of a stored session (default: its first participant).

    Raises:
        SessionNotFound: no such session (the store's error).
        UnknownParticipant: the session has no such participant.
    """
    info = store.get_session(session_id)
    who = participant
    if who is None:
        who = next(iter(session_participants(store, info)))
    return replay_participants(store, info.id, participants=(who,), progress=progress)[0]


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True, slots=True)
class SpectrumComparison:
    """Mean 64 s coherence spectra (ms²/Hz) over paced and unpaced stretches.

    A :class:`~vagus.core.events.Spectrum` counts as *paced* when a pacer was set for its
    whole 64 s window, *unpaced* when no pacer was set at any time in it; windows that
    straddle switching the pacer on or off are left out (``straddling``). ``pacer_rates``
    lists the distinct rates (breaths/min) in force during paced windows.
    """

    freqs_hz: FloatArray
    paced_psd: FloatArray | None
    unpaced_psd: FloatArray | None
    n_paced: int
    n_unpaced: int
    straddling: int
    pacer_rates: tuple[float, ...]
    has_pacer: bool

    @property
    def whole_psd(self) -> FloatArray | None:
        """Mean over every window with a spectrum (the whole session)."""
        parts = [
            (p, n)
            for p, n in ((self.paced_psd, self.n_paced), (self.unpaced_psd, self.n_unpaced))
            if p is not None and n
        ]
        if not parts:
            return None
        total = sum(n for _, n in parts)
        return np.asarray(sum(p * n for p, n in parts) / total, dtype=np.float64)


def compare_spectra(replay: SessionReplay) -> SpectrumComparison:
    """Average the Spectrum events' PSDs over paced and over unpaced windows."""
    paced: list[FloatArray] = []
    unpaced: list[FloatArray] = []
    rates: set[float] = set()
    straddling = 0
    freqs: FloatArray = np.empty(0)
    for sp in replay.spectra:
        if not sp.psd_ms2_per_hz:
            continue
        if freqs.size == 0:
            freqs = np.asarray(sp.freqs_hz, dtype=np.float64)
        if len(sp.psd_ms2_per_hz) != freqs.size:
            continue
        psd = np.asarray(sp.psd_ms2_per_hz, dtype=np.float64)
        in_force = replay.pacer_rates_over(sp.t_s - COHERENCE_WINDOW_S, sp.t_s)
        if all(r is None for r in in_force):
            unpaced.append(psd)
        elif all(r is not None for r in in_force):
            paced.append(psd)
            rates.update(r for r in in_force if r is not None)
        else:
            straddling += 1
    has_pacer = any(p.rate_bpm is not None for p in replay.pacer_changes)
    return SpectrumComparison(
        freqs_hz=freqs,
        paced_psd=np.mean(paced, axis=0) if paced else None,
        unpaced_psd=np.mean(unpaced, axis=0) if unpaced else None,
        n_paced=len(paced),
        n_unpaced=len(unpaced),
        straddling=straddling,
        pacer_rates=tuple(sorted(rates)),
        has_pacer=has_pacer,
    )


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """Everything the report states about one replayed session.

    Attributes:
        nn: whole-session summary of the corrected NN (:func:`vagus.core.metrics.summarize`).
        rr: the same formulas over the RR as measured (no correction; inserted beats left
            out, removed beats kept), to show what the correction changed. RR outside
            :data:`RR_RANGE_MS` are left out, and no difference is taken across one.
        out_of_range_rr_ms: the measured RR outside :data:`RR_RANGE_MS`, in order
            (``out_of_range_low`` / ``out_of_range_high``: how many below / above it).
        realtime_means: session mean of each real-time value over the events that had one
            (keys: ``hr_bpm``, ``rmssd_30s_ms``, ``rmssd_60s_ms``, ``sdnn_60s_ms``,
            ``pnn50_60s``, ``artifact_rate_60s``, ``coherence_ratio``, ``peak_hz``).
        high_coherence_s: time (s) in windows with CR >= :data:`HIGH_COHERENCE_RATIO`
            (each Spectrum event stands for one spectrum interval of 5 s).
        high_coherence_pct: the same as % of the windows that have a CR.
        resting_rmssd_ms: RMSSD (whole-stretch formula) of the NN while no pacer was set,
            None with less than 60 s of such NN.
        artifacts: measured beats by artifact class; ``artifact_pct`` the % of all
            measured beats per class.
        gap_count, gap_total_s: gaps in the beat chain and their summed known duration
            (``open_gaps``: gaps whose end is unknown, at the end of the recording;
            ``unmeasured_gaps``: gaps reported with a duration <= 0, counted but neither
            summed nor drawn as a span).
        contact_loss_s: time between a strap's "no contact" and its next "contact" report.
        rsa_breaths: breaths with an RSA amplitude (:class:`~vagus.core.events.Rsa`).
        rsa_mean_amplitude_bpm: mean peak-to-trough HR (bpm) of the clean breaths
            (no artifact, gap or missing stretch), None without one (SCIENCE.md "RSA
            amplitude").
        resonance: the session's resonance result for this participant
            (:func:`session_resonance_result`), None when the pacer never assessed it.
        phases: the plan's phases side by side (:func:`plan_phases`), empty when the
            session followed no plan.
    """

    duration_s: float
    nn: Summary
    rr: Summary
    realtime_means: dict[str, float | None]
    high_coherence_s: float
    high_coherence_pct: float | None
    coherence_windows: int
    resting_rmssd_ms: float | None
    resting_s: float
    paced_s: float
    artifacts: dict[str, int]
    artifact_pct: dict[str, float]
    artifact_total_pct: float | None
    gap_count: int
    gap_total_s: float
    open_gaps: int
    unmeasured_gaps: int
    gap_reasons: dict[str, int]
    contact_loss_s: float
    contact_reported: bool
    spectrum: SpectrumComparison
    out_of_range_rr_ms: tuple[float, ...] = ()
    rsa_breaths: int = 0
    rsa_mean_amplitude_bpm: float | None = None
    resonance: Resonance | None = None
    phases: tuple[PhaseStats, ...] = ()

    @property
    def out_of_range_low(self) -> int:
        """Measured RR below :data:`RR_RANGE_MS` (or not finite)."""
        return sum(1 for v in self.out_of_range_rr_ms if not v > RR_RANGE_MS[0])

    @property
    def out_of_range_high(self) -> int:
        """Measured RR above :data:`RR_RANGE_MS`."""
        return sum(1 for v in self.out_of_range_rr_ms if v > RR_RANGE_MS[1])

    def trend_values(self) -> dict[str, float | None]:
        """The per-session values ``vagus progress`` plots (JSON-ready)."""
        return {
            "duration_s": self.duration_s,
            "beats": float(self.nn.beats),
            "resting_rmssd_ms": self.resting_rmssd_ms,
            "rmssd_ms": self.nn.rmssd_ms,
            "mean_rmssd_60s_ms": self.realtime_means.get("rmssd_60s_ms"),
            "mean_hr_bpm": self.nn.hr_bpm,
            "mean_coherence": self.realtime_means.get("coherence_ratio"),
            "high_coherence_s": self.high_coherence_s,
            "high_coherence_pct": self.high_coherence_pct,
            "artifact_pct": self.artifact_total_pct,
            "rsa_mean_amplitude_bpm": self.rsa_mean_amplitude_bpm,
            "resonance_rate_bpm": None if self.resonance is None else self.resonance.rate_bpm,
            "resonance_confidence": (None if self.resonance is None else self.resonance.confidence),
        }


def _nanmean(a: FloatArray) -> float | None:
    ok = a[np.isfinite(a)]
    return float(ok.mean()) if ok.size else None


def _summ(t: FloatArray, v: FloatArray, seg: npt.NDArray[np.int64], **kw: Any) -> Summary:
    # summarize() wants strictly increasing times within a segment.
    keep = np.ones(t.size, dtype=bool)
    if t.size > 1:
        keep[1:] = ~((np.diff(t) <= 0) & (np.diff(seg) == 0))
    return summarize(t[keep], v[keep], segment=seg[keep], **kw)


def summarize_replay(replay: SessionReplay) -> SessionSummary:
    """Summarise a replayed session (see :class:`SessionSummary` for every value)."""
    r = replay
    has_nn = np.isfinite(r.beat_nn_ms)
    t_nn, nn, seg_nn = r.beat_t_s[has_nn], r.beat_nn_ms[has_nn], r.beat_segment[has_nn]
    measured = ~r.beat_inserted
    artifacts: dict[str, int] = {}
    for a, m in zip(r.beat_artifact, measured, strict=True):
        if a is not None and m:
            artifacts[a] = artifacts.get(a, 0) + 1
    n_measured = int(np.count_nonzero(measured))
    nn_summary = _summ(t_nn, nn, seg_nn, beats_measured=n_measured, artifacts=artifacts)
    # RR as measured: without the out-of-range values, and a new segment after each one,
    # so that no difference joins the two beats around it.
    oor = r.beat_out_of_range
    breaks = np.zeros(oor.size, dtype=bool)
    breaks[1:] = (np.diff(r.beat_segment) != 0) | oor[:-1]
    rr_seg = np.cumsum(breaks)
    rr_keep = measured & ~oor
    rr_summary = _summ(r.beat_t_s[rr_keep], r.beat_rr_ms[rr_keep], rr_seg[rr_keep])
    means: dict[str, float | None] = {
        "hr_bpm": _nanmean(r.hr_bpm),
        "rmssd_30s_ms": _nanmean(r.rmssd_30s_ms),
        "rmssd_60s_ms": _nanmean(r.rmssd_60s_ms),
        "sdnn_60s_ms": _nanmean(r.sdnn_60s_ms),
        "pnn50_60s": _nanmean(r.pnn50_60s),
        "artifact_rate_60s": _nanmean(r.artifact_rate_60s),
    }
    crs = np.asarray(
        [s.coherence_ratio for s in r.spectra if s.coherence_ratio is not None], dtype=np.float64
    )
    peaks = np.asarray([s.peak_hz for s in r.spectra if s.peak_hz is not None], dtype=np.float64)
    means["coherence_ratio"] = float(crs.mean()) if crs.size else None
    means["peak_hz"] = float(peaks.mean()) if peaks.size else None
    interval_s = _spectrum_interval(r.spectra)
    n_high = int(np.count_nonzero(crs >= HIGH_COHERENCE_RATIO))
    # Resting: NN while no pacer was set.
    unpaced = _unpaced_mask(r, t_nn)
    resting_s = float(nn[unpaced].sum() / 1000.0) if nn.size else 0.0
    paced_s = float(nn[~unpaced].sum() / 1000.0) if nn.size else 0.0
    resting: float | None = None
    if resting_s >= 60.0:
        # A new segment wherever the pacer state changes, so no ΔNN joins two stretches.
        seg_rest = seg_nn * 2 + np.cumsum(np.r_[0, np.diff(unpaced.astype(np.int64)) != 0])
        d = np.diff(nn[unpaced])[np.diff(seg_rest[unpaced]) == 0]
        resting = float(np.sqrt(np.mean(d * d))) if d.size else None
    gap_total = sum(g.duration_s or 0.0 for g in r.gaps if _gap_end_known(g))
    reasons: dict[str, int] = {}
    for g in r.gaps:
        reasons[g.reason] = reasons.get(g.reason, 0) + 1
    return SessionSummary(
        duration_s=max(0.0, r.t_end_s - r.t0_s),
        nn=nn_summary,
        rr=rr_summary,
        realtime_means=means,
        high_coherence_s=n_high * interval_s,
        high_coherence_pct=100.0 * n_high / crs.size if crs.size else None,
        coherence_windows=int(crs.size),
        resting_rmssd_ms=resting,
        resting_s=resting_s,
        paced_s=paced_s,
        artifacts=artifacts,
        artifact_pct={k: 100.0 * v / n_measured for k, v in artifacts.items()}
        if n_measured
        else {},
        artifact_total_pct=100.0 * sum(artifacts.values()) / n_measured if n_measured else None,
        gap_count=len(r.gaps),
        gap_total_s=float(gap_total),
        open_gaps=sum(1 for g in r.gaps if g.duration_s is None),
        unmeasured_gaps=sum(1 for g in r.gaps if g.duration_s is not None and g.duration_s <= 0),
        gap_reasons=reasons,
        contact_loss_s=_contact_loss_s(r),
        contact_reported=any(c.contact is not None for c in r.contacts),
        spectrum=compare_spectra(r),
        out_of_range_rr_ms=tuple(float(v) for v in r.beat_rr_ms[oor]),
        rsa_breaths=sum(1 for b in r.rsa if b.amplitude_bpm is not None),
        rsa_mean_amplitude_bpm=_mean_rsa(r.rsa),
        resonance=session_resonance_result(r.resonance),
        phases=plan_phases(r),
    )


def _mean_rsa(breaths: Iterable[Rsa]) -> float | None:
    """Mean peak-to-trough HR (bpm) of the clean breaths that have one."""
    amps = [b.amplitude_bpm for b in breaths if b.clean and b.amplitude_bpm is not None]
    return float(np.mean(amps)) if amps else None


def session_resonance_result(estimates: Sequence[Resonance]) -> Resonance | None:
    """A session's resonance result: its last final scan result, else its last adaptive
    estimate with a confidence of at least :data:`MIN_RESONANCE_CONFIDENCE` (the rule of
    :mod:`vagus.resonance_history`); None otherwise."""
    scans = [e for e in estimates if e.method == "scan" and e.final and e.rate_bpm is not None]
    if scans:
        return scans[-1]
    loops = [
        e
        for e in estimates
        if e.method == "adaptive"
        and e.rate_bpm is not None
        and e.confidence >= MIN_RESONANCE_CONFIDENCE
    ]
    return loops[-1] if loops else None


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """One phase of a session plan, measured (the report's side-by-side table).

    A phase runs from its marker (``"phase 2/3: practice (10 min)"``,
    :func:`vagus.core.plans.phase_of_marker`) to the next phase marker, the ``"plan end"``
    marker, or the end of the data.

    Attributes:
        name: the phase's name; ``number``: its position in the plan (1-based).
        start_s, end_s: its span (s, session clock).
        pacer: what the pacer did: "off", or the mode and rates seen (e.g. "fixed 6").
        beats: corrected NN in the phase.
        hr_bpm: 60000 / mean(NN) over the phase.
        rmssd_ms: sqrt(mean(ΔNN²)) over the phase's NN, no difference across a gap.
        coherence: mean coherence ratio of the 64 s spectra computed in the phase (their
            windows end in it; the first minute's reach back into the phase before).
        rsa_bpm: mean peak-to-trough HR of the clean breaths that ended in the phase.
        rsa_breaths: how many breaths that mean is over.
    """

    number: int
    name: str
    start_s: float
    end_s: float
    pacer: str
    beats: int
    hr_bpm: float | None
    rmssd_ms: float | None
    coherence: float | None
    rsa_bpm: float | None
    rsa_breaths: int

    @property
    def duration_s(self) -> float:
        """The phase's length (s)."""
        return self.end_s - self.start_s


def _pacer_text(r: SessionReplay, t0: float, t1: float) -> str:
    modes: list[str] = []
    last = None
    for pc in r.pacer_changes:
        if pc.t_s <= t0:
            last = pc
    seen = ([last] if last is not None else []) + [pc for pc in r.pacer_changes if t0 < pc.t_s < t1]
    for pc in seen:
        text = "off" if pc.rate_bpm is None else f"{pc.mode} {pc.rate_bpm:g}"
        if pc.mode in ("scan", "adaptive") and pc.rate_bpm is not None:
            text = f"{pc.mode} from {pc.rate_bpm:g}"
        if not modes or modes[-1] != text:
            modes.append(text)
    return ", ".join(modes) if modes else "off"


def plan_phases(replay: SessionReplay) -> tuple[PhaseStats, ...]:
    """The session plan's phases measured side by side (see :class:`PhaseStats`);
    empty when no phase marker is in the session."""
    r = replay
    starts: list[tuple[float, int, str]] = []
    ends: list[float] = []
    for m in r.markers:
        parsed = phase_of_marker(m.text)
        if parsed is not None:
            starts.append((m.t_s, parsed[0], parsed[2]))
        elif m.text == "plan end":
            ends.append(m.t_s)
    if not starts:
        return ()
    starts.sort()
    t_last = max([r.t_end_s] + [b.t_s for b in r.rsa])
    has_nn = np.isfinite(r.beat_nn_ms)
    t_nn, nn, seg = r.beat_t_s[has_nn], r.beat_nn_ms[has_nn], r.beat_segment[has_nn]
    out: list[PhaseStats] = []
    for k, (t0, number, name) in enumerate(starts):
        bounds = [t for t, _, _ in starts[k + 1 : k + 2]] + [e for e in ends if e > t0]
        t1 = min(bounds) if bounds else t_last
        if t1 <= t0:
            continue
        sel = (t_nn >= t0) & (t_nn < t1)
        x, g = nn[sel], seg[sel]
        d = np.diff(x)[np.diff(g) == 0] if x.size > 1 else np.empty(0)
        crs = [
            s.coherence_ratio
            for s in r.spectra
            if t0 <= s.t_s < t1 and s.coherence_ratio is not None
        ]
        breaths = [b for b in r.rsa if t0 < b.t_s <= t1]
        amp = _mean_rsa(breaths)
        out.append(
            PhaseStats(
                number=number,
                name=name,
                start_s=t0,
                end_s=t1,
                pacer=_pacer_text(r, t0, t1),
                beats=int(x.size),
                hr_bpm=60000.0 / float(x.mean()) if x.size else None,
                rmssd_ms=float(np.sqrt(np.mean(d * d))) if d.size else None,
                coherence=float(np.mean(crs)) if crs else None,
                rsa_bpm=amp,
                rsa_breaths=sum(1 for b in breaths if b.clean and b.amplitude_bpm is not None),
            )
        )
    return tuple(out)


def _unpaced_mask(r: SessionReplay, t_s: FloatArray) -> npt.NDArray[np.bool_]:
    """True where no pacer is set at ``t_s`` (the last change at or before it said off)."""
    if not r.pacer_changes:
        return np.ones(t_s.size, dtype=bool)
    change_t = np.asarray([p.t_s for p in r.pacer_changes], dtype=np.float64)
    off = np.asarray([p.rate_bpm is None for p in r.pacer_changes] + [True], dtype=bool)
    idx = np.searchsorted(change_t, t_s, side="right") - 1  # -1: before any change
    return np.asarray(off[idx], dtype=bool)  # off[-1] is the appended True


def _spectrum_interval(spectra: Sequence[Spectrum]) -> float:
    """The beat-time step between Spectrum events (5 s live), from their times."""
    if len(spectra) >= 2:
        steps = np.diff([s.t_s for s in spectra])
        steps = steps[steps > 0]
        if steps.size:
            return float(np.min(steps))
    return 5.0


def _contact_loss_s(r: SessionReplay) -> float:
    total = 0.0
    lost_at: float | None = None
    for c in r.contacts:
        if c.contact is False and lost_at is None:
            lost_at = c.t_s
        elif c.contact is not False and lost_at is not None:
            total += c.t_s - lost_at
            lost_at = None
    if lost_at is not None:
        total += max(0.0, r.t_end_s - lost_at)
    return total


# ------------------------------------------------------------------ progress rows


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """One session's trend values (None: not available for this session)."""

    session_id: str
    started_unix_s: float
    title: str
    participant: str
    duration_s: float | None
    beats: int | None
    resting_rmssd_ms: float | None
    rmssd_ms: float | None
    mean_rmssd_60s_ms: float | None
    mean_hr_bpm: float | None
    mean_coherence: float | None
    high_coherence_s: float | None
    high_coherence_pct: float | None
    artifact_pct: float | None
    resonance_rate_bpm: float | None
    cached: bool = False
    resonance_confidence: float | None = None
    rsa_mean_amplitude_bpm: float | None = None

    @property
    def date(self) -> str:
        """Start date (UTC, YYYY-MM-DD; "date out of range" for a stored time no calendar
        holds)."""
        when = unix_datetime(self.started_unix_s, _dt.UTC)
        return "date out of range" if when is None else when.strftime("%Y-%m-%d")
