"""The batch path (vagus.core.batch) gives exactly what the live Pipeline gives.

``vagus analyze`` of a plain RR list computes the corrected beats and the spectra with
:class:`~vagus.core.batch.BatchPipeline` (numpy over blocks) instead of feeding the
live :class:`~vagus.core.pipeline.Pipeline` value by value (issue 13 §5: 10 million beats
in under 60 s). Every test here feeds the same RR values to both, the pipeline as
``vagus analyze --engine pipeline`` feeds it (``receive_rr`` in batches, a value above
2.5 s alone), and asserts that the Beat events (time, RR, class, NN, inserted) and the
spectra (time, coherence ratio, peak frequency) are equal, float for float: on simulated
subjects with strap artifacts of every class, the real recordings in ../shared/data,
steps of heart rate, gaps and out-of-range values, blocks cut at every position; and
that ``vagus analyze`` prints the same text and JSON with either engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.core.batch import ARTIFACT_CODES, BatchCorrector, BatchPipeline
from vagus.core.events import Beat, Gap, Spectrum
from vagus.core.hrm import parse_fields
from vagus.core.pipeline import Pipeline
from vagus.exceptions import InvalidInput
from vagus.sources.base import Packet
from vagus.sources.simulator import StrapConfig, VirtualStrap, ipfm_rr_ms

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_RR_MS = 2500.0


def live_events(rr_ms: np.ndarray, step_s: float = 5.0, feed: int = 4096) -> list[object]:
    """The pipeline's events for cumulative RR input, fed as ``vagus analyze`` feeds it."""
    pipeline = Pipeline(spectrum_interval_s=step_s)
    events: list[object] = []
    x = np.asarray(rr_ms, dtype=float)
    start = 0
    for i in [*np.flatnonzero(x > MAX_RR_MS).tolist(), x.size]:
        for a in range(start, i, feed):
            pipeline.receive_rr(x[a : min(i, a + feed)].tolist())
            events += pipeline.events_received()
        if i < x.size:
            pipeline.receive_rr([float(x[i])])
            events += pipeline.events_received()
        start = i + 1
    pipeline.close()
    events += pipeline.events_received()
    return events


def batch_results(
    rr_ms: np.ndarray, step_s: float = 5.0, block: int = 100_000
) -> tuple[list[Beat], list[int], list[tuple[float, float | None, float | None]]]:
    """Beats, their segments and the spectra (t, peak, ratio) of the batch path, fed in
    blocks of ``block`` values."""
    batch = BatchPipeline(spectrum_interval_s=step_s)
    beats: list[Beat] = []
    segments: list[int] = []
    spectra: list[tuple[float, float | None, float | None]] = []

    def take() -> None:
        res = batch.results_received()
        beats.extend(res.beats.to_events())
        segments.extend(res.beats.segment.tolist())
        for t, pk, cr in zip(
            res.spectra.t_s.tolist(),
            res.spectra.peak_hz.tolist(),
            res.spectra.coherence_ratio.tolist(),
            strict=True,
        ):
            spectra.append((t, None if math.isnan(pk) else pk, None if math.isnan(cr) else cr))

    x = np.asarray(rr_ms, dtype=float)
    for a in range(0, x.size, block):
        batch.receive_rr(x[a : a + block])
        take()
    batch.close()
    take()
    return beats, segments, spectra


def assert_same(
    rr_ms: np.ndarray, step_s: float = 5.0, blocks: tuple[int, ...] = (100_000,)
) -> list[Beat]:
    """Assert the batch path equals the pipeline, for each block size; the live beats."""
    events = live_events(rr_ms, step_s)
    live_beats = [e for e in events if isinstance(e, Beat)]
    live_spectra = [
        (e.t_s, e.peak_hz, e.coherence_ratio) for e in events if isinstance(e, Spectrum)
    ]
    # Segment of each beat: the number of gaps that resumed before it.
    live_segments = []
    seg = 0
    for e in events:
        if isinstance(e, Gap) and e.duration_s is not None:
            seg += 1
        elif isinstance(e, Beat):
            live_segments.append(seg)
    for block in blocks:
        beats, segments, spectra = batch_results(rr_ms, step_s, block)
        assert len(beats) == len(live_beats), block
        for i, (got, want) in enumerate(zip(beats, live_beats, strict=True)):
            assert got == want, (block, i, got, want)
        assert segments == live_segments, block
        assert spectra == live_spectra, block
    return live_beats


