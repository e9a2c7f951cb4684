"""Recording a live session, and the cached summary of a session, per participant.

:class:`Recorder` writes each input record to the store as it arrives and never lets a
store failure stop the live session: on a :class:`~vagus.exceptions.StoreError` (full
disk, read-only directory, ...) it stops writing, keeps the error and reports
``recording = False``; the caller goes on feeding the pipeline and says plainly that the
session is not being recorded.

:class:`RunningSummary` folds one participant's input records and pipeline events into
the few numbers shown by ``vagus sessions`` (mean HR, RMSSD, mean coherence, beats,
duration...); :class:`SessionSummaries` holds one per participant (participants are
never pooled: two people in one session are two summaries). :func:`session_summary`
returns a session's cached summary, recomputing it by replaying the raw record
(:mod:`vagus.store.replay`) when the cache is missing or stale (DESIGN.md: derived
values are a cache, never trusted over the raw record).

The cached summary (a JSON object, :data:`SUMMARY_VERSION` 3)::

    {"summary_version": 3, "input_records": N,      # all records of the session
     "participants": ["ann", "bob"],                # labels, in the session's order
     "by_participant": {"ann": {...}, "bob": {...}},  # RunningSummary.as_dict() each
     ...the first participant's values at the top level (mean_hr_bpm, rmssd_ms, ...)}

The top-level values are the first (default) participant's, as the report's and the
export's default participant, so readers of single-participant summaries keep working;
they are never a blend of several participants.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vagus.core.events import Beat, Event, Gap, Marker, Metrics, PacerChange, Spectrum
from vagus.core.metrics import MIN_SUMMARY_BEATS
from vagus.core.pipeline import Pipeline
from vagus.core.spectrum import HIGH_COHERENCE_RATIO
from vagus.exceptions import MalformedPacket, SessionNotFound, StoreError
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    SessionInfo,
    Store,
    feed,
)
from vagus.store.replay import Replayed, replay, replay_records, session_participants

__all__ = [
    "SUMMARY_VERSION",
    "Recorder",
    "RunningSummary",
    "SessionSummaries",
    "compute_summary",
    "feed_counting",
    "participant_summary",
    "relabelled_summary",
    "session_summary",
]

#: Bumped whenever the summary's definition (or the pipeline's output) changes, so
#: cached summaries are recomputed from the raw record. 2: no time-domain value from
#: fewer than :data:`~vagus.core.metrics.MIN_SUMMARY_BEATS` NN intervals. 3: one
#: summary per participant (``by_participant``); no figure pools participants.
SUMMARY_VERSION = 3


def feed_counting(pipeline: Pipeline, record: InputRecord) -> bool:
    """:func:`~vagus.store.base.feed` one record; False if it was a malformed packet.

    A malformed packet is skipped and counted by the caller, live and on replay alike,
    so both compute the same events.
    """
    try:
        feed(pipeline, record)
    except MalformedPacket:
        return False
    return True


class RunningSummary:
    """One participant's whole-session figures, folded from its input records (its own
    and the session's control records) and its pipeline's events as they arrive.

    Definitions (SCIENCE.md "Time domain", over the whole session):

    - ``mean_hr_bpm`` = 60000 / mean(NN) over all corrected NN intervals;
    - ``rmssd_ms`` = sqrt(mean(ΔNN²)), ΔNN only between adjacent NN beats of the same
      segment (never across a gap); ``sdnn_ms`` = std(NN, ddof=1);
    - ``mean_coherence`` = mean of the non-null coherence ratios of the 5 s spectra;
      ``high_coherence_pct`` = % of those ≥
      :data:`~vagus.core.spectrum.HIGH_COHERENCE_RATIO`;
    - ``beats`` = measured beats (inserted beats excluded); ``artifact_pct`` = % of them
      classified as artifacts; ``gaps`` and ``gap_s`` = gap count and summed known duration;
    - ``duration_s`` = span of the input's times (arrival and beat times, s).

    The time-domain values (mean HR, mean NN, RMSSD, SDNN) follow the rule of
    :func:`vagus.core.metrics.summarize` (``vagus analyze`` and reports): None from
    fewer than :data:`~vagus.core.metrics.MIN_SUMMARY_BEATS` NN intervals (README
    "Metrics": never a number from too little data).
    """

    def __init__(self) -> None:
        self.packets = 0
        self.malformed_packets = 0
        self.records = 0
        self.beats = 0
        self.artifacts = 0
        self.gaps = 0
        self.gap_s = 0.0
        self.markers = 0
        self.pacer_changes = 0
        self._nn_n = 0
        self._nn_sum = 0.0
        self._nn_sumsq = 0.0
        self._d2_sum = 0.0
        self._d_n = 0
        self._last_nn: float | None = None
        self._coh_sum = 0.0
        self._coh_n = 0
        self._coh_high = 0
        self._t_min = math.inf
        self._t_max = -math.inf

    def add_record(self, record: InputRecord, *, malformed: bool = False) -> None:
        """Count one input record (``malformed``: it was a packet the pipeline rejected)."""
        self.records += 1
        t: float | None
        if isinstance(record, PacketRecord):
            self.packets += 1
            if malformed:
                self.malformed_packets += 1
            t = record.t_arrival_s
        elif isinstance(record, GapRecord):
            t = record.t_s
        elif isinstance(record, ControlRecord):
            t = record.event.t_s
        else:
            t = record.t_s[-1] if record.t_s else None
            if record.t_s:
                self._span(record.t_s[0] - record.rr_ms[0] / 1000.0)
        if t is not None:
            self._span(t)

    def _span(self, t: float) -> None:
        if math.isfinite(t):
            self._t_min = min(self._t_min, t)
            self._t_max = max(self._t_max, t)

    def add_events(self, events: Iterable[Event]) -> None:
        """Fold pipeline events in."""
        for ev in events:
            if isinstance(ev, Beat):
                if not ev.inserted:
                    self.beats += 1
                    if ev.artifact is not None:
                        self.artifacts += 1
                    self._span(ev.t_s - ev.rr_ms / 1000.0)
                    self._span(ev.t_s)
                nn = ev.nn_ms
                if nn is None:
                    continue
                self._nn_n += 1
                self._nn_sum += nn
                self._nn_sumsq += nn * nn
                if self._last_nn is not None:
                    d = nn - self._last_nn
                    self._d2_sum += d * d
                    self._d_n += 1
                self._last_nn = nn
            elif isinstance(ev, Spectrum):
                if ev.coherence_ratio is not None:
                    self._coh_n += 1
                    self._coh_sum += ev.coherence_ratio
                    if ev.coherence_ratio >= HIGH_COHERENCE_RATIO:
                        self._coh_high += 1
            elif isinstance(ev, Gap):
                self.gaps += 1
                self._last_nn = None  # no ΔNN across a gap
                if ev.duration_s is not None:
                    self.gap_s += ev.duration_s
            elif isinstance(ev, Marker):
                self.markers += 1
            elif isinstance(ev, PacerChange):
                self.pacer_changes += 1
            elif isinstance(ev, Metrics):
                pass

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (None where there is too little data)."""
        n = self._nn_n
        enough = n >= MIN_SUMMARY_BEATS  # the one rule of vagus.core.metrics.summarize
        mean_nn = self._nn_sum / n if enough else None
        sdnn = None
        if enough and mean_nn is not None:
            var = (self._nn_sumsq - n * mean_nn * mean_nn) / (n - 1)
            sdnn = math.sqrt(var) if var > 0 else 0.0
        duration = self._t_max - self._t_min if self._t_max >= self._t_min else 0.0
        return {
            "summary_version": SUMMARY_VERSION,
            "input_records": self.records,
            "duration_s": duration,
            "packets": self.packets,
            "malformed_packets": self.malformed_packets,
            "beats": self.beats,
            "nn_beats": n,
            "artifact_pct": 100.0 * self.artifacts / self.beats if self.beats else None,
            "gaps": self.gaps,
            "gap_s": self.gap_s,
            "mean_hr_bpm": 60000.0 / mean_nn if mean_nn else None,
            "mean_nn_ms": mean_nn,
            "rmssd_ms": math.sqrt(self._d2_sum / self._d_n) if enough and self._d_n else None,
            "sdnn_ms": sdnn,
            "mean_coherence": self._coh_sum / self._coh_n if self._coh_n else None,
            "high_coherence_pct": 100.0 * self._coh_high / self._coh_n if self._coh_n else None,
            "spectra": self._coh_n,
            "markers": self.markers,
            "pacer_changes": self.pacer_changes,
        }


