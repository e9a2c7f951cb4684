"""The relay: sequence numbers and acks; a server restart loses nothing and stores
nothing twice; served sessions and their tokens survive the restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from service_helpers import WAIT_S, client, hrm, service
from vagus.exceptions import InvalidInput
from vagus.service.relay import Relay, relay_url
from vagus.store.base import PacketRecord
from vagus.store.open import open_store


def test_relay_url_from_server_and_token() -> None:
    assert relay_url("http://h:8765", "T") == "ws://h:8765/ws?token=T&mode=ingest"
    assert relay_url("https://h:1/s/abc/breathe?token=T", None) == (
        "wss://h:1/ws/abc?token=T&mode=ingest"
    )
    assert relay_url("ws://h:1/ws/abc?token=T", "U") == "ws://h:1/ws/abc?token=U&mode=ingest"
    with pytest.raises(InvalidInput, match="--token"):
        relay_url("http://h:8765", None)
    with pytest.raises(InvalidInput, match="address"):
        relay_url("h:8765", "T")


def post(url: str) -> dict:
    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=WAIT_S) as resp:
        assert resp.status in (200, 201)
        return json.loads(resp.read())


async def wait_for(pred, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT_S * 2):
        while not pred():
            await asyncio.sleep(0.05)


async def test_relay_survives_a_server_restart_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sent: list[bytes] = []
    times: list[float] = []

    def feed(relay: Relay, n: int) -> None:
        for _ in range(n):
            i = len(sent)
            rr = 800.0 + (i % 37) * 5.0  # each packet distinct enough to check order
            payload = hrm([rr], hr=60 + i % 50)
            t = 5000.0 + sum(800.0 + (k % 37) * 5.0 for k in range(i + 1)) / 1000.0
            sent.append(payload)
            times.append(t)
            relay.add(t, payload=payload)

    async with service(data) as first:
        admin = first.tokens.issue("admin", None)
        created = await asyncio.to_thread(
            post, f"{first.base_url}/api/sessions?token={admin}&participant=ann&title=remote"
        )
        session = created["session"]
        port = first.port
        participant_url = created["participants"]["ann"]["url"]
        viewer_ws = created["ws"]["viewer"]
        relay = Relay(relay_url(participant_url, None), None)
        stop = asyncio.Event()
        runner = asyncio.create_task(relay.run(stop))
        await wait_for(lambda: relay.connected, "connected")
        feed(relay, 40)
        await wait_for(lambda: relay.acked == 40, "first acks")
        first.sessions[session].set_pacer({"rate_bpm": 6.0, "guidance": "gentle"})
        # a later change leaves guidance out (keep it): the restart keeps it too
        first.sessions[session].set_pacer({"rate_bpm": 5.5, "inhale_fraction": 0.45})
        feed(relay, 25)  # taken in by the server, not yet acknowledged when it stops
        await wait_for(
            lambda: first.sessions[session].participants["ann"].received_upto == 65, "taken"
        )
        async with client(viewer_ws) as watcher:
            await watcher.recv()
            await first.stop(keep_served=True)
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await watcher.recv()
        # a server that stops to resume never tells the pages the session ended
        statuses = [f for f in watcher.frames if f["type"] == "status"]
        assert statuses and not any(f["ended"] for f in statuses)
    assert relay.acked < 65
    feed(relay, 30)  # read while the server is down: buffered
    await asyncio.sleep(1.0)
    assert not relay.connected
    async with service(data, port=port) as second:
        resumed = await second.resume_served()
        assert [h.id for h in resumed] == [session]
        await wait_for(lambda: relay.acked == 95, "all acknowledged")
        # the old links still work after the restart
        async with client(viewer_ws) as viewer:
            hello = await viewer.recv()
            assert hello["session"] == session and hello["role"] == "viewer"
            assert hello["state"]["beats"]["ann"]
            # the pacer is as it was when the server stopped
            pacer = hello["state"]["pacer"]
            assert pacer is not None and pacer["mode"] == "fixed"
            assert (pacer["rate_bpm"], pacer["inhale_fraction"]) == (5.5, 0.45)
            assert pacer.get("guidance_level") == "gentle"
        # the resumed session told the relay what the store holds: nothing was resent
        assert second.sessions[session].participants["ann"].received_upto == 95
    stop.set()
    await runner
    with open_store(data) as store:
        packets = [r for r in store.iter_input(session) if isinstance(r, PacketRecord)]
    assert [p.payload for p in packets] == sent  # every packet once, in order
    offsets = {round(p.t_arrival_s - t, 6) for p, t in zip(packets, times, strict=True)}
    assert len(offsets) == 1  # one clock mapping before and after the restart
    assert relay.stats.dropped == 0 and not relay.buffer


async def test_packets_are_taken_once_and_in_order(tmp_path: Path) -> None:
    from service_helpers import beat_packets

    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay")])
        async with client(svc.links[hosted.id]["ws"]["participant"] + "&mode=ingest") as ann:
            hello = await ann.recv()
            assert hello["packets_upto"] == 0
            packets = beat_packets(20)
            await ann.request({"type": "packets", "packets": packets[:10]})
            await ann.request({"type": "packets", "packets": packets[4:15]})  # 5-10 again
            seq = await ann.request({"type": "packets", "packets": packets[16:]})  # a hole
            err = await ann.reply_to(seq)
            assert err["code"] == "bad_field" and "send from 16" in err["message"]
            await ann.until(lambda f: f.get("packets_upto") == 15, seen=True)
            # a reconnecting relay learns where to resume
            async with client(svc.links[hosted.id]["ws"]["participant"] + "&mode=ingest") as again:
                assert (await again.recv())["packets_upto"] == 15
        assert hosted.duplicates_skipped == 6
    with open_store(data) as store:
        stored = [r for r in store.iter_input(hosted.id) if isinstance(r, PacketRecord)]
    assert [r.payload.hex() for r in stored] == [p["payload"] for p in packets[:15]]


async def test_relay_command_streams_a_simulated_strap(tmp_path: Path) -> None:
    import sys

    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay")])
        link = svc.links[hosted.id]["participants"]["ann"]["url"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vagus",
            "relay",
            "--server",
            link,
            "--sim",
            "--speed",
            "20",
            "--duration",
            "40",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), WAIT_S * 3)
        text = err.decode()
        assert proc.returncode == 0, text
        assert "Traceback" not in text and "token=" not in text
        stored = hosted.participants["ann"].durable_upto
        assert stored > 20 and f"{stored} stored by the server" in text
    with open_store(data) as store:
        packets = [r for r in store.iter_input(hosted.id) if isinstance(r, PacketRecord)]
    assert len(packets) == stored
