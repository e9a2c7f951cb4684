"""The one replay: a stored session's input fed again, one pipeline per participant.

A session has one or more participants, each with its own source; its input records
(:mod:`vagus.store.base`) are stored in one order. Packet, gap and RR records carry the
participant whose source sent them; control records (markers, pacer changes) are
session-wide, stored once. Replaying feeds them, in the recorded order, to a
:class:`vagus.session.Session`, the same sans-I/O session the live runner drives (one
:class:`~vagus.core.pipeline.Pipeline` per participant, one pacer, the session clock:
the stored clock offsets, :attr:`~vagus.store.base.SessionInfo.clock_offsets`, are
given back to it), so live and replay share one code path. Participants never mix
(DESIGN.md "Concepts"), so a participant's events in a session of five are exactly
those of the same input recorded alone.

Each step (:class:`Replayed`) is one record and the session's events for it, each
tagged with its participant (None for the session-wide marker, pacer and
``pacer_state``). :meth:`Replayed.pipeline_events` gives one participant's stream as a
pipeline fed that participant's input alone gives it: its beats, metrics, spectra, gaps
and contact changes, and the markers and pacer changes (what summaries, exports and
reports are computed from).

Every command that replays uses this module: summaries (:mod:`vagus.store.recorder`),
``vagus replay``, ``vagus export``, ``vagus report`` and ``vagus progress``, ``vagus
show`` and the replay benchmark. A malformed packet is counted and skipped as live
(:attr:`Replayed.malformed`); other errors propagate.

Participant names: a session lists its participants (labels, which ``vagus edit
--participant`` may change afterwards); records keep the name they were recorded under.
:func:`participant_names` maps each label to its records' name
(:func:`~vagus.store.base.recorded_as`); records under a name no label claims are
replayed under that name, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vagus.core.events import Beat, Contact, Event, Gap, Marker, Metrics, PacerChange, Spectrum
from vagus.exceptions import InvalidInput, MalformedPacket
from vagus.session import Session, SessionEvent, check_participant_name
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    SessionInfo,
    Store,
    recorded_as,
)

__all__ = [
    "Replayed",
    "UnknownParticipant",
    "check_participant",
    "participant_names",
    "replay",
    "replay_items",
    "replay_records",
    "session_participants",
]

T = TypeVar("T")

#: The participant name of sessions recorded or imported without one.
DEFAULT_PARTICIPANT = "me"


class UnknownParticipant(InvalidInput):
    """A participant name the session does not have; the message lists those it has.

    Attributes:
        participants: the session's participants.
    """

    def __init__(self, message: str, participants: Sequence[str]) -> None:
        super().__init__(message)
        self.participants = tuple(participants)


@dataclass(frozen=True, slots=True)
class Replayed(Generic[T]):
    """One step of a replay: one input record fed to the session, and what came out.

    Attributes:
        record: the record fed; None for the end of input (the session's ``close()``:
            the last step, with the events still pending in the pipelines).
        participant: whose record it is (the session's label); None for a control
            record (session-wide: it reaches every participant's pipeline) and for the
            end of input.
        malformed: the record was a packet the pipeline rejected (skipped, as live).
        events: the session's events for this step, in order, each tagged with its
            participant (:class:`~vagus.session.SessionEvent`; None: session-wide).
        item: the input item the record came from (the record itself for
            :func:`replay_records`); None at the end of input.
        index: the item's position in the input (0-based; for progress), -1 at the end.
    """

    record: InputRecord | None
    participant: str | None
    malformed: bool
    events: list[SessionEvent]
    item: T | None
    index: int

    def pipeline_events(self, participant: str) -> list[Event]:
        """``participant``'s stream as a :class:`~vagus.core.pipeline.Pipeline` fed its
        input alone hands it out: its beats, metrics, spectra, gaps and contact changes,
        and the session-wide markers and pacer changes (what summaries, exports and
        reports are computed from). What the session computes beyond the pipeline (the
        pacer's ``pacer_state``, per-breath ``rsa``, the ``clock`` mapping) is in
        :attr:`events`, as live."""
        return [
            ev
            for who, ev in self.events
            if isinstance(ev, _PIPELINE_EVENTS if who == participant else _SESSION_WIDE)
            and (who == participant or who is None)
        ]


#: What a pipeline hands out (a participant's stream in :meth:`Replayed.pipeline_events`).
_PIPELINE_EVENTS = (Beat, Metrics, Spectrum, Gap, Contact, Marker, PacerChange)
#: The session-wide events a pipeline also hands out (each pipeline receives the controls).
_SESSION_WIDE = (Marker, PacerChange)


def participant_names(info: SessionInfo, recorded: Iterable[str]) -> dict[str, str]:
    """The session's participants: label -> the name their records carry, labels in the
    session's order; then any recorded name no label claims (as its own label).

    ``recorded``: the names the session's records carry
    (:meth:`~vagus.store.base.Store.recorded_participants`).
    """
    names_in_records = list(dict.fromkeys(recorded))
    labels = list(dict.fromkeys(info.participants)) or [DEFAULT_PARTICIPANT]
    out = {label: recorded_as(labels, label, names_in_records) for label in labels}
    claimed = set(out.values())
    for name in names_in_records:
        if name not in claimed and name not in out:
            out[name] = name
    return out


def session_participants(store: Store, info: SessionInfo) -> dict[str, str]:
    """:func:`participant_names` of a stored session."""
    return participant_names(info, store.recorded_participants(info.id))


def check_participant(info: SessionInfo, names: Mapping[str, str], participant: str) -> str:
    """``participant`` if the session has it, else :class:`UnknownParticipant` naming the
    session's participants (a clear error for ``--participant``)."""
    if participant in names:
        return participant
    listed = ", ".join(repr(p) for p in names)
    raise UnknownParticipant(
        f"session {info.id} has no participant {participant!r:.60}; its participants are "
        f"{listed}: pass one of them with --participant",
        tuple(names),
    )


def replay_items(
    items: Iterable[T],
    names: Mapping[str, str],
    record_of: Callable[[T], InputRecord],
    *,
    clock_offsets: Mapping[str, float] | None = None,
) -> Iterator[Replayed[T]]:
    """Replay the records of ``items`` (``record_of(item)``) through one
    :class:`~vagus.session.Session` of the participants in ``names``.

    Args:
        items: the input, in recorded order (records, or items that hold one: a paced
            replay's :class:`~vagus.sources.replay.Scheduled`).
        names: the participants to replay, label -> the name their records carry
            (:func:`participant_names`; a subset replays only those, as if they had
            been recorded alone). Records of other participants are skipped; control
            records reach every participant's pipeline.
        clock_offsets: per recorded name, the offset from its source clock to the
            session clock (:attr:`~vagus.store.base.SessionInfo.clock_offsets`); a
            participant without one is replayed on the times as stored.

    Yields:
        a :class:`Replayed` per record fed, in input order; then one end-of-input step.

    Raises:
        InvalidInput: a record no session accepts (values out of range, a pacer change
            the session refuses); the same error as live.
    """
    labels = list(names)
    by_recorded: dict[str, str] = {}
    for label, recorded in names.items():
        by_recorded.setdefault(recorded, label)
    offsets = {
        by_recorded[name]: offset
        for name, offset in (clock_offsets or {}).items()
        if name in by_recorded
    }
    for label in labels:
        try:
            check_participant_name(label)
        except InvalidInput as exc:
            # Stored before names were checked (an import's --participant of any text).
            raise InvalidInput(
                f"participant {label!r:.40} cannot be replayed: {exc}; relabel the "
                "session's first participant with `vagus edit ID --participant NAME`"
            ) from None
    session = Session(participants=labels, clock_offsets=offsets)
    for index, item in enumerate(items):
        record = record_of(item)
        if isinstance(record, ControlRecord):
            session.receive_control(record.event)
            yield Replayed(record, None, False, session.events_received(), item, index)
            continue
        who = by_recorded.get(record.participant)
        if who is None:
            continue
        ok = True
        try:
            if isinstance(record, PacketRecord):
                session.receive_packet(who, record.t_arrival_s, record.payload)
            elif isinstance(record, GapRecord):
                session.receive_gap(who, record.t_s, reason=record.reason)
            elif record.t_s is None:
                session.receive_rr(who, record.rr_ms)
            else:  # as receive_rr beat by beat, in bulk (test_session_beats.py)
                session.receive_beats(who, record.rr_ms, record.t_s)
        except MalformedPacket:
            ok = False
        yield Replayed(record, who, not ok, session.events_received(), item, index)
    session.close()
    yield Replayed(None, None, False, session.events_received(), None, -1)


def _same(record: InputRecord) -> InputRecord:
    return record


def replay_records(
    records: Iterable[InputRecord],
    names: Mapping[str, str],
    *,
    clock_offsets: Mapping[str, float] | None = None,
) -> Iterator[Replayed[InputRecord]]:
    """:func:`replay_items` over plain records (see there)."""
    return replay_items(records, names, _same, clock_offsets=clock_offsets)


def replay(
    store: Store, session: SessionInfo | str, *, participant: str | None = None
) -> Iterator[Replayed[InputRecord]]:
    """Replay a stored session: every participant, or only ``participant``.

    Only the records needed are read (that participant's and the control records);
    one participant is replayed as if recorded alone.

    Raises (at once, before the first step):
        SessionNotFound: no such session.
        UnknownParticipant: the session has no participant ``participant``.
    """
    info = store.get_session(session) if isinstance(session, str) else session
    names = session_participants(store, info)
    if participant is not None:
        names = {check_participant(info, names, participant): names[participant]}
    records = store.iter_input(info.id, participants=set(names.values()))
    return replay_records(records, names, clock_offsets=info.clock_offsets)
