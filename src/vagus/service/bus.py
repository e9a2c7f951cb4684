"""The event bus and the per-connection queues: fan-out that never waits.

A session publishes its frames on a **topic** (the session id); every websocket of the
session is a subscriber with its own bounded :class:`ClientQueue`. ``publish`` never
awaits anything: each subscriber's ``offer`` only appends to its queue (DESIGN.md "A slow
browser never slows the pipeline or other viewers"; websockets ``docs/topics/broadcast``).

:class:`Bus` is the interface, shaped like Redis Streams (``publish`` ~ ``XADD`` to the
stream ``topic``, ``subscribe`` ~ a reader of that stream from now on) so a
Redis-backed implementation can take the place of :class:`InProcessBus` when one machine
is outgrown; only the in-process one exists now.

The queue policy (docs/protocol.md "Flow control"):

1. ``metrics`` and ``spectrum`` are coalesced: a newer one for the same participant
   replaces an unsent older one.
2. Nothing else is ever dropped for a client that keeps up.
3. A client whose socket has taken no data for more than :data:`STALL_S` seconds (one
   send waiting that long: its receive window and our send buffer are full, it stopped
   reading), or whose queue holds more than :data:`MAX_QUEUED` frames (it reads, but
   slower than the session produces), is disconnected (its ``on_stall`` callback closes
   the socket); it reconnects and gets the present state in ``hello``. A queue that
   grew only because the server was busy is not the client's fault and does not count.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import orjson

from vagus.service.protocol import PROTOCOL_VERSION, dumps

__all__ = [
    "COALESCED",
    "MAX_QUEUED",
    "STALL_S",
    "Bus",
    "ClientQueue",
    "InProcessBus",
    "OutFrame",
    "Subscriber",
    "batch_text",
    "frame_prefix",
]

#: A client whose socket has taken no data for this long (s) is disconnected.
STALL_S: Final = 5.0
#: A client with more unsent frames than this is disconnected.
MAX_QUEUED: Final = 10_000
#: Frame kinds of which only the latest per participant matters.
COALESCED: Final = frozenset({"metrics", "spectrum"})


class OutFrame:
    """A server frame ready to send: ``body`` is its JSON without the closing brace and
    without ``seq`` (each connection numbers its own frames).

    Made from a dict (:meth:`make`: service frames, status, control events) or straight
    from a session event object (:meth:`from_event`: the beats, metrics and spectra of
    every packet, serialised by orjson from the event's fields without building a dict;
    ``obj`` keeps the event for the late joiners' state). ``event`` is the dict form,
    envelope included (built on first use for a frame made from an object).
    """

    __slots__ = ("_event", "body", "kind", "obj", "participant")

    def __init__(
        self,
        kind: str,
        participant: str | None,
        event: dict[str, Any] | None,
        body: str = "",
        obj: Any = None,
    ) -> None:
        self.kind = kind
        self.participant = participant
        self._event = event
        self.body = body
        self.obj = obj

    @classmethod
    def make(cls, session: str, event: dict[str, Any], *, own: bool = False) -> OutFrame:
        """A frame from an event's (or service frame's) JSON form, with the envelope
        (``own``: the dict is this frame's to keep and is completed in place)."""
        full = event if own else dict(event)
        full["v"] = PROTOCOL_VERSION
        full["session"] = session
        if "participant" not in full:
            full["participant"] = None
        return cls(str(full["type"]), full["participant"], full, dumps(full)[:-1])

    @classmethod
    def from_event(
        cls, session: str, participant: str | None, event: Any, prefix: str | None = None
    ) -> OutFrame:
        """A frame from an event object whose JSON form is its type and all its dataclass
        fields (:class:`~vagus.core.events.Beat`, ``Metrics``, ``Spectrum``, ``Rsa``: the
        generic ``to_json``), the same JSON as :meth:`make` of ``event.to_json()`` plus
        ``participant`` (NaN and infinities null, tuples lists, numpy scalars numbers).
        ``prefix``: :func:`frame_prefix` of the kind, session and participant (cached by
        the caller)."""
        kind: str = event.type
        if prefix is None:
            prefix = frame_prefix(kind, session, participant)
        fields = orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY)
        body = prefix + "," + fields[1:-1].decode() if len(fields) > 2 else prefix
        return cls(kind, participant, None, body, event)

    @property
    def event(self) -> dict[str, Any]:
        """The frame as a dict, envelope included (no ``seq``)."""
        if self._event is None:
            self._event = orjson.loads(self.body + "}")
        return self._event

    def bare(self) -> dict[str, Any]:
        """The frame's event without ``v``, ``session`` and ``seq`` (``hello.state``)."""
        if self.obj is not None:
            out: dict[str, Any] = self.obj.to_json()
            out["participant"] = self.participant
            return out
        return {k: v for k, v in self.event.items() if k not in ("v", "session", "seq")}

    def text(self, seq: int) -> str:
        """The frame as sent: ``body`` with ``"seq": seq``."""
        return f'{self.body},"seq":{seq}}}'


def frame_prefix(kind: str, session: str, participant: str | None) -> str:
    """The start of a frame's JSON (type and envelope), for :meth:`OutFrame.from_event`."""
    return (
        f'{{"type":{dumps(kind)},"v":{PROTOCOL_VERSION},"session":{dumps(session)},'
        f'"participant":{dumps(participant)}'
    )


def batch_text(session_json: str, texts: list[str]) -> str:
    """One websocket message holding several frames (docs/protocol.md ``batch``):
    ``{"type": "batch", "v": 1, "session": ..., "frames": [frame, ...]}``; each frame
    keeps its own ``seq``. ``session_json``: the session id as JSON."""
    return (
        f'{{"type":"batch","v":{PROTOCOL_VERSION},"session":{session_json},'
        f'"frames":[{",".join(texts)}]}}'
    )


