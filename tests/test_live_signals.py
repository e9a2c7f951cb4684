"""Options and signals of the live commands (issues 8 §4 and 13 §4): simulator options and
seeds are usage errors (exit status 2) naming the option, the simulated subject never
holds the event loop, and monitor and replay end on SIGTERM with the same summary as on
Ctrl-C (exit status 143 and 130)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from support.loop import LoopTurns
from support.processes import signal_when, sim_session, vagus_process
from vagus.cli import main
from vagus.exceptions import InvalidInput
from vagus.sources.base import DeviceInfo, LinkGap, Packet, SimSpec
from vagus.sources.simulator import MAX_INTERVALS, SimulatorSource, StrapConfig


@pytest.mark.parametrize("command", ["monitor", "record"])
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--sim-option", "foo=1"], "unknown simulator option(s) 'foo'"),
        (["--seed", "-1"], "--seed: '-1': give a whole number >= 0"),
        (["--seed", "1.5"], "--seed: '1.5': give a whole number >= 0"),
        (["--sim-option", "dropouts=[[1,1e308]]"], "'dropouts': [1, 1e+308]: the duration"),
        (["--sim-option", "dropouts=[[-5,2]]"], "'dropouts': [-5, 2]: the start must be"),
        (["--sim-option", "dropouts=[[1e300,2]]"], "'dropouts': [1e+300, 2]: the start must be"),
        (["--sim-option", "contact_losses=[[10,5],[12,5]]"], "'contact_losses': [12, 5]: the"),
        (["--sim-option", "dropouts=[[20,5],[10,5]]"], "in time order without overlapping"),
        (["--sim-option", "dropouts=5"], "'dropouts': expected intervals"),
        (["--sim-option", "dropouts=[[1,true]]"], "'dropouts': expected intervals"),
        (["--sim-option", "ectopic_rate=2"], "'ectopic_rate': must be 0-0.2 per beat"),
        (["--sim-option", "resting_hr_bpm=1e999"], "'resting_hr_bpm': expected float"),
        (["--sim-option", "battery_pct=1e999"], "'battery_pct': expected int"),
        (["--sim-option", "profile_id=nope"], "unknown profile 'nope'"),
    ],
)
def test_bad_simulator_options_are_usage_errors_naming_the_option(
    command: str,
    args: list[str],
    named: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [command, "--sim", *args, "--data-dir", str(tmp_path)][
                : None if command == "record" else -2
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"vagus {command}: error: " in err and named in err, err
    assert not (tmp_path / "sessions.sqlite3").exists()  # before any session is created


def test_too_many_intervals_are_refused() -> None:
    many = [[10.0 * k, 1.0] for k in range(MAX_INTERVALS + 1)]
    with pytest.raises(SystemExit) as exc:
        main(["monitor", "--sim", "--sim-option", f"dropouts={json.dumps(many)}"])
    assert exc.value.code == 2
    # the library refuses them as well, with the option named
    with pytest.raises(InvalidInput, match="'dropouts': at most 1000 intervals"):
        StrapConfig(dropouts=tuple((a, b) for a, b in many))


def test_the_simulator_source_checks_its_seed() -> None:
    with pytest.raises(InvalidInput, match="seed must be a whole number >= 0"):
        SimulatorSource(SimSpec(seed=-1))


async def test_a_long_dropout_never_holds_the_event_loop() -> None:
    """An hour without packets at max speed is simulated in steps, the loop running
    between them: other tasks (signal handlers, the status line) keep their turn."""
    spec = SimSpec(seed=1, speed=None, options={"dropouts": [[5.0, 3600.0]]})
    ticks_in_dropout = None
    async with LoopTurns() as turns, SimulatorSource(spec) as source:
        async for item in source:
            if isinstance(item, LinkGap):
                ticks_in_dropout = turns.count
            elif isinstance(item, Packet) and item.t_arrival_s > 3605.0:
                break
            assert isinstance(item, Packet | LinkGap | DeviceInfo)
    assert ticks_in_dropout is not None
    # 3600 s in steps of at most 30 s: the loop ran at least once per step
    assert turns.count - ticks_in_dropout >= 3600 / 30


# ------------------------------------------------------------------ signals


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_monitor_ends_on_sigterm_as_on_ctrl_c(
    tmp_path: Path, sig: int, code: int, name: str
) -> None:
    proc = vagus_process(tmp_path, "monitor", "--sim", "--speed", "10")
    status, err = signal_when(proc, "packets 1", sig)
    assert status == code, err
    assert f"stopped ({name})" in err and "Traceback" not in err
    assert "Vagus Simulated Strap" in err and " packets, " in err and " beats (" in err


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_replay_ends_on_sigterm_as_on_ctrl_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sig: int, code: int, name: str
) -> None:
    sid = sim_session(tmp_path, capsys, 300)
    proc = vagus_process(tmp_path, "replay", sid, "--speed", "5")
    status, err = signal_when(proc, "REPLAY", sig)
    assert status == code, err
    assert f"vagus replay: stopped ({name}) at " in err and "Traceback" not in err
    assert " beats, " in err and " gaps replayed in " in err
