"""Session.receive_beats (the bulk path a replay of RR records takes) equals receive_rr
beat by beat: the same events in the same order, the same errors, the same state.

The bulk path feeds a run of beats to the participant's pipeline and takes their events
once, so it is only right while nothing else happens between two beats: the pacer plans
no change (a deferred shape, an inhale a scan or adaptive mode is asked at), no guidance
or observing mode reads the participant. These tests put those things in the middle of
the runs (real RR from PhysioNet nsr2db with a long RR and a dropout added) and compare
every event's JSON, so they fail if the two paths drift.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus import Pipeline
from vagus.core.events import Marker, PacerChange, Rsa
from vagus.exceptions import InvalidInput
from vagus.session import Session
from vagus.store.base import ControlRecord, InputRecord, RRRecord
from vagus.store.replay import replay_records

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NSR = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"


def _nsr_beats(n: int) -> tuple[list[float], list[float]]:
    """The first ``n`` RR intervals (ms) of nsr001 and their beat times (s), with one
    long RR (3.2 s) and a 20 s dropout in the time axis."""
    values = [float(x) for x in NSR.read_text().split()[: n + 1]]
    rr_ms = [v * 1000.0 for v in values[1:]]
    rr_ms[n // 3] = 3200.0
    t_s = list(accumulate(rr_ms, lambda t, rr: t + rr / 1000.0, initial=values[0]))[1:]
    cut = 2 * n // 3
    t_s[cut:] = [t + 20.0 for t in t_s[cut:]]
    return rr_ms, t_s


RR_MS, T_S = _nsr_beats(900)

Op = tuple[Any, ...]


def _jsons(session: Session) -> list[str]:
    return [json.dumps(e.to_json(), sort_keys=True) for e in session.events_received()]


def _apply(session: Session, op: Op, *, bulk: bool) -> str | None:
    """Apply one step; the error's message if it raised."""
    try:
        if op[0] == "beats":
            _, who, rr, t = op
            if bulk:
                session.receive_beats(who, rr, t)
            else:
                for r, ti in zip(rr, t, strict=True):
                    session.receive_rr(who, r, ti)
        elif op[0] == "control":
            session.receive_control(op[1])
        elif op[0] == "gap":
            session.receive_gap(op[1], op[2])
    except InvalidInput as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _state(session: Session) -> dict[str, Any]:
    return {
        "t_s": session.t_s,
        "offsets": session.clock_offsets,
        "pacer": [s.to_json() for s in session.pacer.history()],
        "phase": session.pacer_phase(session.t_s),
        "beats": {p: session.pipeline(p).beats_measured for p in session.participants},
    }


def _compare(make: Any, ops: Sequence[Op]) -> tuple[Session, int]:
    """Run ``ops`` on two sessions from ``make()``, bulk and beat by beat, asserting the
    same events after every step, the same errors and the same state; returns the bulk
    session and the number of events."""
    bulk, single = make(), make()
    n = 0
    for k, op in enumerate(ops):
        err_b = _apply(bulk, op, bulk=True)
        err_s = _apply(single, op, bulk=False)
        assert err_b == err_s, f"step {k} {op[0]}"
        got, want = _jsons(bulk), _jsons(single)
        assert got == want, f"step {k} {op[0]}: events differ"
        assert _state(bulk) == _state(single), f"step {k}"
        n += len(got)
    bulk.close()
    single.close()
    assert _jsons(bulk) == _jsons(single)
    return bulk, n


def _chunks(who: str, sizes: Sequence[int], rr: Sequence[float], t: Sequence[float]) -> list[Op]:
    ops: list[Op] = []
    i = 0
    for size in sizes:
        if i >= len(rr):
            break
        ops.append(("beats", who, tuple(rr[i : i + size]), tuple(t[i : i + size])))
        i += size
    if i < len(rr):
        ops.append(("beats", who, tuple(rr[i:]), tuple(t[i:])))
    return ops


def _with_controls(ops: list[Op], controls: dict[int, PacerChange | Marker]) -> list[Op]:
    out: list[Op] = []
    for k, op in enumerate(ops):
        if k in controls:
            out.append(("control", controls[k]))
        out.append(op)
    return out