def classes(beats: list[Beat]) -> set[str]:
    return {b.artifact for b in beats if b.artifact is not None}


# ------------------------------------------------------------------ simulated subjects


def strap_rr(seed: int, duration_s: float, **config: float) -> np.ndarray:
    """RR (ms) the simulated strap sends, artifacts included (1/1024 s ticks)."""
    strap = VirtualStrap(strap=StrapConfig(**config), seed=seed)  # type: ignore[arg-type]
    ticks: list[int] = []
    for item in strap.packets_until(duration_s):
        if isinstance(item, Packet):
            ticks.extend(parse_fields(item.payload)[3])
    rr = np.asarray(ticks, dtype=float) * 0.9765625
    return rr[rr > 0]  # a plain file holds positive values only


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_strap_with_artifacts(seed: int) -> None:
    rr = strap_rr(seed, 1500.0, missed_rate=0.02, extra_rate=0.02, ectopic_rate=0.03)
    beats = assert_same(rr, blocks=(100_000, 997))
    assert {"missed", "extra", "ectopic"} <= classes(beats)


def injected(seed: int, n_beats: int = 2500) -> np.ndarray:
    """Clean IPFM RR with every kind of artifact injected by hand (seeded)."""
    rr = ipfm_rr_ms(n_beats * 0.9, 6.0, seed=seed)[:n_beats].copy()
    rng = np.random.default_rng(seed)
    out: list[float] = []
    i = 0
    while i < rr.size - 2:
        u = rng.random()
        if u < 0.01:  # missed: two intervals merged
            out.append(rr[i] + rr[i + 1])
            i += 2
            continue
        if u < 0.02:  # extra: one split in two
            f = rng.uniform(0.2, 0.8)
            out += [rr[i] * f, rr[i] * (1 - f)]
        elif u < 0.03:  # ectopic: premature, compensatory pause
            out += [rr[i] * 0.6, rr[i + 1] + rr[i] * 0.4]
            i += 1
        elif u < 0.035:  # long / short
            out.append(rr[i] * rng.choice([1.45, 0.6]))
        elif u < 0.04:  # a spurious R peak a few ms after the true one (range)
            out += [rng.uniform(5.0, 240.0), rr[i]]
        elif u < 0.042:  # an interval beyond 2.5 s: a gap
            out.append(rng.uniform(2600.0, 9000.0))
        else:
            out.append(rr[i])
        i += 1
    return np.asarray(out)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_injected_artifacts_of_every_class(seed: int) -> None:
    rr = injected(seed, 2000)
    beats = assert_same(rr, blocks=(100_000, 3, 64, 333) if seed else (100_000, 1, 2, 5))
    assert set(ARTIFACT_CODES[1:]) <= classes(beats)


def test_blocks_cut_at_every_position() -> None:
    # A short stretch dense with artifacts, cut into two blocks at every position.
    rr = injected(7, 160)
    want = live_events(rr)
    want_beats = [e for e in want if isinstance(e, Beat)]
    for cut in range(1, rr.size):
        batch = BatchPipeline()
        batch.receive_rr(rr[:cut])
        first = batch.results_received().beats.to_events()
        batch.receive_rr(rr[cut:])
        batch.close()
        beats = first + batch.results_received().beats.to_events()
        assert beats == want_beats, cut


# ------------------------------------------------------------------ real recordings


