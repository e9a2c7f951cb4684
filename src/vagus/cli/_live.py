"""What the live commands share: the one-line status of ``vagus monitor``, ``record`` and
``replay`` (:class:`LiveStatus`, and :class:`StatusView`, which redraws it while no packet
flows), how long until each windowed metric is ready (:class:`Readiness`, from the
pipeline's window rules and the beats so far), the pacer and its inhale/exhale cue
(:class:`PacerClock`), typed lines as control events (:class:`ControlLines`,
:func:`stdin_lines`), the source options and spec of ``monitor`` and ``record``
(strap-only and simulator-only options, ``--seed`` and ``--sim-option`` checked as usage
errors, the reconnection budget), and the note shown once when a strap's RR intervals are
missing or unfit for HRV (:class:`RRNotes`).

:class:`Readiness`, :class:`PacerClock` and :class:`ControlLines` hold no I/O of their
own (notes aside) and no command's state, so a session object can own them later.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vagus.cli._common import StdinLines, foreground_tty, note, positive_float, status_line
from vagus.core.events import Beat, Contact, Event, Gap, Marker, Metrics, PacerChange, Spectrum
from vagus.core.pipeline import HR_WINDOW_S, MIN_COVERAGE, MIN_VALUES
from vagus.core.spectrum import _EDGE_TOLERANCE_S, COHERENCE_WINDOW_S
from vagus.exceptions import DeviceProfileError, InvalidInput
from vagus.sources.base import BleSpec, LinkState, SimSpec, SourceSpec

__all__ = [
    "ADDRESS_RE",
    "BLE_ONLY_OPTIONS",
    "PACER_RANGE_BPM",
    "SIM_ONLY_OPTIONS",
    "ControlLines",
    "LiveStatus",
    "PacerClock",
    "RRNotes",
    "Readiness",
    "StatusBoard",
    "StatusView",
    "add_sim_arguments",
    "add_strap_arguments",
    "check_sim_options",
    "check_source_options",
    "clock_text",
    "link_text",
    "parse_control_line",
    "parse_retries",
    "parse_seed",
    "parse_sim_option",
    "reconnect_budget_text",
    "rr_note",
    "source_spec",
    "stdin_lines",
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


def clock_text(seconds: float) -> str:
    """``MM:SS`` or ``H:MM:SS`` of ``seconds`` (rounded, as ``vagus sessions`` shows it)."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Readiness:
    """How long until a windowed metric first has a value, from the beats seen so far.

    Fed with the pipeline's events (:meth:`absorb`). The rules are the pipeline's
    (README, "What the numbers mean"; SCIENCE.md "Time domain"), read from its constants,
    not restated as times:

    - RMSSD over ``W`` s (30 or 60) is null until its window holds at least
      ``MIN_VALUES`` ΔNN values whose beats cover at least ``MIN_COVERAGE`` of ``W``
      (coverage: the summed NN, in s, of the beats with a ΔNN; ΔNN never across a gap).
      Beats older than ``W`` leave the window; the next beats are assumed to come at the
      current mean NN, each with a ΔNN. The answer is the first future beat time at which
      both counts hold, minus the last beat's time: ``W = 30`` with no beats yet gives
      ``MIN_COVERAGE · 30`` = 22.5 s.
    - Coherence (and the peak frequency) is null until the current segment (since the
      last gap) covers the 64 s window up to the spectrum's edge tolerance; spectra come at
      multiples of ``spectrum_interval_s`` of beat time, so it is ready at the first such
      multiple ``T`` with ``T ≥ segment start + 64 s − tolerance``.

    Times are beat times (s). The estimate is what a user can expect with clean beats
    from now on; artifacts and gaps push it back, and it is recomputed at every beat.
    """

    def __init__(self, *, spectrum_interval_s: float = 5.0) -> None:
        self.spectrum_interval_s = spectrum_interval_s
        # (t_s, coverage_s) of the NN beats with a ΔNN in the last 60 s.
        self._d_beats: deque[tuple[float, float]] = deque()
        self._window_keep_s = 60.0
        self._segment_start_s: float | None = None
        self._has_previous_nn = False
        self._t_last_s: float | None = None
        self._nn_recent_s: deque[float] = deque(maxlen=int(HR_WINDOW_S))

    def absorb(self, event: Event) -> None:
        """Note a beat (its NN, if any) or a gap (a new segment starts after it)."""
        if isinstance(event, Beat):
            if event.nn_ms is None:
                return
            t, nn_s = event.t_s, event.nn_ms / 1000.0
            if self._segment_start_s is None:
                self._segment_start_s = t
            if self._has_previous_nn:
                self._d_beats.append((t, nn_s))
            self._has_previous_nn = True
            self._t_last_s = t
            self._nn_recent_s.append(nn_s)
            while self._d_beats and self._d_beats[0][0] <= t - self._window_keep_s:
                self._d_beats.popleft()
        elif isinstance(event, Gap):
            self._segment_start_s = None
            self._has_previous_nn = False

    @property
    def mean_nn_s(self) -> float:
        """The mean of the last few NN (s); 1 s before any beat."""
        recent = self._nn_recent_s
        return sum(recent) / len(recent) if recent else 1.0

    def rmssd_ready_in_s(self, window_s: float) -> float:
        """Beat time (s) from the last beat until RMSSD over ``window_s`` can have a value
        (0 if it can now)."""
        need_cover_s = MIN_COVERAGE * window_s
        step_s = self.mean_nn_s
        t0 = self._t_last_s
        if t0 is None:  # no beat yet: every value is still to come
            k = max(MIN_VALUES, math.ceil(need_cover_s / step_s - 1e-9))
            return k * step_s
        beats = [b for b in self._d_beats if b[0] > t0 - window_s]
        times = [b[0] for b in beats]
        suffix = [0.0] * (len(beats) + 1)  # coverage of beats[i:]
        for i in range(len(beats) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + beats[i][1]
        k = 0
        while True:
            dt = k * step_s
            first = bisect.bisect_right(times, t0 + dt - window_s)  # still in the window
            kept_n = len(beats) - first
            if kept_n + k >= MIN_VALUES and suffix[first] + dt >= need_cover_s - 1e-9:
                return dt
            k += 1

    def coherence_ready_in_s(self) -> float:
        """Beat time (s) from the last beat until the first spectrum with a coherence."""
        step = self.spectrum_interval_s
        start = self._segment_start_s if self._segment_start_s is not None else self._t_last_s
        t_last = self._t_last_s
        if start is None or t_last is None:  # no beat yet
            start = t_last = 0.0
        first_end = start + COHERENCE_WINDOW_S - _EDGE_TOLERANCE_S
        ready = math.ceil(first_end / step - 1e-9) * step
        return max(0.0, ready - t_last)


#: Pacer rates accepted from ``pacer N`` lines (breaths/min), as the simulator's subject.
PACER_RANGE_BPM = (1.0, 40.0)


class PacerClock:
    """The pacer the user set (``pacer N``), and where it stands: inhale or exhale.

    The pacer's phase ψ (cycles) is phase-continuous (SCIENCE.md): a rate change keeps
    ψ and changes only its speed; a pacer started from off starts at ψ = 0. Each breath
    is an inhale for its first ``inhale_fraction`` (:class:`PacerChange`), then an exhale.
    """

    def __init__(self) -> None:
        self.rate_bpm: float | None = None
        self.inhale_fraction = 0.4
        self._t0_s = 0.0
        self._psi0 = 0.0

    def phase_at(self, t_s: float) -> float:
        """ψ at ``t_s`` (cycles); 0 while off."""
        if self.rate_bpm is None:
            return 0.0
        return self._psi0 + self.rate_bpm / 60.0 * max(0.0, t_s - self._t0_s)

    def change(self, event: PacerChange) -> None:
        """Apply a pacer change."""
        psi = self.phase_at(event.t_s) if self.rate_bpm is not None else 0.0
        self.rate_bpm = event.rate_bpm
        self.inhale_fraction = event.inhale_fraction
        self._t0_s, self._psi0 = event.t_s, psi

    def text(self, t_s: float) -> str:
        """``pacer 6/min inhale 2 s`` (the seconds left of this inhale or exhale); "" while off."""
        if self.rate_bpm is None:
            return ""
        breath_s = 60.0 / self.rate_bpm
        frac = self.phase_at(t_s) % 1.0
        if frac < self.inhale_fraction:
            what, left = "inhale", (self.inhale_fraction - frac) * breath_s
        else:
            what, left = "exhale", (1.0 - frac) * breath_s
        return f"pacer {self.rate_bpm:g}/min {what} {math.ceil(left - 1e-9):.0f} s"


@dataclass
class LiveStatus:
    """What the status line and the summary show: HR, RMSSD over 30 and 60 s, coherence
    (or how long until each is ready), the pacer, battery, contact, packets (or beats, for
    an imported session), gaps (fed with pipeline events by :meth:`absorb`)."""

    t_start_s: float | None = None
    t_last_s: float = 0.0
    device: str = ""
    hr_bpm: float | None = None
    rmssd_ms: float | None = None
    rmssd_30s_ms: float | None = None
    coherence: float | None = None
    battery_pct: int | None = None
    contact: bool | None = None
    #: True while input flows; False after a link loss until input comes again; None
    #: before any input (nothing has disconnected).
    connected: bool | None = None
    packets: int = 0
    malformed: int = 0
    gaps: int = 0
    beats: int = 0
    artifacts: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    #: shown instead of "(reconnecting)" while not connected, e.g. "reconnecting… attempt 2 of 6"
    link_note: str = ""
    #: "packets" (a strap's notifications) or "beats" (imported RR: no packets)
    input_kind: str = "packets"
    #: time of the last beat (beat time, s)
    t_beat_s: float | None = None
    #: times real time the input comes at (for the pacer cue between inputs); None: max
    speed: float | None = 1.0
    readiness: Readiness = field(default_factory=Readiness)
    pacer: PacerClock = field(default_factory=PacerClock)
    _mono_last_s: float | None = None

    def _metric(self, name: str, value: float | None, spec: str, ready_in_s: float) -> str:
        if value is not None:
            return f"{name} {format(value, spec)}"
        if self.connected is False:
            return f"{name} --"
        return f"{name} in {max(1, math.ceil(ready_in_s - 1e-9))} s"

    def now_s(self) -> float:
        """The source clock now: the latest input's time, moved on with the wall clock
        between inputs (at ``speed``; at most 2 s, and not while the link is down)."""
        if self._mono_last_s is None or self.speed is None or self.connected is False:
            return self.t_last_s
        ahead = (time.monotonic() - self._mono_last_s) * self.speed
        return self.t_last_s + min(max(ahead, 0.0), 2.0)

    def line(self) -> str:
        def fmt(value: float | None, spec: str) -> str:
            return "--" if value is None else format(value, spec)

        contact = {None: "n/a", True: "ok", False: "LOST"}[self.contact]
        elapsed = self.t_last_s - self.t_start_s if self.t_start_s is not None else 0.0
        ready = self.readiness
        rmssd30 = self._metric("RMSSD30", self.rmssd_30s_ms, ".1f", ready.rmssd_ready_in_s(30.0))
        rmssd60 = self._metric("RMSSD60", self.rmssd_ms, ".1f", ready.rmssd_ready_in_s(60.0))
        if self.rmssd_30s_ms is not None:
            rmssd30 += " ms"
        if self.rmssd_ms is not None:
            rmssd60 += " ms"
        parts = [
            f"{elapsed:6.0f}s",
            f"HR {fmt(self.hr_bpm, '.0f')} bpm",
            rmssd30,
            rmssd60,
            self._metric("coherence", self.coherence, ".2f", ready.coherence_ready_in_s()),
        ]
        pacer = self.pacer.text(self.now_s())
        if pacer:
            parts.append(pacer)
        parts += [
            # A replay (or a strap without the Battery Service) has no battery level.
            "battery " + ("--" if self.battery_pct is None else f"{self.battery_pct}%"),
            f"contact {contact}",
            f"beats {self.beats}" if self.input_kind == "beats" else f"packets {self.packets}",
            f"gaps {self.gaps}",
        ]
        if self.malformed:
            parts.append(f"malformed {self.malformed}")
        if self.connected is False:
            parts.append(self.link_note or "(reconnecting)")
        return "  ".join(parts)

    def summary(self) -> str:
        elapsed = self.t_last_s - self.t_start_s if self.t_start_s is not None else 0.0
        head = f"{self.device or 'source'}: {elapsed:.0f} s, "
        if self.input_kind == "packets":
            head += f"{self.packets} packets, "
        head += f"{self.beats} beats ({self.artifacts} artifacts), {self.gaps} gaps"
        if self.input_kind == "packets":
            head += f", {self.malformed} malformed packets"
        lines = [head]
        if self.hr_bpm is not None or self.rmssd_ms is not None or self.rmssd_30s_ms is not None:
            hr = "--" if self.hr_bpm is None else f"{self.hr_bpm:.0f}"
            r30 = "--" if self.rmssd_30s_ms is None else f"{self.rmssd_30s_ms:.1f}"
            rmssd = "--" if self.rmssd_ms is None else f"{self.rmssd_ms:.1f}"
            lines.append(f"last: HR {hr} bpm, RMSSD30 {r30} ms, RMSSD60 {rmssd} ms")
        for example in self.malformed_examples:
            lines.append(f"  malformed: {example}")
        return "\n".join(lines)

    def absorb(self, event: Event) -> None:
        """Update the status from one pipeline event."""
        if isinstance(event, Metrics):
            self.hr_bpm = event.hr_bpm
            self.rmssd_ms = event.rmssd_60s_ms
            self.rmssd_30s_ms = event.rmssd_30s_ms
        elif isinstance(event, Spectrum):
            self.coherence = event.coherence_ratio
        elif isinstance(event, Contact):
            self.contact = event.contact
        elif isinstance(event, Beat):
            self.beats += 1
            self.artifacts += event.artifact is not None
            self.t_beat_s = event.t_s
            self.readiness.absorb(event)
        elif isinstance(event, Gap):
            self.readiness.absorb(event)
        elif isinstance(event, PacerChange):
            self.pacer.change(event)

    def add_events(self, events: list[Event]) -> None:
        """Update the status from a batch of pipeline events."""
        for event in events:
            self.absorb(event)

    def at(self, t_s: float) -> None:
        """Note the time (s, source clock) of the latest input."""
        if self.t_start_s is None:
            self.t_start_s = t_s
        self.t_last_s = t_s
        self._mono_last_s = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        """Source-clock time from the first to the latest input (s)."""
        return 0.0 if self.t_start_s is None else self.t_last_s - self.t_start_s

    def with_tail(self, tail: str) -> str:
        """The status line followed by ``tail`` (e.g. ``REC <id>``)."""
        return f"{self.line()}  {tail}"


_PACER_LINE = re.compile(r"^pacer(?:\s+(\S+))?\s*$", re.IGNORECASE)


def parse_control_line(line: str) -> str | float | None:
    """What a line typed during a live session asks for.

    Returns the marker text (a ``str``), the new pacer rate in breaths/min (a
    ``float``) for ``pacer N``, or None for ``pacer off``. An empty line is ``""``.

    Raises:
        ValueError: a ``pacer`` line without a rate in :data:`PACER_RANGE_BPM` or ``off``.
    """
    text = line.strip()
    m = _PACER_LINE.match(text)
    if m is None:
        return text
    arg = (m.group(1) or "").lower()
    if arg in {"off", "none", "stop"}:
        return None
    lo, hi = PACER_RANGE_BPM
    try:
        rate = float(arg)
    except ValueError:
        rate = float("nan")
    if not lo <= rate <= hi:
        raise ValueError(
            f"{text!r}: give the pacer rate in breaths/min, {lo:g}-{hi:g} "
            "(e.g. `pacer 6`), or `pacer off`"
        )
    return rate


class ControlLines:
    """Lines typed during a live session, as control events: ``pacer N`` a pacer change
    (``pacer off`` ends it), any other text a marker with that text.

    Each event is timed at the current beat time (the last beat's; the latest input's
    while the link is down or before the first beat; with several participants, the
    latest of theirs), never before the previous control event, and handed to ``emit``
    (the live runner: it feeds the session, stores it for ``record`` and hands a pacer
    change to the simulated subjects that follow the pacer). Lines typed before
    :meth:`start` wait for it. What was done is noted on stderr, prefixed with
    ``command``.
    """

    def __init__(
        self,
        command: str,
        status: LiveStatus | Sequence[LiveStatus],
        emit: Callable[[Marker | PacerChange], None],
    ) -> None:
        self.command = command
        self.statuses = [status] if isinstance(status, LiveStatus) else list(status)
        self._emit = emit
        self.t_start_s: float | None = None
        self.t_control_s = -math.inf
        self._waiting: list[str] = []
        #: what the note says of a refused line ("ignored"; ``record``: "not recorded")
        self.refused = "ignored"

    def now_s(self) -> float:
        """Now, in beat time (see the class docstring)."""
        now = self.t_control_s
        for status in self.statuses:
            if status.t_start_s is None:
                continue
            t = status.t_beat_s if status.t_beat_s is not None and status.connected else None
            now = max(now, status.t_last_s if t is None else t)
        if now == -math.inf:
            now = self.t_start_s if self.t_start_s is not None else 0.0
        return now

    def emit(self, event: Marker | PacerChange) -> None:
        """Hand a control event on (and note its time)."""
        self.t_control_s = max(self.t_control_s, event.t_s)
        self._emit(event)

    def start(self, t_s: float) -> None:
        """The first input came at ``t_s``: lines typed before it take effect now."""
        if self.t_start_s is not None:
            return
        self.t_start_s = t_s
        waiting, self._waiting = self._waiting, []
        for text in waiting:
            self.apply(text)

    def on_line(self, line: str) -> None:
        """A line was typed (empty lines are ignored)."""
        text = line.strip()
        if not text:
            return
        if self.t_start_s is None:
            self._waiting.append(text)
        else:
            self.apply(text)

    def too_long(self, size_bytes: int) -> None:
        """A line too long to be a marker was typed (and dropped)."""
        from vagus.cli._common import MAX_LINE_CHARS

        note(
            f"vagus {self.command}: {self.refused}: a line of {size_bytes:,} bytes: a marker is at "
            f"most {MAX_LINE_CHARS} characters; the lines after it are read as usual"
        )

    def apply(self, text: str) -> None:
        """Turn one typed line into a control event now."""
        prefix = f"vagus {self.command}"
        try:
            what = parse_control_line(text)
        except ValueError as exc:
            note(f"{prefix}: {self.refused}: {exc}")
            return
        t_s = self.now_s()
        at = clock_text(t_s - (self.t_start_s if self.t_start_s is not None else t_s))
        if isinstance(what, str):
            self.emit(Marker(t_s, what))
            note(f"{prefix}: marker at {at}: {what}")
            return
        self.emit(PacerChange(t_s, what))
        rate = "off" if what is None else f"{what:g} breaths/min"
        note(f"{prefix}: pacer {rate} at {at}")


# a Bluetooth address, or a CoreBluetooth UUID (macOS hides addresses)
ADDRESS_RE = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
)

