"""Helpers for the service tests: a real server on loopback, plain websocket clients."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonschema
from websockets.asyncio.client import ClientConnection, connect

from vagus.service.protocol import load_schema
from vagus.service.server import Service
from vagus.service.tokens import TokenStore
from vagus.store.writer import StoreWriter

#: How long a test waits for something the server should do at once (s); generous, the
#: machine is shared. Tests never assert timing.
WAIT_S = 20.0

_SCHEMA = load_schema()


_SERVER = jsonschema.Draft202012Validator(
    {"$ref": "#/$defs/server_frame", "$defs": _SCHEMA["$defs"]}
)
_MESSAGE = jsonschema.Draft202012Validator(
    {"$ref": "#/$defs/server_message", "$defs": _SCHEMA["$defs"]}
)
_CLIENT = jsonschema.Draft202012Validator(
    {"$ref": "#/$defs/client_frame", "$defs": _SCHEMA["$defs"]}
)


def check_server_frame(frame: dict[str, Any]) -> None:
    """Raise if ``frame`` is not a valid server frame per the JSON Schema."""
    errors = sorted(_SERVER.iter_errors(frame), key=str)
    assert not errors, f"{frame.get('type')}: {[e.message for e in errors][:3]}"


def client_frame_valid(frame: Any) -> bool:
    return bool(_CLIENT.is_valid(frame))


def hrm(rr_ms: list[float], hr: int = 60) -> bytes:
    """A 0x2A37 payload: flags 0x10 (RR present, 8-bit HR), HR, RR in 1/1024 s."""
    body = b"".join(struct.pack("<H", round(r * 1.024)) for r in rr_ms)
    return bytes([0x10, hr]) + body


def beat_packets(
    n: int,
    *,
    start_seq: int = 1,
    t0_s: float = 1000.0,
    rr_ms: float = 1000.0,
    wobble: Callable[[int], float] | None = None,
) -> list[dict[str, Any]]:
    """``n`` packets of one beat each, one per RR, as a relay sends them."""
    out = []
    t = t0_s
    for i in range(n):
        rr = rr_ms + (wobble(i) if wobble else 50.0 * ((i % 10) - 4.5) / 4.5)
        t += rr / 1000.0
        out.append({"seq": start_seq + i, "t_s": round(t, 4), "payload": hrm([rr]).hex()})
    return out


def check_server_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Raise if ``message`` (one websocket message from the server) is not valid per the
    JSON Schema; returns its frames (a ``batch``'s, in order, or the frame itself)."""
    errors = sorted(_MESSAGE.iter_errors(message), key=str)
    assert not errors, f"{message.get('type')}: {[e.message for e in errors][:3]}"
    if message.get("type") == "batch":
        return list(message["frames"])
    return [message]


class Client:
    """A websocket client that keeps every frame it received, in order (the frames of a
    ``batch`` message one by one; :attr:`messages` counts the websocket messages)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.messages = 0
        self.batches = 0
        self._inbox: collections.deque[dict[str, Any]] = collections.deque()
        self._seq = 0

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def request(self, obj: dict[str, Any]) -> int:
        self._seq += 1
        await self.send({"v": 1, "seq": self._seq, **obj})
        return self._seq

    async def recv(self) -> dict[str, Any]:
        """The next frame (a batch's frames one at a time)."""
        if not self._inbox:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT_S))
            assert isinstance(message, dict)
            self.messages += 1
            if message.get("type") == "batch":
                self.batches += 1
                assert set(message) == {"type", "v", "session", "frames"}, message.keys()
                assert len(message["frames"]) >= 2, "a batch holds several frames"
                self._inbox.extend(message["frames"])
            else:
                self._inbox.append(message)
        frame = self._inbox.popleft()
        assert isinstance(frame, dict) and frame.get("type") != "batch"
        self.frames.append(frame)
        return frame

    async def until(
        self, pred: Callable[[dict[str, Any]], bool], *, seen: bool = False
    ) -> dict[str, Any]:
        """Receive until a frame matches ``pred``; returns it (``seen``: a frame received
        before counts too)."""
        if seen:
            for frame in self.frames:
                if pred(frame):
                    return frame
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await self.recv()
                if pred(frame):
                    return frame

    async def reply_to(self, seq: int) -> dict[str, Any]:
        return await self.until(
            lambda f: f.get("re") == seq and f["type"] in ("ack", "error", "pong"), seen=True
        )

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def client(url: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with connect(url, open_timeout=WAIT_S, **kwargs) as ws:
        yield Client(ws)


@contextlib.asynccontextmanager
async def service(
    data_dir: Path,
    *,
    record: bool = True,
    web: Path | None = None,
    port: int = 0,
    **kwargs: Any,
) -> AsyncIterator[Service]:
    """A running service on 127.0.0.1 (any free port), recording into ``data_dir``."""
    writer = None
    if record:
        writer = StoreWriter.for_data_dir(data_dir)
        assert writer.start() is None
    tokens = TokenStore(data_dir / "service.sqlite")
    svc = Service(tokens, writer=writer, data_dir=data_dir, web=web, **kwargs)
    await svc.start("127.0.0.1", port)
    try:
        yield svc
    finally:
        await svc.stop()  # a second stop (after the test's own) does nothing
        if writer is not None:
            await asyncio.wrap_future(writer.close())
            writer.join(WAIT_S)
        tokens.close()


@contextlib.asynccontextmanager
async def demo(data: Path, *extra: str) -> AsyncIterator[dict[str, Any]]:
    """A real ``vagus demo --json`` subprocess on a free port with its own store in
    ``data``; yields its links; ends it with Ctrl-C and checks no traceback was printed."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "vagus", "demo", "--json", "--no-browser", "--port", "0"),
        *("--data-dir", str(data), *extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT_S * 3)
        assert line, (await proc.stderr.read()).decode() if proc.stderr else ""
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), WAIT_S * 2)
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "Traceback" not in stderr


def make_web(tmp: Path) -> Path:
    """A web/ folder with a page of each kind (their text names them)."""
    web = tmp / "web"
    (web / "static").mkdir(parents=True)
    for page in ("breathe", "dashboard", "review", "admin"):
        (web / f"{page}.html").write_text(f"<!doctype html><title>{page}</title>")
    (web / "static" / "app.js").write_text("export const x = 1;\n")
    (tmp / "secret.txt").write_text("outside web/")
    return web
