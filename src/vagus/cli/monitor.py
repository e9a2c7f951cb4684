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
import re
import sys
import time
from typing import TYPE_CHECKING

from vagus.cli._common import interrupted_status, note, parse_speed, positive_float, status_line
from vagus.cli._live import LiveStatus, rr_note
from vagus.exceptions import MalformedPacket, VagusError
from vagus.sources.base import BleSpec, LinkState, SimSpec

if TYPE_CHECKING:
    from vagus.core.pipeline import Pipeline
    from vagus.sources.base import SourceSpec

__all__ = ["register", "run"]

# a Bluetooth address, or a CoreBluetooth UUID (macOS hides addresses)
_ADDRESS_RE = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
)

_ERROR_CHARS = 48  # of the last attempt's error on the status line

_BODY_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand", 5: "ear lobe"}

#: Options that only mean something for the simulator, and only for a strap (argparse
#: destinations; their defaults are suppressed so that "given" can be told from "default").
_SIM_ONLY = {"seed": "--seed", "speed": "--speed"}
_BLE_ONLY = {
    "scan_timeout": "--scan-timeout",
    "connect_timeout": "--connect-timeout",
    "retries": "--retries",
    "acquire_notify": "--acquire-notify",
}


def _retries(text: str) -> int:
    """argparse type for ``--retries``: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 0 (0: never retry)")
    return value


def _budget_text() -> str:
    """How long a (re)connection keeps trying with the default settings (for --help)."""
    spec = BleSpec()
    waits = ", ".join(f"{spec.backoff_s(k):g}" for k in range(1, spec.max_attempts))
    return (
        f"If the link to the strap is lost, vagus marks a gap and reconnects by itself: up "
        f"to {spec.max_attempts} attempts in a row (1 + --retries), each up to "
        f"--connect-timeout seconds, waiting {waits} s between them. With the defaults it "
        f"keeps trying for at most about {spec.give_up_after_s:.0f} s, showing the attempt "
        f"on the status line, then stops with exit status 1 and what to try. The first "
        f"connection has the same budget, after up to --scan-timeout seconds of searching."
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = BleSpec()
    parser = subparsers.add_parser(
        "monitor",
        help="connect to a strap (or --sim) and show live HRV",
        description=(
            "Connect to a heart-rate strap (the strongest one in range unless --device is "
            "given) or to the simulator, and show live heart rate, RMSSD and coherence. "
            + _budget_text()
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
    parser.add_argument(
        "--scan-timeout",
        type=positive_float,
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds to look for the strap before giving up "
        f"(default {defaults.scan_timeout_s:g})",
    )
    parser.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds one connection attempt may take, finding the strap again included "
        f"(default {defaults.connect_timeout_s:g})",
    )
    parser.add_argument(
        "--retries",
        type=_retries,
        default=argparse.SUPPRESS,
        metavar="N",
        help="failed connection attempts in a row to retry before giving up, on connecting "
        f"and after each link loss (default {defaults.max_retries})",
    )
    parser.add_argument(
        "--acquire-notify",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Linux: receive notifications through AcquireNotify instead of StartNotify",
    )
    parser.set_defaults(func=run, monitor_usage_error=parser.error)


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not apply to the chosen source are usage errors (exit status 2),
    never silently ignored."""
    if args.sim:
        wrong = [flag for dest, flag in _BLE_ONLY.items() if hasattr(args, dest)]
        if wrong:
            args.monitor_usage_error(
                f"{' and '.join(wrong)}: only for a strap, not with --sim; leave "
                f"{'them' if len(wrong) > 1 else 'it'} out"
            )
    else:
        wrong = [flag for dest, flag in _SIM_ONLY.items() if hasattr(args, dest)]
        if wrong:
            args.monitor_usage_error(
                f"{' and '.join(wrong)}: only for the simulator; add --sim (or leave "
                f"{'them' if len(wrong) > 1 else 'it'} out to use a strap)"
            )


