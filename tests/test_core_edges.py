"""The core at its edges (issue 8 §1, issue 13 §1/§6): flat signals have no spectrum,
window metrics use only differences inside the window, and the sans-I/O entry points
accept an input or reject it with InvalidInput, changing nothing."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus.cli import main
from vagus.core import metrics as m
from vagus.core.events import Beat, Event, Gap, Marker, Metrics, PacerChange, Spectrum
from vagus.core.hrm import encode_heart_rate_measurement
from vagus.core.pipeline import MAX_ABS_TIME_S, Pipeline
from vagus.core.spectrum import (
    DISPLAY_MAX_HZ,
    POWER_FLOOR_MS2,
    coherence,
    welch_lf_hf,
)
from vagus.exceptions import InvalidInput, MalformedPacket


def run_rr(rr: list[float]) -> list[Event]:
    p = Pipeline()
    p.receive_rr(rr)
    p.close()
    return p.events_received()


def spectra(events: list[Event]) -> list[Spectrum]:
    return [e for e in events if isinstance(e, Spectrum)]


def metrics_of(events: list[Event]) -> list[Metrics]:
    return [e for e in events if isinstance(e, Metrics)]


# ------------------------------------------------------------------ power floor


@pytest.mark.parametrize("nn_ms", [400.0, 1000.0, 1500.0, 2400.0])
def test_flat_signal_has_no_spectrum_live(nn_ms: float) -> None:
    n = int(400_000 / nn_ms)  # 400 s: every window is covered
    sp = spectra(run_rr([nn_ms] * n))
    assert sp and sp[-1].t_s > 200.0
    for s in sp:
        assert s.coherence_ratio is None and s.peak_hz is None
        assert s.lf_ms2 is None and s.hf_ms2 is None and s.lf_hf is None
        assert s.freqs_hz == () and s.psd_ms2_per_hz == ()


def test_flat_signal_has_no_spectrum_offline() -> None:
    t = np.arange(1, 401, dtype=float)
    nn = np.full(400, 1000.0)
    assert coherence(t, nn, 200.0) is None
    assert welch_lf_hf(t, nn, 200.0) is None
    s = m.summarize(t, nn)
    f = s.frequency
    assert (f.vlf_ms2, f.lf_ms2, f.hf_ms2, f.lf_hf, f.welch_windows) == (None,) * 4 + (0,)
    assert f.coherence == ()
    assert s.coherence_median is None and s.peak_hz_median is None
    assert s.rmssd_ms == 0.0 and s.sdnn_ms == 0.0  # time domain: a real zero


def test_one_tick_of_variation_is_above_the_floor() -> None:
    """The smallest real variation a strap resolves (1/1024 s) still has a spectrum."""
    tick = 1000.0 / 1024.0
    rr = [1000.0 + tick * (i // 3 % 2) for i in range(400)]  # 6 s period: 0.17 Hz
    last = spectra(run_rr(rr))[-1]
    assert last.coherence_ratio is not None and last.peak_hz is not None
    assert last.hf_ms2 is not None and last.hf_ms2 > 100 * POWER_FLOOR_MS2
    assert last.lf_hf is not None


def test_analyze_prints_no_spectrum_for_a_flat_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flat.txt"
    path.write_text("1000\n" * 400)
    assert main(["analyze", str(path), "--unit", "ms", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    for key in ("lf_ms2", "hf_ms2", "lf_hf", "coherence_median", "peak_hz_median"):
        assert obj[key] is None, key
    assert obj["rmssd_ms"] == 0.0
    assert all(r["coherence_median"] is None for r in obj["rows"])


# ------------------------------------------------------------------ window edges


def test_window_rmssd_and_pnn50_use_only_differences_inside_the_window() -> None:
    """750 ms, then NN of 1000 ms: at 60.75 s the 60 s window holds 60 identical NN,
    the first of them 250 ms after the 750 ms beat outside it (times exact in binary)."""
    events = run_rr([750.0] + [1000.0] * 70)
    by_t = {mt.t_s: mt for mt in metrics_of(events)}
    at60 = by_t[60.75]
    assert at60.rmssd_60s_ms == 0.0 and at60.pnn50_60s == 0.0  # was 32.3 and 1.67
    at30 = by_t[30.75]
    assert at30.rmssd_30s_ms == 0.0  # was 45.6
    # One beat earlier the 750 ms beat is inside the 60 s window: its ΔNN counts.
    at59 = by_t[59.75]
    assert at59.rmssd_60s_ms == pytest.approx(250.0 / math.sqrt(59))  # 59 ΔNN
    assert at59.pnn50_60s == pytest.approx(100 / 59)


def test_every_window_metric_matches_the_offline_formula_on_the_window() -> None:
    rng = np.random.default_rng(8)
    rr = (900 + 60 * np.sin(np.arange(400) * 0.7) + rng.normal(0, 25, 400)).round(1)
    events = run_rr(rr.tolist())
    beats = [e for e in events if isinstance(e, Beat) and e.nn_ms is not None]
    t = np.array([b.t_s for b in beats])
    nn = np.array([b.nn_ms for b in beats], dtype=float)
    checked = 0
    for mt in metrics_of(events):
        for win, value, pnn in (
            (30.0, mt.rmssd_30s_ms, None),
            (60.0, mt.rmssd_60s_ms, mt.pnn50_60s),
        ):
            if value is None:
                continue
            inside = nn[(t > mt.t_s - win) & (t <= mt.t_s)]
            assert value == pytest.approx(m.rmssd(inside), rel=1e-9, abs=1e-9)
            if pnn is not None:
                assert pnn == pytest.approx(m.pnn50(inside), abs=1e-9)
            checked += 1
    assert checked > 500


# ------------------------------------------------------------------ display spectrum


def test_display_spectrum_range_is_what_the_docs_say() -> None:
    rr = [900.0 + 40 * math.sin(2 * math.pi * 0.1 * i * 0.9) for i in range(200)]
    last = spectra(run_rr(rr))[-1]
    assert last.freqs_hz[0] == 0.0
    assert last.freqs_hz[-1] == DISPLAY_MAX_HZ
    assert np.allclose(np.diff(last.freqs_hz), 2 * 2.0 / 1024.0)  # every 2nd bin
    doc = Spectrum.__doc__ or ""
    assert f"{DISPLAY_MAX_HZ:.3f} Hz" in doc and "0.5 Hz" not in doc


# ------------------------------------------------------------------ API edges


def fed(p: Pipeline, n: int = 80) -> Pipeline:
    p.receive_rr([850.0 + 30 * math.sin(i) for i in range(n)])
    return p


def snapshot(p: Pipeline) -> list[dict[str, Any]]:
    """What the pipeline does from here: its events after close, as JSON (a copy is run)."""
    import copy

    q = copy.deepcopy(p)
    q.receive_rr([850.0, 870.0, 860.0] * 30)
    q.close()
    return [e.to_json() for e in q.events_received()]


@pytest.mark.parametrize(
    ("call", "args", "kwargs"),
    [
        ("receive_rr", (800.0,), {"t_s": 1e18}),
        ("receive_rr", (800.0,), {"t_s": -1e18}),
        ("receive_rr", (800.0,), {"t_s": Decimal("100.0")}),
        ("receive_rr", ([800.0, 1e308, 800.0],), {}),
        ("receive_rr", ([1e308],), {}),
        ("receive_rr", ([99999999999999999.0],), {}),
        ("receive_packet", (1e18, encode_heart_rate_measurement(60, [1024])), {}),
        ("receive_packet", (Decimal("100.0"), encode_heart_rate_measurement(60, [1024])), {}),
        ("receive_packet", (100.0, [16, 60, 0, 4]), {}),
        ("receive_gap", (1e18,), {}),
        ("receive_gap", (100.0,), {"reason": object()}),
        ("receive_gap", (100.0,), {"reason": None}),
        ("receive_gap", (Decimal("100.0"),), {}),
        ("receive_control", (Marker(t_s=100.0, text=object()),), {}),  # type: ignore[arg-type]
        ("receive_control", (Marker(t_s=100.0, text=b"x"),), {}),  # type: ignore[arg-type]
        ("receive_control", (Marker(t_s=100.0, text="\ud800"),), {}),
        ("receive_control", (Marker(t_s=Decimal("1"), text="x"),), {}),  # type: ignore[arg-type]
        ("receive_control", (Marker(t_s=1e18, text="x"),), {}),
        ("receive_control", (PacerChange(t_s=100.0, rate_bpm=1e309),), {}),
        ("receive_control", (PacerChange(t_s=100.0, rate_bpm=-5.0),), {}),
        ("receive_control", (PacerChange(t_s=100.0, rate_bpm=6.0, inhale_fraction=2.0),), {}),
        ("receive_control", (Gap(t_s=1.0, duration_s=None, reason="x"),), {}),
    ],
    # no object addresses in the ids: every process (pytest-xdist's workers) collects the same
    ids=lambda v: re.sub(r" at 0x[0-9a-f]+", "", repr(v))[:40],
)
def test_rejected_input_is_invalid_input_and_changes_nothing(
    call: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    p = fed(Pipeline())
    p.events_received()
    before = snapshot(p)
    packets, beats = p.packets, p.beats_measured
    with pytest.raises(InvalidInput):
        getattr(p, call)(*args, **kwargs)
    assert p.events_received() == []
    assert (p.packets, p.beats_measured) == (packets, beats)
    assert snapshot(p) == before


def test_accepted_control_events_serialise() -> None:
    p = Pipeline()
    p.receive_control(Marker(t_s=Fraction(3, 2), text="start"))  # type: ignore[arg-type]
    p.receive_control(PacerChange(t_s=np.float64(2.0), rate_bpm=np.int64(6)))  # type: ignore[arg-type]
    p.receive_control(PacerChange(t_s=3, rate_bpm=None))
    out = [json.dumps(e.to_json(), allow_nan=False) for e in p.events_received()]
    assert json.loads(out[0]) == {"type": "marker", "t_s": 1.5, "text": "start"}
    assert json.loads(out[1])["rate_bpm"] == 6.0
    assert json.loads(out[2])["rate_bpm"] is None


def test_a_long_rr_within_the_time_range_is_still_a_gap() -> None:
    p = fed(Pipeline())
    p.receive_rr([800.0, 3.6e6, 800.0, 810.0, 790.0])  # an hour with no beat
    p.close()
    gaps = [e for e in p.events_received() if isinstance(e, Gap)]
    assert [g.reason for g in gaps] == ["rr_out_of_range"]
    assert gaps[0].duration_s == pytest.approx(3600.0, abs=1.0)


# Hypothesis: any input to any entry point is accepted, or rejected with InvalidInput
# (MalformedPacket for a bad payload) and changes nothing. A twin pipeline gets only the
# accepted calls; both must emit the same events after every call, all JSON-serialisable.

_weird = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.just(object()),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.lists(st.floats(), max_size=3),
)
_time = st.one_of(
    st.floats(min_value=0.0, max_value=3000.0),
    st.floats(),
    st.sampled_from([1e10, 1e10 + 1e6, -1e10, 1e18, 1e308, -0.0, math.nan, math.inf]),
    st.integers(min_value=-(10**20), max_value=10**20),
    _weird,
)
_rr_value = st.one_of(
    st.floats(min_value=300.0, max_value=1500.0),
    st.floats(),
    st.sampled_from([2500.0, 2501.0, 3.6e6, 1e17, 1e308, 0.0, -800.0, math.nan]),
    st.integers(min_value=-5, max_value=10**30),
    _weird,
)
_rr = st.one_of(
    st.floats(min_value=300.0, max_value=1500.0),
    st.lists(st.floats(min_value=300.0, max_value=1500.0), min_size=1, max_size=30),
    st.lists(_rr_value, max_size=6),
    _rr_value,
    st.builds(np.array, st.lists(st.floats(min_value=300.0, max_value=1500.0), max_size=5)),
)
_payload = st.one_of(
    st.builds(
        encode_heart_rate_measurement,
        st.integers(min_value=30, max_value=200),
        st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=4),
    ),
    st.binary(max_size=12),
    _weird,
)
_text = st.one_of(st.text(max_size=8), _weird)
_control = st.one_of(
    st.builds(Marker, t_s=_time, text=_text),
    st.builds(
        PacerChange,
        t_s=_time,
        rate_bpm=st.one_of(st.none(), st.floats(), _weird),
        inhale_fraction=st.one_of(st.floats(), _weird),
    ),
    _weird,
)
_call = st.one_of(
    st.tuples(
        st.just("receive_rr"),
        st.tuples(_rr),
        st.one_of(st.just({}), st.fixed_dictionaries({"t_s": _time})),
    ),
    st.tuples(st.just("receive_packet"), st.tuples(_time, _payload), st.just({})),
    st.tuples(st.just("receive_gap"), st.tuples(_time), st.fixed_dictionaries({"reason": _text})),
    st.tuples(st.just("receive_control"), st.tuples(_control), st.just({})),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(_call, min_size=1, max_size=25))
def test_fuzz_entry_points_accept_or_reject_without_change(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
) -> None:
    p = Pipeline()
    twin = Pipeline()
    for name, args, kwargs in calls:
        try:
            getattr(p, name)(*args, **kwargs)
        except (InvalidInput, MalformedPacket) as exc:
            if isinstance(exc, MalformedPacket):
                assert name == "receive_packet"
            assert str(exc)
            assert p.events_received() == []
        else:
            getattr(twin, name)(*args, **kwargs)
            got = p.events_received()
            assert _as_json(got) == _as_json(twin.events_received())
        assert (p.packets, p.beats_measured) == (twin.packets, twin.beats_measured)
    p.close()
    twin.close()
    assert _as_json(p.events_received()) == _as_json(twin.events_received())


def _as_json(events: list[Event]) -> list[str]:
    return [json.dumps(e.to_json(), allow_nan=False, sort_keys=True) for e in events]


def test_time_limit_is_stated() -> None:
    p = Pipeline()
    p.receive_rr(800.0, t_s=MAX_ABS_TIME_S)
    with pytest.raises(InvalidInput, match="within"):
        p.receive_rr(800.0, t_s=MAX_ABS_TIME_S * 1.5)
