"""The sans-I/O session (vagus.session.Session): N participants, one pacer, one clock.

Same input, same output: a participant's events in a session of 2 or 5 are exactly
those of a Pipeline fed the same input alone (the simulator's real 0x2A37 packets, with
dropouts, artifacts and contact losses), whatever else the session carries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vagus import Pipeline
from vagus.core.events import (
    Beat,
    Event,
    Marker,
    Metrics,
    PacerChange,
    PacerState,
    ParticipantClock,
    Rsa,
    Spectrum,
)
from vagus.core.pacer import PacerMode
from vagus.exceptions import InvalidInput, MalformedPacket, ProtocolError
from vagus.session import Session, SessionEvent, session_event_from_json
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import StrapConfig, VirtualStrap

DURATION_S = 150.0


def _items(seed: int, duration_s: float = DURATION_S) -> list[Packet | LinkGap]:
    strap = VirtualStrap(
        strap=StrapConfig(dropouts=((75.0 + seed, 4.0),), contact_losses=((125.0, 3.0),)),
        seed=seed,
    )
    strap.subject.set_pacer(6.0, 0.0)
    return strap.packets_until(duration_s)


def _t(item: Packet | LinkGap) -> float:
    return item.t_arrival_s if isinstance(item, Packet) else item.t_s


def _alone(items: Sequence[Packet | LinkGap]) -> list[Event]:
    pipeline = Pipeline()
    for item in items:
        if isinstance(item, Packet):
            pipeline.receive_packet(item.t_arrival_s, item.payload)
        else:
            pipeline.receive_gap(item.t_s, item.reason)
    pipeline.close()
    return pipeline.events_received()


def _session_run(
    streams: dict[str, list[Packet | LinkGap]], *, controls: bool = True
) -> list[SessionEvent]:
    """Feed every participant's items in time order (interleaved), with session-wide
    control events between them; collect the events after every call."""
    session = Session(participants=tuple(streams))
    merged = sorted(
        (
            (_t(item), name, k, item)
            for name, items in streams.items()
            for k, item in enumerate(items)
        ),
        key=lambda x: (x[0], x[1], x[2]),
    )
    out: list[SessionEvent] = []
    next_control = 10.0
    for t, name, _, item in merged:
        if controls and t >= next_control:
            if next_control == 30.0:
                session.receive_control(PacerChange(t, 5.5, 0.4, "fixed", 1.0, 0.0))
            else:
                session.receive_control(Marker(t, f"at {next_control:g}"))
            next_control += 10.0
        if isinstance(item, Packet):
            session.receive_packet(name, item.t_arrival_s, item.payload)
        else:
            session.receive_gap(name, item.t_s, reason=item.reason)
        out += session.events_received()
    session.close()
    return out + session.events_received()


@pytest.mark.parametrize("n", [2, 5])
def test_each_participant_gets_exactly_its_events_alone(n: int) -> None:
    streams = {f"p{k}": _items(seed=k + 1) for k in range(n)}
    events = _session_run(streams)
    for name, items in streams.items():
        mine = [e.event for e in events if e.participant == name]
        alone = _alone(items)
        assert any(isinstance(e, Spectrum) and e.coherence_ratio for e in alone)
        # The pipeline's events, plus the breaths (Rsa) the session adds.
        assert [e for e in mine if not isinstance(e, Rsa)] == alone
        assert any(isinstance(e, Rsa) and e.paced for e in mine)
        # ... and equal to the same participant in a session of its own (the controls
        # come at other times there, so its breaths differ: tests/test_resonance.py).
        solo = [e.event for e in _session_run({name: items}) if e.participant == name]
        assert [e for e in solo if not isinstance(e, Rsa)] == alone
        unpaced = [e.event for e in _session_run({name: items}, controls=False)]
        assert [e for e in unpaced if not isinstance(e, Rsa)] == alone
    session_wide = [e for e in events if e.participant is None]
    assert {type(e.event) for e in session_wide} == {Marker, PacerChange, PacerState}
    assert set(e.participant for e in events) == {None, *streams}


def test_json_forms_carry_the_participant() -> None:
    events = _session_run({"ann": _items(1, 70.0), "bob": _items(2, 70.0)})
    kinds: set[tuple[str, str | None]] = set()
    for ev in events:
        obj = json.loads(json.dumps(ev.to_json(), allow_nan=False))
        assert obj["participant"] == ev.participant and obj["type"] == ev.type
        assert session_event_from_json(obj) == ev
        kinds.add((obj["type"], obj["participant"]))
    assert {("beat", "ann"), ("metrics", "bob"), ("marker", None), ("pacer_state", None)} <= kinds
    # A session event is a (participant, event) pair.
    participant, event = events[0]
    assert (participant, event) == (events[0].participant, events[0].event)
    with pytest.raises(ProtocolError) as info:
        session_event_from_json({"type": "marker", "t_s": 1.0, "text": "x"})
    assert info.value.field == "participant"
    with pytest.raises(ProtocolError) as info:
        session_event_from_json({"type": "marker", "t_s": 1.0, "text": "x", "participant": 5})
    assert info.value.field == "participant"


def test_control_events_and_pacer_states_are_session_wide() -> None:
    session = Session(participants=("ann",))
    session.receive_control(PacerChange(0.0, 6.0))
    got = session.events_received()
    assert got == [
        SessionEvent(None, PacerChange(0.0, 6.0)),
        SessionEvent(None, PacerState(0.0, "fixed", 6.0, 0.4, 0.0, 0.0, 0.0)),
    ]
    assert session.pacer_phase(2.5) == pytest.approx(0.25)
    # At 4.5 s (exhaling) a new ratio and a hold are asked: the speed changes now, the
    # shape with the next inhale, at 10 s, which the session emits once its time gets there.
    session.receive_control(PacerChange(4.5, 6.0, 0.5, "fixed", 2.0, 0.0))
    change, now = (e.event for e in session.events_received()[-2:])
    assert (
        isinstance(change, PacerChange)
        and isinstance(now, PacerState)
        and now.inhale_fraction == pytest.approx(0.4)
    )
    session.receive_rr("ann", [800.0] * 11, t_s=9.9)
    assert not any(isinstance(e.event, PacerState) for e in session.events_received())
    session.receive_rr("ann", [800.0] * 1, t_s=10.7)
    states = [e for e in session.events_received() if isinstance(e.event, PacerState)]
    assert states == [SessionEvent(None, PacerState(10.0, "fixed", 6.0, 0.5, 2.0, 0.0, 0.0))]
    assert session.pacer_state == states[0].event
    session.receive_control(PacerChange(20.0, None))
    assert session.pacer_phase(21.0) is None
    assert session.events_received()[-1].event == PacerState(20.0, "off", None, 0.4, 0.0, 0.0, None)


def test_unknown_participants_and_bad_names_are_named() -> None:
    session = Session(participants=("ann", "bob"))
    with pytest.raises(InvalidInput, match=r"unknown participant 'eve'.*'ann', 'bob'"):
        session.receive_rr("eve", 800.0)
    for bad in (5, None, ["ann"], b"ann"):
        with pytest.raises(InvalidInput, match="participant"):
            session.receive_packet(bad, 1.0, b"\x10\x40\x00\x04")  # type: ignore[arg-type]
    for name in ("", "  ", "a\nb", "x" * 65, 7, "\ud800"):
        with pytest.raises(InvalidInput, match="participant name"):
            session.add_participant(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="already in the session"):
        session.add_participant("ann")
    with pytest.raises(InvalidInput, match="sequence of names"):
        Session(participants="ann")
    # Bad values name the participant; nothing changes.
    with pytest.raises(InvalidInput, match="participant 'bob'"):
        session.receive_rr("bob", [800.0, -1.0])
    with pytest.raises(InvalidInput, match="participant 'bob'"):
        session.receive_packet("bob", "soon", b"\x10\x40")  # type: ignore[arg-type]
    with pytest.raises(MalformedPacket, match="participant 'ann'"):
        session.receive_packet("ann", 1.0, b"\x10\x40\x00\x04\x00")  # odd RR bytes
    with pytest.raises(ProtocolError, match="rate_bpm"):
        session.receive_control(PacerChange(1.0, 100.0))
    with pytest.raises(ProtocolError):
        session.receive_control(Beat(1.0, 800.0))  # type: ignore[arg-type]
    assert session.events_received() == []
    session.add_participant("eve")  # a late joiner
    session.receive_rr("eve", [800.0] * 5)
    late = session.events_received()
    assert late and {e.participant for e in late} == {"eve"}


def test_the_clock_mapping_is_data_and_replays_exactly() -> None:
    ann = _items(1, 60.0)
    bob = [
        Packet(p.t_arrival_s + 5000.0, p.payload, p.device_id) if isinstance(p, Packet) else p
        for p in _items(2, 60.0)
        if isinstance(p, Packet)
    ]  # bob's source clock is 5000 s ahead, and joins 10 s later

    def run(session: Session) -> list[SessionEvent]:
        out: list[SessionEvent] = []
        for p in ann:
            if isinstance(p, Packet) and p.t_arrival_s <= 10.0:
                session.receive_packet("ann", p.t_arrival_s, p.payload)
        for p in bob:
            session.receive_packet("bob", p.t_arrival_s, p.payload)
        out += session.events_received()
        return out

    live = Session(participants=("ann", "bob"), map_clocks=True)
    events = run(live)
    first_ann = next(p.t_arrival_s for p in ann if isinstance(p, Packet))
    offsets = live.clock_offsets
    assert offsets["ann"] == -first_ann  # the session starts at the first input
    t_now = max(p.t_arrival_s for p in ann if isinstance(p, Packet) and p.t_arrival_s <= 10.0)
    assert offsets["bob"] == pytest.approx((t_now - first_ann) - bob[0].t_arrival_s)
    clocks = [e for e in events if isinstance(e.event, ParticipantClock)]
    assert [(e.participant, e.event.offset_s) for e in clocks] == [  # type: ignore[union-attr]
        ("ann", offsets["ann"]),
        ("bob", offsets["bob"]),
    ]
    assert all(e.t_s > -2.0 for e in events)  # session times, not the sources' clocks
    # Replay with the stored offsets: exactly the same events (less the clock events:
    # the offsets are given, not decided).
    replay = Session(participants=("ann", "bob"), clock_offsets=offsets)
    assert run(replay) == [e for e in events if e.type != "clock"]
    assert replay.clock_offsets == offsets
    # Without mapping (the default), the caller's times are the session clock.
    plain = Session(participants=("ann",))
    plain.receive_packet("ann", 1234.5, b"\x10\x40")
    assert plain.clock_offsets == {"ann": 0.0} and plain.events_received() == []
    with pytest.raises(InvalidInput, match="cannot change"):
        plain.set_clock_offset("ann", 3.0)


def test_close_and_after() -> None:
    session = Session(participants=("ann",))
    session.receive_rr("ann", [1000.0] * 5)
    session.receive_gap("ann", 6.0)
    session.close()
    session.close()  # idempotent
    tail = session.events_received()
    assert tail[-1].event.type == "gap" and tail[-1].participant == "ann"
    assert session.closed
    for call in (
        lambda: session.receive_rr("ann", 800.0),
        lambda: session.receive_control(Marker(1.0, "x")),
        lambda: session.add_participant("bob"),
    ):
        with pytest.raises(InvalidInput, match="closed"):
            call()


class _Watcher(PacerMode):
    observes = True

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []

    def observe(self, participant: str | None, event: Any) -> None:
        self.seen.append((participant, event.type))


def test_a_pacer_mode_watches_the_followed_participant() -> None:
    watcher = _Watcher()
    session = Session(participants=("ann", "bob"), pacer_modes={"adaptive": lambda: watcher})
    session.receive_control(PacerChange(0.0, 6.0, mode="adaptive"))
    assert session.followed == "ann"  # the first participant by default
    session.receive_rr("ann", [900.0] * 10)
    session.receive_rr("bob", [800.0] * 10)
    assert ("ann", "beat") in watcher.seen and ("ann", "metrics") in watcher.seen
    assert all(p == "ann" for p, _ in watcher.seen)
    # The practitioner chooses another participant with the pacer change's 'follow'.
    watcher.seen.clear()
    session.receive_control(PacerChange(20.0, 6.0, mode="adaptive", follow="bob"))
    assert session.followed == "bob"
    session.receive_rr("bob", [800.0] * 10)
    session.receive_rr("ann", [900.0] * 10)
    assert ("bob", "beat") in watcher.seen and all(p == "bob" for p, _ in watcher.seen)
    # An unknown name is refused and changes nothing.
    with pytest.raises(ProtocolError) as info:
        session.receive_control(PacerChange(40.0, 6.0, mode="adaptive", follow="eve"))
    assert info.value.field == "follow" and session.followed == "bob"


def test_events_of_a_session_are_in_time_order_per_participant() -> None:
    events = _session_run({"ann": _items(3, 90.0), "bob": _items(4, 90.0)})
    for name in ("ann", "bob"):
        ts = [
            e.t_s for e in events if e.participant == name and isinstance(e.event, Beat | Metrics)
        ]
        assert ts == sorted(ts) and not any(math.isnan(t) for t in ts)


_any = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=12),
    st.lists(st.floats(100.0, 3000.0), max_size=4),
    st.sampled_from(["ann", "bob", "eve"]),
)


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["packet", "rr", "gap", "control", "phase", "add"]),
            _any,
            _any,
            _any,
        ),
        max_size=12,
    )
)
def test_fuzz_any_call_works_or_is_refused_cleanly(calls: list[tuple[str, Any, Any, Any]]) -> None:
    """Every call is accepted or refused with InvalidInput (or MalformedPacket for a
    payload); a refused call hands out no event (a malformed packet at most the clock
    mapping its time fixed)."""
    session = Session(participants=("ann", "bob"), map_clocks=True)
    for op, a, b, c in calls:
        try:
            if op == "packet":
                session.receive_packet(a, b, c)
            elif op == "rr":
                session.receive_rr(a, b, c)
            elif op == "gap":
                session.receive_gap(a, b, c)
            elif op == "control":
                session.receive_control(Marker(a, b) if c is None else PacerChange(a, b, c))
            elif op == "phase":
                phase = session.pacer_phase(a)
                assert phase is None or 0.0 <= phase < 1.0
            else:
                session.add_participant(a)
        except InvalidInput:
            assert session.events_received() == []
            continue
        except MalformedPacket:
            # The packet's time still maps the participant's clock (it is stored input).
            assert all(e.type == "clock" for e in session.events_received())
            continue
        for ev in session.events_received():
            json.dumps(ev.to_json(), allow_nan=False)  # every event serialises
    session.close()
    for ev in session.events_received():
        json.dumps(ev.to_json(), allow_nan=False)
