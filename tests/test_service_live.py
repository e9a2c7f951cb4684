"""The live service: a real server on loopback, plain websocket clients (issue 10 §5)."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service_helpers import (
    WAIT_S,
    Client,
    beat_packets,
    check_server_frame,
    client,
    make_web,
    service,
)
from vagus.core.events import Marker
from vagus.store.base import ControlRecord, PacketRecord
from vagus.store.open import open_store


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def get(url: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(http_get, url)


def token_of(url: str) -> str:
    return url.split("token=")[1].split("&")[0]


async def test_pages_need_their_own_token(tmp_path: Path) -> None:
    web = make_web(tmp_path)
    async with service(tmp_path / "data", web=web) as svc:
        hosted = await svc.create_session([("ann", "relay")], title="t")
        links = svc.links[hosted.id]
        base = svc.base_url
        assert await get(links["urls"]["participant"]) == (
            200,
            b"<!doctype html><title>breathe</title>",
        )
        assert (await get(links["urls"]["practitioner"]))[1].endswith(b"dashboard</title>")
        assert (await get(links["urls"]["viewer"]))[1].endswith(b"dashboard</title>")
        participant = token_of(links["urls"]["participant"])
        practitioner = token_of(links["urls"]["practitioner"])
        for url in (
            f"{base}/s/{hosted.id}/breathe",  # no token
            f"{base}/s/{hosted.id}/breathe?token=",  # empty
            f"{base}/s/{hosted.id}/breathe?token={participant[:-1]}x",  # wrong
            f"{base}/s/{hosted.id}/dashboard?token={participant}",  # participant on dashboard
            f"{base}/s/{hosted.id}/breathe?token={practitioner}",  # wrong role
            f"{base}/s/other/breathe?token={participant}",  # another session
            f"{base}/admin?token={practitioner}",
            f"{base}/api/sessions?token={practitioner}",
        ):
            status, _ = await get(url)
            assert status == 403, url
        # static files need no token; nothing outside web/static is served
        assert await get(f"{base}/static/app.js") == (200, b"export const x = 1;\n")
        assert (await get(f"{base}/static/../secret.txt"))[0] == 404
        assert (await get(f"{base}/static/../breathe.html"))[0] == 404  # pages need a token
        assert (await get(f"{base}/static/x/../../breathe.html"))[0] == 404
        assert (await get(f"{base}/static/%2e%2e/%2e%2e/secret.txt"))[0] == 404


async def test_websocket_refused_without_the_right_token(tmp_path: Path) -> None:
    async with service(tmp_path / "data") as svc:
        hosted = await svc.create_session([("ann", "relay")])
        other = await svc.create_session([("bob", "relay")])
        good = svc.links[hosted.id]["ws"]["viewer"]
        bad_urls = [
            good.split("?")[0],
            good.split("?")[0] + "?token=nope",
            svc.links[other.id]["ws"]["viewer"].replace(other.id, hosted.id),
        ]
        for url in bad_urls:
            with pytest.raises(InvalidStatus) as info:
                async with client(url):
                    pass
            assert info.value.response.status_code == 403
        # a browser on another origin is refused; the server's own origin is accepted
        with pytest.raises(InvalidStatus):
            async with client(good, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        async with client(good, origin=svc.base_url) as c:  # type: ignore[arg-type]
            assert (await c.recv())["type"] == "hello"


async def test_hello_and_every_frame_follow_the_schema(tmp_path: Path) -> None:
    async with service(tmp_path / "data") as svc:
        hosted = await svc.create_session([("ann", "relay")], title="schema")
        links = svc.links[hosted.id]
        async with (
            client(links["ws"]["participant"]) as ann,
            client(links["ws"]["practitioner"]) as pr,
        ):
            hello = await ann.recv()
            assert hello["type"] == "hello" and hello["role"] == "participant"
            assert hello["participant"] == "ann" and hello["packets_upto"] == 0
            assert hello["seq"] == 1 and hello["v"] == 1 and hello["session"] == hosted.id
            await pr.recv()
            await ann.request({"type": "packets", "packets": beat_packets(150)})
            await pr.request({"type": "pacer", "rate_bpm": 6})
            await pr.request({"type": "marker", "text": "eyes closed"})
            await pr.until(lambda f: f["type"] == "marker", seen=True)
            await pr.until(lambda f: f["type"] == "spectrum", seen=True)
            p = await pr.request({"type": "ping", "client_time": 5.5})
            pong = await pr.reply_to(p)
            assert pong["type"] == "pong" and pong["client_time"] == 5.5
            await ann.until(lambda f: f.get("packets_upto") == 150, seen=True)
            for c in (ann, pr):
                for f in c.frames:
                    check_server_frame(f)
                # frames are numbered 1, 2, 3... with no holes
                assert [f["seq"] for f in c.frames] == list(range(1, len(c.frames) + 1))
            assert {"hello", "beat", "metrics", "pacer_state", "marker", "spectrum", "pong"} <= {
                f["type"] for f in pr.frames
            }
            assert "marker" not in {f["type"] for f in ann.frames}  # participants see no markers
        # a late joiner gets the state at once: pacer, metrics, beats, markers
        async with client(links["ws"]["viewer"]) as late:
            hello = await late.recv()
            check_server_frame(hello)
            state = hello["state"]
            assert state["pacer"]["rate_bpm"] == 6.0 and state["pacer"]["mode"] == "fixed"
            assert state["metrics"]["ann"]["hr_bpm"] is not None
            assert len(state["beats"]["ann"]) > 100
            # the runner marks the first input ("start"); then the practitioner's marker
            assert [m["text"] for m in state["markers"]] == ["start", "eyes closed"]


async def test_pacer_change_reaches_participant_and_viewer(tmp_path: Path) -> None:
    async with service(tmp_path / "data") as svc:
        hosted = await svc.create_session([("ann", "relay")])
        links = svc.links[hosted.id]
        async with (
            client(links["ws"]["participant"]) as ann,
            client(links["ws"]["viewer"]) as viewer,
            client(links["ws"]["practitioner"]) as pr,
        ):
            for c in (ann, viewer, pr):
                await c.recv()
            seq = await pr.request(
                {"type": "pacer", "mode": "fixed", "rate_bpm": 5.5, "inhale_fraction": 0.45}
            )
            assert (await pr.reply_to(seq))["type"] == "ack"
            for c in (ann, viewer, pr):
                state = await c.until(lambda f: f["type"] == "pacer_state", seen=True)
                assert state["rate_bpm"] == 5.5 and state["inhale_fraction"] == 0.45
                assert state["mode"] == "fixed" and state["phase"] == 0.0
            # only the practitioner may change it
            for c in (ann, viewer):
                seq = await c.request({"type": "pacer", "rate_bpm": 7})
                err = await c.reply_to(seq)
                assert err["type"] == "error" and err["code"] == "forbidden"
            assert hosted.pacer_settings()["rate_bpm"] == 5.5
            seq = await pr.request({"type": "pacer", "mode": "off"})
            await pr.reply_to(seq)
            off = await ann.until(lambda f: f["type"] == "pacer_state")
            assert off["mode"] == "off" and off["rate_bpm"] is None and off["phase"] is None


async def test_marker_is_stored_with_the_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay")])
        links = svc.links[hosted.id]
        async with client(links["ws"]["practitioner"]) as pr, client(links["ws"]["viewer"]) as v:
            await pr.recv()
            await v.recv()
            seq = await pr.request({"type": "marker", "text": "relaxed now"})
            assert (await pr.reply_to(seq))["type"] == "ack"
            seen = await v.until(lambda f: f["type"] == "marker")
            assert seen["text"] == "relaxed now" and seen["participant"] is None
            # a viewer's marker is refused and not stored
            seq = await v.request({"type": "marker", "text": "not mine"})
            assert (await v.reply_to(seq))["code"] == "forbidden"
    with open_store(data) as store:
        controls = [r.event for r in store.iter_input(hosted.id) if isinstance(r, ControlRecord)]
        texts = [c.text for c in controls if isinstance(c, Marker)]
        assert "relaxed now" in texts and "not mine" not in texts
        assert store.get_session(hosted.id).status == "ended"


async def test_two_participants_each_see_only_their_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay"), ("bob", "relay")])
        links = svc.links[hosted.id]
        parts = links["participants"]
        async with (
            client(parts["ann"]["ws"]) as ann,
            client(parts["bob"]["ws"]) as bob,
            client(links["ws"]["viewer"]) as viewer,
        ):
            hello_ann = await ann.recv()
            assert [p["name"] for p in hello_ann["participants"]] == ["ann"]
            await bob.recv()
            await viewer.recv()
            await ann.request({"type": "packets", "packets": beat_packets(80, rr_ms=800)})
            await bob.request({"type": "packets", "packets": beat_packets(80, rr_ms=1200)})
            # a participant cannot send as another
            seq = await ann.request(
                {"type": "packets", "participant": "bob", "packets": beat_packets(1, start_seq=81)}
            )
            assert (await ann.reply_to(seq))["code"] == "conflict"
            await ann.until(lambda f: f.get("packets_upto") == 80, seen=True)
            await bob.until(lambda f: f.get("packets_upto") == 80, seen=True)
            await viewer.until(
                lambda f: f["type"] == "beat" and f["participant"] == "bob" and f["t_s"] > 60,
                seen=True,
            )
            await viewer.until(
                lambda f: f["type"] == "beat" and f["participant"] == "ann" and f["t_s"] > 40,
                seen=True,
            )
        for me, other, hr in ((ann, "bob", 75.0), (bob, "ann", 50.0)):
            assert all(f.get("participant") != other for f in me.frames)
            metrics = [f for f in me.frames if f["type"] == "metrics"]
            assert metrics and round(metrics[-1]["hr_bpm"]) == hr
        assert {f["participant"] for f in viewer.frames if f["type"] == "beat"} == {"ann", "bob"}
    with open_store(data) as store:
        packets = [r for r in store.iter_input(hosted.id) if isinstance(r, PacketRecord)]
        assert sorted({r.participant for r in packets}) == ["ann", "bob"]
        assert len(packets) == 160


BAD_FRAMES: list[tuple[Any, str]] = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('"text"', "bad_json"),
    (b"\x00\x01binary", "bad_json"),
    ("x" * 200_000, "too_large"),
    ('{"type": "ping", "v": NaN}', "bad_json"),
    ('{"type": "ping", "v": 1, "seq": 1e999}', "bad_field"),
    ("[" * 100_000 + "]" * 100_000, "too_large"),
    ("[" * 50_000 + "]" * 50_000, "bad_json"),
    ({"v": 1}, "unknown_type"),
    ({"type": "launch", "v": 1}, "unknown_type"),
    ({"type": 5, "v": 1}, "unknown_type"),
    ({"type": "ping"}, "version"),
    ({"type": "ping", "v": 2}, "version"),
    ({"type": "ping", "v": True}, "version"),
    ({"type": "ping", "v": 1, "extra": 1}, "bad_field"),
    ({"type": "ping", "v": 1, "seq": -1}, "bad_field"),
    ({"type": "ping", "v": 1, "seq": 10**30}, "bad_field"),
    ({"type": "ping", "v": 1, "client_time": "now"}, "bad_field"),
    ({"type": "ping", "v": 1, "session": "other"}, "conflict"),
    ({"type": "pacer", "v": 1, "rate_bpm": "fast"}, "bad_field"),
    ({"type": "pacer", "v": 1, "rate_bpm": 1e308}, "bad_field"),
    ({"type": "pacer", "v": 1, "rate_bpm": 10**400}, "bad_field"),
    ('{"type": "pacer", "v": 1, "rate_bpm": ' + "9" * 5000 + "}", "bad_json"),
    ({"type": "pacer", "v": 1, "rate_bpm": 0.5}, "bad_field"),
    ({"type": "pacer", "v": 1, "rate_bpm": True}, "bad_field"),
    ({"type": "pacer", "v": 1, "mode": "wild"}, "bad_field"),
    ({"type": "pacer", "v": 1, "inhale_fraction": 0.99}, "bad_field"),
    ({"type": "pacer", "v": 1, "hold_in_s": -1}, "bad_field"),
    ({"type": "marker", "v": 1}, "bad_field"),
    ({"type": "marker", "v": 1, "text": 5}, "bad_field"),
    ({"type": "marker", "v": 1, "text": ""}, "bad_field"),
    ({"type": "marker", "v": 1, "text": "x" * 501}, "bad_field"),
    ({"type": "marker", "v": 1, "text": "ok", "t_s": "abc"}, "bad_field"),
    ({"type": "packets", "v": 1, "packets": []}, "bad_field"),
    ({"type": "packets", "v": 1, "packets": [{"seq": 1, "t_s": 1.0}]}, "bad_field"),
    (
        {"type": "packets", "v": 1, "packets": [{"seq": 1, "t_s": 1.0, "payload": "zz"}]},
        "bad_field",
    ),
    ({"type": "review", "v": 1, "action": "seek"}, "bad_field"),
]


async def test_every_bad_message_gets_an_error_and_the_connection_lives(
    tmp_path: Path,
) -> None:
    async with service(tmp_path / "data", record=False) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        async with client(svc.links[hosted.id]["ws"]["practitioner"]) as pr:
            await pr.recv()
            for frame, code in BAD_FRAMES:
                await pr.send(frame)
                err = await pr.until(lambda f: f["type"] == "error")
                check_server_frame(err)
                shown = frame if len(str(frame)) < 200 else "..."
                assert err["code"] == code, (shown, err)
                assert err["message"]
                seq = await pr.request({"type": "ping"})
                assert (await pr.reply_to(seq))["type"] == "pong"
                await asyncio.sleep(0.05)  # well within the rate limit
        assert hosted.pacer_settings()["rate_bpm"] is None  # nothing changed


async def test_admin_api_needs_the_admin_token(tmp_path: Path) -> None:
    async with service(tmp_path / "data") as svc:
        admin = svc.tokens.issue("admin", None)
        base = svc.base_url
        assert (await get(f"{base}/api/sessions"))[0] == 403
        assert (await get(f"{base}/api/sessions?token=wrong"))[0] == 403
        status, body = await get(f"{base}/api/sessions?token={admin}")
        assert status == 200 and json.loads(body) == {"sessions": []}
        created = await asyncio.to_thread(
            post, f"{base}/api/sessions?token={admin}&participant=ann&participant=bob=sim:seed=2"
        )
        sid = created["session"]
        assert set(created["urls"]) >= {"participant", "practitioner", "viewer"}
        assert set(created["participants"]) == {"ann", "bob"}
        async with client(created["ws"]["viewer"]) as v:
            hello = await v.recv()
            assert [p["name"] for p in hello["participants"]] == ["ann", "bob"]
        status, body = await get(f"{base}/api/sessions?token={admin}")
        assert [s["session"] for s in json.loads(body)["sessions"]] == [sid]
        ended = await asyncio.to_thread(post, f"{base}/api/sessions/{sid}/end?token={admin}")
        assert ended["ended"] is True
        status, body = await get(f"{base}/api/sessions?token={admin}")
        assert [(s["session"], s["ended"]) for s in json.loads(body)["sessions"]] == [(sid, True)]
        bad = await asyncio.to_thread(
            post_status, f"{base}/api/sessions?token={admin}&participant=a%20b"
        )
        assert bad == 400


def post(url: str) -> Any:
    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=WAIT_S) as resp:
        return json.loads(resp.read())


def post_status(url: str) -> int:
    try:
        post(url)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


async def test_role_rules_for_each_frame_kind(tmp_path: Path) -> None:
    async with service(tmp_path / "data", record=False) as svc:
        hosted = await svc.create_session([("ann", "relay"), ("sim", "sim:seed=1")], record=False)
        links = svc.links[hosted.id]
        async with (
            client(links["ws"]["viewer"]) as viewer,
            client(links["ws"]["practitioner"]) as pr,
            client(links["participants"]["sim"]["ws"]) as sim,
        ):
            for c in (viewer, pr, sim):
                await c.recv()
            for c, frame, code in (
                (viewer, {"type": "packets", "packets": beat_packets(1)}, "forbidden"),
                (viewer, {"type": "end"}, "forbidden"),
                (viewer, {"type": "recording", "on": False}, "forbidden"),
                (sim, {"type": "recording", "on": False}, "forbidden"),
                (viewer, {"type": "status", "battery_pct": 5}, "forbidden"),
                (pr, {"type": "packets", "packets": beat_packets(1)}, "forbidden"),
                (pr, {"type": "review", "action": "play"}, "conflict"),
                (sim, {"type": "packets", "packets": beat_packets(1)}, "conflict"),
                (sim, {"type": "marker", "text": "hi"}, "forbidden"),
            ):
                seq = await c.request(frame)
                err = await c.reply_to(seq)
                assert (err["type"], err["code"]) == ("error", code), (frame, err)
        assert hosted.participants["ann"].received_upto == 0


async def test_rate_limit_errors_and_connection_lives(tmp_path: Path) -> None:
    async with service(tmp_path / "data", record=False) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        async with client(svc.links[hosted.id]["ws"]["viewer"]) as v:
            await v.recv()
            for _ in range(400):
                await v.send({"type": "ping", "v": 1})
            await v.until(lambda f: f["type"] == "error" and f["code"] == "rate_limited")
            pongs = sum(1 for f in v.frames if f["type"] == "pong")
            assert 150 <= pongs < 400
            await asyncio.sleep(0.5)
            seq = await v.request({"type": "ping"})
            assert (await v.reply_to(seq))["type"] == "pong"


async def test_stalled_client_is_dropped_and_others_get_everything(tmp_path: Path) -> None:
    async with service(tmp_path / "data", record=False, stall_s=1.0) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        links = svc.links[hosted.id]
        # the stalled one: a tiny receive buffer and a reader that never reads
        import socket

        async with (
            client(links["ws"]["viewer"], max_queue=1, compression=None) as stalled,
            client(links["ws"]["viewer"]) as v1,
            client(links["ws"]["practitioner"]) as v2,
            client(links["ws"]["participant"] + "&mode=ingest") as relay,
        ):
            sock = stalled.ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.ws.transport.pause_reading()
            for c in (v1, v2, relay):
                await c.recv()
            total = 3000
            sent = 0
            # the corrector decides a beat two beats late: total - 2 beats come out
            readers = [asyncio.create_task(drain(c, total - 2)) for c in (v1, v2)]
            while sent < total:
                batch = beat_packets(500, start_seq=sent + 1, t0_s=1000.0 + sent)
                await relay.request({"type": "packets", "packets": batch})
                sent += 500
                await asyncio.sleep(0.05)
            beats = await asyncio.gather(*readers)
            # the others received every beat, in order, while the stalled one was dropped
            assert beats[0] == beats[1]
            assert len(beats[0]) == total - 2 and beats[0] == sorted(beats[0])
            # the stalled one is dropped once its socket has taken nothing for stall_s
            async with asyncio.timeout(WAIT_S):
                while svc.stalled_disconnects == 0:
                    await asyncio.sleep(0.1)
            assert svc.stalled_disconnects == 1
            stalled.ws.transport.resume_reading()
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(stalled.ws.recv(), WAIT_S)
            assert info.value.rcvd is None or info.value.rcvd.code == 1008


async def drain(c: Client, beats: int) -> list[float]:
    """Read until ``beats`` beats arrived (each beat's time)."""
    times: list[float] = []
    async with asyncio.timeout(WAIT_S * 3):
        while len(times) < beats:
            frame = await c.recv()
            if frame["type"] == "beat":
                times.append(frame["t_s"])
    return times


async def test_tokens_never_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with service(tmp_path / "data", record=False) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        links = svc.links[hosted.id]
        async with client(links["ws"]["viewer"]) as v:
            await v.recv()
        with pytest.raises(InvalidStatus):
            async with client(links["ws"]["viewer"] + "x"):
                pass
        await get(links["urls"]["participant"])
    tokens = [token_of(u) for u in links["urls"].values()]
    # the server's logs (this test's own client logs its requests: not the server's)
    server = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    assert any(r.name.startswith("websockets.server") for r in server)
    text = "\n".join(r.getMessage() for r in server)
    assert "token=" not in text or "token=[redacted]" in text
    for token in tokens:
        assert token not in text


async def test_practitioner_stops_and_restarts_recording(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay")])
        links = svc.links[hosted.id]
        async with client(links["ws"]["practitioner"]) as pr, client(links["ws"]["viewer"]) as v:
            assert (await pr.recv())["recording"] is True
            await v.recv()
            seq = await pr.request({"type": "recording", "on": False})
            assert (await pr.reply_to(seq))["type"] == "ack"
            off = await v.until(lambda f: f["type"] == "status" and f["participant"] is None)
            assert off["recording"] is False
            seq = await pr.request({"type": "recording", "on": True})
            on = await v.until(lambda f: f["type"] == "status" and f["participant"] is None)
            assert on["recording"] is True
            seq = await pr.request({"type": "recording", "on": "yes"})
            assert (await pr.reply_to(seq))["code"] == "bad_field"
    with open_store(data) as store:
        assert store.get_session(hosted.id).status == "ended"