def test_unpaced_bulk_equals_beat_by_beat_and_ends_breaths() -> None:
    _session, n = _compare(
        lambda: Session(participants=("me",)), _chunks("me", [200] * 5, RR_MS, T_S)
    )
    assert n > 2 * len(RR_MS)
    # Breaths came out of the bulk runs too (the tracker saw the spectra's peak).
    bulk = Session(participants=("me",))
    bulk.receive_beats("me", RR_MS, T_S)
    bulk.close()
    assert any(isinstance(e.event, Rsa) for e in bulk.events_received())


@pytest.mark.parametrize("mode", ["fixed", "scan", "adaptive"])
def test_pacer_changes_inside_a_run(mode: str) -> None:
    """A change mid-cycle defers its shape to the next inhale, which falls inside the
    next run; scan and adaptive are asked at every inhale; markers come between runs."""
    ops = _chunks("me", [150, 7, 300, 1, 250], RR_MS, T_S)
    controls: dict[int, PacerChange | Marker] = {
        1: PacerChange(T_S[150] + 0.37, 6.0, mode=mode),
        2: Marker(T_S[157], "mid"),
        3: PacerChange(T_S[458] + 2.1, 5.5, inhale_fraction=0.33, hold_in_s=1.0, mode=mode),
        5: PacerChange(T_S[700], None, mode="off"),
    }
    session, _n = _compare(lambda: Session(participants=("me",)), _with_controls(ops, controls))
    assert len(session.pacer.history()) >= 4


def test_two_participants_offsets_and_followed_with_guidance() -> None:
    """Bob's clock is offset; ann is followed by the scan and the guidance (her beats go
    one by one), bob's run in bulk; they interleave record by record."""
    ann = _chunks("ann", [120] * 8, RR_MS, T_S)
    bob_t = [t - 7.25 for t in T_S]
    bob = _chunks("bob", [90] * 11, RR_MS[::-1], bob_t)
    ops: list[Op] = [op for pair in zip(ann, bob, strict=False) for op in pair]
    ops.insert(3, ("control", PacerChange(T_S[130], 6.5, mode="scan", follow="ann")))
    ops.insert(9, ("gap", "bob", bob_t[400] + 0.5))

    def make() -> Session:
        return Session(participants=("ann", "bob"), clock_offsets={"bob": 7.25}, guidance="medium")

    _compare(make, ops)


def test_mapped_clocks_first_input_fixes_the_offset() -> None:
    def make() -> Session:
        return Session(participants=("a", "b"), map_clocks=True)

    ops = _chunks("a", [50, 400], RR_MS, T_S) + _chunks("b", [300], RR_MS, [t + 1e4 for t in T_S])
    session, _n = _compare(make, ops)
    assert session.clock_offsets["b"] != 0.0


@pytest.mark.parametrize(
    "bad",
    [
        ("rr", -5.0),
        ("rr", math.nan),
        ("t", math.inf),
        ("t", 1e300),
        ("t", 12),  # an int time: checked by receive_rr, then accepted
        ("rr", "80"),
    ],
)
@pytest.mark.parametrize("offset", [0.0, 3.5])
def test_a_bad_beat_mid_run_same_error_same_state(bad: tuple[str, Any], offset: float) -> None:
    """The beats before a bad one are fed (their events handed out), it and the rest
    are not, with receive_rr's error; feeding goes on the same afterwards."""
    rr, t = list(RR_MS[:300]), list(T_S[:300])
    which, value = bad
    if which == "rr":
        rr[200] = value
    else:
        t[200] = value
    ops: list[Op] = [("beats", "me", tuple(rr[:20]), tuple(t[:20]))]
    ops.append(("beats", "me", tuple(rr[20:]), tuple(t[20:])))
    ops.append(("beats", "me", tuple(RR_MS[201:400]), tuple(T_S[201:400])))

    def make() -> Session:
        return Session(participants=("me",), clock_offsets={"me": offset})

    errors = []
    bulk, single = make(), make()
    for op in ops:
        errors.append(_apply(bulk, op, bulk=True))
        assert errors[-1] == _apply(single, op, bulk=False)
        assert _jsons(bulk) == _jsons(single)
        assert _state(bulk) == _state(single)
    if bad != ("t", 12):
        assert errors[1] is not None and "participant 'me'" in errors[1]


