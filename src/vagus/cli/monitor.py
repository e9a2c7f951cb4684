"""``vagus monitor``: connect to a strap (or the simulator) and show live HRV.

The packets of the source go through :class:`vagus.Pipeline`, exactly as in a recorded
session. By default a one-line status (heart rate, RMSSD over 60 s, coherence, battery,
contact, packets, gaps) is rewritten in place on stderr; with ``--json`` every pipeline
event is printed to stdout as one JSON line (``event.to_json()``), flushed per line, for
scripting. A malformed packet is counted and reported, never fatal. Ctrl-C ends cleanly
(notifications stopped, strap disconnected) with a summary and exit status 130 (as
``record`` and ``replay``).

The status line does not wait for packets: it is redrawn at least once a second (four
times on a terminal) while the strap is searched for, connected, or reconnected, with the
attempt under way (``reconnecting… attempt 2 of 6, link down 12 s``), and a link loss
shows at once (the gap count goes up). A strap whose device profile says its RR intervals
are missing or unfit for HRV gets a note on stderr when it connects, once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING

from vagus.cli._common import interrupted_status, note, parse_speed, positive_float
from vagus.cli._live import (
    LiveStatus,
    RRNotes,
    StatusView,
    add_strap_arguments,
    check_source_options,
    reconnect_budget_text,
    source_spec,
)
from vagus.exceptions import MalformedPacket, VagusError
from vagus.sources.base import LinkState

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline

__all__ = ["register", "run"]

_BODY_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand", 5: "ear lobe"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="connect to a strap (or --sim) and show live HRV",
        description=(
            "Connect to a heart-rate strap (the strongest one in range unless --device is "
            "given) or to the simulator, and show live heart rate, RMSSD and coherence. "
            + reconnect_budget_text()
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--device",
        metavar="ADDR|NAME",
        help="the strap's address, or part of its advertised name (see `vagus scan`)",
    )
    source.add_argument("--sim", action="store_true", help="use the simulated subject and strap")
    parser.add_argument(
        "--seed",
        type=int,
        default=argparse.SUPPRESS,
        help="simulator seed (only with --sim; default 0)",
    )
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=argparse.SUPPRESS,
        metavar="X|max",
        help="simulator speed: 1 is real time, max as fast as possible (only with --sim; "
        "default 1)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds of packets, counted from the first packet received (the "
        "settling time after connecting, when packets are discarded, does not count), for "
        "the strap and --sim alike",
    )
    parser.add_argument("--json", action="store_true", help="print every event as a JSON line")
    add_strap_arguments(parser)
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Linux: receive notifications through AcquireNotify instead of StartNotify",
    )
    parser.set_defaults(func=run, monitor_usage_error=parser.error)


async def _monitor(args: argparse.Namespace, status: LiveStatus) -> None:
    from vagus.core.pipeline import Pipeline
    from vagus.sources import DeviceInfo, LinkGap, Packet, open_source

    pipeline: Pipeline = Pipeline()
    as_json: bool = args.json
    rr_notes = RRNotes()  # each profile's RR-quality note, once

    def flush_events() -> None:
        for event in pipeline.events_received():
            status.absorb(event)
            if as_json:
                sys.stdout.write(json.dumps(event.to_json()) + "\n")
                sys.stdout.flush()

    source = open_source(source_spec(args))
    link = getattr(source, "link_state", None)
    view = StatusView(
        status, link if isinstance(link, LinkState) else None, tty=sys.stderr.isatty()
    )
    redraw = None if as_json else asyncio.create_task(view.keep_drawing())
    try:
        async with source:
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
                    if not as_json:
                        view.draw(force=True)  # the loss shows at once, not with the next packet
                elif isinstance(item, DeviceInfo):
                    status.device = item.name
                    status.battery_pct = item.battery_pct
                    status.connected = item.connected
                    if not as_json:
                        where = _BODY_LOCATIONS.get(item.body_location or -1, "")
                        note(
                            f"connected to {item.name} ({item.device_id}), profile "
                            f"{item.profile_id}" + (f", worn on the {where}" if where else "")
                        )
                    if item.connected:
                        rr_notes.connected(item.profile_id)
                    if not as_json:
                        view.draw(force=True)
                flush_events()
                if not as_json:
                    view.draw()
                if (
                    args.duration is not None
                    and status.t_start_s is not None
                    and status.t_last_s - status.t_start_s >= args.duration
                ):
                    break
    finally:
        if redraw is not None:
            redraw.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await redraw
        pipeline.close()
        flush_events()


def run(args: argparse.Namespace) -> int:
    check_source_options(args, args.monitor_usage_error)
    status = LiveStatus()
    interrupted = False
    end_line = sys.stderr.isatty() and not args.json
    try:
        asyncio.run(_monitor(args, status))
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # the reader of --json output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except VagusError:
        # e.g. the strap vanished and the retry budget is spent: end the status line, sum
        # up what was received, and let the command line print the error (exit status 1)
        if end_line:
            sys.stderr.write("\n")
        if status.device:
            print(status.summary(), file=sys.stderr)
        raise
    if end_line:
        sys.stderr.write("\n")
    if interrupted:
        print("stopped (Ctrl-C)", file=sys.stderr)
    print(status.summary(), file=sys.stderr)
    return interrupted_status() if interrupted else 0
