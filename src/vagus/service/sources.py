"""Participants whose source runs on the server: a simulated subject or a strap.

A participant's source is named by a short spec (as ``vagus record --participant
NAME=SOURCE``): ``relay`` (packets pushed in by ``vagus relay``: no local source),
``sim`` or ``sim:seed=N,KEY=VALUE,...`` (a simulated subject that follows the pacer),
or a strap address or name (Bluetooth, on the server machine).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from vagus.core.events import PacerChange
from vagus.exceptions import InvalidInput
from vagus.sources.base import BleSpec, DeviceInfo, LinkGap, Packet, SimSpec, Source, open_source

__all__ = ["LocalSource", "parse_participant", "parse_source"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ADDRESS = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f-]{36}")


def parse_participant(text: str, default_source: str = "relay") -> tuple[str, str]:
    """``NAME`` or ``NAME=SOURCE`` as ``(name, source)``; the source spec is checked."""
    name, _, source = text.partition("=")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"participant name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
            "(e.g. ann=sim:seed=1)"
        )
    source = source.strip() or default_source
    if source != "relay":
        parse_source(source)  # checked now, opened when the session starts
    return name, source


def _sim_spec(text: str, speed: float | None) -> SimSpec:
    options: dict[str, Any] = {}
    seed = 0
    _, _, rest = text.partition(":")
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise InvalidInput(f"sim option {part!r}: write KEY=VALUE (e.g. sim:seed=1)")
        if key == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise InvalidInput(f"sim seed {value!r}: must be an integer") from None
            continue
        try:
            options[key] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            options[key] = value
    if options:
        from vagus.sources.simulator import check_options

        check_options(options)
    return SimSpec(seed=seed, speed=speed, options=options)


class LocalSource:
    """A source run by the service for one participant (see the module docstring)."""

    def __init__(self, spec: SimSpec | BleSpec) -> None:
        self.spec = spec
        self.source: Source | None = None

    @property
    def follows_pacer(self) -> bool:
        return isinstance(self.spec, SimSpec)

    def follow_pacer(self, change: PacerChange, offset_s: float) -> None:
        """Steer the subject with a pacer change given on the session clock."""
        if self.source is None or not self.source.capabilities.follows_pacer:
            return
        t_source = change.t_s - offset_s
        now = getattr(self.source, "t_s", t_source)
        self.source.follow_pacer(dataclasses.replace(change, t_s=max(t_source, now)))

    async def run(self, on_item: Callable[[str, float, Any], None]) -> None:
        """Run the source until it ends or the task is cancelled."""
        async with open_source(self.spec) as source:
            self.source = source
            async for item in source:
                if isinstance(item, Packet):
                    on_item("packet", item.t_arrival_s, item.payload)
                elif isinstance(item, LinkGap):
                    on_item("gap", item.t_s, item.reason)
                elif isinstance(item, DeviceInfo):
                    on_item("device", 0.0, (item.connected, item.battery_pct))


def parse_source(text: str, *, sim_speed: float | None = 1.0) -> LocalSource:
    """The local source of a spec (``sim[:...]`` or a strap address/name)."""
    text = text.strip()
    if text == "relay":
        raise InvalidInput("a relayed participant has no local source")
    if text == "sim" or text.startswith("sim:"):
        return LocalSource(_sim_spec(text, sim_speed))
    if not text:
        raise InvalidInput("empty source: use relay, sim[:seed=N] or a strap address or name")
    if text == "strap":  # the strongest strap in range
        return LocalSource(BleSpec())
    if _ADDRESS.fullmatch(text):
        return LocalSource(BleSpec(address=text))
    return LocalSource(BleSpec(name=text))