class Subscriber(Protocol):
    """Receives the frames of a topic; ``offer`` must never block."""

    def offer(self, frames: Iterable[OutFrame]) -> None: ...


class Bus(ABC):
    """Publish frames on a topic; subscribers get every frame published after they
    subscribed, in order."""

    @abstractmethod
    def publish(self, topic: str, frames: list[OutFrame]) -> None:
        """Hand ``frames`` to every subscriber of ``topic`` (never waits)."""

    @abstractmethod
    def subscribe(self, topic: str, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns the function that removes it."""


class InProcessBus(Bus):
    """The embedded bus: subscribers are called in the publishing thread, in order."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def publish(self, topic: str, frames: list[OutFrame]) -> None:
        if not frames:
            return
        for subscriber in tuple(self._subscribers.get(topic, ())):
            subscriber.offer(frames)

    def subscribe(self, topic: str, subscriber: Subscriber) -> Callable[[], None]:
        subs = self._subscribers.setdefault(topic, [])
        subs.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in subs:
                subs.remove(subscriber)
            if not subs and self._subscribers.get(topic) is subs:
                del self._subscribers[topic]

        return unsubscribe

    def subscribers(self, topic: str) -> int:
        """How many subscribers ``topic`` has (for status and tests)."""
        return len(self._subscribers.get(topic, ()))


class ClientQueue:
    """One connection's bounded outgoing queue with the coalescing/stall policy above.

    Args:
        accept: which frames this connection may see (its role's filter).
        on_stall: called once (with a reason) when the client falls too far behind;
            it must close the connection without waiting for it.
        clock: monotonic clock (s).
    """

    def __init__(
        self,
        accept: Callable[[OutFrame], bool],
        on_stall: Callable[[str], None],
        *,
        stall_s: float = STALL_S,
        max_queued: int = MAX_QUEUED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accept = accept
        self._on_stall = on_stall
        self.stall_s = stall_s
        self.max_queued = max_queued
        self._clock = clock
        # entries: [frame or None (coalesced away), enqueue time]
        self._entries: deque[list[Any]] = deque()
        self._latest: dict[tuple[str, str | None], list[Any]] = {}
        self._live = 0
        self._ready = asyncio.Event()
        self.stalled: str | None = None
        #: when the send in progress started (None: none in progress)
        self.sending_since: float | None = None
        #: frames replaced by a newer one before they were sent
        self.coalesced = 0
        #: sends frames at once, without waiting (the connection's socket takes them
        #: into its buffer), or returns False when it cannot (the socket's buffer is
        #: full, it is closing...); used only while nothing is queued or being sent, so
        #: the order stays; None: every frame goes through the queue
        self.direct: Callable[[list[OutFrame]], bool] | None = None
        #: frames sent at once by :attr:`direct`
        self.sent_directly = 0

    def __len__(self) -> int:
        return self._live

    def _send_now(self, frames: list[OutFrame]) -> bool:
        direct = self.direct
        if direct is None or self._live or self.sending_since is not None:
            return False
        if not direct(frames):
            return False
        self.sent_directly += len(frames)
        return True

    def offer(self, frames: Iterable[OutFrame]) -> None:
        """Queue the frames this client may see (or send them at once: :attr:`direct`);
        never blocks."""
        if self.stalled is not None:
            return
        accept = self._accept
        accepted = [frame for frame in frames if accept(frame)]
        if not accepted or self._send_now(accepted):
            return
        now = self._clock()
        added = False
        for frame in accepted:
            entry = [frame, now]
            if frame.kind in COALESCED:
                key = (frame.kind, frame.participant)
                old = self._latest.get(key)
                if old is not None and old[0] is not None:
                    old[0] = None
                    self._live -= 1
                    self.coalesced += 1
                self._latest[key] = entry
            self._entries.append(entry)
            self._live += 1
            added = True
        if added:
            self._ready.set()
            self.check(now)

    def put(self, frame: OutFrame) -> None:
        """Queue one frame for this client only (hello, ack, error, pong), or send it at
        once (:attr:`direct`)."""
        if self.stalled is not None or self._send_now([frame]):
            return
        self._entries.append([frame, self._clock()])
        self._live += 1
        self._ready.set()

    def check(self, now: float | None = None) -> bool:
        """Disconnect the client if it is too far behind; True if it is (was) stalled."""
        if self.stalled is not None:
            return True
        now = self._clock() if now is None else now
        while self._entries and self._entries[0][0] is None:
            self._entries.popleft()
        reason = None
        if self._live > self.max_queued:
            reason = f"more than {self.max_queued} frames unsent"
        elif self.sending_since is not None and now - self.sending_since > self.stall_s:
            reason = f"no data taken for more than {self.stall_s:g} s"
        if reason is None:
            return False
        self.stalled = reason
        self._entries.clear()
        self._latest.clear()
        self._live = 0
        self._ready.set()
        self._on_stall(reason)
        return True

    async def get_batch(self, limit: int = 256) -> list[OutFrame]:
        """Wait for frames and take up to ``limit`` of them (empty once stalled)."""
        while not self._live:
            if self.stalled is not None:
                return []
            self._ready.clear()
            await self._ready.wait()
        out: list[OutFrame] = []
        entries = self._entries
        while entries and len(out) < limit:
            frame = entries.popleft()[0]
            if frame is None:
                continue
            out.append(frame)
            if frame.kind in COALESCED:
                key = (frame.kind, frame.participant)
                if self._latest.get(key) is not None and self._latest[key][0] is frame:
                    del self._latest[key]
        self._live -= len(out)
        return out