class SessionSummaries:
    """One :class:`RunningSummary` per participant of a session (never pooled).

    Fed from a replay (:meth:`add_step`) or, live, record by record and event by event
    (:meth:`add_record`, :meth:`add_events`; a control record or a session-wide event,
    participant None, counts for every participant, as each participant's pipeline
    receives it). :meth:`as_dict` is the cached form (module doc).

    Args:
        participants: the participants' labels, the first being the default one.
    """

    def __init__(self, participants: Sequence[str]) -> None:
        labels = list(dict.fromkeys(participants))
        if not labels:
            raise ValueError("a session has at least one participant")
        self.by_participant: dict[str, RunningSummary] = {p: RunningSummary() for p in labels}
        self.records = 0

    def _whose(self, participant: str | None) -> Iterable[RunningSummary]:
        if participant is None:
            return self.by_participant.values()
        return (self.by_participant[participant],)

    def add_record(
        self, participant: str | None, record: InputRecord, *, malformed: bool = False
    ) -> None:
        """Count one stored record of ``participant`` (None: a control record)."""
        self.records += 1
        for s in self._whose(None if isinstance(record, ControlRecord) else participant):
            s.add_record(record, malformed=malformed)

    def add_events(self, participant: str | None, events: Iterable[Event]) -> None:
        """Fold ``participant``'s events in (None: session-wide events, for everyone)."""
        events = list(events)
        for s in self._whose(participant):
            s.add_events(events)

    def add_step(self, step: Replayed[Any]) -> None:
        """Fold one step of :func:`vagus.store.replay.replay` in: its record counts for
        its participant (a control record for everyone), each event for its participant
        (a session-wide marker or pacer change for everyone; ``pacer_state`` and
        ``clock`` are not summarised)."""
        if step.record is not None:
            self.add_record(step.participant, step.record, malformed=step.malformed)
        per = self.by_participant
        for who, ev in step.events:
            if who is not None:
                summary = per.get(who)
                if summary is not None:
                    summary.add_events((ev,))
            elif isinstance(ev, Marker | PacerChange):
                for summary in per.values():
                    summary.add_events((ev,))

    @property
    def first(self) -> str:
        """The first (default) participant."""
        return next(iter(self.by_participant))

    def as_dict(self, input_records: int | None = None) -> dict[str, Any]:
        """The cached form (module doc); ``input_records``: the session's record count
        (default: the records counted here)."""
        per = {p: s.as_dict() for p, s in self.by_participant.items()}
        return {
            **per[self.first],
            "input_records": self.records if input_records is None else input_records,
            "participants": list(per),
            "by_participant": per,
        }


