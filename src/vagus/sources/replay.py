"""Replay of a recorded session, paced against a target clock.

The recorded input (:meth:`vagus.store.base.Store.iter_input`) is handed out again at
``speed`` times real time: each record's *target* wall time is computed from the first
paced record and the speed, ``wall₀ + (t_rec − t_rec₀) / speed``, and the replay sleeps
until that target (never by stacking per-record sleeps, which drift; mne-lsl's player
does the same). ``speed=None`` is as fast as possible.

Times on the recording clock (s): a packet's arrival time, a gap's or control event's
``t_s``, an imported beat's time (or, for RR without times, the cumulative RR from the
previous record's time, as :meth:`~vagus.core.pipeline.Pipeline.receive_rr` does).
Imported RR records are split into single beats when paced (so beats arrive at their
own times) and into chunks of :data:`MAX_SPEED_CHUNK` beats at max speed; feeding the
parts gives exactly the events of feeding the whole record.

``from_s``: records before ``t_first + from_s`` are handed out at once, flagged as
*catch-up*, so the pipeline's windows are warm when pacing starts and the events from
there on are exactly those of the live session.

Three faces share :func:`schedule`:

- :func:`paced` (synchronous, for ``vagus replay``),
- :func:`apaced` (async),
- :class:`ReplaySource`, the :class:`~vagus.sources.base.Source` for a recorded session.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import NamedTuple

from vagus.exceptions import InvalidInput, SourceError, StoreError
from vagus.sources.base import (
    Capabilities,
    ControlItem,
    DeviceInfo,
    LinkGap,
    Packet,
    ReplaySpec,
    SourceBase,
    SourceItem,
)
from vagus.store.base import (
    ControlRecord,
    GapRecord,
    InputRecord,
    PacketRecord,
    RRRecord,
    SessionInfo,
    Store,
)

__all__ = [
    "MAX_SPEED_CHUNK",
    "Pacer",
    "ReplaySource",
    "Scheduled",
    "apaced",
    "check_speed",
    "paced",
    "schedule",
]

#: Beats per RR chunk at max speed (only for progress granularity; any size is exact).
MAX_SPEED_CHUNK = 2048


class Scheduled(NamedTuple):
    """One record to hand out, with its time on the recording clock.

    Attributes:
        record: the (possibly split) input record.
        t_s: its time on the recording clock (s).
        catch_up: True before ``from_s``: hand out at once; its events are not shown.
        source_index: index of the stored record it comes from (for progress).
    """

    record: InputRecord
    t_s: float
    catch_up: bool
    source_index: int


def check_speed(speed: float | None) -> float | None:
    """``speed`` if valid (None = max, else finite and > 0); raises InvalidInput."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise InvalidInput(f"replay speed must be a positive number or max, got {speed!r}")
    return speed


def _split_rr(record: RRRecord, t_cursor: float, size: int) -> Iterator[tuple[RRRecord, float]]:
    """Parts of ``record`` of at most ``size`` beats, each with the time of its last beat."""
    rr, ts = record.rr_ms, record.t_s
    for i in range(0, len(rr), size):
        part_rr = rr[i : i + size]
        if ts is not None:
            part_t = ts[i : i + size]
            yield RRRecord(part_rr, part_t, record.participant), part_t[-1]
        else:
            t_cursor += math.fsum(part_rr) / 1000.0
            yield RRRecord(part_rr, None, record.participant), t_cursor


def schedule(
    records: Iterable[InputRecord], *, from_s: float = 0.0, rr_chunk: int = 1
) -> Iterator[Scheduled]:
    """Each record with its recording-clock time, RR split into ``rr_chunk``-beat parts.

    ``from_s`` is an offset (s) from the time of the first record: records before it
    are flagged ``catch_up``.
    """
    if not (math.isfinite(from_s) and from_s >= 0):
        raise InvalidInput(f"the replay start offset must be >= 0 s, got {from_s!r}")
    t_first: float | None = None
    t_cursor = 0.0
    for index, record in enumerate(records):
        if isinstance(record, RRRecord):
            if not record.rr_ms:
                continue
            if t_first is None:
                t_first = record.t_s[0] - record.rr_ms[0] / 1000.0 if record.t_s else t_cursor
            for part, t in _split_rr(record, t_cursor, max(1, rr_chunk)):
                t_cursor = t
                yield Scheduled(part, t, t < t_first + from_s, index)
            continue
        if isinstance(record, PacketRecord):
            t = record.t_arrival_s
        elif isinstance(record, GapRecord):
            t = record.t_s
        elif isinstance(record, ControlRecord):
            t = record.event.t_s
        else:  # pragma: no cover - InputRecord is closed
            raise TypeError(f"not an input record: {record!r}")
        if t_first is None:
            t_first = t
        t_cursor = t
        yield Scheduled(record, t, t < t_first + from_s, index)


