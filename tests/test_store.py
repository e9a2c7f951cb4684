"""The SQLite session store: round trips, order, durability, migrations, clear errors,
recording vs interrupted sessions, read-only stores, atomic imports."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vagus.core.events import Marker, PacerChange
from vagus.exceptions import InvalidInput, SessionNotFound, StoreError
from vagus.store import sqlite as sqlite_mod
from vagus.store.base import (
    RECORDING_STALE_S,
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    RRRecord,
)
from vagus.store.location import DATA_DIR_ENV, DB_FILENAME, data_dir
from vagus.store.open import open_store, store_exists, store_location
from vagus.store.recorder import Recorder
from vagus.store.sqlite import SqliteStore


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _mixed_records() -> list[InputRecord]:
    return [
        PacketRecord(0.25, b"\x16\x48\x00\x04", "ann"),
        ControlRecord(PacerChange(t_s=0.5, rate_bpm=6.0, inhale_fraction=0.4)),
        PacketRecord(1.2500000001, bytes(range(20)), "ann"),
        GapRecord(2.0, "link_lost", "ann"),
        RRRecord((812.5, 1000.0 / 3.0, 799.0), None, "ann"),
        ControlRecord(Marker(t_s=3.0, text="eyes closed ✓")),
        RRRecord((900.0, 0.1 + 0.2), (10.0, 10.1 + 1e-12), "bob"),
        PacketRecord(4.0, b"", "ann"),  # malformed payloads are stored as received
        RRRecord((), None),
    ]


def test_round_trip_keeps_every_record_exactly_and_in_order(tmp_path: Path) -> None:
    records = _mixed_records()
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        info = store.create_session(title="t", participants=("ann", "bob"), source="sim")
        for rec in records[:4]:
            store.append(info.id, rec)
        store.append_many(info.id, records[4:7])
        store.append(info.id, records[7])
        store.append(info.id, records[8])
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        assert list(store.iter_input(info.id)) == records
        assert store.input_count(info.id) == len(records)
        got = store.get_session(info.id)
        assert got.participants == ("ann", "bob")
        assert got.ended_unix_s is None


def test_order_is_global_across_sessions_and_kinds(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        a = store.create_session()
        b = store.create_session()
        for i in range(50):
            store.append(a.id, PacketRecord(float(i), bytes([0, 60 + i % 5])))
            store.append(b.id, GapRecord(float(i)))
            if i % 7 == 0:
                store.append(a.id, ControlRecord(Marker(t_s=i + 0.5, text=str(i))))
        recs_a = list(store.iter_input(a.id))
        assert [type(r).__name__ for r in recs_a[:3]] == [
            "PacketRecord",
            "ControlRecord",
            "PacketRecord",
        ]
        assert len(recs_a) == 50 + 8
        assert all(isinstance(r, GapRecord) for r in store.iter_input(b.id))


def test_rr_with_mismatched_times_is_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        info = store.create_session()
        batch: list[InputRecord] = [
            RRRecord((800.0,), (1.0,)),
            RRRecord((800.0, 810.0), (1.0,)),
        ]
        with pytest.raises(InvalidInput, match="beat times"):
            store.append_many(info.id, batch)
        assert store.input_count(info.id) == 0


def test_append_many_is_all_or_nothing_on_a_database_error(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        info = store.create_session()
        store.append(info.id, PacketRecord(0.0, b"\x00\x40"))  # pending, then committed
        big = [RRRecord(tuple(800.0 + i for i in range(100)))] * 50
        # A real SQLITE_FULL: the file may not grow past its current size.
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(StoreError, match="disk is full"):
            store.append_many(info.id, big)
        assert list(store.iter_input(info.id)) == [PacketRecord(0.0, b"\x00\x40")]


def test_append_to_unknown_session_is_session_not_found(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store, pytest.raises(SessionNotFound):
        store.append("nope", GapRecord(1.0))


def test_ids_prefixes_update_end_list_delete(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        a = store.create_session(title="first", started_unix_s=100.0, tags=["x"])
        b = store.create_session(title="second", started_unix_s=50.0)
        assert a.id != b.id and len(a.id) == 8
        assert [s.id for s in store.list_sessions()] == [b.id, a.id]  # oldest first
        prefix = next(a.id[:k] for k in range(1, 9) if not b.id.startswith(a.id[:k]))
        assert store.get_session(prefix).title == "first"
        with pytest.raises(SessionNotFound, match="no session"):
            store.get_session("zz-not-an-id")
        with pytest.raises(InvalidInput, match="must not be empty"):
            store.get_session("")
        updated = store.update_session(
            a.id,
            title="renamed",
            notes="n",
            tags=("y", "z"),
            summary={"beats": 3},
            device_profile="polar_h10",
        )
        assert (updated.title, updated.notes, updated.tags) == ("renamed", "n", ("y", "z"))
        assert updated.summary == {"beats": 3} and updated.device_profile == "polar_h10"
        store.end_session(a.id, ended_unix_s=160.0)
        assert store.get_session(a.id).ended_unix_s == 160.0
        store.append(a.id, GapRecord(1.0))
        store.delete_session(a.id)
        with pytest.raises(SessionNotFound):
            store.get_session(a.id)
        assert store._conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
        assert [s.id for s in store.list_sessions()] == [b.id]


def test_ambiguous_prefix_is_an_error_naming_the_matches(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        ids = {store.create_session().id for _ in range(40)}
        first = {i[0] for i in ids}
        common = next(c for c in first if sum(i.startswith(c) for i in ids) > 1)
        with pytest.raises(SessionNotFound, match="several sessions"):
            store.get_session(common)


def test_appends_are_committed_once_the_interval_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    clock = FakeClock()
    store = SqliteStore(path, commit_interval_s=1.0, clock=clock)
    info = store.create_session()
    reader = sqlite3.connect(path)

    def committed() -> int:
        return int(reader.execute("SELECT count(*) FROM records").fetchone()[0])

    for i in range(5):
        clock.t += 0.15
        store.append(info.id, PacketRecord(i, b"\x00\x40"))
    assert committed() == 0  # buffered, 0.75 s since the last commit
    clock.t += 0.3
    store.append(info.id, PacketRecord(5.0, b"\x00\x40"))  # 1.05 s: commits
    assert committed() == 6
    store.append(info.id, PacketRecord(6.0, b"\x00\x40"))
    store.commit_if_due()
    assert committed() == 6
    clock.t += 1.0
    store.commit_if_due()  # a quiet second is committed by the timer
    assert committed() == 7
    store.append(info.id, PacketRecord(7.0, b"\x00\x40"))
    store.close()
    assert committed() == 8
    reader.close()


def test_store_uses_wal_and_marks_the_file(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version == sqlite_mod.SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == sqlite_mod.APPLICATION_ID
    conn.close()


def test_a_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.sqlite3"
    text.write_text("hello, I am a shopping list\n")
    with pytest.raises(StoreError, match="not an SQLite database"):
        SqliteStore(text)
    assert text.read_text() == "hello, I am a shopping list\n"

    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"not a vagus session store.*customers"):
        SqliteStore(other)

    with pytest.raises(StoreError, match="is a directory"):
        SqliteStore(tmp_path)


def test_a_corrupt_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SqliteStore(path) as store:
        info = store.create_session()
        store.append_many(info.id, [PacketRecord(float(i), b"\x00\x40") for i in range(500)])
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # keep the header, destroy the pages
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"corrupt|not a vagus"):
        store2 = SqliteStore(path)
        list(store2.iter_input(info.id))


def test_a_store_from_a_newer_vagus_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade vagus"):
        SqliteStore(path)


def test_opening_an_older_store_applies_a_new_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite3"
    current = sqlite_mod.SCHEMA_VERSION
    with SqliteStore(path) as store:
        info = store.create_session(title="old")
        store.append(info.id, PacketRecord(1.0, b"\x00\x40"))
        assert store.schema_version == current

    def to_next(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE sessions ADD COLUMN location TEXT NOT NULL DEFAULT 'home'")

    monkeypatch.setattr(sqlite_mod, "MIGRATIONS", [*sqlite_mod.MIGRATIONS, to_next])
    with SqliteStore(path) as store:
        assert store.schema_version == current + 1
        assert store.get_session(info.id).title == "old"
        assert list(store.iter_input(info.id)) == [PacketRecord(1.0, b"\x00\x40")]
        row = store._conn.execute("SELECT location FROM sessions").fetchone()
        assert row == ("home",)


def _version_1_store(path: Path) -> tuple[str, str]:
    """A store as vagus with schema version 1 wrote it: (an ended, an unended) session."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA application_id = {sqlite_mod.APPLICATION_ID}")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    sqlite_mod.MIGRATIONS[0](conn)
    conn.execute(
        "INSERT INTO sessions (id, started_unix_s, ended_unix_s, title) VALUES "
        "('e0000001', 100, 160, 'ended'), ('c0000002', 200, NULL, 'crashed')"
    )
    conn.execute(
        "INSERT INTO records (session_id, kind, t_s, data) VALUES ('e0000001', 1, 1.0, ?)",
        (b"\x00\x40",),
    )
    conn.execute(
        "INSERT INTO records (session_id, kind, t_s, text) VALUES ('c0000002', 2, 2.0, 'link_lost')"
    )
    conn.close()
    return "e0000001", "c0000002"