def test_real_recording_nsr001() -> None:
    # 15,000 beats of the 24 h Holter record (1/128 s quantised), 5 s and 10 s spectra.
    rr = np.loadtxt(DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt")[1:15_001] * 1000.0
    assert_same(rr, 5.0, blocks=(100_000, 4096))
    assert_same(rr, 10.0)


@pytest.mark.parametrize("name", ["SampleNNISeriesLong.txt", "SampleNNISeriesShort.txt"])
def test_real_recordings_pyhrv(name: str) -> None:
    rr = np.loadtxt(DATA / "pyhrv" / name)
    assert_same(rr, blocks=(100_000, 50))


def test_real_recording_heartmath_and_vu() -> None:
    hm = np.loadtxt(DATA / "wearablehrv" / "test_heartmath.csv", delimiter=",", skiprows=1)
    assert_same(hm[:, 1])
    vu = []
    for line in (DATA / "wearablehrv" / "test_vu.txt").read_text().splitlines():
        try:
            vu.append(float(line.split("\t")[2]))
        except (ValueError, IndexError):
            continue
    rr = np.asarray(vu)
    rr = rr[(rr > 0) & (rr < 60_000)]
    assert rr.size > 100
    assert_same(rr)


# ------------------------------------------------------------------ steps, gaps, ranges


@pytest.mark.parametrize("ratio", [1.2, 1.5, 2.0, 2.5])
@pytest.mark.parametrize("up", [True, False])
def test_steps_of_heart_rate(ratio: float, up: bool) -> None:
    rng = np.random.default_rng(int(ratio * 10) + up)
    slow, fast = 60000.0 / 40.0, 60000.0 / (40.0 * ratio)
    a, b = (slow, fast) if up else (fast, slow)
    level = np.r_[np.full(150, a), np.full(150, b), np.full(150, a)]
    k = np.arange(level.size)
    noisy = level * (1 + 0.05 * np.sin(2 * np.pi * k / 4.5) + rng.normal(0, 0.015, k.size))
    assert_same(level, blocks=(100_000, 7))
    assert_same(noisy, blocks=(100_000, 7))


def test_gaps_and_out_of_range_values() -> None:
    rng = np.random.default_rng(5)
    rr = 900 + rng.normal(0, 40, 3000)
    rr[0] = 4000.0  # a long value first: a gap before any beat
    rr[[100, 101, 102]] = [3000.0, 50000.0, 2600.0]  # a run of long values: one gap
    rr[[500, 501]] = [100.0, 120.0]  # two short values in a row
    rr[700] = 0.5  # a spurious peak
    rr[[900, 1800, 2500]] = 2500.0  # the top of the range: in range
    rr[[1000, 1001, 1002, 1003]] = 200.0  # a run of short values
    rr[-1] = 5000.0  # a long value last: a gap that never ends
    beats = assert_same(rr, blocks=(100_000, 3, 101))
    assert "range" in classes(beats)


def test_segments_and_spectra_over_many_gaps() -> None:
    # Gaps of every length, so spectra fall due inside gaps and right after them.
    rng = np.random.default_rng(9)
    rr = 1000 + 50 * np.sin(np.arange(10_000) / 2.0) + rng.normal(0, 20, 10_000)
    rr[rng.choice(10_000, 40, replace=False)] = rng.uniform(2600, 60_000, 40)
    assert_same(rr, 5.0, blocks=(100_000, 1000))
    assert_same(rr, 15.0)


def test_a_gap_every_few_beats() -> None:
    # Many short segments (1-20 beats): segments start and end inside every block.
    rng = np.random.default_rng(12)
    rr = 850 + rng.normal(0, 40, 2000)
    rr[np.cumsum(rng.integers(1, 21, 200))[:150]] = 3000.0
    rr[rng.choice(2000, 20, replace=False)] *= rng.choice([0.5, 2.0], 20)
    assert_same(rr, 5.0, blocks=(100_000, 2, 17, 256))


def test_a_long_segment_trims_the_spectrum_history() -> None:
    # Over 2048 NN beats in one segment: the pipeline trims its spectrum history; the
    # batch path replays the trims (short intervals make the 2048 beats < 360 s).
    rng = np.random.default_rng(2)
    rr = 300 + rng.normal(0, 8, 6000)
    assert_same(rr, 5.0, blocks=(100_000, 2047))


def test_corrector_alone_equals_the_live_corrector() -> None:
    from vagus.core.artifacts import Lipponen2019

    rr = injected(11)
    rr = rr[rr <= MAX_RR_MS]
    t = np.cumsum(rr / 1000.0)
    live = Lipponen2019()
    want: list[Beat] = []
    for ti, ri in zip(t.tolist(), rr.tolist(), strict=True):
        want += live.push(ti, ri)
    want += live.flush()
    for block in (2, 4, 1000):
        corr = BatchCorrector()
        got: list[Beat] = []
        for a in range(0, rr.size, block):
            got += corr.push(t[a : a + block], rr[a : a + block]).to_events()
        got += corr.flush().to_events()
        assert got == want, block


def test_batch_pipeline_rejects_what_the_pipeline_rejects() -> None:
    batch = BatchPipeline()
    for bad in ([800.0, -1.0], [800.0, math.nan], [0.0]):
        with pytest.raises(InvalidInput):
            batch.receive_rr(np.asarray(bad))
    batch.receive_rr(np.asarray([800.0]))
    with pytest.raises(InvalidInput):
        batch.receive_rr(np.asarray([800.0]), t_s=10.0)  # t_s only first
    batch.close()
    with pytest.raises(InvalidInput):
        batch.receive_rr(np.asarray([800.0]))
    with pytest.raises(InvalidInput):
        BatchPipeline(spectrum_interval_s=0.0)
    with pytest.raises(InvalidInput):
        BatchCorrector(window_beats=2)


# ------------------------------------------------------------------ vagus analyze


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--every", "60"],
        ["--json"],
        ["--json", "--every", "5"],
    ],
)
def test_analyze_output_is_the_same_with_either_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    f = tmp_path / "rr.txt"
    rr = injected(3, 4000)
    f.write_text("# injected\n" + "".join(f"{v:.3f}\n" for v in rr))
    got = run_cli(["analyze", str(f), *extra], capsys)
    want = run_cli(["analyze", str(f), *extra, "--engine", "pipeline"], capsys)
    assert got == want
    if "--json" in extra:
        obj = json.loads(got)
        assert obj["nn_beats"] > 3000 and obj["gaps"] > 0
        assert set(obj["artifacts"]) >= {"missed", "extra", "ectopic", "range"}


