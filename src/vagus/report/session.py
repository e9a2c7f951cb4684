"""The session report: replay a stored session, summarise it, write one HTML file.

``vagus report ID`` runs :func:`write_session_report`, which

1. replays the session's input through the real :class:`~vagus.core.pipeline.Pipeline`
   (:func:`replay_session`: ``feed()`` each record, then ``close()``), exactly as
   ``vagus replay`` does, and collects the events into a :class:`SessionReplay`;
2. summarises it (:func:`summarize_replay`): our whole-session time- and frequency-domain
   values (:mod:`vagus.core.metrics`, SCIENCE.md definitions), session means of the
   real-time metrics, coherence, signal quality, and the paced-versus-unpaced spectrum;
3. runs the neurokit2 HRV battery on the corrected NN (:func:`hrv_battery`; neurokit2 is
   imported here only, lazily, never on the live path);
4. draws the figures (:mod:`vagus.report.plots`, matplotlib, imported lazily) and writes
   a single self-contained HTML file (:func:`render_session_html`): figures as inline
   base64 PNG, CSS inline, no external reference, page breaks between sections for print.

Every number in the report is labelled with its formula and window; a "Definitions"
section cites SCIENCE.md.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vagus.core.events import (
    ARTIFACT_CLASSES,
    Beat,
    Contact,
    Event,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    Spectrum,
)
from vagus.core.metrics import Summary, summarize
from vagus.core.spectrum import COHERENCE_WINDOW_S, POWER_FLOOR_MS2
from vagus.exceptions import InvalidInput, MalformedPacket
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    SessionInfo,
    Store,
    feed,
    recorded_as,
    unix_datetime,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HIGH_COHERENCE_THRESHOLD",
    "BatteryResult",
    "ProgressCallback",
    "SessionReplay",
    "SessionSummary",
    "SpectrumComparison",
    "hrv_battery",
    "render_session_html",
    "replay_records",
    "replay_session",
    "session_report_html",
    "summarize_replay",
    "write_session_report",
]

FloatArray = npt.NDArray[np.float64]

#: ``progress(stage, fraction)``: ``stage`` names the step ("replay", "battery", "plots"),
#: ``fraction`` is its completion in [0, 1].
ProgressCallback = Callable[[str, float], None]

#: Coherence ratio at or above which a 64 s window counts as "high coherence". This
#: threshold is OURS (a CR of 3 is a clear single peak: the peak holds 3x the power of
#: the rest of the spectrum); HeartMath's own level thresholds are proprietary.
HIGH_COHERENCE_THRESHOLD = 3.0

#: The neurokit2 nonlinear domain grows as N² (entropies, correlation dimension: 1000 NN
#: take ~3 s, 6000 NN ~3 min): above this many NN it runs on the first
#: ``NONLINEAR_MAX_NN`` NN of the longest contiguous segment (about 15 min at 65 bpm).
NONLINEAR_MAX_NN = 1000

#: Above this much NN time (s), neurokit2's frequency domain interpolates at 4 Hz (the
#: Task Force rate) instead of its default 100 Hz, which needs ~2 GB for 24 h.
FREQUENCY_DEFAULT_MAX_S = 7200.0

#: Peaks for neurokit2 are sample indices at this rate, built from cumulative NN.
BATTERY_SAMPLING_RATE_HZ = 1000

#: The physiological RR range (ms), as the artifact corrector's ``range`` class
#: (:class:`~vagus.core.artifacts.Lipponen2019` defaults, SCIENCE.md "Artifacts"). A
#: measured RR outside it (a strap's 0 ms or 63999 ms = 65535 ticks right after a
#: (re)connect) is no heartbeat: the report counts it, draws it at the tachogram's axis
#: edge and leaves it out of the "RR as measured" statistics.
RR_RANGE_MS = (250.0, 2500.0)


def _nothing(stage: str, fraction: float) -> None:
    """The default progress callback: report nothing."""


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
    the event's value was None).
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


def _records_for(records: Iterable[InputRecord], participant: str) -> Iterable[InputRecord]:
    """The records of one participant (control records belong to everybody)."""
    for rec in records:
        if isinstance(rec, ControlRecord) or rec.participant == participant:
            yield rec


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


def replay_records(
    info: SessionInfo,
    records: Sequence[InputRecord],
    *,
    participant: str | None = None,
    progress: ProgressCallback = _nothing,
) -> SessionReplay:
    """Replay ``records`` through a new :class:`~vagus.core.pipeline.Pipeline`.

    Each record goes through :func:`vagus.store.base.feed` as live; a malformed packet is
    counted and skipped (the live path skips it too). ``participant`` defaults to the
    session's first participant. A participant's records are found by the name they were
    recorded under (:func:`~vagus.store.base.recorded_as`: a relabelled first
    participant keeps its records).
    """
    from vagus.core.pipeline import Pipeline

    who = participant if participant is not None else (info.participants or ("me",))[0]
    if participant is not None and participant not in info.participants:
        raise InvalidInput(
            f"session {info.id} has no participant {participant!r}; "
            f"its participants are {', '.join(info.participants) or '(none)'}"
        )
    out = SessionReplay(info=info, participant=who)
    pipeline = Pipeline()
    events: list[Event] = []
    n = len(records)
    step = max(1, n // 200)
    first_t: float | None = None
    progress("replay", 0.0)
    names = {r.participant for r in records if not isinstance(r, ControlRecord)}
    for i, rec in enumerate(_records_for(records, recorded_as(info.participants, who, names))):
        out.records += 1
        if isinstance(rec, PacketRecord):
            out.packets += 1
        if first_t is None:
            first_t = _record_time(rec)
        try:
            feed(pipeline, rec)
        except MalformedPacket:
            out.malformed_packets += 1
        events.extend(pipeline.events_received())
        if i % step == 0:
            progress("replay", min(1.0, i / max(n, 1)))
    pipeline.close()
    events.extend(pipeline.events_received())
    progress("replay", 1.0)
    _collect(out, events, first_t)
    return out


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
    progress: ProgressCallback = _nothing,
) -> SessionReplay:
    """Replay a stored session (see :func:`replay_records`).

    Raises:
        SessionNotFound: no such session (the store's error).
        InvalidInput: the session has no such participant.
    """
    info = store.get_session(session_id)
    records = list(store.iter_input(info.id))
    return replay_records(info, records, participant=participant, progress=progress)


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
        high_coherence_s: time (s) in windows with CR >= :data:`HIGH_COHERENCE_THRESHOLD`
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
    n_high = int(np.count_nonzero(crs >= HIGH_COHERENCE_THRESHOLD))
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
    )


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


# --------------------------------------------------------------------------- battery


@dataclass(frozen=True, slots=True)
class BatteryResult:
    """The neurokit2 HRV battery on the corrected NN.

    Attributes:
        values: domain ("time", "frequency", "nonlinear") -> {neurokit2 column: value}.
        errors: domain -> the error message, for each domain that failed.
        notes: what neurokit2 was given, and the warnings it raised (recorded, not shown
            on stderr).
        version: neurokit2's version, or None when it is not installed.
    """

    values: dict[str, dict[str, float]]
    errors: dict[str, str]
    notes: tuple[str, ...]
    version: str | None


def _battery_input(nn: FloatArray, seg: npt.NDArray[np.int64], t: FloatArray) -> tuple[Any, str]:
    """What to give neurokit2, and a sentence saying what it is."""
    if seg.size == 0 or seg[0] == seg[-1]:
        # One contiguous stretch: peaks (sample indices at 1000 Hz) from cumulative NN.
        peaks = np.concatenate([[0.0], np.cumsum(nn)]) * (BATTERY_SAMPLING_RATE_HZ / 1000.0)
        return (
            np.round(peaks).astype(np.int64),
            f"{nn.size} corrected NN as R-peak sample indices at {BATTERY_SAMPLING_RATE_HZ} Hz "
            "(cumulative NN, first peak at 0).",
        )
    # Gaps: intervals with their times, so that neurokit2 sees the missing stretches
    # (its time domain takes no successive difference across them).
    t_nn = np.empty_like(nn)
    start = 0.0
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        first = idx[0]
        if first > 0:
            # At least 1 s of missing time, so that neurokit2 sees the break.
            start = max(start + nn[first] / 1000.0 + 1.0, float(t[first]) - float(t[0]))
        else:
            start = nn[first] / 1000.0
        t_nn[idx] = start + (np.cumsum(nn[idx]) - nn[first]) / 1000.0
        start = float(t_nn[idx[-1]])
    return (
        {"RRI": nn, "RRI_Time": t_nn},
        f"{nn.size} corrected NN in {np.unique(seg).size} contiguous stretches, as intervals "
        "with times (neurokit2 skips successive differences across the gaps in the time "
        "domain; its frequency domain interpolates across them, so read it with care).",
    )


def hrv_battery(replay: SessionReplay, progress: ProgressCallback = _nothing) -> BatteryResult:
    """Run neurokit2's ``hrv_time``, ``hrv_frequency`` and ``hrv_nonlinear`` on the NN.

    Each domain runs on its own; a failure is caught and reported per domain. neurokit2's
    warnings are recorded (``warnings.catch_warnings`` around each call) and listed in
    the report. The frequency domain runs with ``normalize=False``, so ``HRV_LF``,
    ``HRV_HF`` etc. are absolute powers in ms² (neurokit2's default divides the PSD by
    its maximum). When its total power ``HRV_TP`` is below
    :data:`vagus.core.spectrum.POWER_FLOOR_MS2` (a flat series: only round-off), every
    frequency value is null (NaN, shown "–"), as our own spectra are.
    """
    has_nn = np.isfinite(replay.beat_nn_ms)
    nn = replay.beat_nn_ms[has_nn]
    seg = replay.beat_segment[has_nn]
    t = replay.beat_t_s[has_nn]
    progress("battery", 0.0)
    try:
        import neurokit2 as nk
    except ImportError:
        return BatteryResult(
            {},
            {"all": "neurokit2 cannot be imported: reinstall vagus (python3 -m pip install vagus)"},
            (),
            None,
        )
    values: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    notes: list[str] = []
    if nn.size < 10:
        return BatteryResult(
            {}, {"all": f"only {nn.size} NN intervals: too few for the battery"}, (), nk.__version__
        )
    peaks, described = _battery_input(nn, seg, t)
    notes.append("Input: " + described)
    nonlinear_input = peaks
    if nn.size > NONLINEAR_MAX_NN:
        seg_ids, counts = np.unique(seg, return_counts=True)
        longest = seg_ids[int(np.argmax(counts))]
        part = nn[seg == longest][:NONLINEAR_MAX_NN]
        nonlinear_input = np.round(np.concatenate([[0.0], np.cumsum(part)])).astype(np.int64)
        notes.append(
            f"Nonlinear domain: on the first {part.size} NN of the longest contiguous stretch "
            f"(the whole series has {nn.size}; several entropies grow as N²), "
            f"about {part.sum() / 60000.0:.0f} min."
        )
    freq_kwargs: dict[str, Any] = {"normalize": False}
    if float(nn.sum()) / 1000.0 > FREQUENCY_DEFAULT_MAX_S:
        freq_kwargs["interpolation_rate"] = 4
        notes.append(
            "Frequency domain: interpolated at 4 Hz (neurokit2's default of 100 Hz needs "
            f"gigabytes for recordings over {FREQUENCY_DEFAULT_MAX_S / 3600:g} h)."
        )
    domains: list[tuple[str, Callable[..., pd.DataFrame], Any, dict[str, Any]]] = [
        ("time", nk.hrv_time, peaks, {}),
        ("frequency", nk.hrv_frequency, peaks, freq_kwargs),
        ("nonlinear", nk.hrv_nonlinear, nonlinear_input, {}),
    ]
    seen: set[str] = set()
    for i, (name, func, arg, kwargs) in enumerate(domains):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = func(arg, sampling_rate=BATTERY_SAMPLING_RATE_HZ, **kwargs)
                row = df.iloc[0]
                values[name] = {
                    str(k): float(v) for k, v in row.items() if isinstance(v, int | float)
                }
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        if name == "frequency" and name in values:
            freq = values[name]
            total = freq.get("HRV_TP", math.nan)
            if not math.isfinite(total):  # TP needs VLF, which a short series lacks
                bands = [freq.get(k, math.nan) for k in ("HRV_VLF", "HRV_LF", "HRV_HF")]
                finite = [v for v in bands if math.isfinite(v)]
                total = sum(finite) if finite else math.nan
            if total < POWER_FLOOR_MS2:
                values[name] = {k: math.nan for k in values[name]}
                notes.append(
                    f"Frequency domain: total power {total:.3g} ms² is below the power "
                    f"floor of {POWER_FLOOR_MS2:g} ms² (a flat series: round-off only), so "
                    "every frequency value is null, as in our own spectra."
                )
        for w in caught:
            msg = f"{name}: {w.category.__name__}: {str(w.message).strip()[:300]}"
            if msg not in seen:
                seen.add(msg)
                notes.append("neurokit2 warned, " + msg)
        progress("battery", (i + 1) / len(domains))
    return BatteryResult(values, errors, tuple(notes), nk.__version__)


# ------------------------------------------------------------------------------ HTML

_CSS = """
:root { --fg:#1d2329; --muted:#5b6670; --line:#d5dbe0; --accent:#2a6f97; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--accent); padding-bottom: 3px;
     margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.sub, .muted, figcaption, .note { color: var(--muted); }
figure { margin: 12px 0; }
figure img, figure svg { width: 100%; height: auto; }
figcaption { font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f2f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.warn { background: #fff5e0; border-left: 4px solid #e0a030; padding: 6px 10px; }
.battery { columns: 2; column-gap: 24px; }
/* One domain (its heading and its table) is one unit: never split across columns or
   pages, so no heading is stranded at the foot of a column with its table in the next. */
.battery > div { display: inline-block; width: 100%; break-inside: avoid;
                 page-break-inside: avoid; }
.battery h3 { margin-top: 0; }
.battery table { break-inside: avoid; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
dl dt { font-weight: 600; margin-top: 6px; }
dl dd { margin-left: 16px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section { break-before: page; page-break-before: always; }
  section.first { break-before: auto; page-break-before: auto; }
  figure, table, .card { break-inside: avoid; page-break-inside: avoid; }
  .battery { columns: 2; }
  h2 { margin-top: 0; }
}
"""


def _fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip() if unit else text


def _clock(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS``) of a duration or a time from the session start."""
    s = round(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _when(unix_s: float | None) -> str:
    if unix_s is None:
        return "–"
    when = unix_datetime(unix_s, _dt.UTC)  # None: a stored time no calendar holds
    return "date out of range" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], num_cols: Sequence[int]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for r in rows:
        cells = [
            f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
            for i, c in enumerate(r)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _gap_duration_text(gap: Gap) -> str:
    if gap.duration_s is None:
        return "unknown (no beat after it)"
    if gap.duration_s <= 0:
        return f"unknown (reported {_fmt(gap.duration_s, 1, 's')})"
    return _fmt(gap.duration_s, 1, "s")


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="v">{value}</div><div class="k">{label}</div></div>'


#: neurokit2 columns whose unit is ms (the rest: stated per column below or unitless).
_NK_MS = {
    "MeanNN",
    "SDNN",
    "RMSSD",
    "SDSD",
    "MedianNN",
    "MadNN",
    "IQRNN",
    "Prc20NN",
    "Prc80NN",
    "MinNN",
    "MaxNN",
    "TINN",
    "SD1",
    "SD2",
    "SD1a",
    "SD1d",
    "SD2a",
    "SD2d",
    "SDNNa",
    "SDNNd",
}
_NK_PCT = {"pNN50", "pNN20"}


def _nk_unit(domain: str, key: str) -> str:
    k = key.removeprefix("HRV_")
    if k in _NK_MS or k.startswith(("SDANN", "SDNNI")):
        return "ms"
    if k in _NK_PCT:
        return "% (÷N)"
    if domain == "frequency" and k in {"ULF", "VLF", "LF", "HF", "VHF", "TP"}:
        return "ms² (absolute power)"
    if domain == "frequency" and k in {"LFn", "HFn"}:
        return "normalised: band power / total power"
    if domain == "frequency" and k == "LnHF":
        return "ln(ms²)"
    if k == "S":
        return "ms²"
    return ""


def _battery_html(battery: BatteryResult) -> str:
    parts: list[str] = []
    version = f"neurokit2 {battery.version}" if battery.version else "neurokit2"
    parts.append(
        f'<p class="note">Computed by {_e(version)} (<code>hrv_time</code>, '
        "<code>hrv_frequency</code>, <code>hrv_nonlinear</code>, default settings) on the "
        "corrected NN. Its band powers (<code>HRV_LF</code>, <code>HRV_HF</code>, …) are "
        "absolute powers in ms² (<code>normalize=False</code>; neurokit2's default divides "
        "the PSD by its maximum), from its own Welch settings over the whole series, so "
        "they differ from our mean of 5-min windows; <code>LFn</code>/<code>HFn</code> are "
        "band power / total power. Its pNN50 divides by N, ours by the number of "
        "differences (N−1).</p>"
    )
    for domain, err in battery.errors.items():
        parts.append(f'<p class="warn">neurokit2 {_e(domain)} domain failed: {_e(err)}</p>')
    tables = []
    for domain, vals in battery.values.items():
        rows = [
            (_e(k.removeprefix("HRV_")), _fmt(v, 4 if abs(v) < 10 else 2), _e(_nk_unit(domain, k)))
            for k, v in vals.items()
        ]
        tables.append(
            f"<div><h3>{_e(domain.capitalize())} domain</h3>"
            + _table(("neurokit2 index", "value", "unit"), rows, (1,))
            + "</div>"
        )
    parts.append('<div class="battery">' + "".join(tables) + "</div>")
    if battery.notes:
        parts.append(
            '<ul class="note">' + "".join(f"<li>{_e(n)}</li>" for n in battery.notes) + "</ul>"
        )
    return "".join(parts)


def _definitions_html() -> str:
    items = [
        (
            "Beat times",
            "Beat time = previous beat time + RR (cumulative RR chain, anchored to the "
            "arrival clock at the start and after every gap), never packet arrival times "
            "(SCIENCE.md, “Beats and time”).",
        ),
        (
            "Artifacts and NN",
            "Lipponen & Tarvainen 2019 (J Med Eng Technol 43:173), made causal with a "
            "two-beat decision delay: ectopic, long and short beats are replaced by "
            "interpolation, a missed beat is split in two, an extra beat is merged with its "
            "neighbour; ‘range’ = outside 250–2500 ms. NN = the corrected intervals. "
            "“RR as measured” = the intervals as sent, without the out-of-range ones.",
        ),
        (
            "Gap",
            "A break in the beat chain (link lost, dropout, contact lost, clock jump, an "
            "RR too long to be a beat). No beat is invented; no successive difference is "
            "taken across a gap. Duration: from the last beat before it to the start of "
            "the first interval after it; a source that reports a duration ≤ 0 (it "
            "re-anchored its chain before the gap's start) gets “unknown”, a line in the "
            "figures instead of a span, and is left out of the total gap time.",
        ),
        ("Mean NN, HR", "mean(NN) in ms; HR = 60000 / mean(NN) in beats/min."),
        ("SDNN", "std(NN, ddof=1), ms (Task Force 1996)."),
        (
            "RMSSD",
            "sqrt(mean(ΔNN²)), ms, ΔNN = NN[i] − NN[i−1] only between adjacent beats with no "
            "gap between them. Real time: over the last 30 s and 60 s of beat time; whole "
            "session: over all NN.",
        ),
        ("SDSD", "std(ΔNN, ddof=1), ms (pyhrv uses the std of |ΔNN| instead)."),
        ("pNN50", "100 × #(|ΔNN| > 50 ms) / #ΔNN, % (neurokit2 divides by N instead)."),
        (
            "LF, HF (Welch)",
            "NN resampled at 4 Hz by a natural cubic spline through the beats (linear "
            "interpolation would bias HF at 0.25 Hz low by 23–33 % at 75–60 bpm), Welch "
            "with Hann segments of 64 s (256 samples), 50 % overlap, linear detrend; PSD "
            "in ms²/Hz; band power by trapezoid "
            "integration. VLF 0.0033–0.04 Hz, LF 0.04–0.15 Hz, HF 0.15–0.40 Hz (Task Force "
            "1996). Whole session: mean over back-to-back 5-min windows within contiguous "
            "stretches; live: last 120 s. At 6 breaths/min the breathing (RSA) is at 0.1 Hz, "
            "inside LF: HF is not the vagal proxy during slow paced breathing.",
        ),
        (
            "Coherence ratio (CR)",
            "Our implementation of the published HeartMath formula (McCraty & Childre "
            "2010; McCraty & Zayas 2014), not HeartMath's proprietary score: last 64 s of NN "
            "→ 2 Hz linear interpolation → linear detrend → Hann window → periodogram "
            "zero-padded to 1024 points → peak f_p in 0.04–0.26 Hz → peak power P over "
            "|f − f_p| ≤ 0.015 Hz → total power T over 0.0033–0.4 Hz → CR = P / (T − P). "
            "Recomputed every 5 s of beat time. The peak frequency × 60 is the breathing "
            "rhythm seen in the heart rate (breaths/min).",
        ),
        (
            "High coherence",
            f"A 64 s window with CR ≥ {HIGH_COHERENCE_THRESHOLD:g}. This threshold is ours "
            "(the peak then holds three times the power of the rest of the spectrum); "
            "HeartMath's level thresholds are proprietary and not used. Time in high "
            "coherence = number of such windows × 5 s.",
        ),
        (
            "Paced / unpaced spectrum",
            "Mean of the 64 s coherence spectra (ms²/Hz) over the windows during which a "
            "pacer was set for the whole 64 s, and over those with no pacer at all; windows "
            "that straddle switching the pacer on or off are left out.",
        ),
        (
            "Resting RMSSD",
            "RMSSD (whole-stretch formula) over the NN recorded while no pacer was set "
            "(at least 60 s of them); no difference is taken across a gap or a pacer switch.",
        ),
        (
            "Artifact %",
            "Measured beats of a class / all measured beats × 100 (beats inserted by the "
            "corrector are not measured beats). Real-time artifact rate: the same over the "
            "last 60 s.",
        ),
        (
            "Contact loss",
            "Time from a strap's “no skin contact” report to its next “contact” report "
            "(only for straps that report contact); RR sent without contact is not used.",
        ),
    ]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return (
        f"<dl>{body}</dl><p class='note'>Formulas pinned in the project's SCIENCE.md; "
        "references: Task Force of the ESC and NASPE 1996 (Circulation 93:1043); Lipponen & "
        "Tarvainen 2019; McCraty & Childre 2010 (Altern Ther Health Med 16:10).</p>"
    )


def render_session_html(
    replay: SessionReplay,
    summary: SessionSummary,
    battery: BatteryResult,
    figures: dict[str, str],
    *,
    generated_unix_s: float | None = None,
) -> str:
    """The report as one self-contained HTML document.

    ``figures`` maps a figure name ("tachogram", "hr_rmssd", "coherence", "spectrum")
    to an HTML fragment (an inline ``<img src="data:image/png;base64,...">``); a missing
    figure is replaced by a note.
    """
    from vagus import __version__

    r, s, info = replay, summary, replay.info
    title = info.title or f"Session {info.id}"

    def fig(name: str, caption: str) -> str:
        body = figures.get(name)
        if body is None:
            return f'<p class="note">(No {name} figure: not enough data.)</p>'
        return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"

    rt = s.realtime_means
    nn, rr = s.nn, s.rr
    cards = "".join(
        [
            _card("duration (first to last event)", _clock(s.duration_s)),
            _card("beats measured", f"{r.beats_measured:,}"),
            _card("mean HR, whole session (60000/mean NN)", _fmt(nn.hr_bpm, 1, "bpm")),
            _card("RMSSD, whole session (corrected NN)", _fmt(nn.rmssd_ms, 1, "ms")),
            _card("mean RMSSD 60 s (real time)", _fmt(rt["rmssd_60s_ms"], 1, "ms")),
            _card("mean coherence ratio (64 s windows)", _fmt(rt["coherence_ratio"], 2)),
            _card(
                f"time in high coherence (CR ≥ {HIGH_COHERENCE_THRESHOLD:g}, ours)",
                _clock(s.high_coherence_s),
            ),
            _card("artifacts (% of measured beats)", _fmt(s.artifact_total_pct, 1, "%")),
            _card(
                "gaps in the beat chain (total known time; see Signal quality)",
                f"{s.gap_count} · {_clock(s.gap_total_s)}",
            ),
        ]
    )

    # --- our numbers beside the real-time means
    def pair(label: str, formula: str, v_nn: float | None, v_rr: float | None, d: int) -> str:
        return (
            f"<tr><td>{_e(label)}</td><td class='num'>{_fmt(v_nn, d)}</td>"
            f"<td class='num'>{_fmt(v_rr, d)}</td><td>{_e(formula)}</td></tr>"
        )

    ours = "".join(
        [
            pair("Mean NN (ms)", "mean(NN)", nn.mean_nn_ms, rr.mean_nn_ms, 1),
            pair("HR (bpm)", "60000 / mean NN", nn.hr_bpm, rr.hr_bpm, 1),
            pair("SDNN (ms)", "std(NN, ddof=1)", nn.sdnn_ms, rr.sdnn_ms, 2),
            pair("RMSSD (ms)", "sqrt(mean ΔNN²), no Δ across gaps", nn.rmssd_ms, rr.rmssd_ms, 3),
            pair("SDSD (ms)", "std(ΔNN, ddof=1)", nn.sdsd_ms, rr.sdsd_ms, 2),
            pair("pNN50 (%)", "100·#(|ΔNN|>50 ms)/#ΔNN", nn.pnn50_pct, rr.pnn50_pct, 2),
            pair(
                "VLF (ms²)",
                "Welch, 0.0033–0.04 Hz, mean of 5-min windows",
                nn.frequency.vlf_ms2,
                rr.frequency.vlf_ms2,
                1,
            ),
            pair(
                "LF (ms²)",
                "Welch, 0.04–0.15 Hz, mean of 5-min windows",
                nn.frequency.lf_ms2,
                rr.frequency.lf_ms2,
                1,
            ),
            pair(
                "HF (0.15–0.40 Hz) (ms²)",
                "Welch, 0.15–0.40 Hz, mean of 5-min windows",
                nn.frequency.hf_ms2,
                rr.frequency.hf_ms2,
                1,
            ),
            pair("LF/HF", "LF / HF (ms² / ms²)", nn.frequency.lf_hf, rr.frequency.lf_hf, 2),
        ]
    )
    ours_table = (
        "<table><thead><tr><th>whole session</th><th>corrected NN</th>"
        "<th>RR as measured</th><th>formula / window</th></tr></thead>"
        f"<tbody>{ours}</tbody></table>"
        f"<p class='note'>Welch windows averaged: {nn.frequency.welch_windows} (NN)"
        + (
            " (no 5-min stretch without a gap: no VLF, LF, HF). "
            if nn.frequency.welch_windows == 0
            else ". "
        )
        + "“RR as measured” applies the same formulas to the intervals the strap sent "
        "(or the file held), without artifact correction, to show what the correction "
        f"changed; it leaves out the {len(s.out_of_range_rr_ms):,} out-of-range value(s) "
        f"(outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms, see Signal quality) and takes "
        "no difference across one.</p>"
    )
    realtime_rows = [
        ("HR (bpm)", "60000 / mean NN over the last 10 s", rt["hr_bpm"], 1),
        (
            "RMSSD 30 s (ms)",
            "sqrt(mean ΔNN²), no Δ across gaps, last 30 s of beat time",
            rt["rmssd_30s_ms"],
            1,
        ),
        (
            "RMSSD 60 s (ms)",
            "sqrt(mean ΔNN²), no Δ across gaps, last 60 s of beat time",
            rt["rmssd_60s_ms"],
            1,
        ),
        ("SDNN 60 s (ms)", "std(NN, ddof=1), last 60 s", rt["sdnn_60s_ms"], 1),
        ("pNN50 60 s (%)", "100·#(|ΔNN|>50 ms)/#ΔNN, last 60 s", rt["pnn50_60s"], 1),
        (
            "artifact rate 60 s (%)",
            "artifacts / measured beats, last 60 s",
            rt["artifact_rate_60s"],
            2,
        ),
        (
            "coherence ratio",
            "64 s windows every 5 s (ours, see Definitions)",
            rt["coherence_ratio"],
            2,
        ),
        (
            "peak frequency (breaths/min)",
            "highest peak in 0.04–0.26 Hz × 60, 64 s windows",
            None if rt["peak_hz"] is None else rt["peak_hz"] * 60.0,
            2,
        ),
    ]
    realtime_table = _table(
        ("real-time metric (session mean)", "mean", "window / formula"),
        [(_e(a), _fmt(v, d), _e(b)) for a, b, v, d in realtime_rows],
        (1,),
    ) + (
        "<p class='note'>Mean over every beat's (or every 5-s spectrum's) value once its "
        "window held enough data (75 % coverage, ≥ 5 values).</p>"
    )
    # --- signal quality
    q_rows = [
        (
            _e(cls),
            f"{s.artifacts.get(cls, 0):,}",
            _fmt(s.artifact_pct.get(cls, 0.0), 2, "%"),
        )
        for cls in ARTIFACT_CLASSES
    ]
    q_rows.append(
        (
            "<b>all artifacts</b>",
            f"{sum(s.artifacts.values()):,}",
            _fmt(s.artifact_total_pct, 2, "%"),
        )
    )
    reasons = ", ".join(f"{_e(k)} × {v}" for k, v in sorted(s.gap_reasons.items())) or "none"
    contact = (
        _clock(s.contact_loss_s)
        if s.contact_reported
        else "not reported (the strap does not report skin contact)"
    )
    gap_rows = [
        (
            _clock(g.t_s - r.t0_s),
            _gap_duration_text(g),
            _e(g.reason),
        )
        for g in r.gaps
    ]
    oor = s.out_of_range_rr_ms
    if oor:
        shown = ", ".join(f"{v:,.0f}" for v in sorted(set(oor))[:6])
        oor_text = (
            f"{s.out_of_range_low:,} below {RR_RANGE_MS[0]:g} ms, {s.out_of_range_high:,} "
            f"above {RR_RANGE_MS[1]:g} ms (values: {shown} ms); not heartbeats (typically "
            "the first packets after a strap (re)connects): left out of “RR as measured”, "
            "drawn at the tachogram's axis edge, classed ‘range’ above"
        )
    else:
        oor_text = f"none outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms"
    unmeasured = (
        f"; {s.unmeasured_gaps} with a reported duration ≤ 0 (not summed; drawn as a line)"
        if s.unmeasured_gaps
        else ""
    )
    quality = (
        _table(("artifact class", "beats", "% of measured beats"), q_rows, (1, 2))
        + "<table><tbody>"
        + f"<tr><td>gaps in the beat chain</td><td class='num'>{s.gap_count}</td>"
        f"<td>{reasons}</td></tr>"
        + f"<tr><td>total gap time (known durations)</td><td class='num'>"
        f"{_fmt(s.gap_total_s, 1, 's')}</td><td>{s.open_gaps} gap(s) without an end"
        f"{unmeasured}</td></tr>"
        + f"<tr><td>out-of-range RR (outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms)</td>"
        f"<td class='num'>{len(oor):,}</td><td>{_e(oor_text)}</td></tr>"
        + f"<tr><td>skin-contact loss</td><td class='num'>{contact}</td><td></td></tr>"
        + f"<tr><td>packets / malformed packets</td><td class='num'>{r.packets:,} / "
        f"{r.malformed_packets:,}</td><td>malformed packets are skipped, as live</td></tr>"
        + "</tbody></table>"
        + (
            "<h3>Gaps</h3>" + _table(("at (from start)", "duration", "reason"), gap_rows, (1,))
            if gap_rows
            else ""
        )
    )
    # --- events (markers and pacer)
    ev_rows: list[tuple[float, str, str]] = []
    for i, m in enumerate(r.markers, 1):
        ev_rows.append((m.t_s, f"marker [{i}]", _e(m.text)))
    for p in r.pacer_changes:
        what = (
            "pacer off"
            if p.rate_bpm is None
            else f"pacer {p.rate_bpm:g} breaths/min, inhale {100 * p.inhale_fraction:.0f} %"
        )
        ev_rows.append((p.t_s, "pacer", _e(what)))
    ev_rows.sort(key=lambda x: x[0])
    events_html = (
        _table(
            ("at (from start)", "event", "text"),
            [(_clock(t - r.t0_s), k, v) for t, k, v in ev_rows],
            (),
        )
        if ev_rows
        else "<p class='note'>No markers and no pacer changes in this session.</p>"
    )
    # --- spectrum text
    cmp_ = s.spectrum
    if not cmp_.has_pacer:
        spec_note = (
            "This session has no pacer: the figure shows the whole-session spectrum "
            f"(mean of {cmp_.n_unpaced} 64 s windows)."
        )
    else:
        rates = ", ".join(f"{x:g}" for x in cmp_.pacer_rates) or "–"
        spec_note = (
            f"Paced: mean of {cmp_.n_paced} 64 s windows (pacer rates {rates} breaths/min; "
            f"dotted lines at the pacer frequencies); unpaced: mean of {cmp_.n_unpaced} "
            f"windows; {cmp_.straddling} windows straddling a pacer switch left out."
        )
    paced_min = _clock(s.paced_s)
    rest_min = _clock(s.resting_s)
    header = (
        f"<h1>{_e(title)}</h1><p class='sub'>Session <code>{_e(info.id)}</code> · "
        f"participant {_e(r.participant)} · started {_when(info.started_unix_s)} · "
        f"source {_e(info.source)} · device profile {_e(info.device_profile)}"
        + (f" · tags {_e(', '.join(info.tags))}" if info.tags else "")
        + "</p>"
        + (f"<p>{_e(info.notes)}</p>" if info.notes else "")
    )
    fig_tachogram = fig(
        "tachogram",
        "RR as measured (grey) and corrected NN (blue) against time from the start. "
        "Artifacts are marked by class; shaded spans are gaps (no beats, none invented; a "
        "solid line where the gap's duration is unknown), hatched spans are skin-contact "
        "loss; dashed lines are markers [n] (see the table). The interval axis is clipped "
        f"to the physiological {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms: out-of-range RR "
        "are black triangles on the top (too long) or bottom (too short) edge, labelled "
        "with their value.",
    )
    fig_hr = fig(
        "hr_rmssd",
        "Top: HR (60000 / mean NN over the last 10 s). Bottom: RMSSD over the last 30 s "
        "and 60 s of beat time (ΔNN only between adjacent beats with no gap). Shaded: gaps.",
    )
    fig_coherence = fig(
        "coherence",
        "Top: coherence ratio of the last 64 s every 5 s (our implementation of the "
        "published formula; dotted line: our high-coherence threshold CR = "
        f"{HIGH_COHERENCE_THRESHOLD:g}). Bottom: pacer rate (step line) and the spectral "
        "peak frequency × 60 (dots: the rhythm seen in the heart rate), breaths/min.",
    )
    generated = _when(generated_unix_s) if generated_unix_s is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · vagus report</title>
<style>{_CSS}</style></head>
<body>
<section class="first" id="summary">
{header}
<div class="grid">{cards}</div>
<p class="note">Replayed from the raw record through the same pipeline as live (vagus
{_e(__version__)}). Times (M:SS or H:MM:SS) count from the session's first data. Paced time
{paced_min}, unpaced (resting) time {rest_min}; resting RMSSD
{_fmt(s.resting_rmssd_ms, 1, "ms")} (RMSSD of the NN while no pacer was set).</p>
<h3>Markers and pacer</h3>
{events_html}
</section>
<section id="tachogram"><h2>Tachogram</h2>
{fig_tachogram}
</section>
<section id="hr-rmssd"><h2>Heart rate and RMSSD over time</h2>
{fig_hr}
</section>
<section id="coherence"><h2>Coherence and breathing rate over time</h2>
{fig_coherence}
</section>
<section id="spectrum"><h2>Spectrum: paced against unpaced</h2>
{fig("spectrum", _e(spec_note) + " Bands: VLF 0.0033–0.04, LF 0.04–0.15, HF 0.15–0.40 Hz.")}
</section>
<section id="numbers"><h2>Summary: our metrics</h2>
{ours_table}
<h3>Real-time metrics, session means</h3>
{realtime_table}
</section>
<section id="battery"><h2>neurokit2 HRV battery (corrected NN)</h2>
{_battery_html(battery)}
</section>
<section id="quality"><h2>Signal quality</h2>
{quality}
</section>
<section id="definitions"><h2>Definitions</h2>
{_definitions_html()}
<p class="note">Report written by vagus {_e(__version__)} {generated}.</p>
</section>
</body></html>
"""


def session_report_html(
    replay: SessionReplay,
    *,
    progress: ProgressCallback = _nothing,
    generated_unix_s: float | None = None,
) -> tuple[str, SessionSummary]:
    """Summarise, run the battery, draw the figures and render the HTML of a replay."""
    from vagus.report import plots

    summary = summarize_replay(replay)
    battery = hrv_battery(replay, progress=progress)
    progress("plots", 0.0)
    figures = plots.session_figures(replay, summary, progress=progress)
    progress("plots", 1.0)
    doc = render_session_html(replay, summary, battery, figures, generated_unix_s=generated_unix_s)
    return doc, summary


def write_session_report(
    store: Store,
    session_id: str,
    out_path: Path | str | None = None,
    *,
    participant: str | None = None,
    progress: ProgressCallback = _nothing,
) -> tuple[Path, SessionSummary]:
    """Replay a stored session and write its HTML report.

    Args:
        out_path: the HTML file; default ``vagus-report-<id>.html`` in the current folder.

    Returns:
        (the file written, the session's summary).

    Raises:
        WriteError: the file cannot be written (a missing folder, a directory, a full
            disk); the target is left as it was (:mod:`vagus.files`).
    """
    import time

    from vagus.files import check_target, write_text

    if out_path is not None:
        check_target(out_path)  # a missing folder or a directory: say so before replaying
    replay = replay_session(store, session_id, participant=participant, progress=progress)
    doc, summary = session_report_html(replay, progress=progress, generated_unix_s=time.time())
    path = Path(out_path) if out_path is not None else Path(f"vagus-report-{replay.info.id}.html")
    write_text(path, doc)  # atomic: a failure or Ctrl-C leaves the target as it was
    return path, summary
