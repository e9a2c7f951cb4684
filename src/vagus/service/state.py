"""A session's present state for a late joiner (``hello.state``, review ``snapshot``).

Kept up to date from the session's own frames: the latest ``pacer_state``, the last
``metrics``, ``spectrum``, ``contact`` and ``rsa`` per participant, the latest
``resonance`` estimate, the latest ``plan`` (a plan's phase), the ``beat`` and ``gap`` events
of the last :data:`HISTORY_S` seconds of session time per participant, and every
``marker``. :meth:`SessionState.snapshot` gives the part a role may see.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from vagus.service.bus import OutFrame

__all__ = ["HISTORY_S", "SessionState"]

#: Beats and gaps kept for a late joiner (s of session time): the views draw 2-5 min.
HISTORY_S: Final = 300.0
_ENVELOPE: Final = ("v", "session", "seq")


def _bare(event: dict[str, Any]) -> dict[str, Any]:
    if not any(k in event for k in _ENVELOPE):
        return event
    return {k: v for k, v in event.items() if k not in _ENVELOPE}


class SessionState:
    """The state a new connection starts from; fed with every frame the session publishes
    (the frames' event dicts are kept as they are, never changed; the envelope is taken
    off when a snapshot is made)."""

    def __init__(self) -> None:
        self.pacer: dict[str, Any] | None = None
        self.metrics: dict[str, dict[str, Any]] = {}
        self.spectrum: dict[str, dict[str, Any]] = {}
        self.contact: dict[str, dict[str, Any]] = {}
        self.beats: dict[str, deque[dict[str, Any]]] = {}
        self.gaps: dict[str, deque[dict[str, Any]]] = {}
        self.markers: list[dict[str, Any]] = []
        self.rsa: dict[str, dict[str, Any]] = {}
        self.resonance: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None  # the latest ``plan`` (a plan's phase)
        self.latest_t_s = 0.0

    def offer(self, frames: Iterable[OutFrame]) -> None:
        """Take in published frames (a bus subscriber)."""
        for frame in frames:
            self.add(frame.event)

    def add(self, event: dict[str, Any]) -> None:
        """Take in one event (JSON form, with or without the envelope)."""
        kind = event.get("type")
        who = event.get("participant")
        t_s = event.get("t_s")
        if isinstance(t_s, int | float) and t_s > self.latest_t_s:
            self.latest_t_s = float(t_s)
        if kind == "beat" and isinstance(who, str):
            beats = self.beats.setdefault(who, deque())
            beats.append(event)
            self._trim(beats)
        elif kind == "metrics" and isinstance(who, str):
            self.metrics[who] = event
        elif kind == "spectrum" and isinstance(who, str):
            self.spectrum[who] = event
        elif kind == "contact" and isinstance(who, str):
            self.contact[who] = event
        elif kind == "gap" and isinstance(who, str):
            gaps = self.gaps.setdefault(who, deque())
            gaps.append(event)
            self._trim(gaps)
        elif kind == "pacer_state":
            self.pacer = event
        elif kind == "marker":
            self.markers.append(event)
        elif kind == "rsa" and isinstance(who, str):
            self.rsa[who] = event
        elif kind == "resonance":
            self.resonance = event
        elif kind == "plan":
            self.plan = event

    def _trim(self, events: deque[dict[str, Any]]) -> None:
        horizon = float(events[-1]["t_s"]) - HISTORY_S
        while events and float(events[0]["t_s"]) < horizon:
            events.popleft()

    def snapshot(self, participant: str | None = None) -> dict[str, Any]:
        """``hello.state``: everything, or (for a participant) only its own data and no
        markers."""

        def mine(d: dict[str, Any]) -> dict[str, Any]:
            if participant is None:
                return dict(d)
            return {participant: d[participant]} if participant in d else {}

        horizon = self.latest_t_s - HISTORY_S
        return {
            "pacer": None if self.pacer is None else _bare(self.pacer),
            "metrics": {p: _bare(e) for p, e in mine(self.metrics).items()},
            "spectrum": {p: _bare(e) for p, e in mine(self.spectrum).items()},
            "contact": {p: _bare(e) for p, e in mine(self.contact).items()},
            "beats": {
                p: [_bare(e) for e in v if e["t_s"] >= horizon] for p, v in mine(self.beats).items()
            },
            "gaps": {
                p: [_bare(e) for e in v if e["t_s"] >= horizon] for p, v in mine(self.gaps).items()
            },
            "markers": [_bare(e) for e in self.markers] if participant is None else [],
            "rsa": {p: _bare(e) for p, e in mine(self.rsa).items()},
            "resonance": None if self.resonance is None else _bare(self.resonance),
            "plan": None if self.plan is None else _bare(self.plan),
        }
