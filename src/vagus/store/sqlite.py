"""The embedded session store: one SQLite file in WAL mode.

Schema (version :data:`SCHEMA_VERSION`; every change is a new function appended to
:data:`MIGRATIONS`, applied in order on open, each in its own transaction)::

    schema_version(version)                      one row: the schema version of the file
    sessions(id, started_unix_s, ended_unix_s, title, participants JSON, device_profile,
             source, tags JSON, notes, summary JSON,
             heartbeat_unix_s,                   (version 2) when its recorder last wrote
             content_sha256,                     (version 3) SHA-256 of an imported file
             clock_offsets JSON)                 (version 4) participant -> session clock
                                                 minus its source clock (s)
    records(seq, session_id, kind, t_s, participant, data BLOB, times BLOB, text)

``records`` holds every input record of every session in one table, so that one
``seq`` (the SQLite rowid, increasing) is the order in which records were appended
across record kinds; :meth:`SqliteStore.iter_input` returns them in that order. Per kind:

======  ===========  ==================================  =========================================
kind    record       data / times                        t_s / text
======  ===========  ==================================  =========================================
1       packet       the exact 0x2A37 payload bytes      arrival time (s) / -
2       gap          -                                   time of the link loss (s) / reason
3       control      -                                   event time (s) / the event's JSON
4       rr           rr_ms as little-endian float64;     time of the last beat or NULL / -
                     beat times (s) as float64 or NULL
======  ===========  ==================================  =========================================

Imported RR is stored as one row per :class:`~vagus.store.base.RRRecord` with the values
packed in a BLOB (8 bytes per beat), so a 24 h Holter record (about 10⁵ beats) is written
and read back in milliseconds. Views ``packets``, ``gaps``, ``control_events`` and
``rr_chunks`` show each kind on its own for people reading the file with ``sqlite3``.

Durability (DESIGN.md "Nothing lost"): ``journal_mode=WAL`` and ``synchronous=FULL``;
:meth:`SqliteStore.append` buffers rows in an open transaction and commits once
``commit_interval_s`` (1 s) has passed since the last commit, so a crash, a ``kill -9``
or a power cut loses at most the last second. Long-running writers should also call
:meth:`SqliteStore.commit_if_due` from a timer so a quiet second is committed too.

Recording or interrupted: a session created with ``recording=True`` gets its
``heartbeat_unix_s`` refreshed at every commit (and by :meth:`SqliteStore.commit_if_due`
in a quiet second) until it is ended. A session without an end whose heartbeat is less
than :data:`~vagus.store.base.RECORDING_STALE_S` old reads back as recording (other
processes may not delete it); an older one, or one never recorded live, as interrupted.

Every session row is checked as it is read (:meth:`SqliteStore.get_session`,
:meth:`SqliteStore.list_sessions`): a column of the wrong type or form (a store edited
by hand: ``participants = 'null'``, tags that are not a list...) is a
:class:`~vagus.store.base.MalformedSession` naming the session and the column, never a
TypeError; :meth:`SqliteStore.malformed_sessions` runs the same check over the whole
store (the integrity check writers run first). The cached ``summary`` is only a cache:
one that is not a JSON object reads as empty and is recomputed.

Read-only stores (a read-only directory or mount, a file without write permission): the
file is opened with ``mode=ro``; where even the WAL side files (``-wal``, ``-shm``)
cannot be created, with ``immutable=1``, which reads the main file as it is on disk
(changes still in ``-wal`` are not seen). :attr:`SqliteStore.read_only_reason` says which.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vagus.core.events import Marker, PacerChange, event_from_json
from vagus.exceptions import InvalidInput, SessionNotFound, StoreError
from vagus.store.base import (
    RECORDING_STALE_S,
    ControlRecord,
    GapRecord,
    InputRecord,
    MalformedSession,
    PacketRecord,
    RRRecord,
    SessionInfo,
    check_session_id,
)

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]

#: ``PRAGMA application_id`` of a vagus store (ASCII "vags"), marks the file as ours.
APPLICATION_ID = 0x76616773

KIND_PACKET = 1
KIND_GAP = 2
KIND_CONTROL = 3
KIND_RR = 4

_SQLITE_HEADER = b"SQLite format 3\x00"
_F64 = np.dtype("<f8")
_FETCH_ROWS = 2048


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    """Version 1: sessions, records (all kinds, one global order) and per-kind views."""
    # One execute per statement: executescript() would COMMIT the migration's transaction.
    for statement in _V1_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


_V1_SCHEMA = """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            started_unix_s REAL NOT NULL,
            ended_unix_s REAL,
            title TEXT NOT NULL DEFAULT '',
            participants TEXT NOT NULL DEFAULT '["me"]',
            device_profile TEXT NOT NULL DEFAULT 'generic',
            source TEXT NOT NULL DEFAULT 'ble',
            tags TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            kind INTEGER NOT NULL,
            t_s REAL,
            participant TEXT NOT NULL DEFAULT 'me',
            data BLOB,
            times BLOB,
            text TEXT
        );
        CREATE INDEX records_by_session ON records(session_id, seq);
        CREATE VIEW packets AS
            SELECT seq, session_id, t_s AS t_arrival_s, participant, data AS payload
            FROM records WHERE kind = 1;
        CREATE VIEW gaps AS
            SELECT seq, session_id, t_s, participant, text AS reason
            FROM records WHERE kind = 2;
        CREATE VIEW control_events AS
            SELECT seq, session_id, t_s, text AS event_json
            FROM records WHERE kind = 3;
        CREATE VIEW rr_chunks AS
            SELECT seq, session_id, participant, length(data) / 8 AS beats,
                   data AS rr_ms_f64, times AS t_s_f64
            FROM records WHERE kind = 4;