def _spec(args: argparse.Namespace) -> SourceSpec:
    if args.sim:
        # no duration_s: --duration counts from the first packet, here as for a strap
        return SimSpec(seed=getattr(args, "seed", 0), speed=getattr(args, "speed", 1.0))
    defaults = BleSpec()
    address = name = None
    if args.device is not None and _ADDRESS_RE.match(args.device):
        address = args.device
    elif args.device is not None:
        name = args.device
    return BleSpec(
        address=address,
        name=name,
        scan_timeout_s=getattr(args, "scan_timeout", defaults.scan_timeout_s),
        connect_timeout_s=getattr(args, "connect_timeout", defaults.connect_timeout_s),
        max_retries=getattr(args, "retries", defaults.max_retries),
        use_start_notify=not getattr(args, "acquire_notify", False),
    )


def _link_text(link: LinkState, now_s: float) -> str:
    """What the source is doing while no packet flows: searching, attempt k of n, …"""
    if link.phase == "searching":
        return "searching for a strap…"
    attempt = f"attempt {link.attempt} of {link.max_attempts}"
    error = link.last_error  # shortened: the status line must stay one terminal line
    if len(error) > _ERROR_CHARS:
        error = error[: _ERROR_CHARS - 1].rstrip() + "…"
    last = f"; last attempt: {error}" if error else ""
    if link.phase == "reconnecting":
        down = f", link down {now_s - link.t_lost_s:.0f} s" if link.t_lost_s is not None else ""
        return f"reconnecting… {attempt}{down}{last}"
    target = f" to {link.device}" if link.device else ""
    return f"connecting{target}… {attempt}{last}"


class _StatusView:
    """The live status line on stderr, redrawn every ``interval_s`` even without packets.

    On a terminal the line is rewritten in place four times a second; elsewhere (a log, a
    pipe) a plain line is written once a second, and only when it changed, so a long wait
    adds a line per second at most (the link-down counter) and none while searching. A
    link loss or a (re)connection is drawn at once (``draw(force=True)``).
    """

    def __init__(self, status: LiveStatus, link: LinkState | None, *, tty: bool) -> None:
        self.status = status
        self.link = link
        self.tty = tty
        self.interval_s = 0.25 if tty else 1.0
        self._next_s = 0.0
        self._last_text = ""

    def text(self) -> str:
        """The line to show now ("" for nothing yet: a source without link state)."""
        now_s = time.monotonic()
        status, link = self.status, self.link
        if not status.device:  # not connected yet: searching, or attempt k of n
            return _link_text(link, now_s) if link is not None else ""
        if not status.connected:
            if link is not None and link.phase == "reconnecting":
                status.link_note = _link_text(link, now_s)
            else:
                status.link_note = "reconnecting…"
        return status.line()

    def draw(self, *, force: bool = False) -> None:
        """Draw now if ``force`` or the interval has passed since the last drawing."""
        now_s = time.monotonic()
        if not force and now_s < self._next_s:
            return
        self._next_s = now_s + self.interval_s
        text = self.text()
        if not text or (not self.tty and text == self._last_text):
            return
        self._last_text = text
        status_line(text)

    async def keep_drawing(self) -> None:
        """Redraw whenever the interval has passed (cancel to stop)."""
        while True:
            await asyncio.sleep(max(self._next_s - time.monotonic(), 0.01))
            self.draw()


async def _monitor(args: argparse.Namespace, status: LiveStatus) -> None:
    from vagus.core.pipeline import Pipeline
    from vagus.sources import DeviceInfo, LinkGap, Packet, open_source

    pipeline: Pipeline = Pipeline()
    as_json: bool = args.json
    noted: set[str] = set()  # profiles whose RR note was shown

    def flush_events() -> None:
        for event in pipeline.events_received():
            status.absorb(event)
            if as_json:
                sys.stdout.write(json.dumps(event.to_json()) + "\n")
                sys.stdout.flush()

    source = open_source(_spec(args))
    link = getattr(source, "link_state", None)
    view = _StatusView(
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
                    if item.connected and item.profile_id not in noted:
                        noted.add(item.profile_id)  # once, not again on each reconnect
                        warning = rr_note(item.profile_id)
                        if warning:
                            note(warning)  # stderr, in --json mode too
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
    _check_options(args)
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
