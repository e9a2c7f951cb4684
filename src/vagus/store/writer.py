"""The store writer: every store call of a live session in one thread, off the event loop.

SQLite commits with ``synchronous=FULL`` wait for the disk (milliseconds, more on a busy
or slow disk); on the asyncio loop each one would stall every source, subscriber and
client of the process (STYLE.md "Blocking work never on the event loop"). A
:class:`StoreWriter` owns one store in one thread: the store is opened there, and every
call to it (create, append, commit, end, delete, close) runs there, in the order the
loop asked for it. The loop only puts commands on a queue (:meth:`StoreWriter.write`
never blocks) and waits for the few that answer (:meth:`StoreWriter.create_session`,
:meth:`StoreWriter.finish`, :meth:`StoreWriter.close`) as futures.

Durability is the store's (DESIGN.md "Nothing lost"): an append commits once the store's
``commit_interval_s`` (1 s) has passed since the last commit, and the thread calls
:meth:`~vagus.store.recorder.Recorder.tick` (``commit_if_due``) every ``tick_s`` (0.1 s)
even while records keep coming. Records are queued without waking the thread, which
looks for them every :data:`POLL_S` (0.1 s): a wake-up per record made the loop late
(each hands the GIL to the writer thread and back, and on a busy machine each hand-over
waits for the scheduler; measured with 200 simulated participants at load average 16:
p99 loop lag 57 ms with a wake-up every 20 ms, 18 ms with one every 0.25 s, 16 ms not
recording at all). So what a ``kill -9`` leaves is at most about ``POLL_S +
commit_interval_s + tick_s`` (1.2 s) old; it was ``commit_interval_s`` plus the loop's
0.25 s timer when the loop wrote the store itself.

Several sessions may be written through one writer (``vagus serve``: one thread, one
SQLite connection for all the sessions of the process). Each session has its own
:class:`~vagus.store.recorder.Recorder`: a store failure stops that session's recording
(kept in :attr:`SessionWriter.error`), never the live session, and is read by the loop
from the session's attributes (``recording``, ``error``, ``written``...).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from vagus.exceptions import StoreError
from vagus.store.base import InputRecord, SessionInfo, Store
from vagus.store.recorder import Recorder

__all__ = ["SessionWriter", "StoreWriter"]

T = TypeVar("T")

#: How often the writer thread commits a due transaction when nothing else happens (s).
TICK_S = 0.1
#: How often the writer thread looks for queued records (s): records are queued without
#: waking it, so the records of a tenth of a second cost the loop one hand-over of the
#: GIL, not one each (see the module docstring).
POLL_S = 0.1


class SessionWriter:
    """One session written through a :class:`StoreWriter` (made by
    :meth:`StoreWriter.create_session`); its attributes mirror its
    :class:`~vagus.store.recorder.Recorder`, updated by the writer thread.

    Attributes:
        session_id: the session's id (None when the store could not create it).
        started_unix_s: the session's start (Unix s), if created.
        location: where the store is (for messages), "" without a store.
    """

    def __init__(self, writer: StoreWriter, recorder: Recorder, location: str) -> None:
        self._writer = writer
        self._recorder = recorder
        self.session_id = recorder.session_id
        self.started_unix_s = recorder.started_unix_s
        self.location = location
        self.finished = False

    @property
    def recording(self) -> bool:
        """True while the records handed in are being written."""
        return self._recorder.recording

    @property
    def error(self) -> StoreError | None:
        """The error that stopped (or prevented) recording, if any."""
        return self._recorder.error

    @property
    def session_deleted(self) -> bool:
        """Recording stopped because another process deleted the session."""
        return self._recorder.session_deleted

    @property
    def written(self) -> int:
        """Records handed to the store so far (by the writer thread)."""
        return self._recorder.written

    @property
    def committed(self) -> int:
        """Records known to be committed (all of them after :meth:`finish`)."""
        return self._recorder.committed

    @property
    def lost_records(self) -> int:
        """Records not written because recording had stopped."""
        return self._recorder.lost_records

    def write(self, record: InputRecord) -> None:
        """Queue ``record`` for the store (never blocks; written in order)."""
        if self.session_id is None:
            self._recorder.lost_records += 1
            return
        self._writer._put(self._recorder.write, record)

    def write_many(self, records: Sequence[InputRecord]) -> None:
        """Queue several records at once (one queue entry; written in order)."""
        if not records:
            return
        if self.session_id is None:
            self._recorder.lost_records += len(records)
            return
        recorder = self._recorder

        def write_all(batch: Sequence[InputRecord]) -> None:
            for record in batch:
                recorder.write(record)

        self._writer._put(write_all, tuple(records))

    def set_device_profile(self, profile_id: str) -> None:
        """The session's device profile became known (queued)."""
        if self.session_id is not None:
            self._writer._put(self._recorder.set_device_profile, profile_id)

    def finish(
        self, summary: dict[str, Any] | None = None, ended_unix_s: float | None = None
    ) -> concurrent.futures.Future[None]:
        """End the session (after every record queued before), store its ``summary`` and
        commit; errors are kept in :attr:`error`, not raised."""
        self.finished = True
        return self._writer._call(self._writer._finish, self._recorder, summary, ended_unix_s)

    def discard(self) -> concurrent.futures.Future[None]:
        """Delete the session and everything written to it (a session that received
        nothing is not kept); errors are ignored."""
        self.finished = True
        recorder = self._recorder

        def delete() -> None:
            if recorder.store is None or recorder.session_id is None:
                return
            recorder.recording = False
            self._writer._forget(recorder)
            with contextlib.suppress(StoreError):
                recorder.store.delete_session(recorder.session_id)

        return self._writer._call(delete)