"""


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Version 2: ``sessions.heartbeat_unix_s``, when the session's recorder last wrote.

    It tells a session being recorded (recent heartbeat, no end) from an interrupted one
    (old or no heartbeat, no end). Sessions of version 1 have none: interrupted or ended.
    """
    conn.execute("ALTER TABLE sessions ADD COLUMN heartbeat_unix_s REAL")


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Version 3: ``sessions.content_sha256``, the SHA-256 (hex) of an imported file's
    bytes, so importing the same file again is recognised (indexed for that look-up).

    Sessions of version 2 have none: they are never matched.
    """
    conn.execute("ALTER TABLE sessions ADD COLUMN content_sha256 TEXT")
    conn.execute("CREATE INDEX sessions_by_content ON sessions(content_sha256)")


def _migrate_to_4(conn: sqlite3.Connection) -> None:
    """Version 4: ``sessions.clock_offsets``, a JSON object mapping each participant (as
    its records carry it) to the offset (s) from its source clock to the session clock
    (session time = source time + offset), set at the participant's first input, so a
    replay maps each participant's times exactly as the live session did.

    Sessions of version 3 have none (``{}``): their participants' times are replayed
    on their source clocks, as they always were.
    """
    conn.execute("ALTER TABLE sessions ADD COLUMN clock_offsets TEXT NOT NULL DEFAULT '{}'")


#: Schema migrations: ``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1``.
#: Append a function to change the schema; never edit one that has shipped.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
]
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def _cannot_write(exc: sqlite3.Error) -> bool:
    """True if ``exc`` says the file (or its WAL side files) cannot be opened or written
    here: worth trying again read-only (SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM)."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")):
        return True
    text = str(exc).lower()
    return "unable to open" in text or "readonly" in text or "read-only" in text


def _new_id() -> str:
    """A short, URL-safe, random session id (8 hex digits; 32 bits)."""
    return secrets.token_hex(4)


def _f64_blob(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype=_F64).tobytes()


def _f64_tuple(blob: bytes) -> tuple[float, ...]:
    return tuple(np.frombuffer(blob, dtype=_F64).tolist())


def _is_number(value: object) -> bool:
    """A number as SQLite returns one (int or float; NaN cannot be stored)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show_value(value: object) -> str:
    """A stored value for a message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SHA256_HEX = frozenset("0123456789abcdef")


def _check_record_columns(
    kind: object, t_s: object, participant: object, data: object, times: object, text: object
) -> None:
    """Raise ValueError when a ``records`` row's columns do not fit its kind (the same
    rule as :attr:`SqliteStore._BAD_RECORDS`, for one row)."""
    if not isinstance(participant, str):
        raise ValueError(f"participant {_show_value(participant)} is not text")
    if kind == KIND_RR:
        if t_s is not None and not _is_number(t_s):
            raise ValueError(f"t_s {_show_value(t_s)} is not a number")
        if not isinstance(data, bytes) or len(data) % 8:
            raise ValueError("its RR values are not float64 bytes")
        if times is not None and (not isinstance(times, bytes) or len(times) != len(data)):
            raise ValueError("its beat times are not one float64 per RR value")
        return
    if not _is_number(t_s):
        raise ValueError(f"t_s {_show_value(t_s)} is not a number")
    if kind == KIND_PACKET and not isinstance(data, bytes):
        raise ValueError(f"its payload {_show_value(data)} is not bytes")
    if kind in (KIND_GAP, KIND_CONTROL) and not isinstance(text, str):
        raise ValueError(f"its text {_show_value(text)} is not text")


