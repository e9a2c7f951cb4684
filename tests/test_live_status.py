"""The live status explains itself (issue 8 §3): what is still computing and how long
until it is ready, RMSSD over 30 s as soon as it exists, the pacer with an inhale/exhale
cue, beats (not packets) for imported sessions, and "(reconnecting)" only after a link
loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.cli._common import fit_status
from vagus.cli._live import LiveStatus, PacerClock, Readiness
from vagus.core.events import Beat, Event, Metrics, PacerChange, Spectrum
from vagus.core.pipeline import Pipeline
from vagus.sources.simulator import ipfm_rr_ms


def _rr(seconds: float, seed: int = 2) -> list[float]:
    """Clean RR (ms) of the virtual subject breathing at 6/min: a real, varying signal."""
    return [float(x) for x in ipfm_rr_ms(seconds, 6.0, seed=seed)]


def _feed_beat_by_beat(
    rr_ms: list[float], gap_after: int | None = None
) -> tuple[list[tuple[float, float, float, float]], list[Event]]:
    """Feed ``rr_ms`` one RR at a time; after each NN beat, what :class:`Readiness`
    predicted: (beat time, RMSSD30 in, RMSSD60 in, coherence in). Returns the
    predictions and all events."""
    pipeline = Pipeline()
    readiness = Readiness(spectrum_interval_s=pipeline.spectrum_interval_s)
    predictions: list[tuple[float, float, float, float]] = []
    events: list[Event] = []
    t = 0.0
    for i, rr in enumerate(rr_ms):
        t += rr / 1000.0
        if gap_after is not None and i == gap_after:
            pipeline.receive_gap(t, reason="link_lost")
            t += 20.0  # 20 s without beats
        pipeline.receive_rr(rr, t_s=t)
        for event in pipeline.events_received():
            events.append(event)
            readiness.absorb(event)
            if isinstance(event, Beat) and event.nn_ms is not None:
                predictions.append(
                    (
                        event.t_s,
                        readiness.rmssd_ready_in_s(30.0),
                        readiness.rmssd_ready_in_s(60.0),
                        readiness.coherence_ready_in_s(),
                    )
                )
    return predictions, events


def _first_time(events: list[Event], has_value: Callable[[Event], bool]) -> float:
    return next(e.t_s for e in events if has_value(e))


def test_ready_in_predicts_when_each_metric_first_has_a_value() -> None:
    """The countdown comes from the window rule and the beats, not from fixed times:
    from the very first beat, "last beat + ready in" is the time of the first value,
    to within a beat (the next beat's time is not known in advance)."""
    predictions, events = _feed_beat_by_beat(_rr(150.0))
    first_30 = _first_time(events, lambda e: isinstance(e, Metrics) and e.rmssd_30s_ms is not None)
    first_60 = _first_time(events, lambda e: isinstance(e, Metrics) and e.rmssd_60s_ms is not None)
    first_coh = _first_time(
        events, lambda e: isinstance(e, Spectrum) and e.coherence_ratio is not None
    )
    assert first_30 < first_60 < first_coh  # RMSSD30 shows well before RMSSD60
    nn_s = 60.0 / 65.0 * 1.1  # a beat, with margin: the subject's rate is about 65/min
    for t, in30, in60, in_coh in predictions:
        if t < first_30:
            assert in30 > 0 and abs(t + in30 - first_30) <= nn_s, (t, in30, first_30)
        else:
            assert in30 == 0
        if t < first_60:
            assert in60 > 0 and abs(t + in60 - first_60) <= nn_s, (t, in60, first_60)
        if t < first_coh - nn_s:
            # a spectrum at T is computed when the first beat at or after T arrives
            assert in_coh > 0 and 0 <= first_coh - (t + in_coh) <= nn_s, (t, in_coh, first_coh)


def test_after_a_gap_coherence_counts_down_again_from_the_new_segment() -> None:
    rr = _rr(300.0)
    predictions, events = _feed_beat_by_beat(rr, gap_after=150)
    t_gap = _first_time(events, lambda e: e.type == "gap")
    after = [p for p in predictions if p[0] > t_gap + 1.0]
    first_coh_after = _first_time(
        [e for e in events if e.t_s > t_gap],
        lambda e: isinstance(e, Spectrum) and e.coherence_ratio is not None,
    )
    t, _in30, _in60, in_coh = after[0]
    assert in_coh > 50  # the 64 s window starts again after the gap
    assert 0 <= first_coh_after - (t + in_coh) <= 1.0


def _status_after(rr_ms: list[float]) -> LiveStatus:
    pipeline = Pipeline()
    status = LiveStatus(device="sim", connected=True)
    t = 0.0
    for rr in rr_ms:
        t += rr / 1000.0
        pipeline.receive_rr(rr, t_s=t)
        status.add_events(pipeline.events_received())
        status.at(t)
    return status


def test_status_line_says_what_is_computing_instead_of_bare_dashes() -> None:
    rr = _rr(120.0)
    early = _status_after(rr[:10]).line()
    assert "--" not in early.split("battery")[0]  # no metric without a reason
    assert "RMSSD30 in " in early and "RMSSD60 in " in early and "coherence in " in early
    # RMSSD30 as soon as it exists, while RMSSD60 and coherence still count down
    n_30 = next(n for n in range(10, len(rr)) if _status_after(rr[:n]).rmssd_30s_ms is not None)
    middle = _status_after(rr[:n_30]).line()
    assert " ms  RMSSD60 in " in middle and "coherence in " in middle
    assert f"RMSSD30 {_status_after(rr[:n_30]).rmssd_30s_ms:.1f} ms" in middle
    late = _status_after(rr).line()
    assert " in " not in late and "coherence " in late
    # while the link is down nothing counts down, and the line says why
    down = _status_after(rr[:10])
    down.connected = False
    assert "RMSSD30 --" in down.line() and down.line().endswith("(reconnecting)")


def test_pacer_rate_and_inhale_exhale_cue() -> None:
    status = LiveStatus(device="sim", connected=True)
    assert "pacer" not in status.line()
    status.absorb(PacerChange(10.0, 6.0))  # 10 s breaths: 4 s in, 6 s out
    status.at(13.0)
    status.speed = None  # no moving on with the wall clock in this test
    assert "pacer 6/min inhale 1 s" in status.line()
    status.at(15.0)
    assert "pacer 6/min exhale 5 s" in status.line()
    status.absorb(PacerChange(20.0, None))
    assert "pacer" not in status.line()


def test_pacer_phase_is_continuous_across_a_rate_change() -> None:
    clock = PacerClock()
    clock.change(PacerChange(0.0, 6.0))
    clock.change(PacerChange(2.5, 12.0))  # a quarter of a breath done at 6/min
    assert clock.phase_at(2.5) == pytest.approx(0.25)
    assert clock.phase_at(3.75) == pytest.approx(0.5)  # then 12/min: 5 s a breath


def _vagus(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vagus", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env={**os.environ, "VAGUS_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_of_an_imported_session_counts_beats_and_never_says_reconnecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rr_file = tmp_path / "rr.txt"
    rr_file.write_text("\n".join(f"{v:.1f}" for v in _rr(90.0)) + "\n")
    data = str(tmp_path / "data")
    argv = ["import", str(rr_file), "--format", "plain", "--unit", "ms", "--data-dir", data]
    assert main([*argv, "-q", "--json"]) == 0
    sid = json.loads(capsys.readouterr().out)["id"]
    assert main(["replay", sid, "--speed", "50", "--data-dir", data]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "REPLAY" in x]
    assert lines and all("beats " in x and "packets" not in x for x in lines), err
    assert "reconnecting" not in err


def test_replay_of_a_recording_is_not_reconnecting_at_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path)
    assert main(["record", "--sim", "--speed", "max", "--duration", "20", "--data-dir", data]) == 0
    sid = capsys.readouterr().out.strip()
    assert main(["replay", sid, "--speed", "20", "--data-dir", data]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "REPLAY" in x]
    assert lines and lines[0].lstrip().startswith("0s"), err
    assert "reconnecting" not in err and all("packets " in x for x in lines)


def test_monitor_takes_markers_and_pacer_lines_as_control_events(tmp_path: Path) -> None:
    """As in `record`: typed lines become markers and pacer changes; the simulated subject
    breathes with the pacer; nothing is stored."""
    args = ["monitor", "--sim", "--speed", "max", "--duration", "150", "--seed", "4", "--json"]
    proc = _vagus(tmp_path, *args, "--markers-from-stdin", stdin="pacer 6\neyes closed\npacer 0\n")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["rate_bpm"] for e in events if e["type"] == "pacer"] == [6.0]
    assert [e["text"] for e in events if e["type"] == "marker"] == ["eyes closed"]
    assert "pacer 0" in proc.stderr and "1-40" in proc.stderr  # refused, with the range
    peaks = [e["peak_hz"] for e in events if e["type"] == "spectrum" and e["peak_hz"]]
    assert peaks and np.median(peaks[-5:]) == pytest.approx(0.1, abs=0.01)  # 6/min
    assert not (tmp_path / "sessions.sqlite3").exists()


def test_a_narrow_terminal_keeps_the_metrics_and_the_tail() -> None:
    """On a terminal the line is fitted to its width (a wrapped line cannot be rewritten
    in place): optional fields go first, never the metrics, a lost contact or the tail."""
    line = (
        "    12s  HR 64 bpm  RMSSD30 in 11 s  RMSSD60 in 33 s  coherence in 50 s  "
        "battery 87%  contact LOST  packets 12  gaps 0  NOT RECORDING"
    )
    assert fit_status(line, 140) == line  # it fits
    fitted = fit_status(line, 100)
    assert len(fitted) < 100 and fitted.endswith("contact LOST  NOT RECORDING")
    assert "battery" not in fitted and "coherence in 50 s" in fitted
    fitted = fit_status(line, 60)
    assert len(fitted) < 60 and fitted.endswith("…  NOT RECORDING")