class Pacer:
    """Target times for paced records: ``wall₀ + (t − t₀) / speed``.

    The first paced (not catch-up) record anchors ``t₀`` and ``wall₀``. :meth:`delay_s`
    is the time left until a record's target, never negative; a late record is handed
    out at once and does not shift later targets (no drift, no stacked sleeps).
    """

    def __init__(self, speed: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = check_speed(speed)
        self._clock = clock
        self._t0: float | None = None
        self._wall0 = 0.0

    def delay_s(self, t_s: float) -> float:
        """Seconds to wait before handing out the record at recording time ``t_s``."""
        if self.speed is None:
            return 0.0
        now = self._clock()
        if self._t0 is None:
            self._t0, self._wall0 = t_s, now
            return 0.0
        return max(0.0, self._wall0 + (t_s - self._t0) / self.speed - now)


def _chunk(speed: float | None) -> int:
    return MAX_SPEED_CHUNK if speed is None else 1


def paced(
    records: Iterable[InputRecord],
    *,
    speed: float | None,
    from_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Scheduled]:
    """Hand out ``records`` at ``speed`` × real time (None: at once), blocking in between."""
    pacer = Pacer(speed, clock)
    for item in schedule(records, from_s=from_s, rr_chunk=_chunk(speed)):
        if not item.catch_up:
            delay = pacer.delay_s(item.t_s)
            if delay > 0:
                sleep(delay)
        yield item


async def apaced(
    records: Iterable[InputRecord], *, speed: float | None, from_s: float = 0.0
) -> AsyncIterator[Scheduled]:
    """:func:`paced` for asyncio: sleeps with ``asyncio.sleep`` against ``loop.time()``."""
    loop = asyncio.get_running_loop()
    pacer = Pacer(speed, loop.time)
    for n, item in enumerate(schedule(records, from_s=from_s, rr_chunk=_chunk(speed))):
        if not item.catch_up:
            delay = pacer.delay_s(item.t_s)
            if delay > 0:
                await asyncio.sleep(delay)
            elif n % 64 == 0:
                await asyncio.sleep(0)  # let other tasks run at max speed
        yield item


class ReplaySource(SourceBase):
    """A recorded session as a :class:`~vagus.sources.base.Source`, paced (see module doc).

    ``async for item in source`` yields what the live session received: a
    :class:`DeviceInfo` with the session's device profile first, then a :class:`Packet`
    per recorded packet and a :class:`LinkGap` per recorded gap (each with its
    ``participant``), and a :class:`~vagus.sources.base.ControlItem` per recorded control
    event (marker, pacer change), in the recorded order (``capabilities.yields_control``).
    :meth:`records` yields every input record (imported RR included), paced the same
    way, for consumers that replay a whole session (feed them with
    :func:`vagus.store.base.feed`).

    Args:
        spec: which session, where, how fast, from where.
        store: an open store to read from (else one is opened from ``spec.data_dir``
            on enter and closed on exit).

    Raises (on enter):
        SessionNotFound / StoreError: no such session, or the store cannot be read.
        SourceError: ``spec.participant`` recorded no input in the session.
    """

    capabilities = Capabilities(yields_control=True)

    def __init__(self, spec: ReplaySpec, store: Store | None = None) -> None:
        check_speed(spec.speed)
        if not (math.isfinite(spec.from_s) and spec.from_s >= 0):
            raise InvalidInput(f"the replay start offset must be >= 0 s, got {spec.from_s!r}")
        self.spec = spec
        self._store = store
        self._own_store = store is None
        self.session: SessionInfo | None = None

    async def __aenter__(self) -> ReplaySource:
        if self._store is None:
            from vagus.store.open import open_store

            self._store = open_store(self.spec.data_dir, create=False)
        try:
            self.session = self._store.get_session(self.spec.session_id)
            who = self.spec.participant
            if who is not None:
                recorded = self._store.recorded_participants(self.session.id)
                if who not in recorded:
                    raise SourceError(
                        f"session {self.session.id} has no input of participant {who!r}; "
                        f"its participants: {', '.join(recorded) or 'none'}"
                    )
        except (StoreError, SourceError):
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def _require(self) -> tuple[Store, SessionInfo]:
        if self._store is None or self.session is None:
            raise SourceError("enter the ReplaySource (async with) before iterating it")
        return self._store, self.session

    def records(self) -> AsyncIterator[Scheduled]:
        """Every input record of the session (of ``spec.participant`` only, with the
        control records, when given), paced."""
        store, session = self._require()
        who = self.spec.participant
        records = store.iter_input(session.id, participants=None if who is None else {who})
        return apaced(records, speed=self.spec.speed, from_s=self.spec.from_s)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._items()

    async def _items(self) -> AsyncIterator[SourceItem]:
        _store, session = self._require()
        device_id = f"replay-{session.id}"
        sent_info = False
        async for item in self.records():
            rec = item.record
            if not sent_info:
                sent_info = True
                yield DeviceInfo(
                    t_s=item.t_s,
                    device_id=device_id,
                    name=session.title or f"session {session.id}",
                    profile_id=session.device_profile,
                )
            if isinstance(rec, PacketRecord):
                yield Packet(rec.t_arrival_s, rec.payload, device_id, rec.participant)
            elif isinstance(rec, GapRecord):
                yield LinkGap(rec.t_s, rec.reason, device_id, rec.participant)
            elif isinstance(rec, ControlRecord):
                yield ControlItem(rec.event)
            elif isinstance(rec, RRRecord):
                raise SourceError(
                    f"session {session.id} holds imported RR intervals, not strap packets; "
                    "replay it with ReplaySource.records() or `vagus replay`"
                )
