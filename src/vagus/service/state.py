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


#: A kept event: its JSON form (a dict) or the event object (see :class:`SessionState`).
Item = dict[str, Any] | Any


def _bare(event: dict[str, Any]) -> dict[str, Any]:
    if not any(k in event for k in _ENVELOPE):
        return event
    return {k: v for k, v in event.items() if k not in _ENVELOPE}


class SessionState:
    """The state a new connection starts from; fed with every frame the session publishes
    (the frames' event dicts are kept as they are, never changed; the envelope is taken
    off when a snapshot is made).

    Compact: the frames made from event objects (:meth:`OutFrame.from_event`: beats,
    metrics, spectra) are kept as those objects (a frozen, slotted dataclass: a beat
    takes about 190 bytes, half of what its frame's dict took), turned into dicts only
    when a snapshot is made.
    """

    def __init__(self) -> None:
        self.pacer: dict[str, Any] | None = None
        self.metrics: dict[str, Item] = {}
        self.spectrum: dict[str, Item] = {}
        self.contact: dict[str, Item] = {}
        self.beats: dict[str, deque[Item]] = {}
        self.gaps: dict[str, deque[Item]] = {}
        self.markers: list[dict[str, Any]] = []
        self.rsa: dict[str, Item] = {}
        self.resonance: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None  # the latest ``plan`` (a plan's phase)
        self.latest_t_s = 0.0

    def offer(self, frames: Iterable[OutFrame]) -> None:
        """Take in published frames (a bus subscriber)."""
        for frame in frames:
            obj = frame.obj
            if obj is not None and frame.participant is not None:
                self.add_event(frame.participant, obj)
            else:
                self.add(frame.event)

    def add_event(self, participant: str, event: Any) -> None:
        """Take in one event object of ``participant`` (its JSON form is its type and
        fields: a beat, metrics, spectrum, rsa, gap or contact)."""
        kind = event.type
        t_s = event.t_s
        if t_s > self.latest_t_s:
            self.latest_t_s = float(t_s)
        if kind == "beat":
            self._keep(self.beats, participant, event)
        elif kind == "metrics":
            self.metrics[participant] = event
        elif kind == "spectrum":
            self.spectrum[participant] = event
        elif kind == "rsa":
            self.rsa[participant] = event
        elif kind == "contact":
            self.contact[participant] = event
        elif kind == "gap":
            self._keep(self.gaps, participant, event)

    def add(self, event: dict[str, Any]) -> None:
        """Take in one event (JSON form, with or without the envelope)."""
        kind = event.get("type")
        who = event.get("participant")
        t_s = event.get("t_s")
        if isinstance(t_s, int | float) and t_s > self.latest_t_s:
            self.latest_t_s = float(t_s)
        if kind == "beat" and isinstance(who, str):
            self._keep(self.beats, who, event)
        elif kind == "metrics" and isinstance(who, str):
            self.metrics[who] = event
        elif kind == "spectrum" and isinstance(who, str):
            self.spectrum[who] = event
        elif kind == "contact" and isinstance(who, str):
            self.contact[who] = event
        elif kind == "gap" and isinstance(who, str):
            self._keep(self.gaps, who, event)
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

    @staticmethod
    def _keep(where: dict[str, deque[Item]], who: str, item: Item) -> None:
        events = where.get(who)
        if events is None:
            events = where[who] = deque()
        events.append(item)
        horizon = _t_s(item) - HISTORY_S
        while events and _t_s(events[0]) < horizon:
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
            "metrics": {p: _item(e, p) for p, e in mine(self.metrics).items()},
            "spectrum": {p: _item(e, p) for p, e in mine(self.spectrum).items()},
            "contact": {p: _item(e, p) for p, e in mine(self.contact).items()},
            "beats": {
                p: [_item(e, p) for e in v if _t_s(e) >= horizon]
                for p, v in mine(self.beats).items()
            },
            "gaps": {
                p: [_item(e, p) for e in v if _t_s(e) >= horizon]
                for p, v in mine(self.gaps).items()
            },
            "markers": [_bare(e) for e in self.markers] if participant is None else [],
            "rsa": {p: _item(e, p) for p, e in mine(self.rsa).items()},
            "resonance": None if self.resonance is None else _bare(self.resonance),
            "plan": None if self.plan is None else _bare(self.plan),
        }


def _t_s(item: Item) -> float:
    return float(item["t_s"] if isinstance(item, dict) else item.t_s)


def _item(item: Item, participant: str) -> dict[str, Any]:
    """A kept item in its frame form without the envelope."""
    if isinstance(item, dict):
        return _bare(item)
    out: dict[str, Any] = item.to_json()
    out["participant"] = participant
    return out
