"""``vagus relay``: stream a strap on this machine into a session on a remote server.

Reads a strap (``--device``, or the strongest in range) or a simulated subject
(``--sim``) and sends its raw packets to the server with sequence numbers; reconnects
with backoff and resends what the server has not acknowledged, so a network blip or a
server restart loses nothing and stores nothing twice (see :mod:`vagus.service.relay`).
Ctrl-C stops reading, waits up to 5 s for the last acknowledgements, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from vagus.cli._common import interrupted_status, positive_float, stop_on_signals
from vagus.service.relay import Relay, relay_url
from vagus.sources.base import BleSpec, SimSpec, SourceSpec

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="stream a strap on this machine into a session on a vagus server",
        description=(
            "Read a heart-rate strap on this machine (or --sim) and stream its raw packets "
            "into a live session on a vagus server (vagus serve / live / demo). Give the "
            "server address and the participant token, or just the participant link: "
            "vagus relay --server 'http://HOST:8765/s/ID/breathe?token=T'. Packets are "
            "numbered and kept until the server has stored them: across network blips and "
            "server restarts nothing is lost and nothing is stored twice."
        ),
    )
    parser.add_argument(
        "--server",
        required=True,
        metavar="URL",
        help="the server (http://HOST:PORT) or the participant link it printed",
    )
    parser.add_argument(
        "--token", metavar="T", help="the participant token (if --server does not carry it)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--device", metavar="ADDR|NAME", help="the strap's address or part of its name"
    )
    source.add_argument("--sim", action="store_true", help="relay a simulated subject")
    parser.add_argument("--seed", type=int, default=1, help="--sim: the subject's seed")
    parser.add_argument(
        "--speed", type=positive_float, default=1.0, help="--sim: simulated seconds per second"
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds of the source's time (default: Ctrl-C)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = relay_url(args.server, args.token)
    spec: SourceSpec
    if args.sim:
        spec = SimSpec(seed=args.seed, speed=args.speed, duration_s=args.duration)
    elif args.device:
        address = args.device if ":" in args.device else None
        spec = BleSpec(address=address, name=None if address else args.device)
    else:
        spec = BleSpec()
    return asyncio.run(_run(url, spec, args.duration if not args.sim else None))


async def _run(url: str, spec: SourceSpec, duration_s: float | None) -> int:
    relay = Relay(url, spec)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[signal.Signals] = []
    handled = stop_on_signals(loop, stop, stopped_by)
    sender = asyncio.create_task(relay.run(stop))
    reader = asyncio.create_task(relay.read_source())
    print("vagus relay: connecting (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        waits = {sender, reader, asyncio.create_task(stop.wait())}
        if duration_s is not None:
            waits.add(asyncio.create_task(asyncio.sleep(duration_s)))
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if sender in done:
            sender.result()  # a refused token: SourceError with the reason
        if reader in done:
            reader.result()  # a source error
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        drained = await relay.drain(5.0)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    finally:
        stop.set()
        for task in (sender, reader):
            task.cancel()
        for sig in handled:
            loop.remove_signal_handler(sig)
    s = relay.stats
    print(
        f"vagus relay: {s.read} packets read, {s.acked} stored by the server"
        + ("" if drained else f", {len(relay.buffer)} NOT acknowledged (server unreachable)"),
        file=sys.stderr,
    )
    if stopped_by:
        return interrupted_status(stopped_by[0])
    return 0 if drained else 1