def test_a_version_1_store_gets_the_heartbeat_column(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    ended, crashed = _version_1_store(path)
    # Read-only, it is read as it is: not migrated, no heartbeat.
    with SqliteStore(path, read_only=True) as store:
        assert store.schema_version == 1
        assert [s.status for s in store.list_sessions()] == ["ended", "interrupted"]
    with SqliteStore(path) as store:
        assert store.schema_version == sqlite_mod.SCHEMA_VERSION == 4
        columns = {r[1] for r in store._conn.execute("PRAGMA table_info(sessions)")}
        assert {"heartbeat_unix_s", "content_sha256"} <= columns
        a, b = store.list_sessions()
        assert (a.id, a.status, a.ended_unix_s, a.heartbeat_unix_s) == (ended, "ended", 160.0, None)
        assert (b.id, b.status, b.heartbeat_unix_s) == (crashed, "interrupted", None)
        assert list(store.iter_input(ended)) == [PacketRecord(1.0, b"\x00\x40")]
        assert list(store.iter_input(crashed)) == [GapRecord(2.0)]


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite3"
    SqliteStore(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(sqlite_mod, "MIGRATIONS", [*sqlite_mod.MIGRATIONS, broken])
    with pytest.raises(StoreError):
        SqliteStore(path)
    monkeypatch.undo()
    with SqliteStore(path) as store:
        assert store.schema_version == sqlite_mod.SCHEMA_VERSION
        tables = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables


def test_a_read_only_store_is_a_clear_error(tmp_path: Path) -> None:
    # Tests may run as root, whom chmod does not stop: SQLite's query_only makes every
    # write fail with the same SQLITE_READONLY error a read-only file system gives.
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        info = store.create_session()
        store._conn.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match="not writable"):
            store.append(info.id, PacketRecord(0.0, b"\x00\x40"))
        with pytest.raises(StoreError, match="not writable"):
            store.create_session()
        store._conn.execute("PRAGMA query_only = OFF")


def test_open_store_reports_an_unusable_data_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(
        StoreError,
        match=r"cannot create the data directory.*a part of that path is a file.*--data-dir",
    ):
        open_store(blocker / "vagus")
    with pytest.raises(StoreError, match="cannot create the data directory"):
        open_store("/proc/vagus-cannot-live-here")
    with pytest.raises(StoreError, match="no session store"):
        open_store(tmp_path / "absent", create=False)
    # An existing directory without a store: reading commands create nothing in it.
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match=r"no session store in .*vagus record"):
        open_store(tmp_path / "empty", create=False)
    assert list((tmp_path / "empty").iterdir()) == []
    with pytest.raises(StoreError, match="a part of that path is a file"):
        store_exists(blocker / "vagus")


