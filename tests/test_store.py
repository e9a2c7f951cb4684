"""The SQLite session store: round trips, order, durability, migrations, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vagus.core.events import Marker, PacerChange
from vagus.exceptions import InvalidInput, SessionNotFound, StoreError
from vagus.store import sqlite as sqlite_mod
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord
from vagus.store.location import DATA_DIR_ENV, DB_FILENAME, data_dir
from vagus.store.open import open_store
from vagus.store.sqlite import SqliteStore


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

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
        with pytest.raises(SessionNotFound):
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


def test_opening_a_v1_store_applies_a_new_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite3"
    with SqliteStore(path) as store:
        info = store.create_session(title="old")
        store.append(info.id, PacketRecord(1.0, b"\x00\x40"))
        assert store.schema_version == 1

    def to_v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE sessions ADD COLUMN location TEXT NOT NULL DEFAULT 'home'")

    monkeypatch.setattr(sqlite_mod, "MIGRATIONS", [*sqlite_mod.MIGRATIONS, to_v2])
    with SqliteStore(path) as store:
        assert store.schema_version == 2
        assert store.get_session(info.id).title == "old"
        assert list(store.iter_input(info.id)) == [PacketRecord(1.0, b"\x00\x40")]
        row = store._conn.execute("SELECT location FROM sessions").fetchone()
        assert row == ("home",)


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
        assert store.schema_version == 1
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
    with pytest.raises(StoreError, match=r"cannot create the data directory.*--data-dir"):
        open_store(blocker / "vagus")
    with pytest.raises(StoreError, match="cannot create the data directory"):
        open_store("/proc/vagus-cannot-live-here")
    with pytest.raises(StoreError, match="no session store"):
        open_store(tmp_path / "absent", create=False)


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
