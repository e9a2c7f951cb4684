"""The storage interface and the records a session is made of.

A session's input is an ordered sequence of :data:`InputRecord`:

- :class:`PacketRecord`: one raw 0x2A37 payload with its arrival time (live capture);
- :class:`GapRecord`: the source reported a link loss at ``t_s``;
- :class:`ControlRecord`: a control event (marker, pacer change) at ``t_s``;
- :class:`RRRecord`: imported RR intervals (ms), with beat times when the file has them.

:func:`feed` hands one record to a :class:`~vagus.core.pipeline.Pipeline`, exactly as
the live path did. Packet, gap and RR records carry the participant whose source sent
them; control records are session-wide. Replaying a session (one pipeline per
participant, control records to each) is :mod:`vagus.store.replay`, the one replay.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vagus.core.events import ControlEvent
from vagus.exceptions import InvalidInput, StoreError

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline

__all__ = [
    "RECORDING_STALE_S",
    "SESSION_ID_MAX_CHARS",
    "ControlRecord",
    "GapRecord",
    "InputRecord",
    "MalformedSession",
    "PacketRecord",
    "RRRecord",
    "SessionInfo",
    "Store",
    "check_session_id",
    "feed",
    "recorded_as",
    "unix_datetime",
]


#: A session without an end whose recorder wrote less than this long ago (s) is being
#: recorded; an older one is interrupted (its recorder was killed or lost power). The
#: recorder writes at least every second (``commit_interval_s``), so 10 s leaves room for
#: a slow disk or a busy machine; after a ``kill -9`` the session shows as recording for
#: at most this long.
RECORDING_STALE_S = 10.0

#: The longest session id (or id prefix) a command accepts. Ids vagus draws are 8 hex
#: digits; the rule leaves room for ids of other stores without letting a pasted
#: paragraph reach a database query.
SESSION_ID_MAX_CHARS = 64
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]+")


def check_session_id(text: str) -> str:
    """``text`` if it can be a session id or a prefix of one, else InvalidInput.

    The rule: 1 to :data:`SESSION_ID_MAX_CHARS` characters, each an ASCII letter, a
    digit, ``-`` or ``_`` (ids are short and URL-safe). Checked before any query.
    """
    if not text:
        raise InvalidInput("a session id must not be empty; `vagus sessions` lists them")
    if len(text) > SESSION_ID_MAX_CHARS:
        raise InvalidInput(
            f"a session id has at most {SESSION_ID_MAX_CHARS} characters, not {len(text)} "
            f"({text[:12]!r}...); `vagus sessions` lists them"
        )
    if not _SESSION_ID.fullmatch(text):
        bad = next(c for c in text if not _SESSION_ID.fullmatch(c))
        raise InvalidInput(
            f"{text!r} is not a session id: ids are letters, digits, '-' and '_' "
            f"(it has {bad!r}); `vagus sessions` lists them"
        )
    return text


def unix_datetime(unix_s: float | None, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """``unix_s`` (Unix time, s) as an aware datetime in ``tz`` (None: this machine's zone),
    or None when it is no date a datetime can hold (not finite, before year 1 or after
    9999: e.g. a start read from microsecond stamps as if they were milliseconds).

    A stored session may hold such a value (imported before readers checked dates);
    callers show it as out of range instead of failing.
    """
    if unix_s is None or isinstance(unix_s, bool) or not isinstance(unix_s, int | float):
        return None
    if not math.isfinite(unix_s):
        return None
    try:
        when = dt.datetime.fromtimestamp(unix_s, dt.UTC)
        return when.astimezone(tz)
    except (OverflowError, ValueError, OSError):
        return None


class MalformedSession(StoreError):
    """A session row the store cannot read as a session: a column of the wrong type or
    form (a store edited by hand, or damaged). Names the session and the column.

    Attributes:
        session_id: the session's id as stored.
        column: the column at fault (``records`` for one of its input records).
    """

    def __init__(self, message: str, *, session_id: str, column: str) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.column = column


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session's metadata.

    Attributes:
        id: the session id (short, URL-safe, unique).
        started_unix_s: start (Unix time, s): the wall clock when the recording began.
        ended_unix_s: end (Unix time, s), None while recording (or after a crash). A
            simulated session's end is on the simulated timeline: ``started_unix_s``
            plus the simulated seconds it ran (whatever ``--speed`` it ran at).
        title: free text.
        participants: participant names; the first is the default one.
        device_profile: id of the strap's device profile ("generic", "polar_h10", …).
        source: "ble", "sim", or "import:<format>".
        tags: free tags.
        notes: free text.
        summary: cached derived values (mean HR, RMSSD, coherence, beats, duration_s…);
            a cache, never trusted over the raw record.
        heartbeat_unix_s: when its recorder last wrote (Unix time, s; refreshed at every
            commit, at least every second while recording); None if never recorded live.
        recording: True while a recorder is writing it: no end, and a heartbeat less
            than :data:`RECORDING_STALE_S` old when the store read it.
        content_sha256: for an imported session, the SHA-256 (hex) of the imported
            file's bytes, so that importing the same file again is recognised; None for
            recorded sessions and for sessions imported before it was kept.
        clock_offsets: per participant (as its records carry it), the offset (s) from
            the clock its records' times are on to the session clock (session time =
            stored time + offset), which a replay applies. Only for records stored on
            their source clocks: the live runner stores session-clock times and leaves
            this empty (as are sessions recorded before it was kept): replayed as stored.
    """

    id: str
    started_unix_s: float
    ended_unix_s: float | None = None
    title: str = ""
    participants: tuple[str, ...] = ("me",)
    device_profile: str = "generic"
    source: str = "ble"
    tags: tuple[str, ...] = ()
    notes: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    heartbeat_unix_s: float | None = None
    recording: bool = False
    content_sha256: str | None = None
    clock_offsets: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``"ended"``, ``"recording"`` (a recorder is writing it now) or ``"interrupted"``
        (it never ended: its recorder was killed, crashed or lost power)."""
        if self.ended_unix_s is not None:
            return "ended"
        return "recording" if self.recording else "interrupted"

    def labels_json(self, participants: Sequence[str] | None = None) -> dict[str, Any]:
        """The session's labels as its JSON forms write them, in this order: ``title``,
        ``participants`` (``participants``, default all of them), ``device_profile``,
        ``source``, ``tags``, ``notes``. One definition for ``vagus sessions/show --json``
        (:func:`vagus.cli.sessions.session_json`) and the JSON export
        (:func:`vagus.formats.export.session_document`)."""
        return {
            "title": self.title,
            "participants": list(self.participants if participants is None else participants),
            "device_profile": self.device_profile,
            "source": self.source,
            "tags": list(self.tags),
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """A raw Heart Rate Measurement payload with its arrival time (source clock, s)."""

    t_arrival_s: float
    payload: bytes
    participant: str = "me"


@dataclass(frozen=True, slots=True)
class GapRecord:
    """The source reported the link lost at ``t_s``."""

    t_s: float
    reason: str = "link_lost"
    participant: str = "me"


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A control event (marker or pacer change): for the whole session, stored once,
    reaching every participant's pipeline on replay (it carries no participant)."""

    event: ControlEvent


@dataclass(frozen=True, slots=True)
class RRRecord:
    """Imported RR intervals: values in ms, optional beat times (s) of the same length."""

    rr_ms: tuple[float, ...]
    t_s: tuple[float, ...] | None = None
    participant: str = "me"


InputRecord = PacketRecord | GapRecord | ControlRecord | RRRecord


def feed(pipeline: Pipeline, record: InputRecord) -> None:
    """Hand one stored record to the pipeline, exactly as the live path did.

    A malformed packet raises :class:`~vagus.exceptions.MalformedPacket` as it did live;
    callers that replay count and skip it the same way the live path does.
    """
    if isinstance(record, PacketRecord):
        pipeline.receive_packet(record.t_arrival_s, record.payload)
    elif isinstance(record, GapRecord):
        pipeline.receive_gap(record.t_s, reason=record.reason)
    elif isinstance(record, ControlRecord):
        pipeline.receive_control(record.event)
    elif record.t_s is None:
        pipeline.receive_rr(record.rr_ms)
    else:
        for rr, t in zip(record.rr_ms, record.t_s, strict=True):
            pipeline.receive_rr(rr, t_s=t)


def recorded_as(participants: Sequence[str], who: str, recorded: Collection[str]) -> str:
    """The participant name the records of the session participant ``who`` carry.

    Records keep the participant name they were recorded or imported under; a session's
    ``participants`` are labels that may be changed afterwards (``vagus edit
    --participant``) without rewriting any record. So: a participant's records are those
    recorded under its own name; and when no record carries the name of the session's
    *first* participant (it was renamed), its records are those recorded under the one
    name that the session does not list (``recorded``: the names found in the session's
    records). With no such name, or several (ambiguous), ``who`` is returned as is.

    Example: a session recorded without ``--participant`` (records and session "me"),
    then relabelled "ann": ``recorded_as(("ann",), "ann", {"me"}) == "me"``.
    """
    if who in recorded or not participants or who != participants[0]:
        return who
    unlisted = set(recorded).difference(participants)
    return unlisted.pop() if len(unlisted) == 1 else who


class Store(Protocol):
    """Where sessions live. The SQLite backend is the embedded default.

    Writes are buffered and committed at least every second (``commit_interval_s``) and
    on :meth:`close`; a crash loses at most the last second.

    A store opened for reading only (:attr:`read_only`; a read-only directory or mount)
    reads as usual; every write raises :class:`~vagus.exceptions.StoreError` saying so.
    """

    @property
    def location(self) -> str:
        """Where the store is, for messages (the SQLite file's path)."""
        ...

    @property
    def read_only(self) -> bool:
        """True when the store was opened for reading only."""
        ...

    @property
    def read_only_reason(self) -> str:
        """Why the store is read-only, as a sentence for a note ("" when writable)."""
        ...

    def create_session(
        self,
        *,
        title: str = "",
        participants: Sequence[str] = ("me",),
        device_profile: str = "generic",
        source: str = "ble",
        started_unix_s: float | None = None,
        tags: Sequence[str] = (),
        notes: str = "",
        recording: bool = False,
    ) -> SessionInfo:
        """Create and commit a new session.

        ``recording``: this store is about to write the session live. Until
        :meth:`end_session` (or :meth:`close`), every commit refreshes its heartbeat,
        and :meth:`commit_if_due` does so in a quiet second too, so other processes see
        it as recording (:attr:`SessionInfo.recording`) and do not delete it.
        """
        ...

    def import_session(
        self,
        records: Iterable[InputRecord],
        *,
        started_unix_s: float,
        ended_unix_s: float,
        title: str = "",
        participants: Sequence[str] = ("me",),
        device_profile: str = "generic",
        source: str = "import",
        tags: Sequence[str] = (),
        notes: str = "",
        summary: dict[str, Any] | None = None,
        content_sha256: str | None = None,
        unique_content: bool = False,
    ) -> SessionInfo:
        """Store a whole, ended session and its records in one transaction (imports).

        All of it or nothing: an error, a crash or a ``kill -9`` part way leaves no
        trace of it. ``content_sha256``: the SHA-256 (hex) of the imported file's bytes,
        kept so :meth:`find_imports` recognises the same file imported again;
        ``unique_content``: refuse (InvalidInput) if a session with that hash is stored,
        checked within the import's transaction.
        """
        ...

    def find_imports(self, content_sha256: str) -> list[SessionInfo]:
        """The sessions imported from a file with this SHA-256 (hex), oldest first."""
        ...

    def malformed_sessions(self) -> list[MalformedSession]:
        """The integrity check: every session row (and record) that cannot be read as
        one, as the error reading it gives (empty: the store is sound).

        :meth:`get_session` and :meth:`list_sessions` apply the same per-row check, so
        what this calls malformed is exactly what every reading command refuses to show;
        commands that write labels or sessions (``import``, ``edit``) run it first and
        refuse to write into a store that is not sound.
        """
        ...

    def append(self, session_id: str, record: InputRecord) -> None:
        """Append one input record (committed within a second)."""
        ...

    def append_many(self, session_id: str, records: Sequence[InputRecord]) -> None:
        """Append records in one transaction (imports: all or nothing)."""
        ...

    def set_clock_offset(self, session_id: str, participant: str, offset_s: float) -> None:
        """Keep the offset (s) from ``participant``'s source clock to the session clock
        (:attr:`SessionInfo.clock_offsets`); committed with the records."""
        ...

    def end_session(self, session_id: str, ended_unix_s: float | None = None) -> None: ...

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = None,
        notes: str | None = None,
        tags: Sequence[str] | None = None,
        summary: dict[str, Any] | None = None,
        device_profile: str | None = None,
        participants: Sequence[str] | None = None,
    ) -> SessionInfo: ...

    def get_session(self, session_id: str) -> SessionInfo:
        """Raises SessionNotFound (accepts a unique prefix of the id), InvalidInput for
        text that cannot be an id (:func:`check_session_id`), and MalformedSession for a
        row that cannot be read as a session."""
        ...

    def list_sessions(self, *, skip_malformed: bool = False) -> list[SessionInfo]:
        """All sessions, oldest first. A malformed row raises MalformedSession, or is
        left out with ``skip_malformed`` (:meth:`malformed_sessions` lists those)."""
        ...

    def iter_input(
        self, session_id: str, *, participants: Collection[str] | None = None
    ) -> Iterator[InputRecord]:
        """The session's input records in recorded order.

        ``participants``: only the records recorded under these names (as records
        carry them: :meth:`recorded_participants`), and every control record (control
        records belong to the whole session); None: every record.
        """
        ...

    def recorded_participants(self, session_id: str) -> list[str]:
        """The participant names the session's packet, gap and RR records carry, in
        the order they first appear (control records carry none)."""
        ...

    def input_count(self, session_id: str) -> int:
        """How many input records the session holds (a cache key for its summary)."""
        ...

    def delete_session(self, session_id: str) -> None:
        """Delete the session and its records.

        Raises:
            StoreError: another process is recording the session right now
                (:attr:`SessionInfo.recording`); a store may delete a session it is
                recording itself.
        """
        ...

    def commit(self) -> None: ...

    def commit_if_due(self) -> None:
        """Commit if ``commit_interval_s`` has passed since the last commit (call from a timer).

        While the store records a session (``create_session(recording=True)``) this
        also refreshes its heartbeat when no record came in that second.
        """
        ...

    def close(self) -> None: ...
