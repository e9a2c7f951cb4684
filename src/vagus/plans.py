"""Plans and pacer options for the command line (``--plan NAME|FILE``, ``--pacer MODE[:RATE]``,
``--guidance LEVEL``).

The plans themselves are :mod:`vagus.core.plans` (sans-I/O); this module reads a plan
file and parses the options, with errors that say what to write instead.
"""

from __future__ import annotations

from pathlib import Path

from vagus.core.events import GUIDANCE_LEVEL_NAMES, PACER_MODES, PacerChange
from vagus.core.plans import PRESETS, Plan, plan_from_toml, preset
from vagus.core.resonance import GUIDANCE_LEVELS
from vagus.exceptions import InvalidInput

__all__ = [
    "GUIDANCE_OPTION_HELP",
    "PACER_OPTION_HELP",
    "PLAN_OPTION_HELP",
    "guidance_from_option",
    "load_plan",
    "pacer_change_from_option",
]

#: ``--pacer`` help text.
PACER_OPTION_HELP = (
    "the breathing pacer: off, fixed[:RATE] (default 6 breaths/min), scan (resonance "
    "assessment: 6.5 down to 4.5 breaths/min, 2 min each, then fixed at the rate found) "
    "or adaptive[:START] (follows your resonance rate, from 6.0 by default)"
)
#: ``--plan`` help text.
PLAN_OPTION_HELP = (
    "follow a session plan: a preset ("
    + ", ".join(repr(k) for k in PRESETS)
    + ") or a TOML file with [[phase]] tables (name, minutes, pacer, rate_bpm, guidance)"
)
#: ``--guidance`` help text.
GUIDANCE_OPTION_HELP = (
    "coherence-adaptive guidance on top of any pacer: once your coherence has stayed high "
    "for a minute the breathing shape fades to a faint cue, and it comes back when "
    "coherence drops. The level sets how high is high (coherence ratio at or above / "
    "back below): "
    + ", ".join(f"{k} {hi:g}/{lo:g}" for k, (hi, lo) in GUIDANCE_LEVELS.items())
    + "; off (the default) never fades"
)


def guidance_from_option(text: str) -> str | None:
    """The guidance level ``--guidance TEXT`` asks for (None for ``off``).

    Raises:
        InvalidInput: not a level or off, with the accepted values.
    """
    level = text.strip().lower()
    if level == "off":
        return None
    if level not in GUIDANCE_LEVEL_NAMES:
        raise InvalidInput(
            f"--guidance {text!r}: unknown level; write {', '.join(GUIDANCE_LEVEL_NAMES)} or off"
        )
    return level


def pacer_change_from_option(
    text: str, t_s: float = 0.0, *, default_rate_bpm: float | None = None
) -> PacerChange:
    """The pacer change ``--pacer TEXT`` asks for at ``t_s``.

    ``off``; ``fixed`` or ``fixed:RATE``; ``scan``; ``adaptive`` or ``adaptive:START``.
    ``default_rate_bpm`` (e.g. the participant's stored resonance rate) is used by fixed
    and adaptive without a rate (else 6.0).

    Raises:
        InvalidInput: anything else, with the accepted forms.
    """
    usage = "write off, fixed, fixed:5.5, scan, adaptive or adaptive:5.5"
    mode, _, rate_text = text.strip().lower().partition(":")
    if mode not in PACER_MODES:
        raise InvalidInput(f"--pacer {text!r}: unknown pacer mode {mode!r}; {usage}")
    if mode in ("off", "scan") and rate_text:
        raise InvalidInput(f"--pacer {text!r}: {mode} takes no rate; {usage}")
    if mode == "off":
        return PacerChange(t_s, None, 0.4, "off")
    if mode == "scan":
        return PacerChange(t_s, 6.5, 0.4, "scan")
    if rate_text:
        try:
            rate = float(rate_text)
        except ValueError:
            raise InvalidInput(f"--pacer {text!r}: {rate_text!r} is not a rate; {usage}") from None
        if not 1.0 <= rate <= 40.0:
            raise InvalidInput(f"--pacer {text!r}: the rate must be 1-40 breaths/min")
    else:
        rate = default_rate_bpm if default_rate_bpm is not None else 6.0
    return PacerChange(t_s, rate, 0.4, mode)


def load_plan(spec: str) -> Plan:
    """A preset by name, or a plan read from a TOML file.

    Raises:
        InvalidInput: neither a preset nor a readable plan file (the message says which
            presets exist), or a bad plan file (the field named).
    """
    path = Path(spec)
    if path.suffix.lower() == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"cannot read the plan file {spec!r}: {exc.strerror or exc}; give a TOML file "
                f"or a preset ({', '.join(repr(k) for k in PRESETS)})"
            ) from None
        except UnicodeDecodeError:
            raise InvalidInput(f"the plan file {spec!r} is not UTF-8 text") from None
        try:
            return plan_from_toml(text, default_name=path.stem)
        except InvalidInput as exc:
            raise InvalidInput(f"plan file {spec!r}: {exc}") from None
    return preset(spec)
