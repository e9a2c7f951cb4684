"""``vagus bench serve``: capacity of the live service on this machine.

A server (a child process: the real :class:`~vagus.service.server.Service`, recording
every session through the store writer into a temporary data directory) hosts N
sessions of one relayed participant each. The load generator (this process) opens, per
session, one relay (``mode=ingest``) that sends one realistic Heart Rate Measurement
packet per second (one RR of about 1 s, the sessions' sends spread over the second) and
one viewer that reads every frame, all over loopback websockets, and steps N up.

**Packet-to-viewer latency**: from the relay sending packet *k* to its viewer receiving
the first frame the server made from it (each packet makes a batch: the beat and metrics
the corrector decided, at 1 packet/s per session; a frame arriving more than 1 s late
would be counted against the next packet, so latencies near 1 s are underestimated:
the figures that matter here are far below). Printed per step: p50/p99/max latency,
frames and packets per second, the server's CPU (% of one core, from /proc; and CPU ms
per packet, which does not depend on how busy the machine is) and memory (RSS), and the
load generator's CPU; at the end the largest N with p99 under
:data:`TARGET_P99_MS` (target: at least :data:`TARGET_N` on a 2-core machine, the load
generator included). ``--profile`` runs the server under cProfile and prints where its
time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from typing import Any, Final

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
    data_dir, record, profile = argv[0], argv[1] == "1", argv[2]
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        try:
            asyncio.run(_server_main(data_dir, record))
        finally:
            prof.disable()
            pstats.Stats(prof).dump_stats(profile)
    else:
        asyncio.run(_server_main(data_dir, record))


# ---------------------------------------------------------------------- load generator


class _Pair:
    """One session's relay and viewer."""

    def __init__(self, index: int, ingest: str, viewer: str, phase_s: float) -> None:
        self.index = index
        self.ingest_url = ingest
        self.viewer_url = viewer
        self.phase_s = phase_s
        self.pending_send: float | None = None
        self.frames = 0


class _Load:
    def __init__(self) -> None:
        self.pairs: list[_Pair] = []
        self.latencies_s: list[float] = []
        self.measuring = False
        self.packets = 0
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.errors = 0
        self.t0 = time.monotonic()

    async def viewer(self, pair: _Pair, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            pair.viewer_url, max_size=2**22, open_timeout=60, compression=None
        ) as ws:
            ready.set()
            async for _ in ws:
                now = time.monotonic()
                if self.measuring:
                    self.frames += 1
                sent = pair.pending_send
                if sent is not None:
                    pair.pending_send = None
                    if self.measuring:
                        self.latencies_s.append(now - sent)

    async def relay(self, pair: _Pair, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        async with connect(pair.ingest_url, open_timeout=60, compression=None) as ws:
            await ws.recv()  # hello
            await ready.wait()
            drain = asyncio.create_task(self._drain(ws))
            seq = 0
            start = self.t0 + pair.phase_s
            t_source = 1000.0
            try:
                while True:
                    seq += 1
                    target = start + seq
                    delay = target - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    rr = 1000.0 + (20.0 if seq % 2 else -20.0)
                    t_source += rr / 1000.0
                    frame = {
                        "type": "packets",
                        "v": 1,
                        "packets": [{"seq": seq, "t_s": round(t_source, 3), "payload": _hrm(rr)}],
                    }
                    pair.pending_send = time.monotonic()
                    await ws.send(json.dumps(frame))
                    if self.measuring:
                        self.packets += 1
            finally:
                drain.cancel()

    async def _drain(self, ws: Any) -> None:
        async for _ in ws:  # acks
            pass

    async def add(self, links: list[list[str]]) -> None:
        start = len(self.pairs)
        readies = []
        for i, (ingest, viewer) in enumerate(links):
            pair = _Pair(start + i, ingest, viewer, ((start + i) * 0.618034) % 1.0)
            self.pairs.append(pair)
            ready = asyncio.Event()
            readies.append(ready)
            self.tasks.append(asyncio.create_task(self._guard(self.viewer(pair, ready), ready)))
            self.tasks.append(asyncio.create_task(self._guard(self.relay(pair, ready))))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # connect in waves
        async with asyncio.timeout(120):
            for ready in readies:
                await ready.wait()

    async def _guard(self, coro: Any, ready: asyncio.Event | None = None) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
        finally:
            if ready is not None:
                ready.set()  # a viewer that failed does not hold the others up


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
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=1 << 26,  # one line holds the links of every new session
        )
        assert proc.stdin is not None and proc.stdout is not None
        json.loads(await _line(proc))
        load = _Load()
        print(
            f"vagus bench serve: {'recording' if not args.no_record else 'not recording'}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        print(
            f"{'N':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'pkts/s':>8} {'frames/s':>9} "
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
                load.packets = load.frames = 0
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
            for task in load.tasks:
                task.cancel()
            await asyncio.gather(*load.tasks, return_exceptions=True)
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
            print("server profile (top 25 by own time):")
            print("\n".join(out.getvalue().splitlines()[6:40]))
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