def _session_from_row(row: tuple[Any, ...], where: Path) -> SessionInfo:
    """The session of one ``sessions`` row, every column checked (``recording`` False).

    Raises:
        MalformedSession: a column of the wrong type or form, naming the session and
            the column. The summary is a cache: one that is not a JSON object reads as
            ``{}`` (it is recomputed from the record) instead.
    """
    sid, started, ended, title, parts, profile, source, tags, notes, summary, beat, sha, clocks = (
        row
    )
    if not isinstance(sid, str) or not sid:
        raise MalformedSession(
            f"a session in {where} has the id {_show_value(sid)}, not text; the store was "
            "edited by hand or is damaged: fix that row with sqlite3 or move the store away",
            session_id=str(sid),
            column="id",
        )

    def bad(column: str, value: object, expected: str) -> MalformedSession:
        return MalformedSession(
            f"session {sid} in {where} is malformed: its column {column} holds "
            f"{_show_value(value)}, not {expected} (was the store edited by hand?); fix "
            f"that column with sqlite3, or delete the session: vagus delete {sid}",
            session_id=sid,
            column=column,
        )

    def names(column: str, text: object, *, empty_ok: bool) -> tuple[str, ...]:
        expected = "a JSON list of " + ("strings" if empty_ok else "one or more names")
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) for v in value)
            or not (value or empty_ok)
        ):
            raise bad(column, text, expected)
        return tuple(value)

    if not _is_number(started):
        raise bad("started_unix_s", started, "a number (Unix time, s)")
    for column, value in (("ended_unix_s", ended), ("heartbeat_unix_s", beat)):
        if value is not None and not _is_number(value):
            raise bad(column, value, "a number (Unix time, s) or NULL")
    for column, value in (
        ("title", title),
        ("device_profile", profile),
        ("source", source),
        ("notes", notes),
    ):
        if not isinstance(value, str):
            raise bad(column, value, "text")
    if sha is not None and (
        not isinstance(sha, str) or len(sha) != 64 or not _SHA256_HEX.issuperset(sha)
    ):
        raise bad("content_sha256", sha, "64 hex digits (a SHA-256) or NULL")
    try:
        offsets = json.loads(clocks) if isinstance(clocks, str) else None
    except ValueError:
        offsets = None
    if not isinstance(offsets, dict) or not all(
        isinstance(k, str) and _is_number(v) and math.isfinite(v) for k, v in offsets.items()
    ):
        raise bad("clock_offsets", clocks, "a JSON object of participant: seconds")
    try:
        cached = json.loads(summary) if isinstance(summary, str) else None
    except ValueError:
        cached = None
    return SessionInfo(
        id=sid,
        started_unix_s=float(started),
        ended_unix_s=None if ended is None else float(ended),
        title=title,
        participants=names("participants", parts, empty_ok=False),
        device_profile=profile,
        source=source,
        tags=names("tags", tags, empty_ok=True),
        notes=notes,
        summary=cached if isinstance(cached, dict) else {},
        heartbeat_unix_s=None if beat is None else float(beat),
        content_sha256=sha,
        clock_offsets={k: float(v) for k, v in offsets.items()},
    )


