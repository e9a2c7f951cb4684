"""Session plans: a sequence of phases, each with its pacer (sans-I/O; issue 12 §2).

A :class:`Plan` is a list of :class:`PlanPhase` (name, duration, pacer mode and rate),
e.g. 2 min resting baseline without a pacer, 10 min paced, 2 min recovery. A plan runs
as **control events** (so it is stored and replayed like any practitioner's input):
:meth:`Plan.controls` gives, at each phase's start, a :class:`~vagus.core.events.Marker`
whose text names the phase (``"phase 2/3: practice (10 min)"``, read back with
:func:`phase_of_marker`) followed by the :class:`~vagus.core.events.PacerChange` of its
pacer, and a ``"plan end"`` marker at the end. :meth:`Plan.phase_at` tells a view the
phase and the time left at any elapsed time; :func:`plan_state_of_marker` turns a phase
marker into the small ``plan`` state a breathing view is sent (the phase's name, its
number and when it ends), since participants are not sent markers.

Presets (:data:`PRESETS`): ``"resonance assessment"`` (2 min baseline, 12 min scan,
2 min recovery), ``"10-minute practice"`` (2 min baseline, 10 min adaptive, 2 min
recovery) and ``"baseline only"`` (5 min without a pacer). :func:`plan_from_toml` reads a
small TOML text::

    name = "evening"
    [[phase]]
    name = "baseline"
    minutes = 2
    [[phase]]
    name = "practice"
    minutes = 10
    pacer = "fixed"      # off (default), fixed, scan or adaptive
    rate_bpm = 5.5       # fixed: the rate; scan/adaptive: where they start
    inhale_fraction = 0.4
    guidance = "medium"  # coherence-adaptive guidance from here: gentle, medium,
                         # challenging or off (left out: as it was before the phase)
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from vagus.core.events import (
    GUIDANCE_LEVEL_NAMES,
    PACER_MODES,
    ControlEvent,
    Marker,
    PacerChange,
    check_control,
)
from vagus.exceptions import InvalidInput

__all__ = [
    "PRESETS",
    "Plan",
    "PlanPhase",
    "phase_of_marker",
    "plan_from_toml",
    "plan_state_of_marker",
    "preset",
]

#: The rate each pacer mode starts at when a phase gives none (breaths/min).
DEFAULT_START_BPM = {"fixed": 6.0, "scan": 6.5, "adaptive": 6.0}
_MARKER = re.compile(r"^phase (\d+)/(\d+): (.+) \(([\d.]+) min\)$")


@dataclass(frozen=True, slots=True)
class PlanPhase:
    """One phase of a plan.

    Attributes:
        name: shown to the user and in the report ("baseline", "practice", ...).
        duration_s: length of the phase (s, 10 s to 4 h).
        pacer: ``"off"``, ``"fixed"``, ``"scan"`` or ``"adaptive"``.
        rate_bpm: the fixed rate, or where scan/adaptive start (None: the participant's
            resonance rate if known, else :data:`DEFAULT_START_BPM`).
        inhale_fraction: the pacer's inhale share (0.1-0.9).
        guidance: coherence-adaptive guidance from this phase on: a level
            (``"gentle"``, ``"medium"``, ``"challenging"``) or ``"off"``; None keeps it
            as it was (:class:`~vagus.core.events.PacerChange` ``guidance``).
    """

    name: str
    duration_s: float
    pacer: str = "off"
    rate_bpm: float | None = None
    inhale_fraction: float = 0.4
    guidance: str | None = None

    def __post_init__(self) -> None:
        where = f"plan phase {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 60:
            raise InvalidInput(f"a plan phase needs a name of 1-60 characters, got {self.name!r}")
        if self.pacer not in PACER_MODES:
            raise InvalidInput(
                f"{where}: pacer must be one of {list(PACER_MODES)}, got {self.pacer!r}"
            )
        d = self.duration_s
        if not (isinstance(d, int | float) and math.isfinite(d) and 10.0 <= d <= 4 * 3600.0):
            raise InvalidInput(f"{where}: the duration must be 10 s to 4 h, got {d!r} s")
        r = self.rate_bpm
        if r is not None and not (isinstance(r, int | float) and 1.0 <= r <= 40.0):
            raise InvalidInput(f"{where}: rate_bpm must be 1-40 breaths/min, got {r!r}")
        f = self.inhale_fraction
        if not (isinstance(f, int | float) and 0.1 <= f <= 0.9):
            raise InvalidInput(f"{where}: inhale_fraction must be 0.1-0.9, got {f!r}")
        g = self.guidance
        if g is not None and g not in ("off", *GUIDANCE_LEVEL_NAMES):
            raise InvalidInput(
                f"{where}: guidance must be one of {['off', *GUIDANCE_LEVEL_NAMES]}, got {g!r}"
            )

    def change(self, t_s: float, default_rate_bpm: float | None = None) -> PacerChange:
        """The pacer change that starts this phase at ``t_s``."""
        if self.pacer == "off":
            return PacerChange(t_s, None, self.inhale_fraction, "off", guidance=self.guidance)
        if self.rate_bpm is not None:
            rate = self.rate_bpm
        elif self.pacer != "scan" and default_rate_bpm is not None:
            rate = default_rate_bpm
        else:
            rate = DEFAULT_START_BPM[self.pacer]
        return PacerChange(
            t_s, float(rate), self.inhale_fraction, self.pacer, guidance=self.guidance
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """A named sequence of phases (see the module docstring)."""

    name: str
    phases: tuple[PlanPhase, ...]

    def __post_init__(self) -> None:
        if not self.phases:
            raise InvalidInput(f"plan {self.name!r} has no phases; give at least one")
        if len(self.phases) > 50:
            raise InvalidInput(f"plan {self.name!r} has {len(self.phases)} phases; at most 50")

    @property
    def duration_s(self) -> float:
        """The whole plan's length (s)."""
        return sum(p.duration_s for p in self.phases)

    def controls(
        self, t0_s: float = 0.0, *, default_rate_bpm: float | None = None
    ) -> list[ControlEvent]:
        """The plan as control events from session time ``t0_s``: per phase a marker
        naming it and its pacer change; a ``"plan end"`` marker at the end.
        ``default_rate_bpm`` (e.g. the participant's stored resonance rate) is the rate
        of fixed and adaptive phases that give none."""
        out: list[ControlEvent] = []
        t = t0_s
        n = len(self.phases)
        for i, ph in enumerate(self.phases):
            minutes = f"{ph.duration_s / 60.0:g}"
            out.append(Marker(t, f"phase {i + 1}/{n}: {ph.name} ({minutes} min)"))
            out.append(ph.change(t, default_rate_bpm))
            t += ph.duration_s
        out.append(Marker(t, "plan end"))
        for ev in out:
            check_control(ev)
        return out

    def phase_at(self, elapsed_s: float) -> tuple[int, PlanPhase, float] | None:
        """``(index, phase, seconds left in it)`` at ``elapsed_s`` since the plan started;
        None before it or after its end."""
        if elapsed_s < 0:
            return None
        t = 0.0
        for i, ph in enumerate(self.phases):
            if elapsed_s < t + ph.duration_s:
                return i, ph, t + ph.duration_s - elapsed_s
            t += ph.duration_s
        return None