def test_callers_find_the_store_without_knowing_the_backend(tmp_path: Path) -> None:
    assert store_location(tmp_path) == str(tmp_path / DB_FILENAME)
    assert not store_exists(tmp_path)
    store = open_store(tmp_path)
    assert store.location == store_location(tmp_path)
    assert not store.read_only and store.read_only_reason == ""
    store.close()
    assert store_exists(tmp_path)
    for module in ("record", "sessions", "replay", "transfer"):
        source = (Path(__file__).parents[1] / "src" / "vagus" / "cli" / f"{module}.py").read_text()
        for name in ("db_path", "existing_db", "DB_FILENAME", "import sqlite3", "store.sqlite"):
            assert name not in source, f"vagus/cli/{module}.py uses {name}"


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    default = data_dir()
    assert default.name == "vagus"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    store = open_store()
    assert Path(getattr(store, "path")) == tmp_path / "env" / DB_FILENAME  # noqa: B009
    store.close()


# ------------------------------------------------------------------ recording or interrupted


def _recorder_and_reader(
    path: Path,
) -> tuple[SqliteStore, SqliteStore, FakeClock, FakeClock]:
    """A store that records (as `vagus record`) and one that reads the same file (as
    `vagus sessions` in another process), sharing a fake wall clock."""
    mono = FakeClock()
    wall = FakeClock(1.7e9)
    recorder = SqliteStore(path, commit_interval_s=1.0, clock=mono, wall_clock=wall)
    reader = SqliteStore(path, wall_clock=wall)
    return recorder, reader, mono, wall


