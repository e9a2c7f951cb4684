"""``--participant NAME=SOURCE`` for ``vagus record`` and ``vagus monitor``: several
participants in one live session.

SOURCE is ``sim`` or ``sim:KEY=VALUE,...`` (``seed=N`` and the simulator options of
``--sim-option``: ``sim:seed=2,ectopic_rate=0.02,dropouts=[[60,5]]``), or a strap: its
address (``AA:BB:CC:DD:EE:FF``, or a macOS UUID) or a part of its advertised name
(``strap:NAME`` for a strap whose name is ``sim`` or starts with ``sim:``).

The session-wide options apply to every participant of their kind: ``--speed`` and
``--sim-option`` to the simulated ones (a participant's own ``KEY=VALUE`` wins),
``--scan-timeout``, ``--connect-timeout`` and ``--retries`` to the straps. The
single-source options (``--sim``, ``--device``, ``--seed``, and ``--participant NAME``
to name that one participant) keep working.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from vagus.cli._live import (
    ADDRESS_RE,
    BLE_ONLY_OPTIONS,
    SIM_ONLY_OPTIONS,
    check_sim_options,
    check_source_options,
    parse_seed,
    source_spec,
)
from vagus.exceptions import InvalidInput
from vagus.runner import Participant
from vagus.session import check_participant_name
from vagus.sources.base import BleSpec, SimSpec, SourceSpec

__all__ = [
    "PARTICIPANT_HELP",
    "add_participant_argument",
    "parse_participant",
    "participants_from_args",
    "split_options",
]

#: The --help text of ``--participant``.
PARTICIPANT_HELP = (
    "a participant: NAME=SOURCE (repeatable, one per participant), SOURCE being `sim` or "
    "`sim:seed=N,KEY=VALUE,...` (a simulated subject; KEY=VALUE as --sim-option) or a "
    "strap's address or a part of its name (`strap:NAME` for a name that is sim or starts "
    "with sim:). "
    "E.g. --participant ann=sim:seed=1 --participant bob=sim:seed=2, or --participant "
    "ann=C0:FE:00:00:00:01 --participant bob='HRM-Pro'. A plain NAME names the one "
    "participant of --sim or --device (default: me)"
)


def add_participant_argument(parser: argparse.ArgumentParser) -> None:
    """``--participant NAME[=SOURCE]`` (repeatable)."""
    parser.add_argument(
        "--participant",
        action="append",
        default=[],
        type=parse_participant,
        metavar="NAME[=SOURCE]",
        help=PARTICIPANT_HELP,
    )


def split_options(text: str) -> list[str]:
    """``a=1,b=[[60,5],[90,2]],c=x`` split at the commas outside brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def parse_participant(text: str) -> tuple[str, SourceSpec | None]:
    """argparse type for ``--participant``: ``(name, source)``, the source None for a
    plain NAME (the participant of --sim or --device). The simulator's options are only
    parsed here; their keys and values are checked with the others
    (:func:`participants_from_args`)."""
    name, sep, source = text.partition("=")
    name = name.strip()
    if not name:
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r}: give the participant's name first, e.g. ann=sim:seed=1"
        )
    try:
        name = check_participant_name(name)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not sep:
        return name, None
    source = source.strip()
    if not source:
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r}: say where {name}'s input comes from after `=`: `sim`, "
            "`sim:seed=N`, or a strap's address or name"
        )
    kind, colon, rest = source.partition(":")
    if kind.strip().lower() == "sim":
        seed = 0
        options: dict[str, Any] = {}
        for item in split_options(rest):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise argparse.ArgumentTypeError(
                    f"{name}={source[:60]}: {item!r} is not KEY=VALUE (e.g. sim:seed=2)"
                )
            if key == "seed":
                seed = parse_seed(value.strip())
            else:
                options[key] = _value(value.strip())
        return name, SimSpec(seed=seed, options=options)
    if kind.lower() == "strap" and colon:
        source = rest.strip()
    if ADDRESS_RE.match(source):
        return name, BleSpec(address=source)
    return name, BleSpec(name=source)


def _usage(message: str, error: Callable[[str], object]) -> None:
    error(message)
    raise SystemExit(2)  # pragma: no cover - argparse's error exits already


def participants_from_args(
    args: argparse.Namespace, error: Callable[[str], object]
) -> list[Participant]:
    """The session's participants from ``--participant`` (or the single source of
    ``--sim`` / ``--device``); options that apply to no participant, unknown simulator
    options and values out of range are usage errors (``error``: exit status 2)."""
    given: list[tuple[str, SourceSpec | None]] = list(getattr(args, "participant", []) or [])
    sourced = [(n, s) for n, s in given if s is not None]
    if not sourced:
        # The single-source form: --sim or --device (or the strongest strap found).
        if len(given) > 1:
            _usage(
                "--participant NAME was given more than once: one source has one "
                "participant; for several, say each one's source: --participant NAME=SOURCE",
                error,
            )
        check_source_options(args, error)
        check_sim_options(args, error)
        name = given[0][0] if given else "me"
        return [Participant(name, source_spec(args))]
    if len(sourced) != len(given):
        plain = next(n for n, s in given if s is None)
        _usage(
            f"--participant {plain}: with NAME=SOURCE participants, give every participant "
            f"its source (e.g. {plain}=sim:seed=3)",
            error,
        )
    if getattr(args, "sim", False) or getattr(args, "device", None) is not None:
        _usage(
            "--sim and --device choose the one source of a single participant; with "
            "--participant NAME=SOURCE, say each participant's source there instead",
            error,
        )
    names = [n for n, _ in sourced]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        _usage(f"--participant {twice[0]} given twice: each participant needs its own name", error)
    if hasattr(args, "seed"):
        _usage(
            "--seed: with --participant NAME=SOURCE, give each simulated participant its "
            "seed (NAME=sim:seed=N)",
            error,
        )
    any_sim = any(isinstance(s, SimSpec) for _, s in sourced)
    any_ble = any(isinstance(s, BleSpec) for _, s in sourced)
    if not any_sim:
        wrong = [f for d, f in SIM_ONLY_OPTIONS.items() if d != "seed" and hasattr(args, d)]
        if wrong:
            _usage(f"{' and '.join(wrong)}: only for simulated participants (NAME=sim)", error)
    if not any_ble:
        wrong = [f for d, f in BLE_ONLY_OPTIONS.items() if hasattr(args, d)]
        if wrong:
            _usage(f"{' and '.join(wrong)}: only for participants with a strap", error)
    speed = getattr(args, "speed", 1.0)
    common = dict(getattr(args, "sim_option", []) or [])
    defaults = BleSpec()
    out: list[Participant] = []
    for name, spec in sourced:
        if isinstance(spec, SimSpec):
            options = {**common, **spec.options}
            try:
                from vagus.sources.simulator import check_options

                check_options(options)
            except InvalidInput as exc:
                _usage(f"--participant {name}: {exc}", error)
            spec = SimSpec(seed=spec.seed, speed=speed, options=options)
        elif isinstance(spec, BleSpec):
            spec = BleSpec(
                address=spec.address,
                name=spec.name,
                scan_timeout_s=getattr(args, "scan_timeout", defaults.scan_timeout_s),
                connect_timeout_s=getattr(args, "connect_timeout", defaults.connect_timeout_s),
                max_retries=getattr(args, "retries", defaults.max_retries),
                use_start_notify=not getattr(args, "acquire_notify", False),
            )
        out.append(Participant(name, spec))
    return out
