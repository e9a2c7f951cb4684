"""Coherence-adaptive guidance and a plan's phase through the live service (issue 12):
a real server on loopback, plain websocket clients, a real store.

- The practitioner's ``pacer`` frame with ``guidance`` turns it on (stored as the pacer
  change's ``guidance``); a relayed heart that follows a 6/min breath keeps coherence
  high, so the participant's pacer fades ("subtle") and comes back when the rhythm turns
  irregular. Replaying the stored session gives the same pacer states as were sent live.
- ``vagus demo --guidance LEVEL`` starts the session with guidance on.
- A plan's phase markers reach the participant (who gets no markers) as ``plan`` frames,
  and a late joiner has the latest in ``hello.state.plan``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from service_helpers import Client, beat_packets, check_server_frame, client, demo, service
from vagus.core.events import PacerChange, PacerState
from vagus.store.base import ControlRecord
from vagus.store.open import open_store
from vagus.store.replay import replay

_ENVELOPE = ("v", "session", "seq")


def _bare(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if k not in _ENVELOPE}


async def _packets(who: Client, packets: list[dict[str, Any]]) -> None:
    for k in range(0, len(packets), 200):
        seq = await who.request({"type": "packets", "packets": packets[k : k + 200]})
        assert (await who.reply_to(seq))["type"] == "ack"


async def test_guidance_set_by_the_practitioner_fades_the_pacer_and_replays_the_same(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with service(data) as svc:
        hosted = await svc.create_session([("ann", "relay")])
        links = svc.links[hosted.id]
        async with (
            client(links["ws"]["participant"]) as ann,
            client(links["ws"]["practitioner"]) as pr,
        ):
            await ann.recv()
            await pr.recv()
            # A level the service does not know is refused, naming the field.
            seq = await pr.request({"type": "pacer", "rate_bpm": 6, "guidance": "extreme"})
            err = await pr.reply_to(seq)
            assert err["type"] == "error" and err["code"] == "bad_field"
            assert "guidance" in err["message"] and "gentle" in err["message"]
            pacer = {"mode": "fixed", "rate_bpm": 6, "inhale_fraction": 0.5, "guidance": "gentle"}
            seq = await pr.request({"type": "pacer", **pacer})
            assert (await pr.reply_to(seq))["type"] == "ack"
            first = await ann.until(lambda f: f["type"] == "pacer_state", seen=True)
            assert first["guidance_level"] == "gentle" and "guidance" not in first
            # 220 s of a heart whose rate follows a 6/min breath (coherent), then 100 s
            # of an irregular rhythm; the relay's clock is mapped at its first packet.
            coherent = beat_packets(220, wobble=lambda i: 120.0 * math.sin(2 * math.pi * i / 10))
            rng = random.Random(3)
            irregular = beat_packets(
                100,
                start_seq=221,
                t0_s=float(coherent[-1]["t_s"]),
                wobble=lambda i: rng.uniform(-350.0, 350.0),
            )
            await _packets(ann, coherent)
            # (Frames read while waiting for the acks count: seen=True.)
            subtle = await ann.until(
                lambda f: f["type"] == "pacer_state" and f.get("guidance") == "subtle", seen=True
            )
            assert subtle["guidance_level"] == "gentle" and subtle["rate_bpm"] == 6.0
            await _packets(ann, irregular)
            back = await ann.until(
                lambda f: f["type"] == "pacer_state" and f["t_s"] > subtle["t_s"], seen=True
            )
            assert "guidance" not in back and back["guidance_level"] == "gentle"
            # The practitioner turns it off: the state says so. (Stamped with the server's
            # clock now, which the relayed packets, sent at once, ran ahead of.)
            seq = await pr.request({"type": "pacer", "guidance": "off"})
            await pr.reply_to(seq)
            off = await ann.until(
                lambda f: f["type"] == "pacer_state" and "guidance_level" not in f, seen=True
            )
            assert "guidance_level" not in off and off["rate_bpm"] == 6.0
            await pr.until(
                lambda f: f["type"] == "pacer_state" and f["t_s"] == off["t_s"], seen=True
            )
            for f in ann.frames + pr.frames:
                check_server_frame(f)
            live = [_bare(f) for f in pr.frames if f["type"] == "pacer_state"]
        await hosted.end()
    with open_store(data) as store:
        changes = [
            r.event
            for r in store.iter_input(hosted.id)
            if isinstance(r, ControlRecord) and isinstance(r.event, PacerChange)
        ]
        assert [c.guidance for c in changes] == ["gentle", "off"]
        replayed = [
            e.to_json()
            for step in replay(store, hosted.id)
            for e in step.events
            if isinstance(e.event, PacerState)
        ]
    assert [s.get("guidance", "full") for s in live] == ["full", "subtle", "full", "full"]
    assert replayed == live


async def test_plan_phase_reaches_the_participant_and_a_late_joiner(tmp_path: Path) -> None:
    async with service(tmp_path / "data") as svc:
        hosted = await svc.create_session([("ann", "relay")])
        links = svc.links[hosted.id]
        async with client(links["ws"]["participant"]) as ann, client(links["ws"]["viewer"]) as v:
            hello = await ann.recv()
            assert hello["state"]["plan"] is None
            await v.recv()
            hosted.add_marker("phase 1/2: practice (10 min)", None)
            plan = await ann.until(lambda f: f["type"] == "plan")
            check_server_frame(plan)
            assert plan["phase"] == "practice" and (plan["number"], plan["of"]) == (1, 2)
            assert plan["participant"] is None
            assert abs(plan["ends_s"] - (plan["t_s"] + 600.0)) < 1e-6
            # The viewer gets the marker itself and the plan state after it.
            marker = await v.until(lambda f: f["type"] == "marker")
            assert (await v.recv())["type"] == "plan"
            assert marker["t_s"] == plan["t_s"]
            # An ordinary marker makes no plan state; participants never see markers.
            hosted.add_marker("eyes closed", None)
            await v.until(lambda f: f["type"] == "marker" and f["text"] == "eyes closed")
            async with client(links["ws"]["participant"]) as late:
                state = (await late.recv())["state"]
                assert _bare(state["plan"]) == _bare(plan)
            hosted.add_marker("plan end", None)
            end = await ann.until(lambda f: f["type"] == "plan")
            check_server_frame(end)
            assert end["phase"] is None and end["ends_s"] is None
            assert not any(f["type"] == "marker" for f in ann.frames)


@pytest.mark.parametrize(
    ("rate", "guidance", "level"),
    [("5.5", "Medium", "medium"), ("0", "gentle", "gentle")],
)
async def test_demo_guidance_option_starts_the_session_with_guidance(
    tmp_path: Path, rate: str, guidance: str, level: str
) -> None:
    # With the pacer off (--rate 0) guidance is on from the start, for when it is set.
    async with (
        demo(tmp_path / "data", "--rate", rate, "--guidance", guidance) as links,
        client(links["ws"]["practitioner"]) as pr,
    ):
        pacer = (await pr.recv())["state"]["pacer"]
    rate_bpm = float(rate) or None
    assert pacer["rate_bpm"] == rate_bpm and pacer["mode"] == ("fixed" if rate_bpm else "off")
    assert pacer["guidance_level"] == level
    with open_store(tmp_path / "data") as store:
        (info,) = store.list_sessions()
        changes = [
            r.event
            for r in store.iter_input(info.id)
            if isinstance(r, ControlRecord) and isinstance(r.event, PacerChange)
        ]
    assert [(c.rate_bpm, c.guidance) for c in changes] == [(rate_bpm, level)]
