"""Each participant's resonance rate over their stored sessions (issue 12 §3).

A session stores its input (packets, gaps, controls), not what was computed from it;
the pacer's ``scan`` and ``adaptive`` decisions are replay-identical, so a stored
session's :class:`~vagus.core.events.Resonance` events come back by replaying it
(:func:`vagus.store.replay.replay`, the whole session: the loop followed whom it
followed live). :func:`session_resonance` gives each participant's result of one
session; :func:`latest_resonance_rate` the most recent one of a participant, the
default rate of their next ``adaptive``/``fixed`` session; :func:`resonance_history`
the series for a trend (``vagus progress``).

The result of a session for a participant: its last final scan result, else the last
adaptive estimate with a confidence of at least :data:`MIN_CONFIDENCE`.
"""

from __future__ import annotations

from vagus.core.events import Resonance
from vagus.store.base import SessionInfo, Store
from vagus.store.replay import replay

__all__ = [
    "MIN_CONFIDENCE",
    "latest_resonance_rate",
    "resonance_history",
    "session_resonance",
]

#: An adaptive estimate counts only with at least this confidence.
MIN_CONFIDENCE = 0.5


def session_resonance(store: Store, session: SessionInfo | str) -> dict[str, Resonance]:
    """Each participant's resonance result in one stored session (module docstring).

    Raises:
        SessionNotFound: no such session.
    """
    scans: dict[str, Resonance] = {}
    loops: dict[str, Resonance] = {}
    for step in replay(store, session):
        for se in step.events or ():
            ev = se.event
            if not isinstance(ev, Resonance) or se.participant is None or ev.rate_bpm is None:
                continue
            if ev.method == "scan" and ev.final:
                scans[se.participant] = ev
            elif ev.method == "adaptive" and ev.confidence >= MIN_CONFIDENCE:
                loops[se.participant] = ev
    return {**loops, **scans}


def resonance_history(store: Store, participant: str) -> list[tuple[SessionInfo, Resonance]]:
    """The participant's resonance results, oldest session first."""
    out: list[tuple[SessionInfo, Resonance]] = []
    sessions = sorted(store.list_sessions(skip_malformed=True), key=lambda s: s.started_unix_s)
    for info in sessions:
        if participant not in info.participants:
            continue
        found = session_resonance(store, info).get(participant)
        if found is not None:
            out.append((info, found))
    return out


def latest_resonance_rate(store: Store, participant: str) -> float | None:
    """The participant's most recent resonance rate (breaths/min), or None."""
    sessions = sorted(
        store.list_sessions(skip_malformed=True), key=lambda s: s.started_unix_s, reverse=True
    )
    for info in sessions:
        if participant not in info.participants:
            continue
        found = session_resonance(store, info).get(participant)
        if found is not None:
            return found.rate_bpm
    return None
