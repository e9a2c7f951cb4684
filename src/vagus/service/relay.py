"""The relay: a strap (or simulated subject) on this machine, streamed into a remote session.

Every packet (and link gap) read from the source gets the next sequence number and goes
into a buffer; a sender streams the buffer over the participant's websocket
(``mode=ingest``) and drops what the server acknowledges as durably stored
(``ack.packets_upto``). After a network blip or a server restart it reconnects with
backoff (0.5 s doubling to 10 s, with jitter); the server's ``hello.packets_upto`` says
where to resume, so nothing is lost and nothing is stored twice
(docs/protocol.md "packets"). The buffer holds up to :data:`BUFFER_ITEMS` packets (more
than a day at one packet per second; the issue asks for at least 60 s).

Times: packets carry the source's arrival time on this machine's monotonic clock (a
simulated source's own clock is moved onto it), so a relay restarted on the same boot
continues the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from vagus.exceptions import InvalidInput, SourceError
from vagus.service.protocol import MAX_PACKETS_PER_FRAME, PROTOCOL_VERSION
from vagus.service.server import RedactTokens
from vagus.service.tokens import redact
from vagus.sources.base import DeviceInfo, LinkGap, Packet, SourceSpec, open_source

__all__ = ["BUFFER_ITEMS", "Relay", "relay_url"]

log = logging.getLogger("vagus.relay")

#: Packets kept until acknowledged (about 27 h at one packet per second).
BUFFER_ITEMS: Final = 100_000
BACKOFF_INITIAL_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0


def relay_url(server: str, token: str | None) -> str:
    """The ingest websocket URL from ``--server`` (a base URL or a participant link) and
    ``--token``.

    Raises:
        InvalidInput: no token anywhere, or not an http(s)/ws(s) URL.
    """
    try:
        parts = urlsplit(server.strip())
    except ValueError:
        raise InvalidInput(f"--server {redact(server)!r} is not a URL") from None
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise InvalidInput(
            f"--server {redact(server)!r}: give the server's address, e.g. "
            "http://192.168.1.5:8765 (or the participant link it printed)"
        )
    query = parse_qs(parts.query)
    token = token or (query["token"][0] if query.get("token") else None)
    if not token:
        raise InvalidInput(
            "--token T is needed (the participant token: the part after token= in the "
            "participant link)"
        )
    segments = [s for s in parts.path.split("/") if s]
    session = None
    if len(segments) >= 2 and segments[0] in ("s", "ws"):
        session = segments[1]
    path = f"/ws/{session}" if session else "/ws"
    return urlunsplit((scheme, parts.netloc, path, f"token={token}&mode=ingest", ""))


@dataclass
class RelayStats:
    read: int = 0
    acked: int = 0
    sent: int = 0
    resent: int = 0
    connects: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)


class Relay:
    """Source → buffer → websocket with acks (see the module docstring).

    Args:
        url: the ingest websocket URL (:func:`relay_url`).
        spec: the source to read.
    """

    def __init__(self, url: str, spec: SourceSpec | None) -> None:
        self.url = url
        self.spec = spec
        self.buffer: deque[dict[str, Any]] = deque()
        self.next_seq = 1
        self.acked = 0
        self.stats = RelayStats()
        self._new = asyncio.Event()
        self._acked_event = asyncio.Event()
        self._battery: int | None = None
        self._battery_sent: int | None = None
        self.connected = False
        self._seq_known = asyncio.Event()
        self.source_done = False
        logger = logging.getLogger("websockets.client")
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())

    # ------------------------------------------------------------------ input

    def add(self, t_s: float, *, payload: bytes | None = None, gap: str | None = None) -> None:
        """Buffer one packet (or gap) with the next sequence number."""
        item: dict[str, Any] = {"seq": self.next_seq, "t_s": round(t_s, 6)}
        if payload is not None:
            item["payload"] = payload.hex()
        else:
            item["gap"] = gap or "link_lost"
        self.next_seq += 1
        self.buffer.append(item)
        self.stats.read += 1
        if len(self.buffer) > BUFFER_ITEMS:
            self.buffer.popleft()
            self.stats.dropped += 1
        self._new.set()

    async def read_source(self) -> None:
        """Read the source into the buffer until it ends (or the task is cancelled)."""
        assert self.spec is not None
        async with open_source(self.spec) as source:
            base = time.monotonic() if source.capabilities.clock == "own" else 0.0
            async for item in source:
                if isinstance(item, Packet):
                    self.add(base + item.t_arrival_s, payload=item.payload)
                elif isinstance(item, LinkGap):
                    self.add(base + item.t_s, gap=item.reason)
                elif isinstance(item, DeviceInfo):
                    self._battery = item.battery_pct
                    self._new.set()
        self.source_done = True
        self._new.set()

    # ------------------------------------------------------------------ output

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a connection up and the buffer flowing until ``stop`` is set."""
        failures = 0
        while not stop.is_set():
            try:
                async with connect(
                    self.url,
                    compression=None,
                    open_timeout=10,
                    close_timeout=2,
                    max_size=2**20,
                    ping_interval=10,
                    ping_timeout=20,
                ) as ws:
                    failures = 0
                    self.stats.connects += 1
                    await self._session(ws, stop)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 403:
                    raise SourceError(
                        "the server refused the token (403): check --token, or ask for a new "
                        "participant link"
                    ) from None
                self._note(f"server answered {status}; retrying")
            except InvalidURI as exc:
                raise InvalidInput(f"bad --server URL: {redact(str(exc))}") from None
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                self._note(f"connection: {type(exc).__name__}: {redact(str(exc))[:120]}")
            except SourceError:
                raise
            self.connected = False
            if stop.is_set():
                break
            delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**failures)
            failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay * (0.8 + 0.4 * random.random()))

    def _note(self, text: str) -> None:
        self.stats.errors.append(text)
        del self.stats.errors[:-20]
        log.info("%s", text)

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if hello.get("type") != "hello":
            raise SourceError(f"the server did not say hello: {str(hello)[:200]}")
        upto = int(hello.get("packets_upto", 0))
        self._take_ack(upto)
        if not self._seq_known.is_set():
            # A fresh relay (for a participant the server already has packets of)
            # continues the server's numbering: what it read before this first hello was
            # never sent, so it is renumbered.
            first = self.buffer[0]["seq"] if self.buffer else self.next_seq
            shift = upto + 1 - first
            if shift > 0:
                for item in self.buffer:
                    item["seq"] += shift
                self.next_seq += shift
            self._seq_known.set()
        self.connected = True
        sent_upto = upto
        receiver = asyncio.create_task(self._receive(ws))
        try:
            frame_seq = 0
            while not stop.is_set():
                if receiver.done():
                    receiver.result()  # raises ConnectionClosed
                    return
                pending = [i for i in self.buffer if i["seq"] > sent_upto]
                if self._battery != self._battery_sent:
                    frame_seq += 1
                    await ws.send(
                        json.dumps(
                            {
                                "type": "status",
                                "v": PROTOCOL_VERSION,
                                "seq": frame_seq,
                                "battery_pct": self._battery,
                                "connected": True,
                            }
                        )
                    )
                    self._battery_sent = self._battery
                if pending:
                    for start in range(0, len(pending), MAX_PACKETS_PER_FRAME):
                        chunk = pending[start : start + MAX_PACKETS_PER_FRAME]
                        frame_seq += 1
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "packets",
                                    "v": PROTOCOL_VERSION,
                                    "seq": frame_seq,
                                    "packets": chunk,
                                },
                                separators=(",", ":"),
                            )
                        )
                        if chunk[0]["seq"] <= self.stats.sent:
                            self.stats.resent += len(chunk)
                        self.stats.sent = max(self.stats.sent, chunk[-1]["seq"])
                        sent_upto = chunk[-1]["seq"]
                        if len(pending) > MAX_PACKETS_PER_FRAME:
                            await asyncio.sleep(0.03)  # within the server's rate limit
                    continue
                self._new.clear()
                waiter = asyncio.create_task(self._new.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper, receiver}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                await receiver

    async def _receive(self, ws: ClientConnection) -> None:
        async for message in ws:
            received = json.loads(message)
            # several frames may come in one message (docs/protocol.md "batch")
            frames = received["frames"] if received.get("type") == "batch" else [received]
            for frame in frames:
                kind = frame.get("type")
                if kind == "ack" and "packets_upto" in frame:
                    self._take_ack(int(frame["packets_upto"]))
                elif kind == "error":
                    self._note(f"server: {frame.get('message')}")
                elif kind == "status" and frame.get("ended") and frame.get("participant") is None:
                    self._note("the session has ended")

    def _take_ack(self, upto: int) -> None:
        if upto <= self.acked:
            return
        self.acked = upto
        self.stats.acked = upto
        while self.buffer and self.buffer[0]["seq"] <= upto:
            self.buffer.popleft()
        self._acked_event.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything read is acknowledged (True) or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while self.buffer and time.monotonic() < deadline:
            self._acked_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked_event.wait(), deadline - time.monotonic())
        return not self.buffer
