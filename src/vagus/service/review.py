"""Review: a stored session replayed over the websocket, with play, pause, seek and speed.

The stored input is run through the same :class:`~vagus.session.Session` as the live one (same
input, same output), once, in a worker thread; each event keeps the session time of the
input that produced it (when the live session sent it). Playback then sends the events
at that time scaled by the speed (0: as fast as the client reads). A seek sends a
``snapshot`` (the late joiner's state at that time) and plays on from there
(docs/protocol.md "Review").
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from vagus.exceptions import InvalidInput, MalformedPacket, VagusError
from vagus.service.bus import OutFrame
from vagus.service.host import EVENT_KINDS
from vagus.service.protocol import FrameError, PingCmd, ReviewCmd, parse_client_frame
from vagus.service.state import SessionState
from vagus.session import Session
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord

if TYPE_CHECKING:
    from vagus.service.server import Service, _Conn

__all__ = ["Replay", "compute_replay", "run_review"]

#: While playing, a ``review_state`` is sent every this many seconds of session time.
STATE_EVERY_S: Final = 1.0
#: Playback pauses while the client has this many frames unsent (it reads too slowly).
BACKLOG_FRAMES: Final = 2_000


@dataclass(frozen=True, slots=True)
class Replay:
    """A session's events as the live session produced them.

    Attributes:
        title: the session's title.
        participants: the participants' names.
        events: every event (JSON form with ``participant``), in order.
        at_s: for each event, the session time of the input that produced it.
        duration_s: the session time of the last input.
    """

    title: str | None
    participants: tuple[str, ...]
    events: tuple[dict[str, Any], ...]
    at_s: tuple[float, ...]
    duration_s: float


def _record_time(record: InputRecord) -> float | None:
    if isinstance(record, PacketRecord):
        return record.t_arrival_s
    if isinstance(record, GapRecord):
        return record.t_s
    if isinstance(record, ControlRecord):
        return record.event.t_s
    if record.t_s:
        return record.t_s[-1]
    return None


def compute_replay(data_dir: Path | None, session_id: str) -> Replay:
    """Run a stored session's input through a Session (blocking: call in a thread)."""
    from vagus.store.open import open_store

    store = open_store(data_dir, create=False, read_only=True)
    try:
        info = store.get_session(session_id)
        records = list(store.iter_input(info.id))
    finally:
        store.close()
    names: list[str] = list(info.participants)
    for record in records:
        who = getattr(record, "participant", None)
        if isinstance(who, str) and who not in names:
            names.append(who)
    # Records are on the session clock (the runner maps every source before storing):
    # a Session with offsets 0 fed them in stored order gives the live events.
    session = Session(participants=tuple(names))
    events: list[dict[str, Any]] = []
    at: list[float] = []
    now = 0.0
    for record in records:
        t = _record_time(record)
        if t is not None and t > now:
            now = t
        try:
            if isinstance(record, PacketRecord):
                session.receive_packet(record.participant, record.t_arrival_s, record.payload)
            elif isinstance(record, GapRecord):
                session.receive_gap(record.participant, record.t_s, record.reason)
            elif isinstance(record, ControlRecord):
                session.receive_control(record.event)
            elif isinstance(record, RRRecord):
                if record.t_s is None:
                    session.receive_rr(record.participant, record.rr_ms)
                else:
                    for rr, t_rr in zip(record.rr_ms, record.t_s, strict=True):
                        session.receive_rr(record.participant, rr, t_s=t_rr)
        except (MalformedPacket, InvalidInput):
            pass  # skipped as live skipped it
        out = [e.to_json() for e in session.events_received()]
        out = [e for e in out if e["type"] in EVENT_KINDS]
        events.extend(out)
        at.extend([now] * len(out))
    session.close()
    closing = [e.to_json() for e in session.events_received()]
    closing = [e for e in closing if e["type"] in EVENT_KINDS]
    events.extend(closing)
    at.extend([now] * len(closing))
    return Replay(info.title or None, tuple(names), tuple(events), tuple(at), round(now, 3))


class _Player:
    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.index = 0
        self.t_s = 0.0
        self.playing = False
        self.speed = 1.0
        self.wake = asyncio.Event()

    def state(self, re: int | None = None) -> dict[str, Any]:
        return {
            "type": "review_state",
            "t_s": round(self.t_s, 3),
            "playing": self.playing,
            "speed": self.speed,
            "duration_s": self.replay.duration_s,
            "re": re,
        }

    def snapshot_at(self, t_s: float) -> dict[str, Any]:
        self.index = bisect.bisect_right(self.replay.at_s, t_s)
        self.t_s = t_s
        state = SessionState()
        for event in self.replay.events[: self.index]:
            state.add(event)
        return state.snapshot()


