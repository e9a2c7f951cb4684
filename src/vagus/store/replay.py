"""The one replay: a stored session's input fed again, one pipeline per participant.

A session has one or more participants, each with its own source; its input records
(:mod:`vagus.store.base`) are stored in one order. Packet, gap and RR records carry the
participant whose source sent them; control records (markers, pacer changes) are
session-wide, stored once. Replaying gives each participant its own
:class:`~vagus.core.pipeline.Pipeline`, fed exactly what the live path fed it: that
participant's records, and every control record, in the recorded order. Participants
never mix (DESIGN.md "Concepts": a session is one pacer and N participants), so a
participant's events in a session of five are exactly those of the same input
recorded alone.

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

from vagus.core.events import Event
from vagus.core.pipeline import Pipeline
from vagus.exceptions import InvalidInput, MalformedPacket
from vagus.store.base import ControlRecord, InputRecord, SessionInfo, Store, feed, recorded_as

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
    """One step of a replay: one record fed to one participant's pipeline.

    Attributes:
        participant: the participant (the session's label for it).
        record: the record fed; None for the end of input (the pipeline's ``close()``,
            the last step of each participant). A control record gives one step per
            participant (each pipeline receives it).
        malformed: the record was a packet the pipeline rejected (skipped, as live).
        events: the events the participant's pipeline produced for this step.
        item: the input item the record came from (the record itself for
            :func:`replay_records`); None at the end of input.
        index: the item's position in the input (0-based; for progress), -1 at the end.
    """

    participant: str
    record: InputRecord | None
    malformed: bool
    events: list[Event]
    item: T | None
    index: int


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
        f"session {info.id} has no participant {participant!r}; its participants are "
        f"{listed}: pass one of them with --participant",
        tuple(names),
    )


class _Pipelines:
    """One Pipeline per participant, fed as the live path feeds them.

    The seam where :class:`vagus.session.Session` takes over: it holds the same per
    participant pipelines behind ``receive_*(participant, ...)``.
    """

    def __init__(self, labels: Iterable[str]) -> None:
        self._pipelines = {label: Pipeline() for label in labels}

    @property
    def labels(self) -> list[str]:
        return list(self._pipelines)

    def feed(self, label: str, record: InputRecord) -> tuple[bool, list[Event]]:
        """Feed one record of ``label``; (False if it was a malformed packet, events)."""
        pipeline = self._pipelines[label]
        try:
            feed(pipeline, record)
        except MalformedPacket:
            return False, pipeline.events_received()
        return True, pipeline.events_received()

    def close(self, label: str) -> list[Event]:
        pipeline = self._pipelines[label]
        pipeline.close()
        return pipeline.events_received()


def replay_items(
    items: Iterable[T],
    names: Mapping[str, str],
    record_of: Callable[[T], InputRecord],
) -> Iterator[Replayed[T]]:
    """Replay the records of ``items`` (``record_of(item)``), one pipeline per participant.

    Args:
        items: the input, in recorded order (records, or items that hold one: a paced
            replay's :class:`~vagus.sources.replay.Scheduled`).
        names: the participants to replay, label -> the name their records carry
            (:func:`participant_names`; a subset replays only those). Records of other
            participants are skipped; control records reach every pipeline.

    Yields:
        a :class:`Replayed` per record and participant fed, in input order; then, after
        the last item, one end-of-input step per participant (in ``names`` order) with
        the events of its pipeline's ``close()``.

    Raises:
        InvalidInput: a record no pipeline accepts (values out of range); the same
            error as live.
    """
    by_recorded: dict[str, str] = {}
    for label, recorded in names.items():
        by_recorded.setdefault(recorded, label)
    pipelines = _Pipelines(names)
    labels = pipelines.labels
    for index, item in enumerate(items):
        record = record_of(item)
        if isinstance(record, ControlRecord):
            for label in labels:
                ok, events = pipelines.feed(label, record)
                yield Replayed(label, record, not ok, events, item, index)
            continue
        label_or_none = by_recorded.get(record.participant)
        if label_or_none is None:
            continue
        ok, events = pipelines.feed(label_or_none, record)
        yield Replayed(label_or_none, record, not ok, events, item, index)
    for label in labels:
        yield Replayed(label, None, False, pipelines.close(label), None, -1)


def _same(record: InputRecord) -> InputRecord:
    return record


def replay_records(
    records: Iterable[InputRecord], names: Mapping[str, str]
) -> Iterator[Replayed[InputRecord]]:
    """:func:`replay_items` over plain records (see there)."""
    return replay_items(records, names, _same)


def replay(
    store: Store, session: SessionInfo | str, *, participant: str | None = None
) -> Iterator[Replayed[InputRecord]]:
    """Replay a stored session: every participant, or only ``participant``.

    Only the records needed are read (that participant's and the control records).

    Raises (at once, before the first step):
        SessionNotFound: no such session.
        UnknownParticipant: the session has no participant ``participant``.
    """
    info = store.get_session(session) if isinstance(session, str) else session
    names = session_participants(store, info)
    if participant is not None:
        names = {check_participant(info, names, participant): names[participant]}
    records = store.iter_input(info.id, participants=set(names.values()))
    return replay_records(records, names)
