"""``vagus bench ble``: notification latency and CPU of the real bleak path.

N simulated straps at 1 Hz on the simulated BlueZ (run in a separate process so its CPU
is not counted), each read by its own :class:`~vagus.sources.ble.BleSource` in this
process, for the given duration.

The simulated BlueZ is test support code, not part of the installed package (it is
Linux-only and needs ``dbus-fast``): it lives in a source checkout, at
``tests/support/fake_bluez.py``. This bench finds it beside the package of an editable
install (``pip install -e '.[dev]'`` in a clone) or under the current directory, and
says so plainly where there is none (a wheel install).

Figures:

- latency: from the notification being sent (``time.monotonic()`` taken in the fake just
  before it emits; the clock is system-wide) to the packet being yielded by
  ``BleSource``, matched packet by packet per strap; p50, p99 and max. Also the part up
  to the notification callback (the packet's ``t_arrival_s``).
- CPU: this process's CPU time (user + system) divided by wall time while streaming.

Target: p99 under 5 ms. Linux only (BlueZ over D-Bus; needs ``dbus-daemon``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from vagus.exceptions import InvalidInput

__all__ = ["FAKE_BLUEZ", "add_arguments", "find_fake_bluez", "run"]

TARGET_P99_MS = 5.0

#: The simulated BlueZ, relative to the root of a source checkout.
FAKE_BLUEZ = Path("tests") / "support" / "fake_bluez.py"


def _search_roots() -> list[Path]:
    """Where a checkout may be: above this module (``src/vagus/bench/ble.py`` of an
    editable install), then the current directory."""
    return [Path(__file__).resolve().parents[3], Path.cwd()]


def find_fake_bluez() -> Path:
    """The checkout's ``tests/support/fake_bluez.py``.

    Raises:
        InvalidInput: there is no checkout to take it from; the message says what to do.
    """
    for root in _search_roots():
        candidate = root / FAKE_BLUEZ
        if candidate.is_file():
            return candidate
    raise InvalidInput(
        f"vagus bench ble needs the simulated BlueZ from a source checkout ({FAKE_BLUEZ}), "
        "which is test code and not installed with the package: clone the repository, "
        "run `pip install -e '.[dev]'` in it and run `vagus bench ble` there"
    )


def _load_fake_bluez(path: Path) -> ModuleType:
    """Import the simulated BlueZ from its file (for its D-Bus ``ControlClient``)."""
    name = "_vagus_bench_fake_bluez"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot load the simulated BlueZ from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while being made
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        del sys.modules[name]
        raise InvalidInput(
            f"the simulated BlueZ ({path}) needs the Python package {exc.name!r}, from "
            "the dev extra: pip install -e '.[dev]'"
        ) from None
    except BaseException:
        del sys.modules[name]
        raise
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vagus bench ble``."""
    parser.add_argument("--straps", type=int, default=20, help="simulated straps (default 20)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of streaming (default 60)"
    )
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        help="use AcquireNotify (fd passing) instead of StartNotify",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")


@dataclass
class _Received:
    t_arrival_s: float
    t_yield_s: float
    payload: bytes


@dataclass
class _Result:
    straps: int
    duration_s: float
    notify: str
    packets_sent: int = 0
    packets_matched: int = 0
    latency_ms: list[float] = field(default_factory=list)
    callback_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    gaps: int = 0

    def figures(self) -> dict[str, object]:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

        return {
            "bench": "ble",
            "straps": self.straps,
            "duration_s": self.duration_s,
            "notify": self.notify,
            "packets_sent": self.packets_sent,
            "packets_matched": self.packets_matched,
            "gaps": self.gaps,
            "latency_p50_ms": pct(self.latency_ms, 0.50),
            "latency_p99_ms": pct(self.latency_ms, 0.99),
            "latency_max_ms": max(self.latency_ms, default=None),
            "latency_mean_ms": statistics.fmean(self.latency_ms) if self.latency_ms else None,
            "callback_p50_ms": pct(self.callback_ms, 0.50),
            "callback_p99_ms": pct(self.callback_ms, 0.99),
            "cpu_pct": 100.0 * self.cpu_s / self.wall_s if self.wall_s else None,
            "target_p99_ms": TARGET_P99_MS,
        }


