"""``vagus monitor``: connect to a strap (or the simulator) and show live HRV.

The packets of the source go through :class:`vagus.Pipeline`, exactly as in a recorded
session. By default a one-line status (heart rate, RMSSD over 60 s, coherence, battery,
contact, packets, gaps) is rewritten in place on stderr; with ``--json`` every pipeline
event is printed to stdout as one JSON line (``event.to_json()``), flushed per line, for
scripting. A malformed packet is counted and reported, never fatal. Ctrl-C ends cleanly
(notifications stopped, strap disconnected) with a summary and exit status 130 (as
``record`` and ``replay``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING

from vagus.cli._common import interrupted_status, parse_speed, positive_float, status_line
from vagus.cli._live import LiveStatus
from vagus.exceptions import MalformedPacket

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline
    from vagus.sources.base import SourceSpec

__all__ = ["register", "run"]

# a Bluetooth address, or a CoreBluetooth UUID (macOS hides addresses)
_ADDRESS_RE = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
)

_BODY_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand", 5: "ear lobe"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="connect to a strap (or --sim) and show live HRV",
        description=(
            "Connect to a heart-rate strap (the strongest one in range unless --device is "
            "given) or to the simulator, and show live heart rate, RMSSD and coherence."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--device",
        metavar="ADDR|NAME",
        help="the strap's address, or part of its advertised name (see `vagus scan`)",
    )
    source.add_argument("--sim", action="store_true", help="use the simulated subject and strap")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (with --sim)")
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="X|max",
        help="simulator speed: 1 is real time, max as fast as possible (with --sim)",
    )
    parser.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help="print every event as a JSON line")
    parser.add_argument(
        "--scan-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds to look for the strap before giving up (default 10)",
    )
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        help="Linux: receive notifications through AcquireNotify instead of StartNotify",
    )
    parser.set_defaults(func=run)


def _spec(args: argparse.Namespace) -> SourceSpec:
    from vagus.sources.base import BleSpec, SimSpec

    if args.sim:
        return SimSpec(seed=args.seed, speed=args.speed, duration_s=args.duration)
    notify = not args.acquire_notify
    scan_s = args.scan_timeout
    if args.device is None:
        return BleSpec(scan_timeout_s=scan_s, use_start_notify=notify)
    if _ADDRESS_RE.match(args.device):
        return BleSpec(address=args.device, scan_timeout_s=scan_s, use_start_notify=notify)
    return BleSpec(name=args.device, scan_timeout_s=scan_s, use_start_notify=notify)


async def _monitor(args: argparse.Namespace, status: LiveStatus) -> None:
    from vagus.core.pipeline import Pipeline
    from vagus.sources import DeviceInfo, LinkGap, Packet, open_source

    pipeline: Pipeline = Pipeline()
    as_json: bool = args.json
    interval_s = 0.25 if sys.stderr.isatty() else 1.0
    next_status = 0.0

    def flush_events() -> None:
        for event in pipeline.events_received():
            status.absorb(event)
            if as_json:
                sys.stdout.write(json.dumps(event.to_json()) + "\n")
                sys.stdout.flush()

    spec = _spec(args)
    if not as_json and not args.sim:
        status_line("searching for a strap…")
    try:
        async with open_source(spec) as source:
            async for item in source:
                if isinstance(item, Packet):
                    t_s = item.t_arrival_s
                    if status.t_start_s is None:
                        status.t_start_s = t_s
                    status.t_last_s = t_s
                    status.connected = True
                    try:
                        pipeline.receive_packet(t_s, item.payload)
                    except MalformedPacket as exc:
                        status.malformed += 1
                        if len(status.malformed_examples) < 3:
                            status.malformed_examples.append(f"{item.payload.hex()}: {exc}")
                    else:
                        status.packets += 1
                elif isinstance(item, LinkGap):
                    status.gaps += 1
                    status.connected = False
                    pipeline.receive_gap(item.t_s, reason=item.reason)
                elif isinstance(item, DeviceInfo):
                    status.device = item.name
                    status.battery_pct = item.battery_pct
                    status.connected = item.connected
                    if not as_json:
                        where = _BODY_LOCATIONS.get(item.body_location or -1, "")
                        status_line(
                            f"connected to {item.name} ({item.device_id}), profile "
                            f"{item.profile_id}" + (f", worn on the {where}" if where else "")
                        )
                flush_events()
                now = time.monotonic()
                if not as_json and now >= next_status:
                    status_line(status.line())
                    next_status = now + interval_s
                if (
                    args.duration is not None
                    and status.t_start_s is not None
                    and status.t_last_s - status.t_start_s >= args.duration
                ):
                    break
    finally:
        pipeline.close()
        flush_events()


def run(args: argparse.Namespace) -> int:
    status = LiveStatus()
    interrupted = False
    try:
        asyncio.run(_monitor(args, status))
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # the reader of --json output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    if interrupted:
        print("stopped (Ctrl-C)", file=sys.stderr)
    print(status.summary(), file=sys.stderr)
    return interrupted_status() if interrupted else 0
