"""Arrival-stamped imports (Polar Sensor Logger, HRV Logger): clock steps and dropouts.

The phone stamps each RR when it arrived; beat times come from the RR chain and the
stamps only find gaps (``beat_times_from_arrivals``, SCIENCE.md "Beats and time"). A
phone clock that steps back is one ``"clock"`` break at the step, and loses no time; a
step forward with beats missing is one ``"dropout"`` break at the first beat after them.
The Polar files are built here; the HeartMath file is the shared real recording.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from vagus.core.events import Gap
from vagus.core.pipeline import Pipeline
from vagus.formats.common import beat_times_from_arrivals
from vagus.formats.registry import read_rr_file
from vagus.store.base import feed

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"
T0 = dt.datetime(2024, 3, 1, 9, 30, 0)


def polar_file(
    path: Path,
    rr_ms: list[float],
    *,
    step_at: int | None = None,
    step_s: float = 0.0,
    drop: range | None = None,
    jitter: bool = False,
) -> None:
    """A Polar Sensor Logger ``_RR.txt`` whose phone clock moves by ``step_s`` from beat
    ``step_at`` on (beats of ``drop`` are left out: lost beats). With ``jitter``: packets
    of 1-3 beats share a stamp, latency 20-300 ms and a 1.5 s late burst now and then;
    a packet never straddles ``step_at``.
    """
    rng = np.random.default_rng(11)
    lines = ["Phone timestamp;RR-interval [ms]"]
    t = 0.0
    i = 0
    while i < len(rr_ms):
        k = int(rng.integers(1, 4)) if jitter else 1
        if step_at is not None and i < step_at:
            k = min(k, step_at - i)
        group = range(i, min(i + k, len(rr_ms)))
        t += sum(rr_ms[j] for j in group) / 1000.0
        late = float(rng.uniform(0.02, 0.3)) + (1.5 if i % 41 == 0 else 0.0) if jitter else 0.1
        clock = step_s if step_at is not None and i >= step_at else 0.0
        stamp = (T0 + dt.timedelta(seconds=t + late + clock)).isoformat(timespec="milliseconds")
        lines.extend(f"{stamp};{rr_ms[j]:.0f}" for j in group if drop is None or j not in drop)
        i += k
    path.write_text("\n".join(lines) + "\n")


def assert_chain(t: np.ndarray, rr: np.ndarray, *, except_at: frozenset[int] = frozenset()) -> None:
    """Beat times follow the RR chain everywhere but at ``except_at``."""
    for i in range(1, t.size):
        if i not in except_at:
            assert t[i] - t[i - 1] == pytest.approx(rr[i] / 1000.0, abs=1e-9), i


@pytest.mark.parametrize("step_s", [-5.0, -60.0])
def test_clock_step_back_is_one_break_at_the_step(tmp_path: Path, step_s: float) -> None:
    f = tmp_path / "Polar_H10_ABC123_20240301_093000_RR.txt"
    polar_file(f, [800.0] * 300, step_at=150, step_s=step_s)
    got = read_rr_file(f)
    assert got.format == "polar"
    assert got.breaks == ((150, "clock"),)
    assert got.t_s is not None
    # The clock moved, not the heart: no time is lost and none is taken away.
    assert_chain(np.asarray(got.t_s), np.asarray(got.rr_ms))
    assert got.duration_s == pytest.approx(240.0)
    assert got.started_unix_s == pytest.approx(T0.timestamp(), abs=0.11)


@pytest.mark.parametrize("step_s", [-3.0, -5.0, -60.0])
def test_clock_step_back_with_packets_bursts_and_variable_rr(tmp_path: Path, step_s: float) -> None:
    rng = np.random.default_rng(5)
    rr = [float(round(v)) for v in rng.normal(850.0, 50.0, 600)]
    f = tmp_path / "x_RR.txt"
    polar_file(f, rr, step_at=300, step_s=step_s, jitter=True)
    got = read_rr_file(f)
    assert got.breaks == ((300, "clock"),)
    assert got.duration_s == pytest.approx(sum(rr) / 1000.0)
    assert got.t_s is not None
    assert_chain(np.asarray(got.t_s), np.asarray(got.rr_ms))


def test_dropout_is_one_break_at_the_first_beat_after_it(tmp_path: Path) -> None:
    rr = [800.0] * 300
    f = tmp_path / "x_RR.txt"
    polar_file(f, rr, drop=range(150, 160))
    got = read_rr_file(f)
    assert got.beats == 290
    assert got.breaks == ((150, "dropout"),)
    assert got.t_s is not None
    t = np.asarray(got.t_s)
    assert_chain(t, np.asarray(got.rr_ms), except_at=frozenset({150}))
    # The 10 lost beats (8 s) are the gap; the duration is the arrival clock's.
    assert t[150] - 0.8 - t[149] == pytest.approx(8.0, abs=1e-6)
    assert got.duration_s == pytest.approx(240.0, abs=1e-6)


def test_clock_step_then_dropout_keep_times_increasing(tmp_path: Path) -> None:
    rr = [800.0] * 400
    f = tmp_path / "x_RR.txt"
    # The clock steps back 60 s at beat 100; beats 250-259 are lost later.
    polar_file(f, rr, step_at=100, step_s=-60.0, drop=range(250, 260))
    got = read_rr_file(f)
    assert got.breaks == ((100, "clock"), (250, "dropout"))
    assert got.t_s is not None
    t = np.asarray(got.t_s)
    assert np.all(np.diff(t) > 0)
    assert t[250] - 0.8 - t[249] == pytest.approx(8.0, abs=1e-6)
    assert got.duration_s == pytest.approx(320.0, abs=1e-6)


def test_clock_break_reaches_the_pipeline_as_a_gap(tmp_path: Path) -> None:
    f = tmp_path / "x_RR.txt"
    polar_file(f, [800.0] * 300, step_at=150, step_s=-5.0)
    p = Pipeline()
    for r in read_rr_file(f).records():
        feed(p, r)
    p.close()
    gaps = [e for e in p.events_received() if isinstance(e, Gap)]
    assert [g.reason for g in gaps] == ["clock"]
    assert gaps[0].duration_s == pytest.approx(0.0, abs=1e-9)


def test_slow_drift_is_no_break() -> None:
    # A phone clock 500 ppm slow (0.45 s in 15 min) and a step back of 4 s at beat 1000.
    rr = np.full(2000, 900.0)
    chain = np.cumsum(rr) / 1000.0
    arrival = chain * (1 - 500e-6) + 0.1
    arrival[1000:] -= 4.0
    t, breaks, t0 = beat_times_from_arrivals(rr, arrival)
    assert breaks == [(1000, "clock")]
    # t == 0 sits at the first segment's lag floor (its last beats, the clock being slow).
    assert t0 == pytest.approx(0.1 - 900.0 * 500e-6, abs=1e-3)
    assert np.allclose(np.diff(t), rr[1:] / 1000.0)


def test_heartmath_real_file_keeps_its_breaks() -> None:
    if not HEARTMATH.exists():
        pytest.skip(f"{HEARTMATH} is absent (the shared recordings are not next to the project)")
    got = read_rr_file(HEARTMATH)
    # Counted before the clock-step fix: 18 dropouts (4-30 s each), no clock step.
    assert [i for i, _ in got.breaks] == [
        94, 320, 338, 460, 490, 522, 568, 600, 602, 608, 620, 764, 882, 1134, 1418, 1440,
        1798, 3022,
    ]  # fmt: skip
    assert {r for _, r in got.breaks} == {"dropout"}
