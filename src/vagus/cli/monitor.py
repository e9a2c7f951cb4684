"""``vagus monitor``: connect to a strap (or the simulator) and show live HRV.

The packets of the source go through :class:`vagus.Pipeline`, exactly as in a recorded
session. By default a one-line status (heart rate, RMSSD over 60 s, coherence, battery,
contact, packets, gaps) is rewritten in place on stderr; with ``--json`` every pipeline
event is printed to stdout as one JSON line (``event.to_json()``), flushed per line, for
scripting. A malformed packet is counted and reported, never fatal. Ctrl-C (or SIGTERM)
ends cleanly (notifications stopped, strap disconnected) with a summary and exit status
130 (143 after SIGTERM), as ``record`` and ``replay``.

The status line says what is still computing and for how long: ``RMSSD30 in 12 s``,
``coherence in 40 s`` (:class:`~vagus.cli._live.Readiness`, from the metric's window
rule and the beats so far), and shows the pacer's rate with an inhale/exhale cue once one
is set. Lines typed on the terminal (or piped in with ``--markers-from-stdin``) are
control events as in ``vagus record``: ``pacer N`` sets the pacer to N breaths/min
(``pacer off`` ends it; the simulated subject follows it), any other text is a marker;
they go through the pipeline (and ``--json`` prints them) but nothing is stored.

The status line does not wait for packets: it is redrawn at least once a second (four
times on a terminal) while the strap is searched for, connected, or reconnected, with the
attempt under way (``reconnecting… attempt 2 of 6, link down 12 s``), and a link loss
shows at once (the gap count goes up). A strap whose device profile says its RR intervals
are missing or unfit for HRV gets a note on stderr when it connects, once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING

from vagus.cli._common import interrupted_status, note, positive_float, stop_on_signals
from vagus.cli._live import (
    ControlLines,
    LiveStatus,
    RRNotes,
    StatusView,
    add_sim_arguments,
    add_strap_arguments,
    check_sim_options,
    check_source_options,
    reconnect_budget_text,
    source_spec,
    stdin_lines,
)
from vagus.core.events import Marker, PacerChange
from vagus.exceptions import MalformedPacket, VagusError
from vagus.sources.base import LinkState

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline

__all__ = ["register", "run"]

_BODY_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand", 5: "ear lobe"}
_SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="connect to a strap (or --sim) and show live HRV",
        description=(
            "Connect to a heart-rate strap (the strongest one in range unless --device is "
            "given) or to the simulator, and show live heart rate, RMSSD and coherence "
            "(or how long until each is ready). Type a line and Enter to add a marker; "
            "`pacer N` sets a pacer of N breaths/min (`pacer off` ends it); nothing is "
            "stored (use `vagus record` for that). " + reconnect_budget_text()
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--device",
        metavar="ADDR|NAME",
        help="the strap's address, or part of its advertised name (see `vagus scan`)",
    )
    source.add_argument("--sim", action="store_true", help="use the simulated subject and strap")
    add_sim_arguments(parser)
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds of packets, counted from the first packet received (the "
        "settling time after connecting, when packets are discarded, does not count), for "
        "the strap and --sim alike",
    )
    parser.add_argument("--json", action="store_true", help="print every event as a JSON line")
    parser.add_argument(
        "--markers-from-stdin",
        action="store_true",
        help=(
            "read markers (one line of text each) and `pacer N` lines from stdin even when "
            "it is not a terminal (for scripts; on a terminal this is the default)"
        ),
    )
    add_strap_arguments(parser)
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Linux: receive notifications through AcquireNotify instead of StartNotify",
    )
    parser.set_defaults(func=run, monitor_usage_error=parser.error)


async def _monitor(
    args: argparse.Namespace, status: LiveStatus, stopped_by: list[signal.Signals]
) -> None:
    """Run the source through the pipeline until done, the duration, or a signal (noted
    in ``stopped_by``)."""
    from vagus.core.pipeline import Pipeline
    from vagus.sources import DeviceInfo, LinkGap, Packet, open_source

    pipeline: Pipeline = Pipeline()
    as_json: bool = args.json
    rr_notes = RRNotes()  # each profile's RR-quality note, once
    spec = source_spec(args)
    status.speed = getattr(spec, "speed", 1.0)

    def flush_events() -> None:
        for event in pipeline.events_received():
            status.absorb(event)
            if as_json:
                sys.stdout.write(json.dumps(event.to_json()) + "\n")
                sys.stdout.flush()

    def control(event: Marker | PacerChange) -> None:
        pipeline.receive_control(event)
        flush_events()

    controls = ControlLines("monitor", status, control)
    source = open_source(spec)
    link = getattr(source, "link_state", None)
    view = StatusView(
        status, link if isinstance(link, LinkState) else None, tty=sys.stderr.isatty()
    )
    stdin = stdin_lines(args, controls, None if as_json else view)

    async def consume() -> None:
        async with source:
            set_pacer = getattr(source, "set_pacer", None)
            if set_pacer is not None:
                controls.set_pacer = set_pacer  # the simulated subject breathes with it
            async for item in source:
                if isinstance(item, Packet):
                    t_s = item.t_arrival_s
                    status.at(t_s)
                    status.connected = True
                    controls.start(t_s)
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
                    controls.start(item.t_s)
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

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    handled = stop_on_signals(loop, stop, stopped_by)
    if stdin is not None:
        stdin.start(loop)
        if not as_json:
            note(
                "vagus monitor: type a line and Enter to add a marker; `pacer N` sets a "
                "pacer of N breaths/min (`pacer off` ends it); nothing is stored"
            )
    redraw = None if as_json else asyncio.ensure_future(view.keep_drawing())
    consume_task = asyncio.ensure_future(consume())
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({consume_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stdin is not None:
            stdin.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
        tasks = [t for t in (consume_task, stop_task, redraw) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pipeline.close()
        flush_events()
    if consume_task.done() and not consume_task.cancelled():
        failure = consume_task.exception()
        if failure is not None:
            raise failure


def run(args: argparse.Namespace) -> int:
    check_source_options(args, args.monitor_usage_error)
    check_sim_options(args, args.monitor_usage_error)
    status = LiveStatus()
    stopped_by: list[signal.Signals] = []
    end_line = sys.stderr.isatty() and not args.json
    try:
        asyncio.run(_monitor(args, status, stopped_by))
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be set (Windows)
        stopped_by.append(signal.SIGINT)
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
    if stopped_by:
        print(f"stopped ({_SIGNAL_NAMES.get(stopped_by[0], 'signal')})", file=sys.stderr)
    print(status.summary(), file=sys.stderr)
    return interrupted_status(stopped_by[0]) if stopped_by else 0