class StoreWriter:
    """A store owned by one writer thread (see the module docstring).

    Args:
        open_store: opens the store; called in the writer thread (its errors are kept in
            :attr:`error`, and every session then records nothing).
        tick_s: how often the thread calls ``commit_if_due`` (s).
        poll_s: how often the thread looks for queued records (s); commands that answer
            (create, finish, commit, close) wake it at once.

    Use::

        writer = StoreWriter(lambda: open_store(data_dir))
        writer.start()                       # opens the store in its thread, waits for it
        session = writer.create_session(title="t", participants=("ann",)).result()
        session.write(record)                # from the event loop: never blocks
        session.finish(summary).result()     # or await asyncio.wrap_future(...)
        writer.close().result()
    """

    def __init__(
        self, open_store: Callable[[], Store], *, tick_s: float = TICK_S, poll_s: float = POLL_S
    ) -> None:
        self._open_store = open_store
        self.tick_s = tick_s
        self.store: Store | None = None
        #: why the store could not be opened, if it could not
        self.error: StoreError | None = None
        # Commands in order; the loop appends without waking the thread (a wake-up per
        # record would hand the GIL to this thread every time: measured, it made the
        # loop late); answered commands set _wake.
        self._commands: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            collections.deque()
        )
        self._wake = threading.Event()
        self._recorders: list[Recorder] = []
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._closed = False
        #: unexpected exceptions raised by queued commands (a bug; StoreErrors are kept
        #: by each session's recorder instead)
        self.failures: list[Exception] = []
        self.poll_s = poll_s

    @classmethod
    def for_data_dir(cls, data_dir: Path | str | None) -> StoreWriter:
        """A writer on the store in ``data_dir`` (created if needed), as ``vagus record``
        opens it (:func:`vagus.store.open.open_store`)."""

        def opener() -> Store:
            from vagus.store import open as open_mod  # looked up now: tests may patch it

            return open_mod.open_store(data_dir)

        return cls(opener)

    @property
    def location(self) -> str:
        """Where the store is, for messages ("" when it could not be opened)."""
        return self.store.location if self.store is not None else ""

    def start(self) -> StoreError | None:
        """Start the thread and open the store there; waits until it is open (or failed)
        and returns the error, if any (also kept in :attr:`error`)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="vagus-store-writer", daemon=True
            )
            self._thread.start()
        self._opened.wait()
        return self.error

    # --------------------------------------------------------------- commands

    @property
    def pending(self) -> int:
        """Commands queued and not yet run (for a status line or a benchmark)."""
        return len(self._commands)

    def _put(self, fn: Callable[..., Any], *args: Any, wake: bool = False) -> None:
        if self._closed:
            raise StoreError("the store writer is closed; start a new one to record again")
        self._commands.append((fn, args))  # deque.append is atomic: no lock
        if wake:
            self._wake.set()

    def _call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` in the writer thread after everything queued before it."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits for it
                future.set_exception(exc)

        self._put(run, wake=True)
        return future

    def create_session(
        self,
        *,
        title: str = "",
        participants: Sequence[str] = ("me",),
        source: str = "sim",
        tags: Sequence[str] = (),
        device_profile: str | None = None,
    ) -> concurrent.futures.Future[SessionWriter]:
        """Create a session being recorded (``recording=True``: it lists as recording and
        ``vagus delete`` refuses it meanwhile). The future's :class:`SessionWriter`
        records nothing, with the reason in its ``error``, if the store could not be
        opened or the session created; it never raises a StoreError."""

        def create() -> SessionWriter:
            store = self.store
            if store is None:
                error = self.error or StoreError("the session store is not open")
                return SessionWriter(self, Recorder(None, None, error=error), "")
            try:
                kwargs: dict[str, Any] = {}
                if device_profile is not None:
                    kwargs["device_profile"] = device_profile
                info: SessionInfo = store.create_session(
                    title=title,
                    participants=tuple(participants),
                    source=source,
                    tags=tuple(tags),
                    recording=True,
                    **kwargs,
                )
            except StoreError as exc:
                return SessionWriter(self, Recorder(None, None, error=exc), store.location)
            recorder = Recorder(store, info.id, started_unix_s=info.started_unix_s)
            self._recorders.append(recorder)
            return SessionWriter(self, recorder, store.location)

        return self._call(create)

    def commit(self) -> concurrent.futures.Future[None]:
        """Commit everything queued before now; the future completes once it is durable
        (a relay's packets may then be acknowledged), or raises the StoreError. A store
        that could not be opened commits nothing (the future raises its error)."""

        def commit_now() -> None:
            if self.store is None:
                raise self.error or StoreError("the session store is not open")
            self.store.commit()

        return self._call(commit_now)

    def close(self) -> concurrent.futures.Future[None]:
        """Commit what is buffered and close the store, after every queued command; the
        thread then ends. A close error is kept in the recorders still recording."""
        if self._closed:
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            done.set_result(None)
            return done
        future = self._call(self._close_store)
        self._closed = True
        self._commands.append(None)
        self._wake.set()
        return future

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the thread to end (after :meth:`close`)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --------------------------------------------------------------- the thread

    def _forget(self, recorder: Recorder) -> None:
        """No more ticks for ``recorder`` (finished or discarded)."""
        with contextlib.suppress(ValueError):
            self._recorders.remove(recorder)

    def _finish(
        self, recorder: Recorder, summary: dict[str, Any] | None, ended_unix_s: float | None
    ) -> None:
        self._forget(recorder)
        recorder.finish(summary, ended_unix_s)

    def _close_store(self) -> None:
        store, self.store = self.store, None
        recorders, self._recorders = self._recorders, []
        if store is None:
            return
        try:
            store.close()
        except StoreError as exc:
            for recorder in recorders:
                if recorder.recording:
                    recorder.error = recorder.error or exc
                    recorder.recording = False

    def _tick(self) -> None:
        # commit_if_due is store-wide: the first recorder still recording does it for
        # all (a server with thousands of sessions called it for each, ten times a
        # second); one whose tick failed stopped recording, and the next one tries.
        stopped = False
        for recorder in self._recorders:
            recorder.tick()
            if recorder.recording:
                break
            stopped = True
        if stopped:
            self._recorders = [r for r in self._recorders if r.recording]

    def _run(self) -> None:
        try:
            self.store = self._open_store()
        except StoreError as exc:
            self.error = exc
        finally:
            self._opened.set()
        next_tick = time.monotonic() + self.tick_s
        commands = self._commands
        while True:
            # Records come without a wake-up: look every poll_s (or at once when woken).
            self._wake.wait(timeout=max(0.0, min(self.poll_s, next_tick - time.monotonic())))
            self._wake.clear()
            while commands:
                item = commands.popleft()
                if item is None:
                    return
                fn, args = item
                try:
                    fn(*args)
                except Exception as exc:  # a bug, not a store failure: keep writing the rest
                    self.failures.append(exc)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                self._tick()
