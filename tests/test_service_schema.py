"""The wire JSON Schema against every event kind (issue 9 §5) and against what a real
session produces."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from service_helpers import check_server_frame, hrm
from vagus.core.events import (
    Beat,
    Contact,
    Gap,
    Marker,
    Metrics,
    PacerChange,
    PacerState,
    Resonance,
    Rsa,
    Spectrum,
)
from vagus.service.bus import OutFrame
from vagus.service.protocol import load_schema
from vagus.session import Session

EXAMPLES: list[tuple[Any, str | None]] = [
    (Beat(1.0, 900.0, None, 900.0, False), "ann"),
    (Beat(2.0, 400.0, "extra", None, False), "ann"),
    (Metrics(3.0, 60.0, 40.0, None, None, None, 0.0, None), "ann"),
    (Spectrum(5.0, 0.1, 2.5, 100.0, 50.0, 2.0, (0.0, 0.0039), (1.0, 2.0)), "ann"),
    (Spectrum(5.0, None, None, None, None, None), "bob"),
    (Gap(6.0, None, "link_lost"), "ann"),
    (Gap(6.0, 3.5, "dropout"), "ann"),
    (Contact(7.0, False), "ann"),
    (Marker(8.0, "eyes closed"), None),
    (PacerChange(9.0, 6.0, 0.4, "fixed", 0.0, 0.0), None),
    (PacerChange(9.0, None, mode="off"), None),
    (PacerState(9.0, "fixed", 6.0, 0.4, 0.0, 0.0, 0.0), None),
    (PacerState(9.0, "off", None, 0.4, 0.0, 0.0, None), None),
    (Rsa(10.0, 0.0, 6.0, True, 12.0, 150.0, 5.0, 0.8, 10, True, 11.0), "ann"),
    (
        Resonance(
            11.0,
            "scan",
            5.5,
            0.7,
            True,
            (5.0, 6.0),
            (10.0, None),
            (1.0, 2.0),
            (1.0, 2.0),
            (0.0, None),
            (0.5, 0.6),
        ),
        None,
    ),
]


def _validator(ref: str) -> jsonschema.Draft202012Validator:
    schema = load_schema()
    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": schema["$defs"]})


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())


@pytest.mark.parametrize(("event", "who"), EXAMPLES, ids=[type(e).__name__ for e, _ in EXAMPLES])
def test_every_event_kind_is_in_the_schema(event: Any, who: str | None) -> None:
    bare = {**event.to_json(), "participant": who}
    errors = [e.message for e in _validator("#/$defs/event").iter_errors(bare)]
    assert not errors, errors
    if bare["type"] != "pacer":  # the control echo is not sent: pacer_state says it
        check_server_frame({**OutFrame.make("s1", bare).event, "seq": 1})


def test_schema_refuses_bad_events() -> None:
    event = _validator("#/$defs/event")
    assert not event.is_valid({"type": "marker", "t_s": "abc", "text": 5, "participant": None})
    assert not event.is_valid({"type": "beat", "t_s": 1.0, "participant": "ann"})
    assert not event.is_valid({"type": "nope", "t_s": 1.0})
    server = _validator("#/$defs/server_frame")
    beat = {**Beat(1.0, 900.0).to_json(), "participant": "ann"}
    assert not server.is_valid(beat)  # no envelope
    assert not server.is_valid({**beat, "v": 2, "session": "s", "seq": 1})


def test_what_a_session_produces_follows_the_schema() -> None:
    session = Session(participants=("ann", "bob"))
    session.receive_control(PacerChange(0.0, 6.0))
    t = 0.0
    for i in range(200):
        rr = 1000.0 + 80.0 * ((i % 10) - 4.5) / 4.5
        t += rr / 1000.0
        session.receive_packet("ann", t, hrm([rr]))
        session.receive_packet("bob", t, bytes([0x16, 60]) + hrm([rr])[2:])  # contact bits
    session.receive_gap("ann", t + 1.0)
    session.receive_control(Marker(t, "done"))
    session.close()
    kinds = set()
    for ev in session.events_received():
        bare = ev.to_json()
        if bare["type"] in ("pacer", "clock"):
            continue
        kinds.add(bare["type"])
        check_server_frame({**OutFrame.make("s1", bare).event, "seq": 1})
    assert {"beat", "metrics", "spectrum", "pacer_state", "marker", "contact"} <= kinds