async def _start_fake(
    script: Path, straps: int
) -> tuple[asyncio.subprocess.Process, dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "--straps",
        str(straps),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    if not line:
        await proc.wait()
        raise RuntimeError(
            f"the simulated BlueZ did not start (exit code {proc.returncode}); is the Debian "
            "package `dbus` (dbus-daemon) installed?"
        )
    info: dict[str, object] = json.loads(line)
    return proc, info


async def _bench(args: argparse.Namespace, script: Path) -> _Result:
    from vagus.sources.base import BleSpec, LinkGap, Packet
    from vagus.sources.ble import BleSource, release_bluez

    control_client = _load_fake_bluez(script).ControlClient
    result = _Result(
        args.straps, args.duration, "AcquireNotify" if args.acquire_notify else "StartNotify"
    )
    proc, info = await _start_fake(script, args.straps)
    saved = {k: os.environ.get(k) for k in ("DBUS_SYSTEM_BUS_ADDRESS", "PATH")}
    try:
        address = str(info["DBUS_SYSTEM_BUS_ADDRESS"])
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
        os.environ["PATH"] = f"{info['PATH_PREFIX']}{os.pathsep}{os.environ.get('PATH', '')}"
        addresses = [str(a) for a in info["addresses"]]  # type: ignore[attr-defined]
        received: dict[str, list[_Received]] = {a: [] for a in addresses}
        async with contextlib.AsyncExitStack() as stack:
            sources = []
            for a in addresses:  # one at a time: bleak connects by address with a scan each
                spec = BleSpec(address=a, use_start_notify=not args.acquire_notify)
                source = await stack.enter_async_context(BleSource(spec, settle_s=0.0))
                sources.append(source)

            async def consume(source: BleSource) -> None:
                out = received[source.address]
                async for item in source:
                    if isinstance(item, Packet):
                        out.append(_Received(item.t_arrival_s, time.monotonic(), item.payload))
                    elif isinstance(item, LinkGap):
                        result.gaps += 1

            cpu0, wall0 = time.process_time(), time.monotonic()  # streaming starts
            tasks = [asyncio.create_task(consume(s)) for s in sources]
            try:
                await asyncio.sleep(args.duration)
            finally:
                result.cpu_s = time.process_time() - cpu0
                wall_end = time.monotonic()
                result.wall_s = wall_end - wall0
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        async with control_client(address) as control:
            for a in addresses:
                # what was sent in the last 0.1 s may still be on its way when the
                # readers stop: count neither its sending nor its arrival
                sent = [p for p in await control.sent_log(a) if p.t_sent_s < wall_end - 0.1]
                result.packets_sent += len(sent)
                got = received[a]
                # settle_s=0 and one connection: the k-th packet yielded is the k-th sent
                for s, r in zip(sent, got, strict=False):
                    if s.payload != r.payload:
                        raise RuntimeError(f"{a}: packets out of order or lost")
                    result.packets_matched += 1
                    if s.t_sent_s < wall0:
                        continue  # queued while the other straps were still connecting
                    result.latency_ms.append(1000.0 * (r.t_yield_s - s.t_sent_s))
                    result.callback_ms.append(1000.0 * (r.t_arrival_s - s.t_sent_s))
        await release_bluez()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return result


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures; 0 unless it could not run.

    Raises:
        InvalidInput: no source checkout holds the simulated BlueZ, or its dependency
            ``dbus-fast`` is missing (:func:`find_fake_bluez`).
    """
    if args.straps < 1 or not args.duration > 0:
        print("vagus bench ble: --straps must be >= 1 and --duration > 0", file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux"):
        print("vagus bench ble: needs Linux (a simulated BlueZ on D-Bus)", file=sys.stderr)
        return 2
    script = find_fake_bluez()
    _load_fake_bluez(script)  # a missing dbus-fast is said now, before anything starts
    print(
        f"vagus bench ble: {args.straps} simulated straps at 1 Hz for {args.duration:g} s "
        "through bleak and the simulated BlueZ...",
        file=sys.stderr,
    )
    result = asyncio.run(_bench(args, script))
    fig = result.figures()
    if args.json:
        print(json.dumps(fig), flush=True)
        return 0

    def ms(key: str) -> str:
        value = fig[key]
        return "n/a" if value is None else f"{value:.2f} ms"

    p99 = fig["latency_p99_ms"]
    verdict = "met" if isinstance(p99, float) and p99 < TARGET_P99_MS else "MISSED"
    cpu = fig["cpu_pct"]
    print(f"straps {result.straps}, {fig['notify']}, {result.wall_s:.1f} s")
    print(
        f"packets: {result.packets_matched} delivered of {result.packets_sent} sent "
        f"({len(result.latency_ms)} timed), {result.gaps} gaps"
    )
    print(
        f"latency sent -> yielded: p50 {ms('latency_p50_ms')}, p99 {ms('latency_p99_ms')}, "
        f"max {ms('latency_max_ms')}  (target p99 < {TARGET_P99_MS:g} ms: {verdict})"
    )
    print(f"latency sent -> callback: p50 {ms('callback_p50_ms')}, p99 {ms('callback_p99_ms')}")
    print("CPU (this process, reader side): " + ("n/a" if cpu is None else f"{cpu:.1f} %"))
    return 0