def compute_summary(
    records: Iterable[InputRecord], names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Replay ``records`` (no pacing), one pipeline per participant, and summarise.

    ``names``: the participants, label -> the name their records carry
    (:func:`vagus.store.replay.participant_names`); None: each name found in the
    records is a participant (in order of appearance; "me" when there is none).
    """
    if names is None:
        records = list(records)
        found = dict.fromkeys(r.participant for r in records if not isinstance(r, ControlRecord))
        names = {n: n for n in found} or {"me": "me"}
    summaries = SessionSummaries(list(names))
    for step in replay_records(records, names):
        summaries.add_step(step)
    return summaries.as_dict()


def participant_summary(summary: Mapping[str, Any], participant: str) -> dict[str, Any]:
    """One participant's figures from a session summary (:func:`session_summary`);
    empty when it has none (a summary that could not be computed)."""
    per = summary.get("by_participant")
    if isinstance(per, dict) and isinstance(per.get(participant), dict):
        return dict(per[participant])
    return {}


def relabelled_summary(summary: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
    """``summary`` with the participant ``old`` relabelled ``new`` (``vagus edit
    --participant``: the figures stay valid, only the label changes); None when the
    summary has no figures under ``old`` (nothing to carry over: it is recomputed)."""
    per = summary.get("by_participant")
    names = summary.get("participants")
    if not isinstance(per, dict) or old not in per or not isinstance(names, list):
        return None
    if new in per:
        return None
    return {
        **summary,
        "participants": [new if p == old else p for p in names],
        "by_participant": {(new if p == old else p): v for p, v in per.items()},
    }


#: The numeric fields of a summary (:meth:`RunningSummary.as_dict`): a cached summary
#: where one is not a number (or None) was not written by vagus and is recomputed.
_NUMERIC_FIELDS = (
    "duration_s",
    "beats",
    "nn_beats",
    "artifact_pct",
    "gaps",
    "gap_s",
    "mean_hr_bpm",
    "mean_nn_ms",
    "rmssd_ms",
    "sdnn_ms",
    "mean_coherence",
    "high_coherence_pct",
)

#: The keys :meth:`SessionSummaries.as_dict` writes; other keys of a stored summary
#: (the progress report's cache, a resonance rate) are kept when it is recomputed.
_SUMMARY_KEYS = frozenset(RunningSummary().as_dict()) | {"participants", "by_participant"}


def _numbers(values: Mapping[str, Any]) -> bool:
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in (values.get(k) for k in _NUMERIC_FIELDS)
    )


def _is_current(cached: dict[str, Any], input_records: int, participants: Sequence[str]) -> bool:
    """True if ``cached`` is a summary of this version over ``input_records`` records,
    with one entry per participant in ``participants``, every numeric field a number or
    None."""
    per = cached.get("by_participant")
    return (
        cached.get("summary_version") == SUMMARY_VERSION
        and cached.get("input_records") == input_records
        and cached.get("participants") == list(participants)
        and isinstance(per, dict)
        and set(per) == set(participants)
        and _numbers(cached)
        and all(isinstance(v, dict) and _numbers(v) for v in per.values())
    )


def session_summary(store: Store, info: SessionInfo, *, cache: bool = True) -> dict[str, Any]:
    """The session's summary, per participant: the cached one if current, else
    recomputed by replay (:func:`vagus.store.replay.replay`).

    The cache is current when it has this :data:`SUMMARY_VERSION`, was computed over
    as many input records as the session now holds, for the participants it now has
    (``vagus edit --participant`` renames one), and its figures are numbers (a summary
    edited by hand is not trusted). A recomputed summary is written back (``cache``)
    when possible, keeping the stored summary's other keys; a store that cannot be
    written is not an error here.

    Raises:
        StoreError: the record cannot be read, or cannot be replayed (values no
            pipeline accepts, stored before the readers checked them): the message names
            the session and the reason.
    """
    cached = info.summary
    n = store.input_count(info.id)
    names = session_participants(store, info)
    if _is_current(cached, n, list(names)):
        return cached
    try:
        summaries = SessionSummaries(list(names))
        for step in replay(store, info):
            summaries.add_step(step)
        fresh = summaries.as_dict(n)
    except (ArithmeticError, LookupError, ValueError, TypeError) as exc:
        # Values stored before the readers checked them (a beat time of 1e18 s...) may
        # break the replay; the session is still listed, with this reason.
        raise StoreError(
            f"session {info.id} cannot be replayed: its record holds values out of any real "
            f"range ({type(exc).__name__}: {exc}); export what you need or delete it: "
            f"vagus delete {info.id}"
        ) from exc
    if cache:
        kept = {k: v for k, v in cached.items() if k not in _SUMMARY_KEYS}
        with contextlib.suppress(StoreError):
            store.update_session(info.id, summary={**kept, **fresh})
    return fresh


class Recorder:
    """Writes a live session's input to the store; a store failure never stops the session.

    The session should be created with ``create_session(recording=True)``: :meth:`tick`
    then keeps its heartbeat fresh, so other processes see it as recording.

    Args:
        store: the store, or None when it could not even be opened.
        session_id: the session written to (None with no store).
        error: the error that prevented recording from the start, if any.
        started_unix_s: the session's start (Unix time, s), if known.

    Attributes:
        recording: True while records are being written.
        error: the :class:`StoreError` that stopped recording, if any.
        session_deleted: recording stopped because another process deleted the session
            (with all its records: nothing of it is kept).
        written: records handed to the store (the last second of them may be rolled
            back by a failure).
        committed: records known to be committed: all of them once :meth:`finish`
            succeeded; after a failure, what the store holds (the failed transaction
            rolled back), as counted by the store.
        lost_records: records not written because recording had stopped.
    """

    def __init__(
        self,
        store: Store | None,
        session_id: str | None,
        *,
        error: StoreError | None = None,
        started_unix_s: float | None = None,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.error = error
        self.started_unix_s = started_unix_s
        self.recording = store is not None and session_id is not None and error is None
        self.session_deleted = False
        self.written = 0
        self.committed = 0
        self.lost_records = 0

    def _failed(self, exc: StoreError) -> None:
        self.error = exc
        self.recording = False
        if isinstance(exc, SessionNotFound):
            # Deleted under us (the store names the session): its records went with it.
            self.session_deleted = True
            self.committed = 0
            return
        # The store rolled back what it had not committed: count what it holds now.
        if self.store is not None and self.session_id is not None:
            with contextlib.suppress(StoreError):
                self.committed = self.store.input_count(self.session_id)

    def write(self, record: InputRecord) -> None:
        """Append ``record`` (committed within ``commit_interval_s``)."""
        if not self.recording:
            self.lost_records += 1
            return
        assert self.store is not None and self.session_id is not None
        try:
            self.store.append(self.session_id, record)
        except StoreError as exc:
            self.lost_records += 1
            self._failed(exc)
            return
        self.written += 1

    def set_device_profile(self, profile_id: str) -> None:
        """The strap's device profile became known (or changed)."""
        if not self.recording:
            return
        assert self.store is not None and self.session_id is not None
        try:
            self.store.update_session(self.session_id, device_profile=profile_id)
        except StoreError as exc:
            self._failed(exc)

    def tick(self) -> None:
        """Call about every 0.1-0.5 s: commits when the commit interval has passed (in a
        quiet second too, refreshing the session's heartbeat)."""
        if not self.recording:
            return
        assert self.store is not None
        try:
            self.store.commit_if_due()
        except StoreError as exc:
            self._failed(exc)

    def finish(
        self, summary: dict[str, Any] | None = None, ended_unix_s: float | None = None
    ) -> None:
        """End the session (at ``ended_unix_s``, Unix s; None: now), store its summary and
        commit. Errors are kept, not raised."""
        if not self.recording:
            return
        assert self.store is not None and self.session_id is not None
        try:
            if summary is not None:
                self.store.update_session(self.session_id, summary=summary)
            self.store.end_session(self.session_id, ended_unix_s)  # commits everything
        except StoreError as exc:
            self._failed(exc)
        else:
            self.committed = self.written
