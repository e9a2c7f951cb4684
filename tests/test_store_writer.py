"""The store writer thread (vagus.store.writer): every store call of a live session runs in
one thread, in order, off the event loop; a quiet second is still committed; a store
failure stops recording without stopping the caller; a commit that blocks never blocks
the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from vagus.core.events import Marker
from vagus.core.hrm import encode_heart_rate_measurement
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord
from vagus.store.sqlite import SqliteStore
from vagus.store.writer import StoreWriter


def _packet(t_s: float, participant: str = "ann") -> PacketRecord:
    payload = encode_heart_rate_measurement(60, rr_ticks=(1024,))
    return PacketRecord(t_s, payload, participant)


def _wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_records_written_from_the_loop_are_stored_in_order_by_the_writer_thread(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.sqlite3"
    threads: list[str] = []

    def opener() -> SqliteStore:
        threads.append(threading.current_thread().name)
        return SqliteStore(db)

    writer = StoreWriter(opener)
    assert writer.start() is None
    records: list[InputRecord] = [ControlRecord(Marker(0.5, "start"))]
    records += [_packet(1.0 + i, "ann" if i % 2 else "bob") for i in range(200)]
    records.append(GapRecord(300.0, "link_lost", "bob"))

    async def go() -> str | None:
        session = await asyncio.wrap_future(
            writer.create_session(title="t", participants=("ann", "bob"))
        )
        for record in records:
            session.write(record)  # never blocks; the SQLite work is the thread's
        await asyncio.wrap_future(session.finish({"beats": 1}))
        assert session.recording and session.committed == len(records)
        return session.session_id

    sid = asyncio.run(go())
    writer.close().result()
    writer.join()
    # The store was opened, and so used, in the writer thread only: an SQLite
    # connection refuses calls from any other thread (check_same_thread).
    assert threads == ["vagus-store-writer"]
    assert writer.failures == []
    with SqliteStore(db) as store:
        assert sid is not None
        info = store.get_session(sid)
        assert info.ended_unix_s is not None and info.participants == ("ann", "bob")
        assert list(store.iter_input(sid)) == records


def test_a_quiet_second_is_committed_by_the_thread_without_a_call(tmp_path: Path) -> None:
    """Durability does not depend on the loop calling in: the thread commits a due
    transaction on its own tick (here with an injected store clock)."""
    db = tmp_path / "s.sqlite3"
    clock = [0.0]
    writer = StoreWriter(lambda: SqliteStore(db, clock=lambda: clock[0]), tick_s=0.01)
    writer.start()
    session = writer.create_session(participants=("ann",)).result()
    assert session.session_id is not None
    session.write(_packet(1.0))

    def committed() -> int:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        finally:
            conn.close()

    _wait_for(lambda: session.written == 1)
    time.sleep(0.1)  # ticks pass, but the commit interval has not
    assert committed() == 0
    clock[0] = 1.0  # one second on the store's clock: the next tick commits
    _wait_for(lambda: committed() == 1)
    # commit(): durable now, whatever the interval (a relay's packets acknowledged)
    session.write(_packet(2.0))
    writer.commit().result()
    assert committed() == 2
    writer.close().result()
    writer.join()


def test_a_store_failure_stops_recording_and_keeps_the_error(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    stores: list[SqliteStore] = []

    def opener() -> SqliteStore:
        store = SqliteStore(db, commit_interval_s=0.0)
        stores.append(store)
        return store

    writer = StoreWriter(opener)
    writer.start()
    session = writer.create_session(participants=("ann",)).result()
    session.write(_packet(1.0))
    # In the thread (the connection is its own): every write fails from now on.
    writer._call(lambda: stores[0]._conn.execute("PRAGMA query_only = ON")).result()
    for i in range(3):
        session.write(_packet(2.0 + i))  # the caller never sees an exception
    writer._call(lambda: None).result()  # everything queued before has run
    assert not session.recording and session.error is not None
    assert "not writable" in str(session.error)
    assert session.written == 1 and session.lost_records == 3
    writer._call(lambda: stores[0]._conn.execute("PRAGMA query_only = OFF")).result()
    writer.close().result()
    writer.join()
    with SqliteStore(db) as store:
        assert session.session_id is not None
        assert store.input_count(session.session_id) == 1


def test_a_store_that_cannot_be_opened_gives_sessions_that_record_nothing(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = StoreWriter.for_data_dir(blocker / "data")
    error = writer.start()
    assert error is not None and "a part of that path is a file" in str(error)
    session = writer.create_session().result()
    assert session.session_id is None and not session.recording
    assert session.error is error
    session.write(_packet(1.0))
    assert session.lost_records == 1
    writer.close().result()
    writer.join()


class _SlowCommitStore(SqliteStore):
    """A real SQLite store whose commits wait for the test (a disk that stalls)."""

    def __init__(self, path: Path, gate: threading.Event) -> None:
        super().__init__(path, commit_interval_s=0.0)
        self.gate = gate
        self.waiting = threading.Event()
        self.armed = False

    def _commit(self) -> None:
        if self.armed and self._in_tx and not self.waiting.is_set():
            self.waiting.set()
            self.gate.wait(timeout=30)
            self.commit_interval_s = 3600.0  # then one commit at the end (fsyncs are slow)
        super()._commit()


def test_a_stalled_commit_never_blocks_the_event_loop(tmp_path: Path) -> None:
    gate = threading.Event()
    stores: list[_SlowCommitStore] = []

    def opener() -> _SlowCommitStore:
        stores.append(_SlowCommitStore(tmp_path / "s.sqlite3", gate))
        return stores[0]

    writer = StoreWriter(opener)
    writer.start()

    async def go() -> int:
        session = await asyncio.wrap_future(writer.create_session(participants=("ann",)))
        stores[0].armed = True
        session.write(_packet(1.0))
        # The first append commits at once (interval 0) and stalls in the thread...
        await asyncio.get_running_loop().run_in_executor(None, stores[0].waiting.wait, 30)
        # ...while the loop goes on: it writes 500 more records and runs other tasks.
        ticks = 0
        for i in range(500):
            session.write(_packet(2.0 + i))
            await asyncio.sleep(0)
            ticks += 1
        assert session.written <= 1  # the thread is still stuck in that commit
        gate.set()
        await asyncio.wrap_future(session.finish())
        assert session.committed == 501
        return ticks

    assert asyncio.run(go()) == 500
    writer.close().result()
    writer.join()


def test_a_closed_writer_refuses_new_work_with_a_clear_error(tmp_path: Path) -> None:
    writer = StoreWriter(lambda: SqliteStore(tmp_path / "s.sqlite3"))
    writer.start()
    session = writer.create_session().result()
    writer.close().result()
    writer.join()
    from vagus.exceptions import StoreError

    with pytest.raises(StoreError, match="closed"):
        session.write(_packet(1.0))