def phase_of_marker(text: str) -> tuple[int, int, str, float] | None:
    """``(number, of, name, minutes)`` of a plan's phase marker, else None."""
    m = _MARKER.match(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4))


def plan_state_of_marker(marker: dict[str, Any]) -> dict[str, Any] | None:
    """The ``plan`` state a marker's JSON form starts, else None.

    A phase marker (:meth:`Plan.controls`: ``"phase 2/3: practice (10 min)"``) at ``t_s``
    gives ``{"type": "plan", "t_s": t_s, "participant": None, "phase": "practice",
    "number": 2, "of": 3, "ends_s": t_s + 600.0}`` (``ends_s`` on the session clock: a view
    shows the time left as ``ends_s − now``); ``"plan end"`` gives the same with
    ``phase``, ``number``, ``of`` and ``ends_s`` None (no plan running); any other marker
    None. Derived from the stored markers alone, so a replay derives the same.
    """
    text = marker.get("text")
    t_s = marker.get("t_s")
    if not isinstance(text, str) or not isinstance(t_s, int | float):
        return None
    if text == "plan end":
        found: tuple[int, int, str, float] | None = None
    else:
        found = phase_of_marker(text)
        if found is None:
            return None
    state: dict[str, Any] = {"type": "plan", "t_s": t_s, "participant": None}
    if found is None:
        state.update(phase=None, number=None, of=None, ends_s=None)
    else:
        number, of, name, minutes = found
        state.update(phase=name, number=number, of=of, ends_s=round(t_s + 60.0 * minutes, 3))
    return state