def test_a_session_being_recorded_is_told_from_an_interrupted_one(tmp_path: Path) -> None:
    recorder, reader, mono, wall = _recorder_and_reader(tmp_path / "s.sqlite3")
    info = recorder.create_session(recording=True)
    assert info.recording and info.status == "recording"
    assert reader.get_session(info.id).status == "recording"
    # A quiet stretch (no packets: the strap is being searched for, the link is down):
    # the recorder's timer keeps the heartbeat fresh, so it stays "recording".
    for _ in range(30):
        mono.t += 0.5
        wall.t += 0.5
        recorder.commit_if_due()
    listed = reader.get_session(info.id)
    assert listed.status == "recording" and listed.heartbeat_unix_s == pytest.approx(wall.t, abs=1)
    # Records arriving refresh it at each commit too.
    for i in range(40):
        mono.t += 0.25
        wall.t += 0.25
        recorder.append(info.id, PacketRecord(float(i), b"\x00\x40"))
    assert reader.get_session(info.id).heartbeat_unix_s == pytest.approx(wall.t, abs=1.01)
    # The recorder dies (no more heartbeats): interrupted once the heartbeat is stale.
    wall.t += RECORDING_STALE_S - 2
    assert reader.get_session(info.id).status == "recording"
    wall.t += 2 + 0.01
    assert reader.get_session(info.id).status == "interrupted"
    assert [s.status for s in reader.list_sessions()] == ["interrupted"]
    # Ended: "ended", whatever the heartbeat.
    recorder.end_session(info.id)
    assert reader.get_session(info.id).status == "ended"
    # A session never recorded live (created through the API, an old store) is interrupted.
    other = recorder.create_session()
    assert reader.get_session(other.id).status == "interrupted"
    recorder.close()
    reader.close()


def test_delete_refuses_a_session_that_another_process_records(tmp_path: Path) -> None:
    recorder, reader, mono, wall = _recorder_and_reader(tmp_path / "s.sqlite3")
    info = recorder.create_session(recording=True)
    recorder.append(info.id, PacketRecord(0.0, b"\x00\x40"))
    mono.t += 1.0
    wall.t += 1.0
    recorder.commit_if_due()
    with pytest.raises(StoreError, match=r"being recorded right now.*stop the recording first"):
        reader.delete_session(info.id)
    # Refused without holding the write lock: the recorder goes on writing.
    recorder.append(info.id, PacketRecord(1.0, b"\x00\x40"))
    recorder.commit()
    assert reader.input_count(info.id) == 2
    # Once interrupted (its recorder gone for good), it can be deleted.
    recorder.close()
    wall.t += RECORDING_STALE_S + 1
    reader.delete_session(info.id)
    with pytest.raises(SessionNotFound):
        reader.get_session(info.id)
    # The recording store may delete its own session (`vagus record` with nothing received).
    recorder = SqliteStore(tmp_path / "s.sqlite3", wall_clock=wall)
    own = recorder.create_session(recording=True)
    recorder.delete_session(own.id)
    assert reader.list_sessions() == []
    recorder.close()
    reader.close()


