"""``vagus record`` and ``vagus monitor`` with several participants (``--participant
NAME=SOURCE``): one session, each record with its participant, control once; each
participant's stored input equals the same participant recorded alone with the same
seed; several straps at once on one adapter (the real BLE reader against the simulated
BlueZ)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from support.fake_bluez import BusEnvironment, FakeBlueZ, FakeStrap, ScriptedStrap, strap_address
from vagus.cli import _build_parser, main
from vagus.cli._participants import parse_participant, split_options
from vagus.core.events import Marker
from vagus.sources.base import BleSpec, SimSpec
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord
from vagus.store.sqlite import SqliteStore

#: Each participant's simulator: its seed and options (dropouts give stored gaps).
SUBJECTS = {
    "ann": ("1", "dropouts=[[40,6]]"),
    "bob": ("2", "ectopic_rate=0.02"),
    "cem": ("3", "contact_losses_per_hour=30"),
    "dee": ("4", "resting_hr_bpm=80,dropouts=[[20,3],[70,4]]"),
    "eva": ("5", "spontaneous_bpm=9"),
}
DURATION = "120"


def _sessions(data: Path) -> list[tuple[tuple[str, ...], list[InputRecord]]]:
    with SqliteStore(data / "sessions.sqlite3") as store:
        return [(s.participants, list(store.iter_input(s.id))) for s in store.list_sessions()]


def _source(name: str) -> str:
    seed, options = SUBJECTS[name]
    return f"{name}=sim:seed={seed},{options}"


def _alone(name: str, data: Path, capsys: pytest.CaptureFixture[str]) -> list[InputRecord]:
    """The participant's input recorded alone with ``--sim`` (same seed and options)."""
    seed, options = SUBJECTS[name]
    argv = ["record", "--sim", "--seed", seed, "--speed", "max", "--duration", DURATION]
    for item in split_options(options):
        argv += ["--sim-option", item]
    code = main([*argv, "--participant", name, "--data-dir", str(data)])
    assert code == 0, capsys.readouterr().err
    ((_names, records),) = _sessions(data)
    return [r for r in records if not isinstance(r, ControlRecord)]


