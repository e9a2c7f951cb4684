"""Hypothesis fuzzing of the message handler: every client message is taken or refused
with an error code, never a crash; the parser accepts exactly what the JSON Schema does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service_helpers import client_frame_valid
from vagus.service.bus import ClientQueue, InProcessBus
from vagus.service.host import HostedSession
from vagus.service.protocol import ERROR_CODES, FrameError, parse_client_frame
from vagus.service.server import Service, _Conn
from vagus.service.tokens import Grant, TokenStore

SESSION = "s1"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 6, 40, 41, 0.1, 0.9, 30, 1e10, -1.0]),
)
field_values = st.one_of(
    numbers,
    st.none(),
    st.booleans(),
    st.text(max_size=10),
    st.sampled_from(["fixed", "off", "scan", "play", "seek", "10483c03"]),
)
packet_items = st.fixed_dictionaries(
    {"seq": st.integers(-1, 5), "t_s": numbers},
    optional={
        "payload": st.sampled_from(["10483c03", "10", "zz", "10483c03" * 40]),
        "gap": st.sampled_from(["link_lost", "Bad!", ""]),
        "x": field_values,
    },
)
FIELDS = [
    "mode",
    "rate_bpm",
    "inhale_fraction",
    "hold_in_s",
    "hold_out_s",
    "text",
    "t_s",
    "client_time",
    "battery_pct",
    "connected",
    "action",
    "speed",
    "participant",
    "on",
    "follow",
]
frames = st.builds(
    lambda kind, v, seq, fields, packets: {
        "type": kind,
        **({"v": v} if v is not None else {}),
        **({"seq": seq} if seq is not None else {}),
        **fields,
        **({"packets": packets} if packets is not None else {}),
    },
    st.sampled_from(
        ["ping", "pacer", "marker", "packets", "status", "end", "recording", "review", "nope"]
    ),
    st.sampled_from([1, 1, 1, 2, None]),
    st.none() | st.integers(-2, 2**54),
    st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=4),
    st.none() | st.lists(packet_items, min_size=0, max_size=3),
)


@settings(max_examples=200)
@given(json_values)
def test_any_json_is_taken_or_refused_with_a_code(value: Any) -> None:
    try:
        parse_client_frame(json.dumps(value), session=SESSION)
    except FrameError as exc:
        assert exc.code in ERROR_CODES and str(exc)


@settings(max_examples=200)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_or_text_is_taken_or_refused(message: bytes | str) -> None:
    try:
        parse_client_frame(message, session=SESSION)
    except FrameError as exc:
        assert exc.code in ERROR_CODES


@settings(max_examples=300)
@given(frames)
def test_parser_accepts_what_the_schema_accepts(frame: dict[str, Any]) -> None:
    try:
        parse_client_frame(json.dumps(frame), session=SESSION)
        accepted, code, message = True, None, ""
    except FrameError as exc:
        accepted, code, message = False, exc.code, str(exc)
    valid = client_frame_valid(frame)
    if accepted:
        assert valid, frame
    elif valid:
        # what a schema cannot say: packet numbers increase within a frame
        assert code == "bad_field" and "must increase" in message, (frame, message)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["participant", "practitioner", "viewer"]), frames), max_size=12
    )
)
def test_handler_never_crashes_and_roles_hold(
    tmp_path: Path, script: list[tuple[str, dict[str, Any]]]
) -> None:
    async def run() -> None:
        tokens = TokenStore(":memory:")
        svc = Service(tokens, web=tmp_path)
        hosted = HostedSession([("ann", "relay")], bus=svc.bus)
        await hosted.start()
        queue = ClientQueue(lambda f: True, lambda reason: None)
        for role, frame in script:
            grant = Grant(role, SESSION, "ann" if role == "participant" else None)  # type: ignore[arg-type]
            conn = _Conn(grant, SESSION, review=False)
            before = hosted.pacer_settings()
            try:
                cmd = parse_client_frame(json.dumps(frame), session=SESSION)
                svc._apply(hosted, grant, cmd, queue, conn)
            except FrameError as exc:
                assert exc.code in ERROR_CODES
            if role != "practitioner":
                assert hosted.pacer_settings() == before
        settings_now = hosted.pacer_settings()
        assert settings_now["mode"] in ("off", "fixed", "scan", "adaptive")
        assert (settings_now["rate_bpm"] is None) == (settings_now["mode"] == "off")
        await hosted.end()
        tokens.close()

    asyncio.run(run())


def test_bus_fans_out_in_order() -> None:
    bus = InProcessBus()
    got: list[str] = []

    class Sub:
        def offer(self, frames: Any) -> None:
            got.extend(f.kind for f in frames)

    remove = bus.subscribe("t", Sub())
    from vagus.service.bus import OutFrame

    bus.publish(
        "t",
        [OutFrame.make("t", {"type": "beat", "t_s": 1.0}), OutFrame.make("t", {"type": "marker"})],
    )
    remove()
    bus.publish("t", [OutFrame.make("t", {"type": "beat"})])
    assert got == ["beat", "marker"]
    assert bus.subscribers("t") == 0