#: The built-in plans.
PRESETS: dict[str, Plan] = {
    "resonance assessment": Plan(
        "resonance assessment",
        (
            PlanPhase("baseline", 120.0),
            PlanPhase("resonance scan", 720.0, "scan"),
            PlanPhase("recovery", 120.0),
        ),
    ),
    "10-minute practice": Plan(
        "10-minute practice",
        (
            PlanPhase("baseline", 120.0),
            PlanPhase("practice", 600.0, "adaptive"),
            PlanPhase("recovery", 120.0),
        ),
    ),
    "baseline only": Plan("baseline only", (PlanPhase("baseline", 300.0),)),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def preset(name: str) -> Plan:
    """A built-in plan by name (case, spaces, ``-`` and ``_`` do not matter).

    Raises:
        InvalidInput: no such preset (the message lists them).
    """
    wanted = _key(name)
    for key, plan in PRESETS.items():
        if _key(key) == wanted:
            return plan
    raise InvalidInput(
        f"no plan preset {name!r}; presets: {', '.join(repr(k) for k in PRESETS)} "
        "(or give a TOML file)"
    )


def plan_from_toml(text: str, default_name: str = "plan") -> Plan:
    """A plan from TOML text (see the module docstring).

    Raises:
        InvalidInput: not TOML, an unknown key, or a value out of range (named).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"the plan is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"name", "phase"})
    if unknown:
        raise InvalidInput(f"unknown plan key(s) {unknown}; a plan has 'name' and [[phase]]")
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise InvalidInput(f"the plan's name must be a string, got {name!r}")
    raw = data.get("phase")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("a plan needs at least one [[phase]] table")
    phases = []
    allowed = {"name", "minutes", "seconds", "pacer", "rate_bpm", "inhale_fraction", "guidance"}
    for k, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput(f"plan phase {k + 1} must be a table")
        extra = sorted(set(item) - allowed)
        if extra:
            raise InvalidInput(
                f"plan phase {k + 1}: unknown key(s) {extra}; allowed: {sorted(allowed)}"
            )
        phases.append(_phase(k, item))
    return Plan(name, tuple(phases))


def _phase(k: int, item: dict[str, Any]) -> PlanPhase:
    name = item.get("name", f"phase {k + 1}")
    if "minutes" in item and "seconds" in item:
        raise InvalidInput(f"plan phase {k + 1}: give 'minutes' or 'seconds', not both")
    if "minutes" in item:
        value = item["minutes"]
        scale = 60.0
    elif "seconds" in item:
        value = item["seconds"]
        scale = 1.0
    else:
        raise InvalidInput(f"plan phase {k + 1} ({name!r}) needs 'minutes' (or 'seconds')")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"plan phase {k + 1}: the duration must be a number, got {value!r}")
    rate = item.get("rate_bpm")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise InvalidInput(f"plan phase {k + 1}: rate_bpm must be a number, got {rate!r}")
    frac = item.get("inhale_fraction", 0.4)
    if isinstance(frac, bool) or not isinstance(frac, int | float):
        raise InvalidInput(f"plan phase {k + 1}: inhale_fraction must be a number, got {frac!r}")
    guidance = item.get("guidance")
    if guidance is not None and not isinstance(guidance, str):
        raise InvalidInput(
            f"plan phase {k + 1}: guidance must be a string ({', '.join(GUIDANCE_LEVEL_NAMES)} "
            f"or off), got {guidance!r}"
        )
    return PlanPhase(
        str(name),
        float(value) * scale,
        str(item.get("pacer", "off")),
        None if rate is None else float(rate),
        float(frac),
        guidance,
    )
