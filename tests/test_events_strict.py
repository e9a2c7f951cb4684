"""The strict event protocol (vagus.core.events): every JSON form is read back exactly,
and every other input is refused with a ProtocolError that names the field.

Fuzzed with hypothesis (STYLE.md: parsers get fuzzed; every input is accepted or
rejected with the documented exception).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vagus import Pipeline
from vagus.core.events import (
    Beat,
    Contact,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    PacerState,
    ParticipantClock,
    Resonance,
    Rsa,
    Spectrum,
    check_control,
    control_from_json,
    event_from_json,
)
from vagus.exceptions import InvalidInput, ProtocolError, VagusError
from vagus.session import session_event_from_json

GOOD: list[Any] = [
    Beat(1.5, 812.5),
    Beat(2.0, 400.0, "extra", None, False),
    Beat(2.5, 1600.0, "missed", 800.0, True),
    Metrics(10.0, 62.0, 40.0, 41.0, 50.0, 12.5, 0.0, 950.0),
    Metrics(10.0, None, None, None, None, None, None),
    Spectrum(15.0, 0.1, 3.2, 1000.0, 200.0, 5.0, (0.0, 0.0039), (1.0, 2.0)),
    Spectrum(15.0, None, None, None, None, None),
    Gap(3.0, None, "link_lost"),
    Gap(3.0, 4.5, "dropout"),
    Contact(1.0, None),
    Contact(1.0, False),
    Marker(5.0, "eyes closed ✓"),
    PacerChange(6.0, 6.0),
    PacerChange(6.0, None),
    PacerChange(6.0, 4.0, 0.3, "fixed", 4.0, 2.0),
    PacerChange(6.0, 5.5, 0.5, "adaptive"),
    PacerChange(6.0, 6.0, 0.4, "off"),
    PacerState(7.0, "fixed", 6.0, 0.4, 1.0, 0.0, 0.25),
    PacerState(7.0, "off", None, 0.4, 0.0, 0.0, None),
    ParticipantClock(0.0, -1234.5),
    PacerChange(6.0, 5.5, 0.4, "adaptive", follow="bob"),
    PacerState(7.0, "adaptive", 5.5, 0.4, 0.0, 0.0, 0.5, "subtle"),
    Rsa(20.0, 10.0, 6.0, True, 12.5, 180.0, -15.0, 0.95, 10, True, 11.0),
    Rsa(20.0, 14.0, 15.0, False, None, None, None, None, 2, False, None),
    Resonance(
        700.0,
        "scan",
        5.5,
        0.9,
        True,
        (5.0, 5.5),
        (10.0, None),
        (1.0, 2.0),
        (3.0, 4.0),
        (12.0, -3.0),
        (1.5, 1.9),
    ),
    Resonance(60.0, "adaptive", None, 0.0, False),
]


@pytest.mark.parametrize("event", GOOD, ids=lambda e: e.type)
def test_every_kind_round_trips_through_json(event: Any) -> None:
    text = json.dumps(event.to_json(), allow_nan=False)
    assert event_from_json(json.loads(text)) == event


def test_stored_pacer_form_without_mode_or_holds_still_reads() -> None:
    old = {"type": "pacer", "t_s": 30.25, "rate_bpm": 6, "inhale_fraction": 0.4}
    ev = event_from_json(old)
    assert ev == PacerChange(30.25, 6.0, 0.4, "fixed", 0.0, 0.0)
    assert isinstance(ev, PacerChange) and type(ev.rate_bpm) is float  # ints become floats


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"type": "marker", "t_s": "abc", "text": 5}, "t_s"),
        ({"type": "marker", "t_s": 1.0, "text": 5}, "text"),
        ({"type": "marker", "t_s": True, "text": "x"}, "t_s"),  # a bool is not a number
        ({"type": "marker", "t_s": 1e300, "text": "x"}, "t_s"),
        ({"type": "marker", "t_s": 10**400, "text": "x"}, "t_s"),
        ({"type": "marker", "t_s": float("nan"), "text": "x"}, "t_s"),
        ({"type": "marker", "t_s": 1.0, "text": "\ud800"}, "text"),
        ({"type": "marker", "t_s": 1.0}, "text"),
        ({"type": "marker", "t_s": 1.0, "text": "x", "participant": "ann"}, "participant"),
        ({"type": "beat", "t_s": 1.0, "rr_ms": 0}, "rr_ms"),
        ({"type": "beat", "t_s": 1.0, "rr_ms": float("inf")}, "rr_ms"),
        ({"type": "beat", "t_s": 1.0, "rr_ms": 800, "artifact": "weird"}, "artifact"),
        ({"type": "beat", "t_s": 1.0, "rr_ms": 800, "inserted": 1}, "inserted"),
        (
            {
                "type": "metrics",
                "t_s": 1.0,
                "hr_bpm": -1,
                "rmssd_30s_ms": None,
                "rmssd_60s_ms": None,
                "sdnn_60s_ms": None,
                "pnn50_60s": None,
                "artifact_rate_60s": None,
            },
            "hr_bpm",
        ),
        (
            {
                "type": "metrics",
                "t_s": 1.0,
                "hr_bpm": 60,
                "rmssd_30s_ms": None,
                "rmssd_60s_ms": None,
                "sdnn_60s_ms": None,
                "pnn50_60s": 101,
                "artifact_rate_60s": None,
            },
            "pnn50_60s",
        ),
        (
            {
                "type": "spectrum",
                "t_s": 5.0,
                "peak_hz": None,
                "coherence_ratio": None,
                "lf_ms2": None,
                "hf_ms2": None,
                "lf_hf": None,
                "freqs_hz": [0.1, "x"],
                "psd_ms2_per_hz": [1.0, 2.0],
            },
            "freqs_hz",
        ),
        (
            {
                "type": "spectrum",
                "t_s": 5.0,
                "peak_hz": None,
                "coherence_ratio": None,
                "lf_ms2": None,
                "hf_ms2": None,
                "lf_hf": None,
                "freqs_hz": [0.1],
                "psd_ms2_per_hz": [1.0, 2.0],
            },
            "psd_ms2_per_hz",
        ),
        (
            {
                "type": "spectrum",
                "t_s": 5.0,
                "peak_hz": None,
                "coherence_ratio": None,
                "lf_ms2": None,
                "hf_ms2": None,
                "lf_hf": None,
                "freqs_hz": "0.1",
                "psd_ms2_per_hz": [],
            },
            "freqs_hz",
        ),
        ({"type": "gap", "t_s": 1.0, "duration_s": -1.0, "reason": "x"}, "duration_s"),
        ({"type": "gap", "t_s": 1.0, "duration_s": 1.0, "reason": None}, "reason"),
        ({"type": "contact", "t_s": 1.0, "contact": "yes"}, "contact"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": "fast"}, "rate_bpm"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 0.5}, "rate_bpm"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 41}, "rate_bpm"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 6, "inhale_fraction": 1.0}, "inhale_fraction"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 6, "mode": "turbo"}, "mode"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 6, "hold_in_s": -1}, "hold_in_s"),
        ({"type": "pacer", "t_s": 1.0, "rate_bpm": 6, "hold_in_s": 31}, "hold_in_s"),
        # 6/min is a 10 s cycle: 5 s + 4.5 s of holds leave 0.5 s to breathe.
        (
            {"type": "pacer", "t_s": 1.0, "rate_bpm": 6, "hold_in_s": 5, "hold_out_s": 4.5},
            "hold_out_s",
        ),
        (
            {
                "type": "pacer_state",
                "t_s": 1.0,
                "mode": "fixed",
                "rate_bpm": 6,
                "inhale_fraction": 0.4,
                "hold_in_s": 0,
                "hold_out_s": 0,
                "phase": 1.0,
            },
            "phase",
        ),
        (
            {
                "type": "pacer_state",
                "t_s": 1.0,
                "mode": "off",
                "rate_bpm": 6,
                "inhale_fraction": 0.4,
                "hold_in_s": 0,
                "hold_out_s": 0,
                "phase": None,
            },
            "mode",
        ),
        ({"type": "clock", "t_s": 1.0, "offset_s": None}, "offset_s"),
        ({"type": "nope"}, "type"),
        ({"t_s": 1.0}, "type"),
    ],
)
def test_bad_fields_are_named(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        event_from_json(obj)
    assert info.value.field == field
    assert repr(field) in str(info.value) or field == "type"
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, ValueError)


def test_not_an_object() -> None:
    for obj in (None, [], "beat", 3):
        with pytest.raises(ProtocolError, match="JSON object"):
            event_from_json(obj)


def test_control_from_json_refuses_computed_events() -> None:
    assert control_from_json({"type": "marker", "t_s": 1, "text": "x"}) == Marker(1.0, "x")
    with pytest.raises(ProtocolError, match="computed"):
        control_from_json(Beat(1.0, 800.0).to_json())
    for bad in ({"type": ["marker"]}, {"type": None}, [], "marker"):
        with pytest.raises(ProtocolError):
            control_from_json(bad)


def test_check_control_converts_numbers_and_refuses_the_rest() -> None:
    ev = check_control(PacerChange(np.float64(2.0), np.int64(6), Fraction(1, 2)))  # type: ignore[arg-type]
    assert ev == PacerChange(2.0, 6.0, 0.5)
    assert all(
        type(getattr(ev, f.name)) in (float, str)
        for f in fields(ev)
        if f.name not in ("follow", "guidance")
    )
    with pytest.raises(ProtocolError) as info:
        check_control(PacerChange(1.0, 6.0, hold_in_s=float("nan")))
    assert info.value.field == "hold_in_s"
    with pytest.raises(ProtocolError):
        check_control(Beat(1.0, 800.0))


def test_pipeline_passes_the_new_pacer_fields_through_and_checks_them() -> None:
    p = Pipeline()
    change = PacerChange(1.0, 4.0, 0.3, "fixed", np.float64(4.0), 2)  # type: ignore[arg-type]
    p.receive_control(change)
    (out,) = p.events_received()
    assert out == PacerChange(1.0, 4.0, 0.3, "fixed", 4.0, 2.0)
    assert type(out.hold_in_s) is float  # type: ignore[union-attr]
    for bad in (
        PacerChange(1.0, 6.0, mode="turbo"),
        PacerChange(1.0, 6.0, hold_out_s=-1.0),
        PacerChange(1.0, 6.0, hold_in_s=math.inf),
    ):
        with pytest.raises(InvalidInput):
            p.receive_control(bad)
    assert p.events_received() == []


# ------------------------------------------------------------------------------ fuzz

_KINDS = ["beat", "metrics", "spectrum", "gap", "contact", "marker", "pacer", "pacer_state",
          "clock", "nope"]  # fmt: skip
_NAMES = sorted({f.name for e in GOOD for f in fields(e)} | {"participant", "type", "x"})
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


_DROP = object()  # a change that removes the field


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(_KINDS),
    body=st.dictionaries(st.sampled_from(_NAMES), _json_value, max_size=9),
)
def test_fuzz_any_object_is_an_event_or_a_protocol_error(kind: str, body: dict[str, Any]) -> None:
    obj = {**body, "type": kind}
    _accepted_or_refused(obj)
    try:  # control input: only a marker or a pacer change, else ProtocolError
        control = control_from_json(obj)
    except ProtocolError:
        pass
    else:
        assert isinstance(control, Marker | PacerChange)
    try:  # a session's tagged form
        tagged = session_event_from_json(obj)
    except ProtocolError:
        pass
    else:
        assert session_event_from_json(tagged.to_json()) == tagged


@settings(max_examples=300, deadline=None)
@given(
    event=st.sampled_from(GOOD),
    changes=st.dictionaries(st.sampled_from(_NAMES), _json_scalar | st.just(_DROP), max_size=3),
)
def test_fuzz_fields_of_a_good_event_changed(event: Any, changes: dict[str, Any]) -> None:
    obj = event.to_json()
    for name, value in changes.items():
        if value is _DROP:
            obj.pop(name, None)
        else:
            obj[name] = value
    ev = _accepted_or_refused(obj)
    if ev is not None:
        for name, value in changes.items():
            if value is not _DROP and name != "type":
                # Accepted values are kept as given (a field left out of the JSON form
                # at its default, e.g. PacerChange.follow None, is read back).
                assert ev.to_json().get(name, getattr(ev, name)) == value


def _accepted_or_refused(obj: dict[str, Any]) -> Any:
    """The event ``obj`` reads as (which then round-trips exactly), or None if refused
    with a ProtocolError that says what is wrong."""
    try:
        ev = event_from_json(obj)
    except ProtocolError as exc:
        assert isinstance(exc, VagusError) and str(exc)
        assert exc.field is None or exc.field in obj or exc.field in _NAMES
        return None
    text = json.dumps(ev.to_json(), allow_nan=False)  # no NaN or infinity got through
    assert event_from_json(json.loads(text)) == ev
    return ev
