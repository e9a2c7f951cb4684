"""``vagus bench serve``: capacity of the live service on this machine.

A server (a child process: the real :class:`~vagus.service.server.Service`, recording
every session through the store writer into a temporary data directory) hosts N
sessions of one relayed participant each. The load generator (this process) opens, per
session, one relay (``mode=ingest``) that sends one realistic Heart Rate Measurement
packet per second (one RR of about 1 s, the sessions' sends spread over the second) and
one viewer that reads every message, all over loopback websockets, and steps N up. It
shares the machine with the server, so it is lean: one process, its own minimal
websocket client on asyncio protocols (frames masked with the zero key, the server's
frame headers read but no JSON parsed), one task sending every relay's packets at its
second from a heap.

**Packet-to-viewer latency**: from the relay sending packet *k* to its viewer receiving
the first frame the server made from it (each packet makes a batch: the beat and metrics
the corrector decided, at 1 packet/s per session; a frame arriving more than 1 s late
would be counted against the next packet, so latencies near 1 s are underestimated:
the figures that matter here are far below). Printed per step: p50/p99/max latency,
packets, frames and websocket messages per second (a packet's frames come in one
``batch`` message), the server's CPU (% of one core, from /proc; and CPU ms
per packet, which does not depend on how busy the machine is) and memory (RSS), and the
load generator's CPU; at the end the largest N with p99 under
:data:`TARGET_P99_MS` (target: at least :data:`TARGET_N` on a 2-core machine, the load
generator included). ``--profile`` runs the server under cProfile and prints where its
time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import heapq
import json
import math
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = ["TARGET_N", "TARGET_P99_MS", "add_arguments", "run"]

TARGET_P99_MS: Final = 100.0
TARGET_N: Final = 2000
DEFAULT_STEPS: Final = "100,250,500,1000,1500,2000,2500,3000"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        default=DEFAULT_STEPS,
        help=f"the numbers of sessions to measure, rising (default {DEFAULT_STEPS})",
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="measured seconds per step (default 15)"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds after each step up, not measured"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="the server records nothing (default: it does)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the server under cProfile; print its top"
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of the server and the load generator: asyncio's own (default, "
        "as vagus serve) or uvloop, if installed (measured here: no less server CPU per "
        "packet)",
    )
    parser.add_argument(
        "--stop-above-ms",
        type=float,
        default=1000.0,
        help="stop stepping up once p99 exceeds this (default 1000 ms)",
    )


def _hrm(rr_ms: float, hr: int = 60) -> str:
    return (bytes([0x10, hr]) + struct.pack("<H", round(rr_ms * 1.024))).hex()


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return math.nan


def _proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


# ---------------------------------------------------------------------- server child


async def _server_main(data_dir: str, record: bool) -> None:
    """The server: reads ``N`` lines on stdin (create N more sessions), answers with
    their ingest and viewer websocket URLs as one JSON line."""
    from vagus.service.server import Service
    from vagus.service.tokens import TokenStore
    from vagus.store.writer import StoreWriter

    _raise_fd_limit()
    from vagus.service.app import tune_gc

    tune_gc()  # as vagus serve does
    writer = None
    if record:
        writer = StoreWriter.for_data_dir(Path(data_dir))
        writer.start()
    tokens = TokenStore(":memory:")
    service = Service(tokens, writer=writer, data_dir=Path(data_dir))
    await service.start("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"port": service.port}), flush=True)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"quit":
            break
        n = int(line)
        out = []
        for _ in range(n):
            hosted = await service.create_session([("p", "relay")], record=record)
            links = service.links[hosted.id]
            out.append([links["participants"]["p"]["ws"] + "&mode=ingest", links["ws"]["viewer"]])
        print(json.dumps(out), flush=True)
    await service.stop()
    if writer is not None:
        await asyncio.wrap_future(writer.close())


def _child(argv: list[str]) -> None:
    from vagus.service.app import run

    data_dir, record, profile, loop = argv[0], argv[1] == "1", argv[2], argv[3]
    if profile:
        import cProfile
        import pstats

        # CPU time of the loop's thread, not wall time: on a shared machine a send()
        # that wakes the reader is often preempted, and wall time blamed it for that
        prof = cProfile.Profile(time.thread_time)
        prof.enable()
        try:
            run(_server_main(data_dir, record), loop=loop)
        finally:
            prof.disable()
            pstats.Stats(prof).dump_stats(profile)
    else:
        run(_server_main(data_dir, record), loop=loop)


# ---------------------------------------------------------------------- load generator


class _Ws(asyncio.Protocol):
    """A minimal websocket client on one asyncio connection (RFC 6455), the load
    generator's own: thousands of them in one process must cost the load generator less
    than the server it measures. It sends text messages masked with the all-zero key (a
    valid mask that leaves the bytes as they are), reads the server's frame headers only
    (no JSON parsing), answers pings and counts whole messages (and the frames in them,
    by their ``"seq":``)."""

    def __init__(self, load: _Load, pair: _Pair | None, request: bytes) -> None:
        self.load = load
        self.pair = pair  # a viewer's pair (None: a relay's connection)
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshaken = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_message: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (uvloop's: no subclass)
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.closed += 1
        for fut in (self.opened, self.first_message):
            if not fut.done():
                fut.set_exception(ConnectionError("the server closed the connection"))

    def send_text(self, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = bytes((0x81, 0x80 | n))
        elif n < 65536:
            head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
        assert self.transport is not None
        self.transport.write(head + b"\0\0\0\0" + data)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(
                    ConnectionError(bytes(buf[: buf.find(b"\r\n")]).decode(errors="replace"))
                )
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self.handshaken = True
            self.opened.set_result(None)
        pos = 0
        complete = 0
        frames = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if len(buf) - pos < head + n:
                break
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping: pong with the same data
                payload = bytes(buf[pos + head : pos + head + n])
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | n)) + b"\0\0\0\0" + payload)
            elif opcode == 0x8:  # close
                assert self.transport is not None
                self.transport.close()
            elif opcode != 0xA:
                frames += buf.count(b'"seq":', pos + head, pos + head + n)
                if b0 & 0x80:
                    complete += 1
            pos += head + n
        if pos:
            del buf[:pos]
        if complete:
            self.messages += complete
            if not self.first_message.done():
                self.first_message.set_result(None)
            pair = self.pair
            if pair is not None:
                self.load.on_viewer(pair, now, complete, frames)


class _Pair:
    """One session's relay and viewer."""

    __slots__ = ("index", "ingest_url", "pending_send", "relay", "seq", "t_source", "viewer_url")

    def __init__(self, index: int, ingest: str, viewer: str) -> None:
        self.index = index
        self.ingest_url = ingest
        self.viewer_url = viewer
        self.pending_send: float | None = None
        self.relay: _Ws | None = None
        self.seq = 0
        self.t_source = 1000.0


