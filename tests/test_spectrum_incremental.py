"""The live spectrum's shortcuts give the values of the plain computation (issue 8 §5).

The Pipeline's Welch tachogram is updated incrementally (IncrementalTachogram): a
moving grid origin, cached grid times and values written straight into its buffer.
Those are speed-ups only: the values must be those of the natural cubic spline through
the segment's beats at the 4 Hz grid times j/4 s, whatever the buffer's capacity (how
often its origin moves) and after a restart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vagus.core.spectrum import (
    WELCH_FS_HZ,
    IncrementalTachogram,
    _spline,
    _welch_bands,
    _welch_bands_of_grid,
    natural_cubic_spline,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
N_WIN = 480  # 120 s at 4 Hz


def _beats(n: int = 900) -> tuple[np.ndarray, np.ndarray]:
    """Beat times (s) and NN (ms) of a real recording (nsr001), the first n beats."""
    path = DATA / "physionet_nsr2db" / "nsr001_rr_secs.txt"
    if not path.exists():
        pytest.skip(f"shared recording {path} not found (expected ../shared/data next to the repo)")
    rr_s = np.loadtxt(path)[1:]
    rr_s = rr_s[(rr_s > 0.25) & (rr_s < 2.5)][:n]
    t_s = 100.0 + np.cumsum(rr_s)
    return t_s, rr_s * 1000.0


def _windows(tach: IncrementalTachogram, t_s: np.ndarray, nn: np.ndarray, ends: list[float]):
    """Call the tachogram as the Pipeline does: beats up to the first at or after t_end."""
    for t_end in ends:
        k = int(np.searchsorted(t_s, t_end)) + 1
        j_end = round(t_end * WELCH_FS_HZ)
        yield t_end, tach.window(t_s[:k], nn[:k], j_end, N_WIN).copy()


def test_window_equals_the_spline_through_all_beats() -> None:
    t_s, nn = _beats()
    ends = [float(v) for v in np.arange(250.0, t_s[-1] - 5.0, 5.0)]
    checked = 0
    for t_end, values in _windows(IncrementalTachogram(), t_s, nn, ends):
        j_end = round(t_end * WELCH_FS_HZ)
        grid = np.arange(j_end - N_WIN + 1, j_end + 1) / WELCH_FS_HZ
        k = int(np.searchsorted(t_s, t_end)) + 1
        ref = natural_cubic_spline(t_s[:k], nn[:k], grid)
        np.testing.assert_allclose(values, ref, rtol=1e-9, atol=0.0)
        checked += 1
    assert checked > 50


def test_moving_the_buffer_origin_changes_no_value() -> None:
    """A small buffer moves its origin (and its cached grid times) every few calls; the
    values must be bit for bit those of a buffer that never moves."""
    t_s, nn = _beats()
    ends = [float(v) for v in np.arange(250.0, t_s[-1] - 5.0, 5.0)]
    big = list(_windows(IncrementalTachogram(capacity=4096), t_s, nn, ends))
    small = list(_windows(IncrementalTachogram(capacity=N_WIN + 30), t_s, nn, ends))
    assert len(big) == len(small) > 50
    for (_, a), (_, b) in zip(big, small, strict=True):
        assert np.array_equal(a, b)


def test_restart_equals_a_fresh_tachogram() -> None:
    """A window that does not continue the last one (a jump ahead, or after reset)
    starts over: the values equal those of a new tachogram."""
    t_s, nn = _beats()
    tach = IncrementalTachogram()
    list(_windows(tach, t_s, nn, [250.0, 255.0, 260.0]))
    ((_, jumped),) = _windows(tach, t_s, nn, [500.0])
    ((_, fresh),) = _windows(IncrementalTachogram(), t_s, nn, [500.0])
    assert np.array_equal(jumped, fresh)
    tach.reset()
    ((_, after_reset),) = _windows(tach, t_s, nn, [505.0])
    ((_, fresh),) = _windows(IncrementalTachogram(), t_s, nn, [505.0])
    assert np.array_equal(after_reset, fresh)


def test_live_welch_bands_equal_the_offline_ones() -> None:
    """LF/HF from the incremental tachogram equal welch_lf_hf's from-scratch spline
    (same spline, same context) to rounding."""
    t_s, nn = _beats()
    ends = [float(v) for v in np.arange(250.0, t_s[-1] - 5.0, 5.0)]
    for t_end, values in _windows(IncrementalTachogram(), t_s, nn, ends):
        k = int(np.searchsorted(t_s, t_end)) + 1
        live = _welch_bands_of_grid(values)
        offline = _welch_bands(t_s[:k], nn[:k], t_end)
        assert live is not None and offline is not None
        np.testing.assert_allclose(live, offline, rtol=1e-9)


def test_spline_into_out_writes_the_same_values() -> None:
    t_s, nn = _beats(60)
    xq = np.linspace(t_s[0], t_s[-1], 157)
    out = np.full(157, np.nan)
    returned = _spline(t_s, nn, xq, out)
    assert returned is out
    assert np.array_equal(out, _spline(t_s, nn, xq))
    short = np.full(5, np.nan)  # two knots: linear interpolation, also into out
    _spline(t_s[:2], nn[:2], np.linspace(t_s[0], t_s[1], 5), short)
    assert np.array_equal(short, np.interp(np.linspace(t_s[0], t_s[1], 5), t_s[:2], nn[:2]))