@pytest.mark.parametrize("names", [("ann", "bob"), ("ann", "bob", "cem", "dee", "eva")])
def test_each_participant_stores_what_it_would_alone(
    names: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["record", "--speed", "max", "--duration", DURATION, "--json"]
    for name in names:
        argv += ["--participant", _source(name)]
    code = main([*argv, "--data-dir", str(tmp_path / "group")])
    out, err = capsys.readouterr()
    assert code == 0, err
    ((participants, records),) = _sessions(tmp_path / "group")
    assert participants == names
    # control records once for the session: the start and stop markers
    controls = [r.event for r in records if isinstance(r, ControlRecord)]
    assert [c.text for c in controls if isinstance(c, Marker)] == [
        "start",
        "stop: duration reached",
    ]
    for name in names:
        alone = _alone(name, tmp_path / name, capsys)
        mine = [r for r in records if isinstance(r, PacketRecord | GapRecord)]
        mine = [r for r in mine if r.participant == name]
        assert mine == alone, name
        assert any(isinstance(r, PacketRecord) for r in mine)
    assert any(isinstance(r, GapRecord) for r in records)  # ann's and dee's dropouts
    # --json: every event with its participant, session-wide ones with null
    events = [json.loads(line) for line in out.splitlines()]
    assert {e["participant"] for e in events if e["type"] == "beat"} == set(names)
    assert all(e["participant"] is None for e in events if e["type"] == "marker")
    # the summary line names each participant
    assert all(f"{name}: " in err.splitlines()[-1] for name in names)


def test_monitor_shows_a_line_per_participant(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["monitor", "--speed", "max", "--duration", "60"]
    argv += ["--participant", _source("ann"), "--participant", _source("bob")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert any(x.startswith("ann: ") and "HR " in x for x in lines)
    assert any(x.startswith("bob: ") and "HR " in x for x in lines)
    # the summary: one per participant
    assert any(x.startswith("ann: ") and " packets, " in x for x in lines)
    assert any(x.startswith("bob: ") and " packets, " in x for x in lines)


def test_participant_sources_are_parsed_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_participant("ann=sim") == ("ann", SimSpec(seed=0))
    name, spec = parse_participant("bob=sim:seed=7,dropouts=[[60,5],[90,2]],x=a")
    assert name == "bob" and isinstance(spec, SimSpec) and spec.seed == 7
    assert spec.options == {"dropouts": [[60, 5], [90, 2]], "x": "a"}
    assert parse_participant("cem=C0:FE:00:00:00:01") == (
        "cem",
        BleSpec(address="C0:FE:00:00:00:01"),
    )
    assert parse_participant("dee=HRM-Pro") == ("dee", BleSpec(name="HRM-Pro"))
    assert parse_participant("eva=strap:sim racer") == ("eva", BleSpec(name="sim racer"))
    assert parse_participant("me") == ("me", None)

    def usage(*argv: str) -> str:
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        assert exc.value.code == 2
        return capsys.readouterr().err

    assert "each participant needs its own name" in usage(
        "record", "--participant", "a=sim", "--participant", "a=sim:seed=2"
    )
    assert "say each participant's source there" in usage(
        "monitor", "--sim", "--participant", "a=sim"
    )
    assert "NAME=sim:seed=N" in usage("record", "--seed", "3", "--participant", "a=sim")
    assert "only for participants with a strap" in usage(
        "record", "--participant", "a=sim", "--retries", "2"
    )
    assert "only for simulated participants" in usage(
        "monitor", "--participant", "a=HRM", "--speed", "max"
    )
    assert "--participant a" in usage(
        "record", "--participant", "a=sim:nonsense_key=1", "--participant", "b=sim"
    )
    assert "give every participant its source" in usage(
        "record", "--participant", "a", "--participant", "b=sim"
    )
    assert "not KEY=VALUE" in usage("record", "--participant", "a=sim:seed")
    # the single-source form keeps working: --participant names the one participant
    args = _build_parser("record").parse_args(["record", "--sim", "--participant", "zoe"])
    assert args.participant == [("zoe", None)]


@pytest.mark.ble
async def test_two_straps_on_one_adapter_recorded_in_one_session(
    fake_bluez: FakeBlueZ, bluez_bus: BusEnvironment, tmp_path: Path
) -> None:
    """Two straps at once through the real BLE reader (bleak connects several devices
    on one adapter): each participant's records are exactly its strap's notifications."""
    fake_bluez.set_time_scale(20.0)
    one = fake_bluez.add_strap(FakeStrap(strap_address(0), "Polar H10 0A0B0C0D", ScriptedStrap(1)))
    two = fake_bluez.add_strap(FakeStrap(strap_address(1), "TICKR 1A2B", ScriptedStrap(2)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        "record",
        "--participant",
        f"ann={one.address}",
        "--participant",
        f"bob={two.address}",
        "--duration",
        "2",
        "--data-dir",
        str(tmp_path),
        env=bluez_bus.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    ((participants, records),) = _sessions(tmp_path)
    assert participants == ("ann", "bob")
    for name, strap in (("ann", one), ("bob", two)):
        stored = [
            r.payload for r in records if isinstance(r, PacketRecord) and r.participant == name
        ]
        sent = [p.payload for p in strap.sent_in(1)]
        assert len(stored) >= 20, name
        start = sent.index(stored[0])
        assert stored == sent[start : start + len(stored)], name
    assert one.connected is False and two.connected is False  # both let go at the end
    assert "connected to Polar H10 0A0B0C0D" in err.decode()
    assert "connected to TICKR 1A2B" in err.decode()
    assert out.decode().strip()  # the session id