_ERROR_CHARS = 48  # of the last attempt's error on the status line

#: Options that only mean something for the simulator, and only for a strap (argparse
#: destinations; their defaults are suppressed so that "given" can be told from "default").
SIM_ONLY_OPTIONS = {"seed": "--seed", "speed": "--speed", "sim_option": "--sim-option"}
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


def parse_seed(text: str) -> int:
    """argparse type for ``--seed``: a whole number >= 0 (below 2**128)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**128:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: give a whole number >= 0, e.g. 7")
    return value


def parse_sim_option(text: str) -> tuple[str, Any]:
    """argparse type for ``--sim-option KEY=VALUE`` (VALUE as JSON if it parses).

    Only the form is checked here; the keys and values are checked together by
    :func:`check_sim_options`, once all options are parsed.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: expected KEY=VALUE")
    try:
        parsed: Any = json.loads(value)
    except (ValueError, RecursionError):
        parsed = value
    return key.strip(), parsed


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--speed`` and ``--sim-option`` (simulator only; defaults suppressed,
    see :func:`check_source_options`), as ``monitor`` and ``record`` take them."""
    from vagus.cli._common import parse_speed

    parser.add_argument(
        "--seed",
        type=parse_seed,
        default=argparse.SUPPRESS,
        metavar="N",
        help="simulator seed, a whole number >= 0 (only with --sim; default 0)",
    )
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=argparse.SUPPRESS,
        metavar="X|max",
        help=(
            "simulator speed: 1 is real time, max as fast as possible (only with --sim; default 1)"
        ),
    )
    parser.add_argument(
        "--sim-option",
        action="append",
        default=argparse.SUPPRESS,
        type=parse_sim_option,
        metavar="KEY=VALUE",
        help=(
            "simulator option (repeatable; only with --sim), e.g. dropouts_per_hour=20, "
            "ectopic_rate=0.01, dropouts=[[60,5]] (start and length in s, in time order), "
            "profile_id=polar_verity_sense (the fields of SubjectConfig/StrapConfig; "
            "each value is checked against its range)"
        ),
    )


def check_sim_options(args: argparse.Namespace, error: Callable[[str], object]) -> None:
    """Every ``--sim-option`` is checked before anything starts: an unknown key or a value
    out of its range is a usage error (``error``: exit status 2) naming the option."""
    options = getattr(args, "sim_option", None)
    if not args.sim or not options:
        return
    from vagus.sources.simulator import check_options

    try:
        check_options(dict(options))
    except InvalidInput as exc:
        error(f"--sim-option: {exc}")


def source_spec(args: argparse.Namespace) -> SourceSpec:
    if args.sim:
        # no duration_s: --duration counts from the first packet, here as for a strap
        return SimSpec(
            seed=getattr(args, "seed", 0),
            speed=getattr(args, "speed", 1.0),
            options=dict(getattr(args, "sim_option", [])),
        )
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

    While a line is being typed on the terminal (:attr:`typing`, the stdin reader's
    ``pending_text`` with the terminal's echo off), it is shown after the status, after
    ``> ``, and redrawn with it (the status gives way to it on a narrow terminal).
    """

    def __init__(self, status: LiveStatus, link: LinkState | None, *, tty: bool) -> None:
        self.status = status
        self.link = link
        self.tty = tty
        self.interval_s = 0.25 if tty else 1.0
        self._next_s = 0.0
        self._last_text = ""
        #: the line being typed, if any (shown after the status)
        self.typing: Callable[[], str] | None = None

    def text(self) -> str:
        """The line to show now ("" for nothing yet: a source without link state)."""
        now_s = time.monotonic()
        status, link = self.status, self.link
        if not status.device:  # not connected yet: searching, or attempt k of n
            return link_text(link, now_s) if link is not None else ""
        if status.connected is False:
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
        typed = self.typing() if self.typing is not None else ""
        if typed and self.tty:
            from vagus.cli._common import terminal_columns

            width = terminal_columns()
            if len(typed) > width // 2:  # the end of a long line, where the typing is
                typed = "…" + typed[-(width // 2) :]
            text = f"{text}  > {typed}"  # the last field: kept when fitted to the width
        if not text or (not self.tty and text == self._last_text):
            return
        self._last_text = text
        status_line(text)

    async def keep_drawing(self) -> None:
        """Redraw whenever the interval has passed (cancel to stop)."""
        while True:
            await asyncio.sleep(max(self._next_s - time.monotonic(), 0.01))
            self.draw()


def stdin_lines(
    args: argparse.Namespace, controls: ControlLines, view: StatusView | StatusBoard | None
) -> StdinLines | None:
    """The stdin reader for markers and ``pacer N`` (not started): on a terminal in the
    foreground, or when asked (``--markers-from-stdin``); None otherwise.

    With a status ``view`` drawn on a terminal, typed text is shown in the status line
    (the terminal's own echo off) rather than echoed into it, and redrawn at each key."""
    asked = bool(getattr(args, "markers_from_stdin", False))
    on_tty = foreground_tty(sys.stdin)
    if not (asked or on_tty):
        return None
    edit = view is not None and view.tty and on_tty
    try:
        reader = StdinLines(
            controls.on_line,
            on_too_long=controls.too_long,
            edit=edit,
            on_edit=(lambda: view.draw(force=True)) if view is not None else None,
        )
    except (AttributeError, OSError, ValueError) as exc:  # no stdin (closed, pythonw)
        if asked:
            note(f"vagus {controls.command}: cannot read markers from stdin: {exc}")
        return None
    if view is not None:
        view.typing = lambda: reader.pending_text
    return reader


class StatusBoard:
    """The live status of a session on stderr: one line per participant (each a
    :class:`StatusView`'s line, prefixed with the participant's name when there are
    several), redrawn in place every ``interval_s`` even without packets, as
    :class:`StatusView` draws its one line.

    ``tail`` (e.g. ``REC <id>``) ends the last line once a participant is connected; the
    line being typed (:attr:`typing`) comes after it.
    """

    def __init__(
        self,
        views: Sequence[tuple[str, StatusView]],
        *,
        tty: bool,
        tail: Callable[[], str] | None = None,
    ) -> None:
        self.views = list(views)
        self.tty = tty
        self.tail = tail
        self.interval_s = 0.25 if tty else 1.0
        self._next_s = 0.0
        self._last_text = ""
        #: the line being typed, if any (shown after the status)
        self.typing: Callable[[], str] | None = None

    def lines(self) -> list[str]:
        """The lines to show now (none before anything is known: a source without link
        state that has not connected yet)."""
        several = len(self.views) > 1
        out: list[str] = []
        for name, view in self.views:
            text = view.text()
            if text:
                out.append(f"{name}: {text}" if several else text)
        if out and self.tail is not None and any(v.status.device for _, v in self.views):
            out[-1] = f"{out[-1]}  {self.tail()}"
        return out

    def draw(self, *, force: bool = False) -> None:
        """Draw now if ``force`` or the interval has passed since the last drawing."""
        from vagus.cli._common import status_lines, terminal_columns

        now_s = time.monotonic()
        if not force and now_s < self._next_s:
            return
        self._next_s = now_s + self.interval_s
        lines = self.lines()
        typed = self.typing() if self.typing is not None else ""
        if typed and self.tty:
            width = terminal_columns()
            if len(typed) > width // 2:  # the end of a long line, where the typing is
                typed = "…" + typed[-(width // 2) :]
            lines = [*lines[:-1], f"{lines[-1] if lines else ''}  > {typed}"]
        text = "\n".join(lines)
        if not text or (not self.tty and text == self._last_text):
            return
        self._last_text = text
        status_lines(lines)

    async def keep_drawing(self) -> None:
        """Redraw whenever the interval has passed (cancel to stop)."""
        while True:
            await asyncio.sleep(max(self._next_s - time.monotonic(), 0.01))
            self.draw()