#: The two packets the relays send by turns (RR 1020 and 980 ms: one beat each, about one
#: a second), as the payload's hex.
_PAYLOADS: Final = (_hrm(1020.0), _hrm(980.0))


class _Load:
    """The load generator: every relay and viewer in this one process, on its loop."""

    def __init__(self) -> None:
        self.pairs: list[_Pair] = []
        self.latencies_s: list[float] = []
        self.measuring = False
        self.packets = 0
        self.frames = 0
        self.messages = 0
        self.errors = 0
        self.closed = 0
        self.t0 = time.monotonic()
        self._heap: list[tuple[float, int]] = []
        self._wake = asyncio.Event()
        self.sender: asyncio.Task[None] | None = None

    def on_viewer(self, pair: _Pair, now: float, messages: int, frames: int) -> None:
        if self.measuring:
            self.messages += messages
            self.frames += frames
        sent = pair.pending_send
        if sent is not None:
            pair.pending_send = None
            if self.measuring:
                self.latencies_s.append(now - sent)

    async def _open(self, url: str, pair: _Pair | None) -> _Ws:
        parts = urlsplit(url)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        _, ws = await loop.create_connection(
            lambda: _Ws(self, pair, request), parts.hostname or "127.0.0.1", parts.port or 80
        )
        await ws.opened
        return ws

    async def _connect(self, pair: _Pair) -> None:
        try:
            viewer = await self._open(pair.viewer_url, pair)
            await viewer.first_message  # hello
            relay = await self._open(pair.ingest_url, None)
            await relay.first_message  # hello
        except (OSError, ConnectionError):
            self.errors += 1
            return
        pair.relay = relay
        # one packet a second, the sessions spread over the second
        due = time.monotonic() + 0.1 + (pair.index * 0.618034) % 1.0
        heapq.heappush(self._heap, (due, pair.index))
        self._wake.set()

    async def add(self, links: list[list[str]]) -> None:
        start = len(self.pairs)
        tasks = []
        for i, (ingest, viewer) in enumerate(links):
            pair = _Pair(start + i, ingest, viewer)
            self.pairs.append(pair)
            tasks.append(asyncio.create_task(self._connect(pair)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)  # connect in waves
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_loop())
        async with asyncio.timeout(120):
            await asyncio.gather(*tasks)

    async def _send_loop(self) -> None:
        """Every relay's packets, each at its second: one task for all of them."""
        heap = self._heap
        pairs = self.pairs
        while True:
            if not heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                due, index = heapq.heappop(heap)
                pair = pairs[index]
                relay = pair.relay
                if relay is None or relay.transport is None or relay.transport.is_closing():
                    continue
                pair.seq += 1
                pair.t_source += 1.02 if pair.seq % 2 else 0.98
                payload = _PAYLOADS[pair.seq % 2 == 0]
                frame = (
                    f'{{"type":"packets","v":1,"packets":[{{"seq":{pair.seq},'
                    f'"t_s":{pair.t_source:.3f},"payload":"{payload}"}}]}}'
                )
                pair.pending_send = time.monotonic()
                relay.send_text(frame.encode())
                if self.measuring:
                    self.packets += 1
                heapq.heappush(heap, (due + 1.0, index))
            if heap:
                await asyncio.sleep(max(0.001, heap[0][0] - time.monotonic()))

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender
        for pair in self.pairs:
            if pair.relay is not None and pair.relay.transport is not None:
                pair.relay.transport.close()


