"""Issue 13 §5: big and endless inputs are streamed; the numbers stay the pipeline's."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.cli.analyze import analyze_events, analyze_path, spectrum_interval, window_rows
from vagus.core.metrics import summarize_events
from vagus.exceptions import FileFormatError
from vagus.formats.plain import read_rr_text


def rr_file(path: Path, n: int, seed: int = 0, gaps: bool = False) -> np.ndarray:
    """A seeded RR list (ms) with breathing, noise and a few artifacts (and long values)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    rr = 850 + 60 * np.sin(2 * np.pi * i / 5.5) + rng.normal(0, 25, n)
    rr[rng.choice(n, max(1, n // 500), replace=False)] *= rng.choice([0.5, 2.0])
    if gaps:
        rr[[n // 3, 2 * n // 3]] = 4000.0  # beyond 2.5 s: a gap each
    path.write_text("# seeded\n" + "".join(f"{v:.1f}\n" for v in rr))
    return rr


def close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    assert isinstance(a, float | int) and isinstance(b, float | int)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("gaps", [False, True])
def test_streamed_analysis_equals_the_event_list_definitions(tmp_path: Path, gaps: bool) -> None:
    # The streamed fold gives the numbers of summarize_events + window_rows over the
    # kept events (which recompute coherence offline every 5 s).
    f = tmp_path / "rr.txt"
    rr_file(f, 6000, gaps=gaps)
    _, events = analyze_events(f, "plain", "ms")
    want = summarize_events(events)
    got = analyze_path(f, "plain", "ms", every_s=60.0)
    assert got.spectrum_interval_s == 5.0
    s = got.summary
    assert s.beats == want.beats and s.beats_measured == want.beats_measured
    assert s.artifacts == want.artifacts and s.gaps == want.gaps == (2 if gaps else 0)
    for name in ("duration_s", "mean_nn_ms", "hr_bpm", "sdnn_ms", "rmssd_ms", "pnn50_pct"):
        assert close(getattr(s, name), getattr(want, name)), name
    assert close(s.sdsd_ms, want.sdsd_ms)
    assert s.coherence_median == want.coherence_median
    assert s.peak_hz_median == want.peak_hz_median
    f_got, f_want = s.frequency, want.frequency
    assert f_got.welch_windows == f_want.welch_windows > 0
    for name in ("vlf_ms2", "lf_ms2", "hf_ms2", "lf_hf"):
        assert close(getattr(f_got, name), getattr(f_want, name)), name
    rows = window_rows(events, 60.0)
    assert len(got.rows) == len(rows) > 50
    for r_got, r_want in zip(got.rows, rows, strict=True):
        assert r_got.keys() == r_want.keys()
        for key in r_got:
            assert close(r_got[key], r_want[key]), (key, r_got, r_want)


def test_whole_recording_sums_are_numerically_stable(tmp_path: Path) -> None:
    # A large offset and a tiny spread: a running sum of squares loses every digit,
    # the pairwise (Chan/Welford) update keeps them (compare with numpy).
    f = tmp_path / "rr.txt"
    rng = np.random.default_rng(3)
    rr = 2000.0 + rng.normal(0, 0.01, 20_000).round(4)
    f.write_text("".join(f"{v:.4f}\n" for v in rr))
    s = analyze_path(f, "plain", "ms").summary
    assert s.artifacts == {}
    assert s.sdnn_ms == pytest.approx(float(np.std(rr, ddof=1)), rel=1e-9)
    d = np.diff(rr)
    assert s.sdsd_ms == pytest.approx(float(np.std(d, ddof=1)), rel=1e-9)
    assert s.rmssd_ms == pytest.approx(float(np.sqrt(np.mean(d * d))), rel=1e-9)
    assert s.mean_nn_ms == pytest.approx(float(np.mean(rr)), rel=1e-12)


@pytest.mark.timeout(900)
def test_analyze_memory_does_not_grow_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 200,000 beats (~47 h): keeping the events took ~1.4 KB per beat (280 MB here). The
    # fold keeps a batch, the spectra's values and the pipeline's windows.
    from vagus.cli import analyze
    from vagus.formats import plain

    monkeypatch.setattr(plain, "CHUNK_BYTES", 1 << 16)
    monkeypatch.setattr(analyze, "_SPOOL_BLOCK", 1 << 14)
    monkeypatch.setattr(analyze, "_FOLD_BATCH", 1 << 13)
    small = tmp_path / "small.txt"
    rr_file(small, 500)
    analyze_path(small, "plain", "ms")  # lazy imports loaded before measuring
    f = tmp_path / "big.txt"
    n = 200_000
    rr_file(f, n, seed=2)
    tracemalloc.start()
    try:
        result = analyze_path(f, "plain", "ms")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.summary.beats_measured == n
    assert result.spectrum_interval_s > 5.0  # over 24 h of beat time
    assert peak < 25e6, f"peak traced memory {peak / 1e6:.0f} MB for {n} beats"


def test_spectrum_interval_bounds_the_spectra() -> None:
    assert spectrum_interval(3600.0) == 5.0
    assert spectrum_interval(86400.0) == 5.0
    for span in (2 * 86400.0, 30 * 86400.0, 100 * 86400.0):
        step = spectrum_interval(span)
        assert step % 5 == 0 and span / step <= 86400.0 / 5.0
    # --every keeps spectra in every row.
    assert spectrum_interval(20 * 86400.0, every_s=60.0) <= 60.0 < spectrum_interval(20 * 86400.0)


def test_a_line_without_end_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "noline.txt"
    f.write_bytes(b"800\n810\n" + b"8" * (2 << 20))
    with pytest.raises(FileFormatError, match=r"line 3: no line end within 1 MiB"):
        read_rr_text(f, "ms")
    assert main(["analyze", str(f)]) == 1
    assert "no line end within 1 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["analyze", "import"])
def test_endless_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # /dev/zero never ends: it ran until the kernel killed the process.
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    args = [command, "/dev/zero", "--format", "plain", "--unit", "ms"]
    if command == "import":
        args += ["--data-dir", str(tmp_path / "data")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "not a regular file" in err and "Traceback" not in err