def test_a_session_deleted_under_its_recorder_is_reported_plainly(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    recorder, reader, mono, _wall = _recorder_and_reader(path)
    info = recorder.create_session(recording=True)
    rec = Recorder(recorder, info.id, started_unix_s=info.started_unix_s)
    rec.write(PacketRecord(0.0, b"\x00\x40"))
    recorder.commit()
    # Deleted behind the store's back (raw SQL: `vagus delete` would refuse).
    raw = sqlite3.connect(path, timeout=5)
    with raw:
        raw.execute("DELETE FROM records WHERE session_id=?", (info.id,))
        raw.execute("DELETE FROM sessions WHERE id=?", (info.id,))
    raw.close()
    rec.write(PacketRecord(1.0, b"\x00\x40"))
    assert not rec.recording and rec.session_deleted and rec.committed == 0
    message = str(rec.error)
    assert isinstance(rec.error, SessionNotFound)
    assert f"session {info.id} was deleted from {path} by another process" in message
    assert "in:" not in message and "no such session" not in message
    rec.finish({"beats": 1})  # nothing to end, nothing raised
    recorder.close()

    # In a quiet second (no record to append), the heartbeat finds it gone.
    recorder, reader, mono, _wall = _recorder_and_reader(path)
    quiet = recorder.create_session(recording=True)
    reader._conn.execute("DELETE FROM sessions WHERE id=?", (quiet.id,))
    mono.t += 1.0
    with pytest.raises(SessionNotFound, match=f"session {quiet.id} was deleted"):
        recorder.commit_if_due()
    recorder.commit_if_due()  # said once; the store carries on
    recorder.close()
    reader.close()


# ------------------------------------------------------------------ read-only stores


def _store_with_a_session(data: Path) -> str:
    with SqliteStore(data / DB_FILENAME) as store:
        info = store.create_session(title="kept")
        store.append_many(info.id, [PacketRecord(float(i), b"\x00\x40") for i in range(5)])
        store.end_session(info.id, info.started_unix_s + 5)
    return info.id


def test_a_store_opened_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    sid = _store_with_a_session(tmp_path)
    before = (tmp_path / DB_FILENAME).read_bytes()
    store = open_store(tmp_path, create=False, read_only=True)
    assert store.read_only and "read-only" in store.read_only_reason
    assert [s.id for s in store.list_sessions()] == [sid]
    assert len(list(store.iter_input(sid))) == 5
    with pytest.raises(StoreError, match=r"cannot change anything: .* is read-only.*--data-dir"):
        store.update_session(sid, title="changed")
    with pytest.raises(StoreError, match="read-only"):
        store.delete_session(sid)
    with pytest.raises(StoreError, match="read-only"):
        store.create_session()
    store.close()
    assert (tmp_path / DB_FILENAME).read_bytes() == before


def _unwritable_side_files(data: Path) -> None:
    """Make the WAL side files impossible to create, as in a read-only directory or
    mount, in a way that stops root too (chmod does not): the ``-shm`` file's name is a
    link into a directory that does not exist."""
    (data / f"{DB_FILENAME}-shm").symlink_to(data / "no-such-directory" / "shm")


def test_a_store_whose_side_files_cannot_be_created_is_read_immutable(tmp_path: Path) -> None:
    sid = _store_with_a_session(tmp_path)
    _unwritable_side_files(tmp_path)
    # Commands that write keep the clear error...
    with pytest.raises(StoreError, match=r"unable to open.*not writable.*--data-dir"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="not writable"):
        open_store(tmp_path, create=False, read_only=False)
    # ...commands that read read it, and say why it is read-only.
    store = open_store(tmp_path, create=False)
    assert store.read_only
    assert "read as the file is on disk" in store.read_only_reason
    assert [s.title for s in store.list_sessions()] == ["kept"]
    assert len(list(store.iter_input(sid))) == 5
    with pytest.raises(StoreError, match="read-only"):
        store.update_session(sid, summary={})
    store.close()


def test_an_immutable_read_says_when_the_latest_changes_are_not_seen(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    _store_with_a_session(live)
    copy = tmp_path / "copy"
    copy.mkdir()
    # A copy taken while a writer had changes in its write-ahead log (not checkpointed).
    with SqliteStore(live / DB_FILENAME) as writer:
        writer.create_session(title="only in the log")
        writer.commit()
        for name in (DB_FILENAME, f"{DB_FILENAME}-wal"):
            (copy / name).write_bytes((live / name).read_bytes())
    assert (copy / f"{DB_FILENAME}-wal").stat().st_size > 0
    _unwritable_side_files(copy)
    store = open_store(copy, create=False)
    assert f"still in {DB_FILENAME}-wal, are not shown" in store.read_only_reason
    assert [s.title for s in store.list_sessions()] == ["kept"]
    store.close()


# ------------------------------------------------------------------ imports: all or nothing


def test_import_session_stores_everything_in_one_go_or_nothing(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        records = _mixed_records()
        info = store.import_session(
            records,
            started_unix_s=100.0,
            ended_unix_s=200.0,
            title="imp",
            source="import:plain",
            summary={"beats": 3},
        )
        got = store.get_session(info.id)
        assert (got.status, got.ended_unix_s, got.summary, got.source) == (
            "ended",
            200.0,
            {"beats": 3},
            "import:plain",
        )
        assert got == info
        assert list(store.iter_input(info.id)) == records
        bad: list[InputRecord] = [RRRecord((800.0,)), RRRecord((800.0, 810.0), (1.0,))]
        with pytest.raises(InvalidInput):
            store.import_session(bad, started_unix_s=1.0, ended_unix_s=2.0)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        big = [RRRecord(tuple(800.0 + i for i in range(100)))] * 50
        with pytest.raises(StoreError, match="disk is full"):
            store.import_session(big, started_unix_s=1.0, ended_unix_s=2.0)
        assert [s.id for s in store.list_sessions()] == [info.id]


def test_an_import_interrupted_part_way_is_undone_not_committed_on_close(
    tmp_path: Path,
) -> None:
    """Ctrl-C (KeyboardInterrupt) while the records are written: close() must not commit
    the half-written import."""
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    real = store._conn

    class Interrupted:
        """The connection, with Ctrl-C arriving just after the records were inserted."""

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def executemany(self, *args: object) -> None:
            real.executemany(*args)  # type: ignore[arg-type]
            raise KeyboardInterrupt

    store._conn = Interrupted()  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        store.import_session(_mixed_records(), started_unix_s=1.0, ended_unix_s=2.0)
    store._conn = real
    store.close()
    with SqliteStore(path) as again:
        assert again.list_sessions() == []


_KILL_AT_FIRST_RECORD = """
    import os, signal, sqlite3, sys

    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)

        def trace(statement):
            # SIGKILL as the import writes its first record: after the session row.
            if statement.startswith("INSERT INTO records"):
                os.kill(os.getpid(), signal.SIGKILL)

        conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = connect
    from vagus.cli import main

    sys.exit(main(sys.argv[1:]))
"""


def test_an_import_killed_part_way_leaves_nothing(tmp_path: Path) -> None:
    rr = tmp_path / "rr.txt"
    rr.write_text("".join(f"{800 + (i % 7) * 10}\n" for i in range(500)))
    data = tmp_path / "data"
    command = ["import", str(rr), "--format", "plain", "--unit", "ms", "--data-dir", str(data)]
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILL_AT_FIRST_RECORD), *command],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with SqliteStore(data / DB_FILENAME) as store:
        assert store.list_sessions() == []  # no empty "interrupted" session
        assert store._conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
