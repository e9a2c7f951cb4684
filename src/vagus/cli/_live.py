"""What the live commands share: the one-line status of ``vagus monitor``, ``record`` and
``replay`` (:class:`LiveStatus`, and :class:`StatusView`, which redraws it while no packet
flows), the source options and spec of ``monitor`` and ``record`` (strap-only and
simulator-only options, the reconnection budget), and the note shown once when a strap's RR
intervals are missing or unfit for HRV (:class:`RRNotes`)."""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vagus.cli._common import note, positive_float, status_line
from vagus.core.events import Beat, Contact, Event, Metrics, Spectrum
from vagus.exceptions import DeviceProfileError
from vagus.sources.base import BleSpec, LinkState, SimSpec, SourceSpec

__all__ = [
    "ADDRESS_RE",
    "BLE_ONLY_OPTIONS",
    "SIM_ONLY_OPTIONS",
    "LiveStatus",
    "RRNotes",
    "StatusView",
    "add_strap_arguments",
    "check_source_options",
    "link_text",
    "parse_retries",
    "reconnect_budget_text",
    "rr_note",
    "source_spec",
]


def rr_note(profile_id: str) -> str | None:
    """What to tell the user once, on connecting, about a strap whose device profile says
    its RR intervals are missing (``rr_available = false``) or not accurate enough for HRV
    (``rr_reliable = false``), e.g. an optical arm sensor; None for a strap with good RR.

    The decision rests on the profile's fields, never on its name; the text ends with the
    profile's own ``rr_quality`` note. An unknown profile id gives None (and so does an
    unreadable profile folder: the source reports that itself, naming file and field).
    """
    from vagus.devices import load_profiles

    try:
        profiles = load_profiles()
    except DeviceProfileError:
        return None
    profile = next((p for p in profiles if p.id == profile_id), None)
    if profile is None or (profile.rr_available and profile.rr_reliable):
        return None
    if not profile.rr_available:
        what = (
            f"{profile.display_name} sends no RR intervals: vagus shows its heart rate, "
            "but RMSSD and coherence stay empty. For HRV biofeedback use a chest strap (ECG)."
        )
    else:
        what = (
            f"the RR intervals of the {profile.display_name} are not accurate enough for "
            "HRV: read RMSSD and coherence as rough values. A chest strap (ECG) is better."
        )
    return f"note: {what} ({profile.rr_quality})"


class RRNotes:
    """Shows :func:`rr_note` on stderr once per device profile: on the first connection to
    a strap whose RR intervals are missing or unfit for HRV, not again on each reconnect."""

    def __init__(self) -> None:
        self._shown: set[str] = set()

    def connected(self, profile_id: str) -> None:
        """A strap of ``profile_id`` connected: note its RR quality if not done yet."""
        if profile_id in self._shown:
            return
        self._shown.add(profile_id)
        warning = rr_note(profile_id)
        if warning:
            note(warning)  # stderr, in --json mode too


@dataclass
class LiveStatus:
    """What the status line and the summary show: HR, RMSSD, coherence, battery, contact,
    packets, gaps (fed with pipeline events by :meth:`absorb`)."""

    t_start_s: float | None = None
    t_last_s: float = 0.0
    device: str = ""
    hr_bpm: float | None = None
    rmssd_ms: float | None = None
    coherence: float | None = None
    battery_pct: int | None = None
    contact: bool | None = None
    connected: bool = False
    packets: int = 0
    malformed: int = 0
    gaps: int = 0
    beats: int = 0
    artifacts: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    #: shown instead of "(reconnecting)" while not connected, e.g. "reconnecting… attempt 2 of 6"
    link_note: str = ""

    def line(self) -> str:
        def fmt(value: float | None, spec: str) -> str:
            return "--" if value is None else format(value, spec)

        contact = {None: "n/a", True: "ok", False: "LOST"}[self.contact]
        elapsed = self.t_last_s - self.t_start_s if self.t_start_s is not None else 0.0
        parts = [
            f"{elapsed:6.0f}s",
            f"HR {fmt(self.hr_bpm, '.0f')} bpm",
            f"RMSSD60 {fmt(self.rmssd_ms, '.1f')} ms",
            f"coherence {fmt(self.coherence, '.2f')}",
            # A replay (or a strap without the Battery Service) has no battery level.
            "battery " + ("--" if self.battery_pct is None else f"{self.battery_pct}%"),
            f"contact {contact}",
            f"packets {self.packets}",
            f"gaps {self.gaps}",
        ]
        if self.malformed:
            parts.append(f"malformed {self.malformed}")
        if not self.connected:
            parts.append(self.link_note or "(reconnecting)")
        return "  ".join(parts)

    def summary(self) -> str:
        elapsed = self.t_last_s - self.t_start_s if self.t_start_s is not None else 0.0
        lines = [
            f"{self.device or 'source'}: {elapsed:.0f} s, {self.packets} packets, "
            f"{self.beats} beats ({self.artifacts} artifacts), {self.gaps} gaps, "
            f"{self.malformed} malformed packets",
        ]
        if self.hr_bpm is not None or self.rmssd_ms is not None:
            hr = "--" if self.hr_bpm is None else f"{self.hr_bpm:.0f}"
            rmssd = "--" if self.rmssd_ms is None else f"{self.rmssd_ms:.1f}"
            lines.append(f"last: HR {hr} bpm, RMSSD60 {rmssd} ms")
        for example in self.malformed_examples:
            lines.append(f"  malformed: {example}")
        return "\n".join(lines)

    def absorb(self, event: Event) -> None:
        """Update the status from one pipeline event."""
        if isinstance(event, Metrics):
            self.hr_bpm = event.hr_bpm
            self.rmssd_ms = event.rmssd_60s_ms
        elif isinstance(event, Spectrum):
            self.coherence = event.coherence_ratio
        elif isinstance(event, Contact):
            self.contact = event.contact
        elif isinstance(event, Beat):
            self.beats += 1
            self.artifacts += event.artifact is not None

    def add_events(self, events: list[Event]) -> None:
        """Update the status from a batch of pipeline events."""
        for event in events:
            self.absorb(event)

    def at(self, t_s: float) -> None:
        """Note the time (s, source clock) of the latest input."""
        if self.t_start_s is None:
            self.t_start_s = t_s
        self.t_last_s = t_s

    @property
    def elapsed_s(self) -> float:
        """Source-clock time from the first to the latest input (s)."""
        return 0.0 if self.t_start_s is None else self.t_last_s - self.t_start_s

    def with_tail(self, tail: str) -> str:
        """The status line followed by ``tail`` (e.g. ``REC <id>``)."""
        return f"{self.line()}  {tail}"