async def run_review(service: Service, ws: ServerConnection, conn: _Conn) -> None:
    """Serve one review connection until it closes."""
    q = service.make_queue(ws, conn)
    pump = asyncio.create_task(service.pump(ws, conn, q))
    try:
        try:
            replay = await asyncio.to_thread(compute_replay, service.data_dir, conn.session)
        except VagusError as exc:
            service.reply(q, conn, "error", code="conflict", message=str(exc), re=None)
            await asyncio.sleep(0.2)
            await ws.close(1000, "no such session")
            return
        player = _Player(replay)
        timeline = [e for e in replay.events if e["type"] in ("marker", "pacer_state")]
        hello = {
            "type": "hello",
            "participant": None,
            "role": conn.grant.role,
            "mode": "review",
            "title": replay.title,
            "participants": [
                {
                    "name": n,
                    "source": "replay",
                    "connected": None,
                    "contact": None,
                    "battery_pct": None,
                }
                for n in replay.participants
            ],
            "server_time_s": 0.0,
            "server_unix_s": time.time(),
            "recording": False,
            "ended": True,
            "state": player.snapshot_at(0.0),
            "review": {
                # the session's HTML report (server.py's report route); the page adds its
                # own ?token= (a link needs the practitioner's or viewer's token)
                "report_url": f"/s/{conn.session}/report",
                "duration_s": replay.duration_s,
                "t_s": 0.0,
                "playing": False,
                "speed": player.speed,
                "timeline": timeline,
            },
        }
        q.put(OutFrame.make(conn.session, hello))
        playback = asyncio.create_task(_play(service, conn, q, player))
        try:
            async for message in ws:
                if not service.rate_ok(conn):
                    service.error(q, conn, FrameError("rate_limited", "too many messages"))
                    continue
                try:
                    cmd = parse_client_frame(message, session=conn.session)
                    if isinstance(cmd, PingCmd):
                        service.reply(
                            q,
                            conn,
                            "pong",
                            re=cmd.seq,
                            client_time=cmd.client_time,
                            server_time_s=round(player.t_s, 4),
                        )
                        continue
                    if not isinstance(cmd, ReviewCmd):
                        raise FrameError(
                            "forbidden",
                            "a review connection takes review commands and ping",
                            cmd.seq,
                        )
                    _command(service, conn, q, player, cmd)
                except FrameError as exc:
                    service.error(q, conn, exc)
        finally:
            playback.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await playback
    except ConnectionClosed:
        pass
    finally:
        service._queues.discard(q)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump


def _command(service: Service, conn: _Conn, q: Any, player: _Player, cmd: ReviewCmd) -> None:
    if cmd.action == "play":
        if player.index >= len(player.replay.events):
            player.snapshot_at(0.0)  # at the end: play again from the start
        player.playing = True
    elif cmd.action == "pause":
        player.playing = False
    elif cmd.action == "speed":
        assert cmd.speed is not None
        player.speed = cmd.speed
    else:
        assert cmd.t_s is not None
        t_s = min(max(cmd.t_s, 0.0), player.replay.duration_s)
        state = player.snapshot_at(t_s)
        q.put(
            OutFrame.make(conn.session, {"type": "snapshot", "t_s": round(t_s, 3), "state": state})
        )
    q.put(OutFrame.make(conn.session, player.state(cmd.seq)))
    player.wake.set()


async def _play(service: Service, conn: _Conn, q: Any, player: _Player) -> None:
    replay = player.replay
    loop = asyncio.get_running_loop()
    last_state = player.t_s
    while True:
        if not player.playing:
            player.wake.clear()
            await player.wake.wait()
            continue
        if player.index >= len(replay.events):
            player.playing = False
            player.t_s = replay.duration_s
            q.put(OutFrame.make(conn.session, player.state()))
            continue
        if len(q) > BACKLOG_FRAMES:
            await asyncio.sleep(0.02)
            continue
        target = replay.at_s[player.index]
        if player.speed > 0 and target > player.t_s:
            # sleep against the target (session time scaled), waking for commands
            start_t, start_wall = player.t_s, loop.time()
            deadline = start_wall + (target - start_t) / player.speed
            player.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(player.wake.wait(), max(0.0, deadline - loop.time()))
            if player.wake.is_set():  # a command: re-plan from where we are
                elapsed = (loop.time() - start_wall) * player.speed if player.speed > 0 else 0
                if player.playing and player.t_s == start_t:
                    player.t_s = min(target, start_t + elapsed)
                continue
        # send every event of this input time
        batch: list[OutFrame] = []
        while player.index < len(replay.events) and replay.at_s[player.index] <= target:
            batch.append(OutFrame.make(conn.session, replay.events[player.index]))
            player.index += 1
        player.t_s = max(player.t_s, target)
        q.offer(batch)
        if player.t_s - last_state >= STATE_EVERY_S or player.t_s < last_state:
            last_state = player.t_s
            q.put(OutFrame.make(conn.session, player.state()))
        if player.speed == 0:
            await asyncio.sleep(0)