def test_analyze_over_a_day_same_with_either_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Over 24 h of beat time: spectra every S > 5 s, on both paths at the same times.
    f = tmp_path / "rr.txt"
    rng = np.random.default_rng(4)
    n = 55_000
    rr = 1600 + 60 * np.sin(2 * np.pi * np.arange(n) / 5.5) + rng.normal(0, 25, n)
    rr[rng.choice(n, 200, replace=False)] *= rng.choice([0.5, 2.0], 200)
    f.write_text("".join(f"{v:.1f}\n" for v in rr))
    got = json.loads(run_cli(["analyze", str(f), "--json"], capsys))
    want = json.loads(run_cli(["analyze", str(f), "--json", "--engine", "pipeline"], capsys))
    assert got["spectrum_interval_s"] == want["spectrum_interval_s"] == 10.0
    assert got == want


def test_analyze_first_value_is_time_same_with_either_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nsr = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"
    head = nsr.read_text().splitlines()[:3001]
    f = tmp_path / "rr_secs.txt"
    f.write_text("\n".join(head) + "\n")
    argv = ["analyze", str(f), "--unit", "s", "--first-value-is-time", "--json"]
    assert run_cli(argv, capsys) == run_cli([*argv, "--engine", "pipeline"], capsys)
    # A first RR beyond the range after the first-beat time: the pipeline's own way.
    f.write_text("12.5\n3.1\n" + "\n".join(head[2:]) + "\n")
    assert run_cli(argv, capsys) == run_cli([*argv, "--engine", "pipeline"], capsys)
