"""The live one-line status shared by ``vagus monitor``, ``record`` and ``replay``, and the
note shown once when a strap's RR intervals are missing or unfit for HRV."""

from __future__ import annotations

from dataclasses import dataclass, field

from vagus.core.events import Beat, Contact, Event, Metrics, Spectrum
from vagus.exceptions import DeviceProfileError

__all__ = ["LiveStatus", "rr_note"]


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
