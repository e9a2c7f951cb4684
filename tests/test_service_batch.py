"""Several frames in one websocket message (``batch``, docs/protocol.md), frames made
straight from event objects, and the compact late-joiner state: what a client receives is
what it received before, frame for frame (issue 10 §6: the capacity work)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from service_helpers import (
    WAIT_S,
    beat_packets,
    check_server_frame,
    check_server_message,
    client,
    hrm,
    service,
)
from test_service_schema import EXAMPLES
from vagus.core.events import Beat, Metrics, PacerChange, Rsa, Spectrum
from vagus.runner import Participant, Runner
from vagus.service.bus import OutFrame, batch_text, frame_prefix
from vagus.service.protocol import load_schema
from vagus.service.state import SessionState
from vagus.session import Session

#: The kinds the service serialises from the object (host._OBJECT_KINDS).
OBJECT_KINDS = ("beat", "metrics", "spectrum", "rsa")


def _schema(ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": load_schema()["$defs"]})


# ---------------------------------------------------------------------- frames from objects


@pytest.mark.parametrize(
    ("event", "who"),
    [(e, w) for e, w in EXAMPLES if e.type in OBJECT_KINDS]
    + [
        (Beat(1.0, 900.0, None, math.nan, True), "ann"),
        (Metrics(3.0, math.inf, -math.inf, math.nan, None, None, 0.0, 5.0), "a.b-c_d"),
        (Spectrum(5.0, np.float64(0.1), 2.5, 100.0, 50.0, 2.0, (0.0, np.float64(1.5))), "ann"),
        (Rsa(10.0, 0.0, 6.0, True, 12.0, math.nan, 5.0, 0.8, 10, True, 11.0), 'quo"te'),
    ],
)
def test_a_frame_from_the_object_is_the_frame_from_its_json(event: Any, who: str) -> None:
    fast = OutFrame.from_event("s1", who, event)
    slow = OutFrame.make("s1", {**event.to_json(), "participant": who})
    assert json.loads(fast.text(7)) == json.loads(slow.text(7))
    assert fast.event == slow.event
    assert (fast.kind, fast.participant) == (slow.kind, slow.participant)
    assert fast.bare() == slow.bare() == {**event.to_json(), "participant": who}
    assert fast.text(3) == OutFrame.from_event(
        "s1", who, event, frame_prefix(event.type, "s1", who)
    ).text(3)
    if '"' not in who:  # the schema's names are letters, digits, . _ -; JSON escapes others
        check_server_frame(json.loads(fast.text(1)))


def test_the_state_from_objects_is_the_state_from_dicts() -> None:
    session = Session(participants=("ann", "bob"))
    session.receive_control(PacerChange(0.0, 6.0))
    t = 0.0
    for i in range(400):  # more than HISTORY_S of beats: the oldest are dropped
        rr = 1000.0 + 80.0 * ((i % 10) - 4.5) / 4.5
        t += rr / 1000.0
        session.receive_packet("ann", t, hrm([rr]))
        if i < 300:
            session.receive_packet("bob", t, hrm([rr]))
    session.receive_gap("ann", t + 1.0)
    events = session.events_received()
    by_objects, by_dicts = SessionState(), SessionState()
    for ev in events:
        bare = ev.to_json()
        if bare["type"] in ("pacer", "clock"):
            continue
        if ev.participant is not None and ev.event.type in OBJECT_KINDS:
            by_objects.offer([OutFrame.from_event("s1", ev.participant, ev.event)])
        else:
            by_objects.offer([OutFrame.make("s1", bare)])
        by_dicts.offer([OutFrame.make("s1", bare)])
    for who in (None, "ann", "bob"):
        assert by_objects.snapshot(who) == by_dicts.snapshot(who)
    snap = by_objects.snapshot()
    assert 290 <= len(snap["beats"]["ann"]) <= 301 and snap["metrics"]["bob"]["type"] == "metrics"
    assert snap["beats"]["ann"][0]["t_s"] >= by_objects.latest_t_s - 300.0


async def test_the_runner_gives_objects_and_json_alike() -> None:
    runner = Runner([Participant("ann")], record=False)
    as_json: list[dict[str, Any]] = []
    as_objects: list[dict[str, Any]] = []
    runner.subscribe(as_json.extend)

    def take(events: Any, statuses: list[dict[str, Any]]) -> None:
        as_objects.extend(ev.to_json() for ev in events)
        as_objects.extend(statuses)

    runner.subscribe_batches(take)
    await runner.start()
    for p in beat_packets(80):
        runner.push_packet("ann", p["t_s"], bytes.fromhex(p["payload"]))
    result = await runner.stop("done")
    assert as_objects == as_json
    assert {e["type"] for e in as_json} >= {"beat", "metrics", "status", "marker"}
    assert result.summary["by_participant"]["ann"]["beats"] >= 75


# ---------------------------------------------------------------------- batch messages


def test_batch_messages_in_the_schema() -> None:
    beat = OutFrame.from_event("s1", "ann", Beat(1.0, 900.0, None, 900.0))
    metrics = OutFrame.from_event("s1", "ann", Metrics(1.0, 60.0, 40.0, None, None, None, 0.0))
    text = batch_text(json.dumps("s1"), [beat.text(4), metrics.text(5)])
    message = json.loads(text)
    assert [f["seq"] for f in check_server_message(message)] == [4, 5]
    one = json.loads(beat.text(1))
    assert check_server_message(one) == [one]
    batch = _schema("#/$defs/server_batch")
    assert not batch.is_valid({**message, "frames": [json.loads(beat.text(1))]})  # one: no batch
    assert not batch.is_valid({**message, "frames": [message, message]})  # no nesting
    assert not batch.is_valid({**message, "seq": 3})
    assert not batch.is_valid({**message, "frames": [{"type": "beat"}, {"type": "beat"}]})
    assert not _schema("#/$defs/server_frame").is_valid(message)


async def test_a_viewer_gets_each_packets_frames_in_one_message(tmp_path: Path) -> None:
    """A relay's packets, one at a time: each packet's beat and metrics reach the viewer
    in one batch message; every frame is valid and numbered without holes; hello comes
    alone; the frames are the ones the state then gives a late joiner."""
    async with service(tmp_path / "data", record=False) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        links = svc.links[hosted.id]
        async with (
            client(links["ws"]["viewer"]) as viewer,
            client(links["ws"]["participant"] + "&mode=ingest") as relay,
        ):
            raw: list[dict[str, Any]] = []
            hello = json.loads(await asyncio.wait_for(viewer.ws.recv(), WAIT_S))
            assert hello["type"] == "hello"  # alone, first
            await relay.recv()
            packets = beat_packets(40)
            for k, p in enumerate(packets, start=1):
                await relay.request({"type": "packets", "packets": [p]})
                if k < 3:
                    continue  # the corrector decides a beat two packets late
                while True:  # until this packet's beat came
                    message = json.loads(await asyncio.wait_for(viewer.ws.recv(), WAIT_S))
                    raw.append(message)
                    kinds = [f["type"] for f in check_server_message(message)]
                    if "beat" in kinds:
                        break
                # the beat and metrics the packet made: one message
                assert message["type"] == "batch", message
                assert kinds.count("beat") == 1 and kinds.count("metrics") == 1, kinds
                assert message["session"] == hosted.id and message["v"] == 1
            frames = [hello]
            for message in raw:
                frames.extend(check_server_message(message))
            for frame in frames:
                check_server_frame(frame)
            assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
            assert sum(1 for m in raw if m["type"] == "batch") >= len(packets) - 2
            beats = [f for f in frames if f["type"] == "beat"]
            assert len(beats) == len(packets) - 2
            # a late joiner gets the same beats (state kept as objects)
            async with client(links["ws"]["viewer"]) as late:
                late_hello = await late.recv()
                assert late_hello["state"]["beats"]["ann"] == [
                    {k: v for k, v in b.items() if k not in ("v", "session", "seq")} for b in beats
                ]
                check_server_frame(late_hello)


# ---------------------------------------------------------------------- the event loop


def test_run_on_the_chosen_loop() -> None:
    from vagus.exceptions import InvalidInput
    from vagus.service.app import run

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(which()).startswith("asyncio")
    coro = which()
    with pytest.raises(InvalidInput, match="asyncio, uvloop"):
        run(coro, loop="trio")
    coro.close()
    try:
        import uvloop  # noqa: F401
    except ImportError:
        coro = which()
        with pytest.raises(InvalidInput, match="pip install uvloop"):
            run(coro, loop="uvloop")
        coro.close()
    else:
        assert run(which(), loop="uvloop").startswith("uvloop")


# ---------------------------------------------------------------------- direct sends


async def test_frames_go_out_at_once_only_while_nothing_waits() -> None:
    """ClientQueue.direct: used while the queue is empty and no send is waiting; when it
    refuses, the frames are queued, and later frames queue behind them (order kept)."""
    from vagus.service.bus import ClientQueue

    sent: list[list[str]] = []
    ok = [True]

    def direct(frames: list[OutFrame]) -> bool:
        if not ok[0]:
            return False
        sent.append([f.kind for f in frames])
        return True

    q = ClientQueue(lambda f: f.kind != "marker", lambda reason: None)
    q.direct = direct

    def frame(kind: str) -> OutFrame:
        return OutFrame.make("s1", {"type": kind, "participant": "ann", "t_s": 1.0})

    q.offer([frame("beat"), frame("marker"), frame("metrics")])
    q.put(frame("ack"))
    assert sent == [["beat", "metrics"], ["ack"]] and len(q) == 0 and q.sent_directly == 3
    ok[0] = False  # the socket's buffer is full: queued
    q.offer([frame("beat"), frame("metrics")])
    ok[0] = True
    q.offer([frame("beat")])  # behind the queued ones, not before them
    q.put(frame("pong"))
    assert len(sent) == 2 and len(q) == 4
    assert [f.kind for f in await q.get_batch()] == ["beat", "metrics", "beat", "pong"]
    q.sending_since = time.monotonic()  # a send waiting for the socket: queued too
    q.offer([frame("beat")])
    assert len(sent) == 2 and len(q) == 1
    q.sending_since = None
    q.offer([frame("beat")])
    assert len(q) == 2  # still behind the queued one
    assert [f.kind for f in await q.get_batch()] == ["beat", "beat"]
    q.offer([frame("beat")])
    assert sent[-1] == ["beat"] and len(q) == 0


async def test_an_ended_session_closes_its_clients_only(tmp_path: Path) -> None:
    """The end of a session closes its live connections (code 1000) and no other
    session's (each session's connections are kept together, not found by a scan)."""
    from websockets.exceptions import ConnectionClosed

    async with service(tmp_path / "data", record=False) as svc:
        one = await svc.create_session([("ann", "relay")], record=False)
        two = await svc.create_session([("bob", "relay")], record=False)
        l1, l2 = svc.links[one.id], svc.links[two.id]
        async with (
            client(l1["ws"]["practitioner"]) as boss,
            client(l1["ws"]["viewer"]) as viewer,
            client(l1["ws"]["participant"] + "&mode=ingest") as relay,
            client(l2["ws"]["viewer"]) as other,
        ):
            for c in (boss, viewer, relay, other):
                assert (await c.recv())["type"] == "hello"
            seq = await boss.request({"type": "end"})
            assert (await boss.reply_to(seq))["type"] == "ack"
            for c in (boss, viewer, relay):
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await c.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1000
            seq = await other.request({"type": "ping"})
            assert (await other.reply_to(seq))["type"] == "pong"  # the other one lives on
            assert not two.ended
