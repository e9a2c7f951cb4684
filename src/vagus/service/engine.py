"""The session core as the service drives it: events out as JSON dicts.

A thin adapter: one :class:`~vagus.core.pipeline.Pipeline` per participant (participants
never mix) and the session pacer, fed on the session clock. Every method returns the
events the input produced, as JSON forms carrying ``participant`` (None for the
session-wide ``pacer_state`` and ``marker``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

from vagus.core.events import Marker, PacerChange
from vagus.core.pipeline import Pipeline
from vagus.exceptions import InvalidInput, MalformedPacket

__all__ = ["Engine"]

_PACER_DEFAULTS: dict[str, Any] = {
    "mode": "off",
    "rate_bpm": None,
    "inhale_fraction": 0.4,
    "hold_in_s": 0.0,
    "hold_out_s": 0.0,
}
_PACER_FIELDS = {f.name for f in dataclasses.fields(PacerChange)}


class Engine:
    """Per-participant pipelines and one pacer on the session clock."""

    def __init__(self, participants: tuple[str, ...]) -> None:
        self.pipelines: dict[str, Pipeline] = {name: Pipeline() for name in participants}
        self._pacer = dict(_PACER_DEFAULTS)
        self._pacer_event: PacerChange | None = None
        # phase bookkeeping: phase (cycles, fractional) at _phase_t_s
        self._phase_t_s = 0.0
        self._phase = 0.0
        self.malformed_packets = 0
        self._requested: dict[str, Any] = {}

    def _out(self, name: str | None, pipeline: Pipeline) -> list[dict[str, Any]]:
        out = []
        for event in pipeline.events_received():
            d = event.to_json()
            d["participant"] = name
            out.append(d)
        return out

    def receive_packet(self, name: str, t_s: float, payload: bytes) -> list[dict[str, Any]]:
        pipeline = self.pipelines[name]
        try:
            pipeline.receive_packet(t_s, payload)
        except MalformedPacket:
            self.malformed_packets += 1
        except InvalidInput:
            self.malformed_packets += 1
        return self._out(name, pipeline)

    def receive_gap(self, name: str, t_s: float, reason: str) -> list[dict[str, Any]]:
        pipeline = self.pipelines[name]
        with contextlib.suppress(InvalidInput):
            pipeline.receive_gap(t_s, reason=reason)
        return self._out(name, pipeline)

    def receive_rr(
        self, name: str, rr_ms: tuple[float, ...], t_s: tuple[float, ...] | None
    ) -> list[dict[str, Any]]:
        """Imported RR intervals (ms), with beat times when the file had them."""
        pipeline = self.pipelines[name]
        with contextlib.suppress(InvalidInput):
            if t_s is None:
                pipeline.receive_rr(rr_ms)
            else:
                for rr, t in zip(rr_ms, t_s, strict=True):
                    pipeline.receive_rr(rr, t_s=t)
        return self._out(name, pipeline)

    def pacer_settings(self) -> dict[str, Any]:
        return dict(self._pacer)

    def current_pacer(self) -> PacerChange | None:
        return self._pacer_event

    def pacer_change(self, t_s: float, settings: dict[str, Any]) -> PacerChange:
        """The :class:`PacerChange` for ``settings`` at ``t_s``."""
        self._requested = dict(settings)
        kwargs = {k: v for k, v in settings.items() if k in _PACER_FIELDS}
        return PacerChange(t_s=t_s, **kwargs)

    def _phase_at(self, t_s: float) -> float | None:
        rate = self._pacer.get("rate_bpm")
        if rate is None:
            return None
        cycle_s = 60.0 / float(rate)
        return (self._phase + (t_s - self._phase_t_s) / cycle_s) % 1.0

    def receive_control(self, event: Marker | PacerChange) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, pipeline in self.pipelines.items():
            pipeline.receive_control(event)
            out.extend(e for e in self._out(name, pipeline) if e["type"] not in ("marker", "pacer"))
        if isinstance(event, Marker):
            d = event.to_json()
            d["participant"] = None
            out.append(d)
            return out
        was_on = self._pacer.get("rate_bpm") is not None
        phase = self._phase_at(event.t_s) if was_on else 0.0
        requested, self._requested = self._requested, {}
        for key in _PACER_DEFAULTS:
            if key in _PACER_FIELDS:
                self._pacer[key] = getattr(event, key)
            elif key in requested:
                self._pacer[key] = requested[key]
        if event.rate_bpm is None:
            self._pacer["mode"] = "off"
        elif self._pacer["mode"] == "off":
            self._pacer["mode"] = "fixed"
        self._phase_t_s = event.t_s
        self._phase = phase or 0.0
        self._pacer_event = event
        out.append(self.pacer_state(event.t_s))
        return out

    def pacer_state(self, t_s: float) -> dict[str, Any]:
        phase = self._phase_at(t_s)
        return {
            "type": "pacer_state",
            "participant": None,
            "t_s": t_s,
            **self._pacer,
            "phase": None if phase is None or not math.isfinite(phase) else round(phase, 6),
        }

    def close(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, pipeline in self.pipelines.items():
            pipeline.close()
            out.extend(self._out(name, pipeline))
        return out