# a Bluetooth address, or a CoreBluetooth UUID (macOS hides addresses)
ADDRESS_RE = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
)

_ERROR_CHARS = 48  # of the last attempt's error on the status line

#: Options that only mean something for the simulator, and only for a strap (argparse
#: destinations; their defaults are suppressed so that "given" can be told from "default").
SIM_ONLY_OPTIONS = {"seed": "--seed", "speed": "--speed"}
BLE_ONLY_OPTIONS = {
    "scan_timeout": "--scan-timeout",
    "connect_timeout": "--connect-timeout",
    "retries": "--retries",
    "acquire_notify": "--acquire-notify",
}


def parse_retries(text: str) -> int:
    """argparse type for ``--retries``: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 0 (0: never retry)")
    return value


def reconnect_budget_text() -> str:
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


def add_strap_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scan-timeout``, ``--connect-timeout`` and ``--retries`` (strap only; defaults
    suppressed, see :func:`check_source_options`), as ``monitor`` and ``record`` take them."""
    defaults = BleSpec()
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
        type=parse_retries,
        default=argparse.SUPPRESS,
        metavar="N",
        help="failed connection attempts in a row to retry before giving up, on connecting "
        f"and after each link loss (default {defaults.max_retries})",
    )


def check_source_options(
    args: argparse.Namespace,
    error: Callable[[str], object],
    *,
    sim_only: Mapping[str, str] = SIM_ONLY_OPTIONS,
    ble_only: Mapping[str, str] = BLE_ONLY_OPTIONS,
) -> None:
    """Options that do not apply to the chosen source are usage errors, never silently
    ignored: ``error`` (the parser's ``error``: exit status 2) is called with the message.

    ``sim_only`` and ``ble_only`` map argparse destinations to flags; their defaults must
    be suppressed (``argparse.SUPPRESS``) so that "given" can be told from "default".
    """
    if args.sim:
        wrong = [flag for dest, flag in ble_only.items() if hasattr(args, dest)]
        if wrong:
            error(
                f"{' and '.join(wrong)}: only for a strap, not with --sim; leave "
                f"{'them' if len(wrong) > 1 else 'it'} out"
            )
    else:
        wrong = [flag for dest, flag in sim_only.items() if hasattr(args, dest)]
        if wrong:
            error(
                f"{' and '.join(wrong)}: only for the simulator; add --sim (or leave "
                f"{'them' if len(wrong) > 1 else 'it'} out to use a strap)"
            )


def source_spec(args: argparse.Namespace) -> SourceSpec:
    if args.sim:
        # no duration_s: --duration counts from the first packet, here as for a strap
        return SimSpec(seed=getattr(args, "seed", 0), speed=getattr(args, "speed", 1.0))
    defaults = BleSpec()
    address = name = None
    if args.device is not None and ADDRESS_RE.match(args.device):
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


def link_text(link: LinkState, now_s: float) -> str:
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


class StatusView:
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
            return link_text(link, now_s) if link is not None else ""
        if not status.connected:
            if link is not None and link.phase == "reconnecting":
                status.link_note = link_text(link, now_s)
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
