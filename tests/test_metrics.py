"""Offline HRV helpers (vagus.core.metrics): formulas, gaps, too-little-data, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from vagus.core import metrics as m
from vagus.core.events import Beat, Gap
from vagus.core.pipeline import Pipeline
from vagus.exceptions import InvalidInput


def test_formulas_against_plain_numpy() -> None:
    rng = np.random.default_rng(0)
    nn = 800 + rng.normal(0, 40, 500)
    d = np.diff(nn)
    assert m.mean_nn(nn) == pytest.approx(nn.mean())
    assert m.hr(nn) == pytest.approx(60000 / nn.mean())
    assert m.sdnn(nn) == pytest.approx(np.std(nn, ddof=1))
    assert m.rmssd(nn) == pytest.approx(np.sqrt(np.mean(d**2)))
    assert m.pnn50(nn) == pytest.approx(100 * np.sum(np.abs(d) > 50) / (nn.size - 1))
    assert m.sdsd(nn) == pytest.approx(np.std(d, ddof=1))


def test_no_successive_difference_across_gap() -> None:
    nn = np.array([800, 810, 800, 1200, 1210, 1200], dtype=float)
    gap_before = np.array([False, False, False, True, False, False])
    segment = np.array([0, 0, 0, 1, 1, 1])
    for kw in ({"gap_before": gap_before}, {"segment": segment}):
        d = m.successive_differences(nn, **kw)  # type: ignore[arg-type]
        np.testing.assert_array_equal(d, [10, -10, 10, -10])
        assert m.rmssd(nn, **kw) == pytest.approx(10.0)  # type: ignore[arg-type]
        assert m.pnn50(nn, **kw) == 0.0  # type: ignore[arg-type]
    assert m.rmssd(nn) > 150  # without the gap the 400 ms jump dominates
    with pytest.raises(InvalidInput):
        m.rmssd(nn, segment=segment, gap_before=gap_before)
    with pytest.raises(InvalidInput):
        m.rmssd(nn, segment=segment[:3])


def test_too_little_data_gives_none() -> None:
    assert m.mean_nn([]) is None and m.hr([]) is None
    assert m.sdnn([800.0]) is None
    assert m.rmssd([800.0]) is None and m.pnn50([800.0]) is None
    assert m.sdsd([800.0, 810.0]) is None
    assert m.rmssd([800.0, 900.0], gap_before=[False, True]) is None
    with pytest.raises(InvalidInput):
        m.sdnn([800.0, float("nan")])


def test_frequency_summary_needs_five_minutes() -> None:
    t = np.arange(1, 201, dtype=float)  # 200 s
    nn = 1000.0 + 40.0 * np.sin(2 * np.pi * 0.1 * t)
    fs = m.frequency_summary(t, nn)
    assert fs.lf_ms2 is None and fs.welch_windows == 0 and fs.lf_hf is None
    assert len(fs.coherence) > 0  # 64 s windows exist
    with pytest.raises(InvalidInput):
        m.frequency_summary(t[::-1], nn)


def test_coherence_series_windows_stay_inside_segments() -> None:
    nn = 900 + 40 * np.sin(2 * np.pi * 0.1 * np.arange(400) * 0.9)
    t = np.cumsum(nn) / 1000
    seg = (t > t[-1] / 2).astype(int)  # a gap in the middle
    pts = m.coherence_series(t, nn, segment=seg)
    t_gap = t[seg.argmax()]
    for p in pts:
        assert not (p.t_s - 64.0 + 2.5 < t_gap <= p.t_s)  # no window spans the gap
        assert p.t_s % 5.0 == 0.0
        assert p.peak_hz == pytest.approx(0.1, abs=0.005)


def test_summarize_events_uses_corrected_nn_and_gaps() -> None:
    p = Pipeline()
    rng = np.random.default_rng(1)
    a = (850 + rng.normal(0, 10, 400)).tolist()
    a[200] = a[200] * 2  # a missed beat
    p.receive_rr(a)
    p.receive_gap(400.0)
    b = (700 + rng.normal(0, 10, 400)).tolist()
    p.receive_rr(b, t_s=400.0 + 30.0 + sum(b) / 1000)
    p.close()
    events = p.events_received()
    s = m.summarize_events(events)
    assert s.gaps == 1 == sum(isinstance(e, Gap) for e in events)
    assert s.beats_measured == 800
    assert s.artifacts.get("missed") == 1
    nn = [e.nn_ms for e in events if isinstance(e, Beat) and e.nn_ms is not None]
    assert s.beats == len(nn) == 801
    assert s.sdnn_ms == pytest.approx(np.std(nn, ddof=1))
    # RMSSD without the 150 ms jump across the gap: close to sqrt(2) * 10 ms.
    assert s.rmssd_ms == pytest.approx(10 * np.sqrt(2), rel=0.15)
    assert s.frequency.welch_windows == 1  # 340 s + 280 s: only the first holds 5 min
    assert s.duration_s == pytest.approx(sum(nn) / 1000)


def test_summary_reports_nothing_from_too_few_beats() -> None:
    nn = np.array([800.0, 810.0, 790.0, 805.0])
    s = m.summarize(np.cumsum(nn) / 1000, nn)
    assert s.beats == 4
    assert (s.mean_nn_ms, s.hr_bpm, s.sdnn_ms, s.rmssd_ms, s.pnn50_pct, s.sdsd_ms) == (None,) * 6
    nn5 = np.append(nn, 800.0)
    s5 = m.summarize(np.cumsum(nn5) / 1000, nn5)
    assert s5.sdnn_ms == pytest.approx(np.std(nn5, ddof=1))