def test_lengths_must_match() -> None:
    session = Session(participants=("me",))
    with pytest.raises(InvalidInput, match="one beat time per RR interval"):
        session.receive_beats("me", (800.0, 810.0), (1.0,))
    with pytest.raises(InvalidInput, match="unknown participant"):
        session.receive_beats("you", (800.0,), (1.0,))
    assert session.events_received() == []


class _CountingPipeline(Pipeline):
    """The real pipeline, counting how often its events are taken."""

    takes = 0

    def events_received(self) -> list[Any]:
        _CountingPipeline.takes += 1
        return super().events_received()


def test_runs_are_taken_in_bulk_while_nothing_is_planned() -> None:
    """Guards the equivalence tests from passing vacuously: with the pacer off or fixed
    a record's beats are one run (one take of the pipeline's events, not one per beat);
    with a scan followed they go one by one."""
    _CountingPipeline.takes = 0
    session = Session(participants=("me",), pipeline_factory=_CountingPipeline)
    session.receive_rr("me", RR_MS[0], T_S[0])
    session.receive_control(PacerChange(T_S[0], 6.0))
    _CountingPipeline.takes = 0
    session.receive_beats("me", RR_MS[1:301], T_S[1:301])
    assert _CountingPipeline.takes == 1
    session.receive_control(PacerChange(T_S[301], 6.0, mode="scan"))
    _CountingPipeline.takes = 0
    session.receive_beats("me", RR_MS[301:501], T_S[301:501])
    assert _CountingPipeline.takes == 200


def _replay_jsons(records: Sequence[InputRecord], names: dict[str, str]) -> list[list[str]]:
    return [
        [json.dumps(e.to_json(), sort_keys=True) for e in step.events]
        for step in replay_records(records, names, clock_offsets={"bob": 2.0})
    ]


def test_replay_of_a_record_equals_its_beats_one_record_each() -> None:
    """The one replay feeds an RR record in bulk: its events equal those of the same
    beats stored one per record (the plain path), with a pacer change in the middle."""
    changes = {
        200: ControlRecord(PacerChange(T_S[199] + 0.2, 6.0)),
        # mid-cycle: the new shape starts at the next inhale, inside the next record
        400: ControlRecord(PacerChange(T_S[399] + 0.3, 5.0, inhale_fraction=0.45)),
    }
    big: list[InputRecord] = []
    small: list[InputRecord] = []
    for who, shift in (("ann", 0.0), ("bob", -2.0)):
        for i in range(0, 600, 200):
            if who == "ann" and i in changes:
                big.append(changes[i])
                small.append(changes[i])
            rr, t = RR_MS[i : i + 200], [x + shift for x in T_S[i : i + 200]]
            big.append(RRRecord(tuple(rr), tuple(t), participant=who))
            small.extend(
                RRRecord((r,), (ti,), participant=who) for r, ti in zip(rr, t, strict=True)
            )
    names = {"ann": "ann", "bob": "bob"}
    got = [e for step in _replay_jsons(big, names) for e in step]
    want = [e for step in _replay_jsons(small, names) for e in step]
    assert got == want
    assert any('"type": "pacer_state"' in e for e in got)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=8),
    rate=st.floats(3.0, 12.0),
    at=st.integers(0, 6),
    fraction=st.sampled_from([0.3, 0.4, 0.5]),
    mode=st.sampled_from(["fixed", "scan", "adaptive"]),
)
def test_bulk_equals_beat_by_beat_property(
    sizes: list[int], rate: float, at: int, fraction: float, mode: str
) -> None:
    n = 400
    ops = _chunks("me", sizes, RR_MS[:n], T_S[:n])
    k = min(at, len(ops) - 1)
    t0 = T_S[min(sum(sizes[:k]), n - 1)] + 0.1
    ops = _with_controls(
        ops,
        {
            k: PacerChange(t0, rate, mode=mode),
            k + 1: PacerChange(t0 + 17.3, rate * 0.9, inhale_fraction=fraction, mode=mode),
        },
    )
    _compare(lambda: Session(participants=("me",)), ops)
