"""Review: a served session, recorded, replayed over the websocket gives the same events."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from service_helpers import beat_packets, check_server_frame, client, service
from vagus.service.review import compute_replay

EVENT_KINDS = (
    "beat",
    "metrics",
    "spectrum",
    "gap",
    "contact",
    "pacer_state",
    "marker",
    "rsa",
    "resonance",
)
#: sent to every client that keeps up (metrics and spectra may be coalesced)
NEVER_DROPPED = ("beat", "gap", "contact", "pacer_state", "marker", "rsa", "resonance")


class Collector:
    """Every frame the session publishes (a bus subscriber that never coalesces)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def offer(self, frames: Any) -> None:
        self.events.extend(events([f.event for f in frames]))


def events(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events among frames, without the per-connection envelope."""
    return [
        {k: v for k, v in f.items() if k not in ("seq", "v", "session")}
        for f in frames
        if f["type"] in EVENT_KINDS
    ]


async def test_recorded_session_replays_the_same_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay"), ("bob", "relay")], title="r")
        links = svc.links[hosted.id]
        parts = links["participants"]
        everything = Collector()
        svc.bus.subscribe(hosted.id, everything)
        async with (
            client(links["ws"]["viewer"]) as viewer,
            client(links["ws"]["practitioner"]) as pr,
            client(parts["ann"]["ws"] + "&mode=ingest") as ann,
            client(parts["bob"]["ws"] + "&mode=ingest") as bob,
        ):
            for c in (viewer, pr, ann, bob):
                await c.recv()
            await pr.request({"type": "pacer", "rate_bpm": 6, "inhale_fraction": 0.4})
            await ann.request({"type": "packets", "packets": beat_packets(120, rr_ms=900)})
            await pr.request({"type": "marker", "text": "halfway"})
            await bob.request({"type": "packets", "packets": beat_packets(90, rr_ms=1100)})
            gap = {"seq": 121, "t_s": 1200.0, "gap": "link_lost"}
            await ann.request(
                {"type": "packets", "packets": [gap, *beat_packets(30, start_seq=122, t0_s=1210.0)]}
            )
            await ann.until(lambda f: f.get("packets_upto") == 151, seen=True)
            await bob.until(lambda f: f.get("packets_upto") == 90, seen=True)
            await pr.request({"type": "end"})
            await viewer.until(lambda f: f["type"] == "status" and f["ended"], seen=True)
        live = everything.events
        assert {e["type"] for e in live} >= {
            "beat",
            "metrics",
            "spectrum",
            "gap",
            "pacer_state",
            "marker",
        }
        # the stored input, replayed, gives exactly what the live session published
        assert list(compute_replay(data, hosted.id).events) == live
        shown = events(viewer.frames)
        assert [e for e in shown if e["type"] in NEVER_DROPPED] == [
            e for e in live if e["type"] in NEVER_DROPPED
        ]
        # review with the practitioner's token, as fast as possible
        review_url = svc.ws_url(
            hosted.id, links["ws"]["practitioner"].split("token=")[1], review=True
        )
        async with client(review_url) as rv:
            hello = await rv.recv()
            check_server_frame(hello)
            assert hello["mode"] == "review" and hello["review"]["playing"] is False
            timeline = hello["review"]["timeline"]
            assert timeline == [e for e in live if e["type"] in ("marker", "pacer_state")]
            assert sorted(e.get("text") for e in timeline if e["type"] == "marker") == [
                "halfway",
                "start",
                "stop: ended by the practitioner",
            ]
            assert [e["rate_bpm"] for e in timeline if e["type"] == "pacer_state"] == [6.0]
            await rv.request({"type": "review", "action": "speed", "speed": 0})
            await rv.request({"type": "review", "action": "play"})
            end = await rv.until(
                lambda f: f["type"] == "review_state" and not f["playing"] and f["t_s"] > 0
            )
            assert end["t_s"] == end["duration_s"]
            for f in rv.frames:
                check_server_frame(f)
            replayed = events(rv.frames)
            assert [e for e in replayed if e["type"] in NEVER_DROPPED] == [
                e for e in live if e["type"] in NEVER_DROPPED
            ]
            assert all(e in live for e in replayed)
            for kind in ("metrics", "spectrum"):  # the last ones are never coalesced away
                assert [e for e in replayed if e["type"] == kind][-1] == [
                    e for e in live if e["type"] == kind
                ][-1]
            # seek: a snapshot of the state then, and play on from there
            seek_t = 60.0
            seq = await rv.request({"type": "review", "action": "seek", "t_s": seek_t})
            snap = await rv.until(lambda f: f["type"] == "snapshot")
            check_server_frame(snap)
            beats = snap["state"]["beats"]["ann"]
            assert beats and max(b["t_s"] for b in beats) <= seek_t
            assert [m["text"] for m in snap["state"]["markers"]] == [
                m["text"] for m in live if m["type"] == "marker" and m["t_s"] <= seek_t
            ]
            state = await rv.until(lambda f: f["type"] == "review_state" and f.get("re") == seq)
            assert state["t_s"] == seek_t
            # a live-only frame is refused on a review connection
            seq = await rv.request({"type": "pacer", "rate_bpm": 6})
            assert (await rv.reply_to(seq))["code"] == "forbidden"
        # the review page's link to the HTML report: the session's report for its
        # practitioner or viewer token, 403 without a token or with a participant's
        report_path = hello["review"]["report_url"]
        assert report_path == f"/s/{hosted.id}/report"
        pr_token = links["ws"]["practitioner"].split("token=")[1]
        ann_token = parts["ann"]["ws"].split("token=")[1]
        status, body = await asyncio.to_thread(
            _get, f"{svc.base_url}{report_path}?token={pr_token}"
        )
        assert status == 200 and body.lstrip().lower().startswith(b"<!doctype html")
        assert b"ann" in body and b"bob" in body and b"halfway" in body
        for query in ("", f"?token={ann_token}", "?token=wrong"):
            status, _ = await asyncio.to_thread(_get, f"{svc.base_url}{report_path}{query}")
            assert status == 403


def _get(url: str) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET (errors included, as the browser would see them)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