class SqliteStore:
    """The :class:`~vagus.store.base.Store` on one SQLite file.

    Args:
        path: the database file (created with its schema if absent and writable).
        commit_interval_s: :meth:`append` commits once this much time has passed since
            the last commit.
        clock: monotonic clock for the commit interval (tests inject one).
        read_only: False (default) opens for writing; True for reading only; None
            decides: for writing where the directory and the file are writable, else
            (or if the file cannot be opened for writing there) for reading only.
            Read-only, the file is never created or migrated; every write raises
            StoreError.
        wall_clock: Unix time (s) for heartbeats and for telling a session being
            recorded from an interrupted one (tests inject one).

    Attributes:
        read_only: True when opened for reading only.
        read_only_reason: why, as a sentence for a note ("" when writable).

    Raises:
        StoreError: the file cannot be created or opened, is not an SQLite database, is
            an SQLite database of something else, is corrupt, or was written by a newer
            vagus (schema version above :data:`SCHEMA_VERSION`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        commit_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        read_only: bool | None = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.commit_interval_s = commit_interval_s
        self.read_only = False
        self.read_only_reason = ""
        self._clock = clock
        self._wall_clock = wall_clock
        self._in_tx = False
        self._last_commit = clock()
        #: sessions this store records live (``create_session(recording=True)``)
        self._recording: set[str] = set()
        #: the SQL read for columns an older (read-only, unmigrated) store lacks
        self._heartbeat_column = "heartbeat_unix_s"
        self._content_column = "content_sha256"
        self._clock_column = "clock_offsets"
        self._check_header()
        try:
            if read_only:
                self._open_read_only("it was opened for reading only")
            elif read_only is None and (why := self._why_unwritable()):
                self._open_read_only(why)
            else:
                try:
                    self._open("")
                except sqlite3.OperationalError as exc:
                    if read_only is not None or not _cannot_write(exc):
                        raise
                    self._open_read_only(f"it cannot be opened for writing here ({exc})")
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot open")) from exc

    # ------------------------------------------------------------ opening

    @property
    def location(self) -> str:
        """The database file's path, for messages."""
        return str(self.path)

    def _why_unwritable(self) -> str:
        """Why the store cannot be written here ("" if it can): a read-only directory
        (or mount) or file. Only existing stores are opened read-only."""
        if not self.path.exists():
            return ""
        directory = self.path.parent
        if not os.access(directory, os.W_OK):
            return f"the data directory {directory} is not writable"
        if not os.access(self.path, os.W_OK):
            return f"the file {self.path} is not writable"
        return ""

    def _open(self, uri_query: str) -> None:
        """Connect (with ``uri_query`` as an SQLite URI's query, if any) and set up."""
        if uri_query:
            uri = f"{self.path.resolve().as_uri()}?{uri_query}"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            conn = sqlite3.connect(str(self.path), isolation_level=None)
        self._conn = conn
        try:
            self._setup()
        except BaseException:
            conn.close()
            raise

    def _open_read_only(self, why: str) -> None:
        """Open for reading only: ``mode=ro``, else (the WAL side files cannot be created
        next to the file) ``immutable=1``."""
        self.read_only = True
        self.read_only_reason = f"the session store {self.path} is read-only: {why}"
        try:
            self._open("mode=ro")
        except sqlite3.OperationalError as exc:
            if not _cannot_write(exc):
                raise
            self.read_only_reason += (
                "; its write-ahead log cannot be opened there, so it is read as the file is on disk"
            )
            wal = self.path.with_name(self.path.name + "-wal")
            with contextlib.suppress(OSError):
                if wal.stat().st_size > 0:
                    self.read_only_reason += (
                        f" (the latest changes, still in {wal.name}, are not shown; open "
                        "the store once where it is writable to fold them in)"
                    )
            self._open("immutable=1")

    def _check_header(self) -> None:
        try:
            with self.path.open("rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise StoreError(f"{self.path} is a directory, not a session store") from None
        except OSError as exc:
            raise StoreError(f"cannot read the session store {self.path}: {exc}") from exc
        if head and head != _SQLITE_HEADER:
            raise StoreError(
                f"{self.path} is not a vagus session store (not an SQLite database); "
                "move it away or choose another data directory with --data-dir"
            )

    def _setup(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 5000")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if tables and ("schema_version" not in tables or app_id != APPLICATION_ID):
            raise StoreError(
                f"{self.path} is an SQLite database but not a vagus session store "
                f"(tables: {', '.join(sorted(tables)) or 'none'}); move it away or choose "
                "another data directory with --data-dir"
            )
        conn.execute("PRAGMA foreign_keys = ON")
        if self.read_only:
            # Nothing is created or migrated; an older schema is read as it is.
            version = self._read_version()
            if not tables or version == 0:
                raise StoreError(
                    f"{self.path} is an empty session store and {self.read_only_reason}; "
                    "there is nothing to read"
                )
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this vagus "
                    f"supports ({len(MIGRATIONS)}); upgrade vagus to read it"
                )
            if version < 2:
                self._heartbeat_column = "NULL"
            if version < 3:
                self._content_column = "NULL"
            if version < 4:
                self._clock_column = "'{}'"
            return
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot use write-ahead logging on {self.path} (journal mode {mode!r}); "
                "is it on a network file system? choose a local --data-dir"
            )
        conn.execute("PRAGMA synchronous = FULL")
        self._migrate()

    def _read_version(self) -> int:
        conn = self._conn
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ).fetchone():
            return 0
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row is not None else 0

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction.

        The version is read again under the write lock, so two processes opening a new
        store at once do not both create it.
        """
        conn = self._conn
        while True:
            if self._read_version() > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {self._read_version()}, newer than this "
                    f"vagus supports ({len(MIGRATIONS)}); upgrade vagus to read it"
                )
            if self._read_version() == len(MIGRATIONS):
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._read_version()
                if version < len(MIGRATIONS):
                    if version == 0:
                        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                        conn.execute("INSERT INTO schema_version VALUES (0)")
                    MIGRATIONS[version](conn)
                    conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])

    def _explain(self, exc: sqlite3.Error, action: str) -> str:
        text = str(exc)
        low = text.lower()
        if "full" in low:
            hint = "the disk is full; free some space"
        elif "readonly" in low or "read-only" in low or "unable to open" in low:
            hint = (
                "the data directory is not writable; fix its permissions or choose "
                "another with --data-dir or VAGUS_DATA_DIR"
            )
        elif "not a database" in low or "malformed" in low or "corrupt" in low:
            hint = "the file is corrupt or not a vagus store; move it away"
        elif "locked" in low or "busy" in low:
            hint = "another process holds the store; try again"
        else:
            hint = "check the data directory"
        return f"{action} the session store {self.path}: {text} ({hint})"

    # ------------------------------------------------------------ writing

    def _begin(self) -> None:
        if self.read_only:
            raise StoreError(
                f"cannot change anything: {self.read_only_reason}. Fix the permissions, "
                "or copy the store to a writable --data-dir (or VAGUS_DATA_DIR) to change it"
            )
        if not self._in_tx:
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def _fail(self, exc: sqlite3.Error, action: str, session_id: str | None = None) -> StoreError:
        """Roll back the open transaction and turn ``exc`` into a StoreError."""
        if self._in_tx:
            self._in_tx = False
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
        if (
            isinstance(exc, sqlite3.IntegrityError)
            and "FOREIGN KEY" in str(exc)
            and session_id is not None
        ):
            return self._missing(session_id)
        return StoreError(self._explain(exc, action))

    def _missing(self, session_id: str) -> SessionNotFound:
        """The error for a session that is not (or no longer) in the store."""
        if session_id in self._recording:
            self._recording.discard(session_id)
            return SessionNotFound(
                f"session {session_id} was deleted from {self.path} by another process "
                "while it was being recorded"
            )
        return SessionNotFound(
            f"no session {session_id!r} in {self.path}; `vagus sessions` lists them"
        )

    def _heartbeat(self) -> list[str]:
        """Refresh the heartbeat of the sessions recorded here (in the open transaction);
        returns those that are gone (deleted by another process)."""
        ids = sorted(self._recording)
        marks = ",".join("?" * len(ids))
        cursor = self._conn.execute(
            f"UPDATE sessions SET heartbeat_unix_s=? WHERE id IN ({marks})",
            (self._wall_clock(), *ids),
        )
        if cursor.rowcount == len(ids):
            return []
        present = {
            r[0] for r in self._conn.execute(f"SELECT id FROM sessions WHERE id IN ({marks})", ids)
        }
        return [sid for sid in ids if sid not in present]

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
        """Create and commit a new session; it is listed at once.

        With ``recording``, this store writes it live: every commit until
        :meth:`end_session` refreshes its heartbeat (:meth:`commit_if_due` too, in a
        quiet second), so it lists as recording and other processes cannot delete it.
        Without, it lists as interrupted until ended.
        """
        info = self._new_info(
            title, participants, device_profile, source, started_unix_s, tags, notes
        )
        heartbeat = self._wall_clock() if recording else None
        try:
            self._begin()
            sid = self._insert_session(info, heartbeat_unix_s=heartbeat)
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, "cannot create a session in") from exc
        if recording:
            self._recording.add(sid)
        return replace(info, id=sid, heartbeat_unix_s=heartbeat, recording=recording)

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
        """Store a whole, ended session and its records in one transaction.

        All of it or nothing: an invalid record, a database error, a crash or a
        ``kill -9`` part way leaves no trace of it (an import never shows up as an empty
        interrupted session). Records appended earlier are committed first, apart.
        ``content_sha256``: the SHA-256 (64 lowercase hex digits) of the imported file,
        for :meth:`find_imports`. ``unique_content``: refuse (InvalidInput, nothing
        written) if a session with that hash is already stored, checked in the import's
        own transaction (two imports of one file at once store it once).
        """
        if content_sha256 is not None and (
            len(content_sha256) != 64 or not _SHA256_HEX.issuperset(content_sha256)
        ):
            raise InvalidInput(
                f"content_sha256 must be 64 lowercase hex digits, not {content_sha256!r}"
            )
        info = replace(
            self._new_info(
                title, participants, device_profile, source, started_unix_s, tags, notes
            ),
            ended_unix_s=float(ended_unix_s),
            summary=dict(summary or {}),
            content_sha256=content_sha256,
        )
        rows = [self._row(r) for r in records]  # InvalidInput before anything is written
        try:
            self._commit()
            self._begin()
            if unique_content and content_sha256 is not None:
                self._refuse_same_content(content_sha256)
            sid = self._insert_session(info, heartbeat_unix_s=None)
            self._conn.executemany(self._INSERT, [(sid, *row) for row in rows])
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, "cannot import a session into") from exc
        except BaseException:
            # Ctrl-C (or any other interruption) part way: nothing of it may be
            # committed later by close(), so the transaction is undone here.
            if self._in_tx:
                self._in_tx = False
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise
        return replace(info, id=sid)

    def _refuse_same_content(self, content_sha256: str) -> None:
        """InvalidInput if a session imported from this content is stored (in the open
        transaction; the caller rolls back)."""
        row = self._conn.execute(
            "SELECT id FROM sessions WHERE content_sha256=? ORDER BY started_unix_s, id LIMIT 1",
            (content_sha256,),
        ).fetchone()
        if row is not None:
            raise InvalidInput(
                f"the same file (SHA-256 {content_sha256[:12]}...) was already imported as "
                f"session {row[0]}; nothing imported (import it again on purpose with --again)"
            )

    @staticmethod
    def _new_info(
        title: str,
        participants: Sequence[str],
        device_profile: str,
        source: str,
        started_unix_s: float | None,
        tags: Sequence[str],
        notes: str,
    ) -> SessionInfo:
        """A new session's metadata (id still empty); ``started_unix_s`` None is now."""
        if isinstance(participants, str) or isinstance(tags, str):
            raise InvalidInput("participants and tags are sequences of strings, not a string")
        return SessionInfo(
            id="",
            started_unix_s=time.time() if started_unix_s is None else float(started_unix_s),
            title=title,
            participants=tuple(participants) or ("me",),
            device_profile=device_profile,
            source=source,
            tags=tuple(tags),
            notes=notes,
        )

    def _insert_session(self, info: SessionInfo, *, heartbeat_unix_s: float | None) -> str:
        """Insert ``info`` under a new id (in the open transaction); returns the id."""
        for _ in range(16):
            sid = _new_id()
            if not self._conn.execute("SELECT 1 FROM sessions WHERE id=?", (sid,)).fetchone():
                break
        else:  # pragma: no cover - 16 collisions of 32 random bits
            raise StoreError("could not draw a new session id; try again")
        self._conn.execute(
            "INSERT INTO sessions (id, started_unix_s, ended_unix_s, title, participants, "
            "device_profile, source, tags, notes, summary, heartbeat_unix_s, content_sha256) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                sid,
                info.started_unix_s,
                info.ended_unix_s,
                info.title,
                json.dumps(list(info.participants)),
                info.device_profile,
                info.source,
                json.dumps(list(info.tags)),
                info.notes,
                json.dumps(info.summary),
                heartbeat_unix_s,
                info.content_sha256,
            ),
        )
        return sid

    @staticmethod
    def _row(
        record: InputRecord,
    ) -> tuple[int, float | None, str, bytes | None, bytes | None, str | None]:
        """(kind, t_s, participant, data, times, text) of one record."""
        if isinstance(record, PacketRecord):
            return (
                KIND_PACKET,
                record.t_arrival_s,
                record.participant,
                bytes(record.payload),
                None,
                None,
            )
        if isinstance(record, GapRecord):
            return (KIND_GAP, record.t_s, record.participant, None, None, record.reason)
        if isinstance(record, ControlRecord):
            ev = record.event
            if not isinstance(ev, Marker | PacerChange):
                raise InvalidInput(f"not a control event: {ev!r}")
            return (KIND_CONTROL, ev.t_s, "", None, None, json.dumps(ev.to_json()))
        if isinstance(record, RRRecord):
            times = None
            t_last = None
            if record.t_s is not None:
                if len(record.t_s) != len(record.rr_ms):
                    raise InvalidInput(
                        f"RRRecord has {len(record.rr_ms)} RR values but {len(record.t_s)} "
                        "beat times; give one time per RR or none"
                    )
                times = _f64_blob(record.t_s)
                t_last = float(record.t_s[-1]) if record.t_s else None
            return (KIND_RR, t_last, record.participant, _f64_blob(record.rr_ms), times, None)
        raise InvalidInput(f"not an input record: {record!r}")

    _INSERT = (
        "INSERT INTO records (session_id, kind, t_s, participant, data, times, text) "
        "VALUES (?,?,?,?,?,?,?)"
    )

    def append(self, session_id: str, record: InputRecord) -> None:
        """Append one record; committed once ``commit_interval_s`` passed since the last commit.

        Raises:
            SessionNotFound: no session ``session_id`` (exact id), or it was deleted by
                another process while this store was recording it.
            StoreError: the write failed (disk full, read-only, ...); the records since
                the last commit are lost.
        """
        row = self._row(record)
        try:
            self._begin()
            self._conn.execute(self._INSERT, (session_id, *row))
            if self._clock() - self._last_commit >= self.commit_interval_s:
                self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, f"cannot append to session {session_id} in", session_id) from exc

    def append_many(self, session_id: str, records: Sequence[InputRecord]) -> None:
        """Append records in one transaction: all of them or (on any error) none."""
        rows = [(session_id, *self._row(r)) for r in records]
        try:
            self._commit()  # earlier appends are not part of this all-or-nothing batch
            self._begin()
            self._conn.executemany(self._INSERT, rows)
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, f"cannot append to session {session_id} in", session_id) from exc

    def set_clock_offset(self, session_id: str, participant: str, offset_s: float) -> None:
        """Keep the offset (s) from ``participant``'s source clock to the session clock
        (session time = source time + ``offset_s``), written with the records: committed
        within ``commit_interval_s``, like :meth:`append`.

        Raises:
            InvalidInput: ``offset_s`` is not a finite number.
            SessionNotFound / StoreError: as :meth:`append`.
        """
        if not _is_number(offset_s) or not math.isfinite(offset_s):
            raise InvalidInput(
                f"a clock offset must be a finite number of seconds, not {offset_s!r}"
            )
        try:
            self._begin()
            row = self._conn.execute(
                "SELECT clock_offsets FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            if row is None:
                raise self._missing(session_id)
            try:
                offsets = json.loads(row[0]) if isinstance(row[0], str) else {}
            except ValueError:
                offsets = {}
            offsets = offsets if isinstance(offsets, dict) else {}
            offsets[participant] = float(offset_s)
            self._conn.execute(
                "UPDATE sessions SET clock_offsets=? WHERE id=?", (json.dumps(offsets), session_id)
            )
            if self._clock() - self._last_commit >= self.commit_interval_s:
                self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, f"cannot write to session {session_id} in", session_id) from exc

    def _commit(self) -> None:
        """Commit the open transaction, refreshing the heartbeat of the sessions recorded
        here; a recorded session found deleted raises SessionNotFound (after the commit:
        what was written for other sessions is kept)."""
        gone: list[str] = []
        if self._in_tx:
            if self._recording:
                gone = self._heartbeat()
            self._conn.execute("COMMIT")
            self._in_tx = False
        self._last_commit = self._clock()
        if gone:
            for sid in gone[1:]:
                self._recording.discard(sid)
            raise self._missing(gone[0])

    def commit(self) -> None:
        """Commit the buffered records now."""
        try:
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, "cannot commit to") from exc

    def commit_if_due(self) -> None:
        """Commit if ``commit_interval_s`` has passed since the last commit (call from a timer).

        While a session is recorded here, a quiet second (nothing appended) is committed
        too, to refresh its heartbeat: it stays "recording" for other processes.
        """
        if not (self._in_tx or self._recording):
            return
        if self._clock() - self._last_commit < self.commit_interval_s:
            return
        try:
            self._begin()
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, "cannot commit to") from exc

    def end_session(self, session_id: str, ended_unix_s: float | None = None) -> None:
        """Mark the session ended (now by default) and commit everything buffered.

        A session recorded here stops being recording: its heartbeat is refreshed a
        last time and then left alone.
        """
        sid = self._resolve(session_id)
        t_end = time.time() if ended_unix_s is None else float(ended_unix_s)
        try:
            self._begin()
            self._conn.execute("UPDATE sessions SET ended_unix_s=? WHERE id=?", (t_end, sid))
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, f"cannot end session {sid} in", sid) from exc
        self._recording.discard(sid)

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
    ) -> SessionInfo:
        """Change the given fields (None leaves a field as it is) and commit."""
        sid = self._resolve(session_id)
        sets: list[str] = []
        values: list[Any] = []
        if title is not None:
            sets.append("title=?")
            values.append(title)
        if notes is not None:
            sets.append("notes=?")
            values.append(notes)
        if tags is not None:
            sets.append("tags=?")
            values.append(json.dumps(list(tags)))
        if summary is not None:
            sets.append("summary=?")
            values.append(json.dumps(summary))
        if device_profile is not None:
            sets.append("device_profile=?")
            values.append(device_profile)
        if participants is not None:
            if not participants:
                raise InvalidInput("a session needs at least one participant")
            sets.append("participants=?")
            values.append(json.dumps(list(participants)))
        if sets:
            try:
                self._begin()
                self._conn.execute(
                    f"UPDATE sessions SET {', '.join(sets)} WHERE id=?", (*values, sid)
                )
                self._commit()
            except sqlite3.Error as exc:
                raise self._fail(exc, f"cannot update session {sid} in") from exc
        return self.get_session(sid)

    def delete_session(self, session_id: str) -> None:
        """Delete the session and all its records (committed at once).

        Raises:
            StoreError: another process is recording the session (checked in the same
                transaction as the delete). This store may delete a session it records.
        """
        sid = self._resolve(session_id)
        was_in_tx = self._in_tx
        try:
            self._begin()
            row = self._conn.execute(
                "SELECT ended_unix_s, heartbeat_unix_s FROM sessions WHERE id=?", (sid,)
            ).fetchone()
            if row is not None and not all(v is None or _is_number(v) for v in row):
                row = None  # a malformed row (edited by hand) is nobody's live recording
            if row is not None and sid not in self._recording and self._live(*row):
                if not was_in_tx:
                    self._commit()  # nothing written: just release the write lock
                age = max(0.0, self._wall_clock() - row[1])
                raise StoreError(
                    f"session {sid} is being recorded right now (its recorder wrote "
                    f"{age:.0f} s ago); stop the recording first (Ctrl-C where `vagus "
                    "record` runs), then delete it"
                )
            self._conn.execute("DELETE FROM records WHERE session_id=?", (sid,))
            self._conn.execute("DELETE FROM sessions WHERE id=?", (sid,))
            self._recording.discard(sid)
            self._commit()
        except sqlite3.Error as exc:
            raise self._fail(exc, f"cannot delete session {sid} from") from exc

    # ------------------------------------------------------------ reading

    def _resolve(self, session_id: str) -> str:
        """The full id of the session ``session_id`` (exact, else a unique prefix).

        Text that cannot be an id (:func:`~vagus.store.base.check_session_id`: too long,
        other characters) is InvalidInput before any query."""
        check_session_id(session_id)
        try:
            if self._conn.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone():
                return session_id
            pattern = session_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._conn.execute(
                "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6",
                (pattern + "%",),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        if session_id in self._recording and not rows:
            raise self._missing(session_id)
        if not session_id or not rows:
            raise SessionNotFound(
                f"no session {session_id!r} in {self.path}; `vagus sessions` lists them"
            )
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise SessionNotFound(
                f"{session_id!r} matches several sessions ({ids}); give more of the id"
            )
        return str(rows[0][0])

    def _live(self, ended_unix_s: float | None, heartbeat_unix_s: float | None) -> bool:
        """Is a session with this end and heartbeat being recorded now?"""
        if ended_unix_s is not None or heartbeat_unix_s is None:
            return False
        # abs(): a heartbeat "in the future" (the clock was set back) is not trusted long.
        return abs(self._wall_clock() - heartbeat_unix_s) < RECORDING_STALE_S

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        """The session of a row, every column checked (raises MalformedSession)."""
        info = _session_from_row(row, self.path)
        return replace(info, recording=self._live(info.ended_unix_s, info.heartbeat_unix_s))

    def _session_columns(self) -> str:
        """The columns :meth:`_info` reads (an old read-only store lacks the newer ones)."""
        return (
            "id, started_unix_s, ended_unix_s, title, participants, device_profile, "
            f"source, tags, notes, summary, {self._heartbeat_column}, {self._content_column}, "
            f"{self._clock_column}"
        )

    def get_session(self, session_id: str) -> SessionInfo:
        """The session ``session_id`` (or a unique prefix of it). Raises SessionNotFound."""
        sid = self._resolve(session_id)
        try:
            row = self._conn.execute(
                f"SELECT {self._session_columns()} FROM sessions WHERE id=?", (sid,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        if row is None:  # deleted by another process meanwhile
            raise SessionNotFound(f"no session {session_id!r} in {self.path}")
        return self._info(row)

    def _rows(self, where: str = "", params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Session rows (oldest first) matching the SQL condition ``where``."""
        try:
            return self._conn.execute(
                f"SELECT {self._session_columns()} FROM sessions {where} "
                "ORDER BY started_unix_s, id",
                tuple(params),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc

    def list_sessions(self, *, skip_malformed: bool = False) -> list[SessionInfo]:
        """All sessions, oldest first.

        Raises:
            MalformedSession: a row cannot be read as a session (unless
                ``skip_malformed``: then it is left out; :meth:`malformed_sessions`
                names it).
        """
        infos: list[SessionInfo] = []
        for row in self._rows():
            try:
                infos.append(self._info(row))
            except MalformedSession:
                if not skip_malformed:
                    raise
        return infos

    def find_imports(self, content_sha256: str) -> list[SessionInfo]:
        """The sessions imported from a file with this SHA-256 (hex), oldest first.

        Sessions imported before the hash was kept (schema version 2) have none and are
        never found. Raises MalformedSession if a matching row is malformed.
        """
        if self._content_column == "NULL":
            return []
        return [self._info(r) for r in self._rows("WHERE content_sha256=?", (content_sha256,))]

    #: Records whose columns do not fit their kind (checked in SQL: a store may hold
    #: millions of records).
    _BAD_RECORDS = f"""
        SELECT session_id, min(seq) FROM records WHERE
            typeof(participant) != 'text'
            OR kind NOT IN ({KIND_PACKET}, {KIND_GAP}, {KIND_CONTROL}, {KIND_RR})
            OR (kind != {KIND_RR} AND typeof(t_s) NOT IN ('integer', 'real'))
            OR (kind = {KIND_RR} AND typeof(t_s) NOT IN ('integer', 'real', 'null'))
            OR (kind = {KIND_PACKET} AND typeof(data) != 'blob')
            OR (kind = {KIND_GAP} AND typeof(text) != 'text')
            OR (kind = {KIND_CONTROL} AND typeof(text) != 'text')
            OR (kind = {KIND_RR} AND (typeof(data) != 'blob' OR length(data) % 8 != 0
                OR (times IS NOT NULL AND (typeof(times) != 'blob'
                                           OR length(times) != length(data)))))
        GROUP BY session_id ORDER BY session_id
    """

    def malformed_sessions(self) -> list[MalformedSession]:
        """The integrity check: each session whose row (or one of whose records) cannot
        be read, as the MalformedSession reading it raises; empty when the store is sound.

        Rows are checked as :meth:`get_session` checks them; records by their columns'
        types (``records`` of a session that is not there count too).
        """
        problems: list[MalformedSession] = []
        for row in self._rows():
            try:
                self._info(row)
            except MalformedSession as exc:
                problems.append(exc)
        try:
            bad = self._conn.execute(self._BAD_RECORDS).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        for sid, seq in bad:
            problems.append(
                MalformedSession(
                    f"session {sid} in {self.path} is malformed: its record {seq} has "
                    "columns that do not fit its kind (was the store edited by hand?); "
                    f"delete the session: vagus delete {sid}",
                    session_id=str(sid),
                    column="records",
                )
            )
        return problems

    def input_count(self, session_id: str) -> int:
        """How many input records the session holds (a cheap cache key for summaries)."""
        sid = self._resolve(session_id)
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM records WHERE session_id=?", (sid,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        return int(row[0])

    def recorded_participants(self, session_id: str) -> list[str]:
        """The participant names the session's packet, gap and RR records carry, in the
        order they first appear (control records carry none)."""
        sid = self._resolve(session_id)
        try:
            rows = self._conn.execute(
                "SELECT participant FROM records WHERE session_id=? AND kind != ? "
                "GROUP BY participant ORDER BY min(seq)",
                (sid, KIND_CONTROL),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        return [str(r[0]) for r in rows]

    def iter_input(
        self, session_id: str, *, participants: Collection[str] | None = None
    ) -> Iterator[InputRecord]:
        """The session's input records in the order they were appended.

        ``participants``: only the records recorded under these names, and every
        control record (session-wide); None: every record.

        Raises SessionNotFound at once (not at the first ``next``); a record that cannot
        be decoded raises StoreError naming its ``seq``.
        """
        sid = self._resolve(session_id)
        where = ""
        params: tuple[object, ...] = ()
        if participants is not None:
            names = sorted(set(participants))
            marks = ",".join("?" * len(names))
            where = f" AND (kind = ? OR participant IN ({marks}))"
            params = (KIND_CONTROL, *names)
        try:
            cursor = self._conn.execute(
                "SELECT seq, kind, t_s, participant, data, times, text FROM records "
                f"WHERE session_id=?{where} ORDER BY seq",
                (sid, *params),
            )
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc, "cannot read")) from exc
        return self._decode_rows(cursor, sid)

    def _decode_rows(self, cursor: sqlite3.Cursor, sid: str) -> Iterator[InputRecord]:
        try:
            while True:
                try:
                    rows = cursor.fetchmany(_FETCH_ROWS)
                except sqlite3.Error as exc:
                    raise StoreError(self._explain(exc, "cannot read")) from exc
                if not rows:
                    return
                for seq, kind, t_s, participant, data, times, text in rows:
                    try:
                        _check_record_columns(kind, t_s, participant, data, times, text)
                        if kind == KIND_PACKET:
                            yield PacketRecord(t_s, bytes(data), participant)
                        elif kind == KIND_RR:
                            yield RRRecord(
                                _f64_tuple(data),
                                None if times is None else _f64_tuple(times),
                                participant,
                            )
                        elif kind == KIND_GAP:
                            yield GapRecord(t_s, text, participant)
                        elif kind == KIND_CONTROL:
                            event = event_from_json(json.loads(text))
                            if not isinstance(event, Marker | PacerChange):
                                raise ValueError(f"{event.type!r} is not a control event")
                            yield ControlRecord(event)
                        else:
                            raise ValueError(f"unknown record kind {kind}")
                    except (ValueError, TypeError) as exc:
                        raise MalformedSession(
                            f"record {seq} of session {sid} in {self.path} cannot be read: "
                            f"{exc} (was the store edited by hand?); delete the session: "
                            f"vagus delete {sid}",
                            session_id=sid,
                            column="records",
                        ) from exc
        finally:
            # A reader dropped after the store was closed (e.g. kept alive by an error's
            # traceback) finds its cursor closed with the connection: nothing to do.
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Commit what is buffered and close the file (idempotent).

        A session recorded here and not ended stops getting heartbeats: it lists as
        interrupted :data:`~vagus.store.base.RECORDING_STALE_S` later.
        """
        conn = getattr(self, "_conn", None)
        if conn is None:
            return
        try:
            self.commit()
        finally:
            conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"