async def _line(proc: asyncio.subprocess.Process) -> bytes:
    """The server child's next line; a clear error if it ended (its error is above)."""
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if not line:
        from vagus.exceptions import VagusError

        raise VagusError("the benchmark's server process ended early (its error is above)")
    return line


async def _bench(args: argparse.Namespace) -> int:
    steps = sorted({int(s) for s in str(args.steps).split(",") if s.strip()})
    if not steps or steps[0] <= 0:
        from vagus.exceptions import InvalidInput

        raise InvalidInput("--steps: give rising positive numbers, e.g. 100,500,1000")
    _raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="vagus-bench-serve-") as tmp:
        profile_path = str(Path(tmp) / "server.prof") if args.profile else ""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vagus.bench.serve",
            "--child",
            str(Path(tmp) / "data"),
            "0" if args.no_record else "1",
            profile_path,
            args.loop,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=1 << 26,  # one line holds the links of every new session
        )
        assert proc.stdin is not None and proc.stdout is not None
        json.loads(await _line(proc))
        load = _Load()
        print(
            f"vagus bench serve: {'recording' if not args.no_record else 'not recording'}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
            f"event loop {type(asyncio.get_running_loop()).__module__.split('.')[0]}",
            flush=True,
        )
        print(
            f"{'N':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'pkts/s':>8} {'frames/s':>9} "
            f"{'msgs/s':>7} "
            f"{'server CPU':>10} {'ms/packet':>9} {'server RSS':>10} {'load CPU':>9}",
            flush=True,
        )
        best = 0
        results = []
        try:
            for n in steps:
                more = n - len(load.pairs)
                proc.stdin.write(f"{more}\n".encode())
                await proc.stdin.drain()
                links = json.loads(await _line(proc))
                try:
                    await load.add(links)
                except TimeoutError:
                    print(
                        f"{n:>6} could not connect {2 * len(links)} more clients within 120 s "
                        "(is the machine busy?); stopping here",
                        flush=True,
                    )
                    break
                await asyncio.sleep(args.warmup)
                load.latencies_s.clear()
                load.packets = load.frames = load.messages = 0
                cpu0, mine0, t0 = _proc_cpu_s(proc.pid), time.process_time(), time.monotonic()
                load.measuring = True
                await asyncio.sleep(args.seconds)
                load.measuring = False
                dt = time.monotonic() - t0
                server_cpu_s = _proc_cpu_s(proc.pid) - cpu0
                server_cpu = server_cpu_s / dt * 100
                load_cpu = (time.process_time() - mine0) / dt * 100
                lat = [x * 1000 for x in load.latencies_s]
                p50, p99 = _percentile(lat, 50), _percentile(lat, 99)
                row = {
                    "n": n,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "max_ms": max(lat, default=math.nan),
                    "packets_per_s": load.packets / dt,
                    "frames_per_s": load.frames / dt,
                    "messages_per_s": load.messages / dt,
                    "server_cpu_pct": server_cpu,
                    "server_rss_mb": _proc_rss_mb(proc.pid),
                    "load_cpu_pct": load_cpu,
                    "errors": load.errors,
                    "server_cpu_ms_per_packet": server_cpu_s * 1000 / max(1, load.packets),
                }
                results.append(row)
                print(
                    f"{n:>6} {p50:>8.1f} {p99:>8.1f} {row['max_ms']:>8.1f} "
                    f"{row['packets_per_s']:>8.0f} {row['frames_per_s']:>9.0f} "
                    f"{row['messages_per_s']:>7.0f} "
                    f"{server_cpu:>9.0f}% {row['server_cpu_ms_per_packet']:>9.2f} "
                    f"{row['server_rss_mb']:>7.0f} MB {load_cpu:>8.0f}%"
                    + (f"  ({load.errors} connection errors)" if load.errors else ""),
                    flush=True,
                )
                if p99 < TARGET_P99_MS and load.packets / dt > 0.9 * n:
                    best = n
                if p99 > args.stop_above_ms:
                    break
        finally:
            await load.close()
            with contextlib.suppress(Exception):
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        verdict = "met" if best >= TARGET_N else "NOT met"
        print(
            f"largest N with p99 < {TARGET_P99_MS:g} ms (and every packet sent on time): {best} "
            f"(target >= {TARGET_N}: {verdict}); load average now "
            f"{os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if profile_path and Path(profile_path).exists():
            import io
            import pstats

            out = io.StringIO()
            stats = pstats.Stats(profile_path, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            print("server profile (the event loop thread's CPU time; top 25 by own time):")
            print("\n".join(out.getvalue().splitlines()[6:40]))
    return 0


def run(args: argparse.Namespace) -> int:
    from vagus.service.app import run as run_loop

    return run_loop(_bench(args), loop=args.loop)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
