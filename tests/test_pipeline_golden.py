"""Every event of the live pipeline against independent numpy/scipy formulas.

The pipeline computes its metrics from running sums, its spectra from cached DFT
matrices, an incremental spline tachogram and pure-Python arithmetic, all for speed
(``vagus bench pipeline``). This file recomputes *every* Metrics and Spectrum event of
several inputs from the Beat events alone, with plain numpy/scipy written the way
SCIENCE.md states the formulas (np.interp, a least-squares detrend, np.fft.rfft,
scipy.interpolate.CubicSpline, band integrals of the piecewise-linear PSD), and checks
the corrector's invariants and that the way input is batched changes nothing. Inputs:
simulated subjects with artifacts, contact losses and dropouts (as packets), the real
VU-AMS and pyhrv recordings (../shared/data), a flat signal, and gaps of every kind.
Tolerance: 1e-9 relative (PSD bins: 1e-9 of the largest bin).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import CubicSpline
from scipy.signal import get_window

from vagus.core.events import Beat, Event, Gap, Metrics, Spectrum
from vagus.core.pipeline import Pipeline
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import StrapConfig, SubjectConfig, VirtualStrap

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REL = 1e-9

Call = tuple[str, object, object]


# ------------------------------------------------------------------------- inputs


def _sim_calls(seed: int, minutes: float, subject: SubjectConfig, strap: StrapConfig) -> list[Call]:
    strap_sim = VirtualStrap(subject, strap, seed=seed)
    calls: list[Call] = []
    for item in strap_sim.packets_until(minutes * 60.0):
        if isinstance(item, Packet):
            calls.append(("packet", item.t_arrival_s, item.payload))
        elif isinstance(item, LinkGap):
            calls.append(("gap", item.t_s, item.reason))
    return calls


def _gappy_rr_calls() -> list[Call]:
    """Cumulative RR in blocks separated by receive_gap, RR > 2.5 s and short parts."""
    rng = np.random.default_rng(7)
    calls: list[Call] = []
    for block in range(9):
        n = int(rng.integers(40, 220))
        i = np.arange(n)
        rr = 800 + 100 * np.sin(2 * np.pi * 0.1 * i) + rng.normal(0, 20, n)
        calls.append(("rr", rr.tolist(), None))
        if block % 3 == 0:
            calls.append(("gap", (block + 1) * 300.0, "link_lost"))
        elif block % 3 == 1:
            calls.append(("rr", [3000.0, 900.0, 910.0], None))
        else:
            calls.append(("rr", [400.0, 1900.0, 150.0, 600.0, 2400.0, 100.0], None))
    return calls


def _vu_calls() -> list[Call]:
    """The VU-AMS ECG's IBI (ms) one by one with beat times (s)."""
    path = DATA / "wearablehrv" / "test_vu.txt"
    if not path.is_file():
        pytest.skip(f"shared recordings not found at {DATA} (../shared/data)")
    calls: list[Call] = []
    t = 1000.0
    for line in path.read_text().splitlines()[2:]:
        cols = line.split("\t")
        if len(cols) > 2 and cols[2].strip() and float(cols[2]) > 0:
            t += float(cols[2]) / 1000.0
            calls.append(("rr", float(cols[2]), t))
    return calls


def _pyhrv_calls() -> list[Call]:
    path = DATA / "pyhrv" / "SampleNNISeriesShort.txt"
    if not path.is_file():
        pytest.skip(f"shared recordings not found at {DATA} (../shared/data)")
    return [("rr", np.loadtxt(path, comments="#").tolist(), None)]


INPUTS: dict[str, tuple[dict[str, float], Callable[[], list[Call]]]] = {
    "sim_artifacts_gaps": (
        {},
        lambda: _sim_calls(
            2,
            14,
            SubjectConfig(resting_hr_bpm=80),
            StrapConfig(
                missed_rate=0.02,
                extra_rate=0.02,
                ectopic_rate=0.03,
                contact_losses_per_hour=8,
                dropouts_per_hour=8,
            ),
        ),
    ),
    "sim_slow_breathing_every_3_3_s": (
        {"spectrum_interval_s": 3.3},  # t_end off the 4 Hz grid: the from-scratch Welch path
        lambda: _sim_calls(3, 8, SubjectConfig(resting_hr_bpm=55, rsa_gain=0.25), StrapConfig()),
    ),
    "vu_ams_with_beat_times": ({}, _vu_calls),
    "pyhrv_short_as_one_list": ({}, _pyhrv_calls),
    "flat_then_one_tick": (
        {},
        lambda: [("rr", [1000.0] * 150 + [1000.0 + 1000.0 / 1024.0] + [1000.0] * 150, None)],
    ),
    "gaps_of_every_kind": ({}, _gappy_rr_calls),
}


def _run(kwargs: dict[str, float], calls: Sequence[Call]) -> list[Event]:
    p = Pipeline(**kwargs)
    events: list[Event] = []
    for kind, a, b in calls:
        if kind == "packet":
            assert isinstance(a, float) and isinstance(b, bytes)
            p.receive_packet(a, b)
        elif kind == "rr":
            p.receive_rr(a, b)  # type: ignore[arg-type]
        else:
            assert isinstance(a, float) and isinstance(b, str)
            p.receive_gap(a, b)
        events.extend(p.events_received())
    p.close()
    events.extend(p.events_received())
    return events


@pytest.fixture(scope="module", params=list(INPUTS))
def run(request: pytest.FixtureRequest) -> tuple[str, list[Event]]:
    kwargs, make = INPUTS[request.param]
    return request.param, _run(kwargs, make())


# ------------------------------------------------------------- reference: metrics


def _close(got: float | None, want: float | None, what: str, abs_tol: float = 1e-12) -> None:
    if want is None:
        assert got is None, f"{what}: {got} where the reference has none"
        return
    assert got is not None, f"{what}: None where the reference has {want}"
    assert got == pytest.approx(want, rel=REL, abs=abs_tol), what


def _reference_metrics(events: list[Event]) -> list[tuple[Metrics, dict[str, float | None]]]:
    """Recompute each Metrics event from the beats before it (SCIENCE.md "Time domain").

    Windows (t − W, t] of beat time; ΔNN only between two consecutive NN beats of one
    segment, both in the window; a metric needs ≥ 5 values covering 75 % of its window
    (HR: ≥ 3 beats, NN summing to ≥ 5 s); the artifact rate counts measured beats.
    """
    nn_t: list[float] = []
    nn_v: list[float] = []
    nn_seg: list[int] = []
    meas_t: list[float] = []
    meas_art: list[bool] = []
    meas_rr: list[float] = []
    seg = 0
    out = []
    for e in events:
        if isinstance(e, Gap):
            seg += 1
        elif isinstance(e, Beat):
            if not e.inserted:
                meas_t.append(e.t_s)
                meas_art.append(e.artifact is not None)
                meas_rr.append(e.rr_ms)
            if e.nn_ms is not None:
                nn_t.append(e.t_s)
                nn_v.append(e.nn_ms)
                nn_seg.append(seg)
        elif isinstance(e, Metrics):
            # The beats of the last 70 s (every window is shorter).
            while nn_t[0] < nn_t[-1] - 70.0:
                del nn_t[0], nn_v[0], nn_seg[0]
            while meas_t[0] < meas_t[-1] - 70.0:
                del meas_t[0], meas_art[0], meas_rr[0]
            t = np.array(nn_t)
            v = np.array(nn_v)
            s = np.array(nn_seg)
            now = t[-1]
            ref: dict[str, float | None] = {}
            w10 = t > now - 10.0
            ref["hr_bpm"] = (
                60000.0 * w10.sum() / v[w10].sum()
                if w10.sum() >= 3 and v[w10].sum() >= 5000.0
                else None
            )
            w60 = t > now - 60.0
            ok60 = w60.sum() >= 5 and v[w60].sum() >= 45000.0
            ref["mean_nn_60s_ms"] = float(v[w60].mean()) if ok60 else None
            ref["sdnn_60s_ms"] = float(np.std(v[w60], ddof=1)) if ok60 else None
            for window, key in ((30.0, "rmssd_30s_ms"), (60.0, "rmssd_60s_ms")):
                inside = t > now - window
                pair = inside[1:] & inside[:-1] & (s[1:] == s[:-1])
                d = np.diff(v)[pair]
                cover = v[1:][pair].sum() / 1000.0
                ok = d.size >= 5 and cover >= 0.75 * window
                ref[key] = float(np.sqrt(np.mean(d * d))) if ok else None
                if window == 60.0:
                    ref["pnn50_60s"] = 100.0 * np.mean(np.abs(d) > 50.0) if ok else None
            # The artifact rate as of the last measured beat (an inserted beat has none).
            mt = np.array(meas_t)
            wa = mt > mt[-1] - 60.0
            ok = wa.sum() >= 5 and np.array(meas_rr)[wa].sum() / 1000.0 >= 45.0
            ref["artifact_rate_60s"] = 100.0 * np.mean(np.array(meas_art)[wa]) if ok else None
            out.append((e, ref))
    return out


def test_every_metrics_event_equals_numpy_formulas(run: tuple[str, list[Event]]) -> None:
    name, events = run
    checked = _reference_metrics(events)
    assert len(checked) > 250
    for m, ref in checked:
        for key, want in ref.items():
            # SDNN comes from running sums of NN and NN²: its variance carries the
            # round-off of NN² (about 1e-16 × NN² ≈ 1e-10 ms²), seen where SDNN ~ 0.
            tol = 1e-6 if key == "sdnn_60s_ms" else 1e-12
            _close(getattr(m, key), want, f"{name} t={m.t_s} {key}", tol)
    assert any(ref["rmssd_30s_ms"] is not None for _, ref in checked)


# ------------------------------------------------------------ reference: spectra


def detrend(y: np.ndarray) -> np.ndarray:
    """``y`` minus its least-squares line (scipy.signal.detrend's "linear", written out)."""
    x = np.arange(y.size) - (y.size - 1) / 2.0
    return y - y.mean() - x * (x @ y) / (x @ x)


def _band_integral(freqs: np.ndarray, psd: np.ndarray, lo: float, hi: float) -> float:
    """∫_lo^hi of the PSD taken as linear between bins (exact at the band edges)."""
    inner = (freqs > lo) & (freqs < hi)
    x = np.concatenate([[lo], freqs[inner], [hi]])
    y = np.interp(x, freqs, psd)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _reference_coherence(
    t: np.ndarray, nn: np.ndarray, t_end: float
) -> tuple[float, float, np.ndarray] | None:
    """SCIENCE.md "Coherence ratio": 64 s, 2 Hz linear, detrend, Hann, nfft 1024."""
    if t.size < 8 or t[0] > t_end - 64.0 + 2.5:
        return None
    grid = t_end - 64.0 + 0.5 * (np.arange(128) + 1.0)
    y = detrend(np.interp(grid, t, nn))
    w = np.hanning(128)
    spec = np.fft.rfft(y * w, 1024)
    freqs = np.arange(spec.size) * 2.0 / 1024
    psd = np.abs(spec) ** 2 / (2.0 * np.sum(w * w))
    psd[1:] *= 2.0
    keep = int(np.flatnonzero(freqs >= 0.4 - 1e-12)[0]) + 1
    freqs, psd = freqs[:keep], psd[:keep]
    total = _band_integral(freqs, psd, 0.0033, 0.4)
    if not total >= 1e-4:
        return None
    band = np.flatnonzero((freqs >= 0.04 - 1e-12) & (freqs <= 0.26 + 1e-12))
    i = int(band[np.argmax(psd[band])])
    peak = _band_integral(freqs, psd, freqs[i] - 0.015, freqs[i] + 0.015)
    a, b, c = np.log(psd[i - 1 : i + 2])
    delta = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    peak_hz = (i + float(np.clip(delta, -0.5, 0.5))) * 2.0 / 1024
    return peak_hz, peak / (total - peak), psd[::2]


def _reference_welch(t: np.ndarray, nn: np.ndarray, t_end: float) -> list[float] | None:
    """Task Force 1996: 120 s, natural cubic spline at 4 Hz through all the segment's
    beats (held flat before the first), Hann segments of 256 spread evenly, each
    linearly detrended; VLF, LF, HF as exact-edge band integrals."""
    if t.size < 8 or t[0] > t_end - 120.0 + 2.5:
        return None
    grid = t_end - 120.0 + 0.25 * (np.arange(480) + 1.0)
    # The spline through the segment's beats from 120 s before the window on: a knot's
    # influence decays by 0.27 per knot, so this is the segment-wide spline to 1e-50.
    keep = t >= t_end - 240.0
    spline = CubicSpline(t[keep], nn[keep], bc_type="natural")
    y = spline(np.clip(grid, t[0], t[-1]))
    win = get_window("hann", 256)
    starts = np.round(np.linspace(0, 480 - 256, 3)).astype(int)
    psd = np.zeros(129)
    for s in starts:
        spec = np.fft.rfft(detrend(y[s : s + 256]) * win)
        psd += np.abs(spec) ** 2 / (4.0 * np.sum(win * win)) / starts.size
    psd[1:-1] *= 2.0
    freqs = np.arange(129) * 4.0 / 256
    bands = [
        _band_integral(freqs, psd, lo, hi)
        for lo, hi in ((0.0033, 0.04), (0.04, 0.15), (0.15, 0.40))
    ]
    return bands if sum(bands) >= 1e-4 else None


def test_every_spectrum_event_equals_numpy_formulas(run: tuple[str, list[Event]]) -> None:
    name, events = run
    seg_t: list[float] = []
    seg_nn: list[float] = []
    n_coh = n_welch = 0
    for e in events:
        if isinstance(e, Gap):
            seg_t, seg_nn = [], []
        elif isinstance(e, Beat) and e.nn_ms is not None:
            seg_t.append(e.t_s)
            seg_nn.append(e.nn_ms)
        elif isinstance(e, Spectrum):
            t = np.array(seg_t)
            nn = np.array(seg_nn)
            where = f"{name} t={e.t_s}"
            coh = _reference_coherence(t, nn, e.t_s)
            if coh is None:
                assert e.coherence_ratio is None and e.peak_hz is None, where
                assert e.psd_ms2_per_hz == () and e.freqs_hz == (), where
            else:
                peak_hz, ratio, display = coh
                _close(e.peak_hz, peak_hz, f"{where} peak_hz")
                _close(e.coherence_ratio, ratio, f"{where} coherence")
                got = np.array(e.psd_ms2_per_hz)
                assert got.shape == display.shape, where
                assert np.max(np.abs(got - display)) <= REL * np.max(display), where
                np.testing.assert_allclose(e.freqs_hz, np.arange(display.size) * 4.0 / 1024)
                n_coh += 1
            bands = _reference_welch(t, nn, e.t_s)
            if bands is None:
                assert e.lf_ms2 is None and e.hf_ms2 is None and e.lf_hf is None, where
            else:
                _close(e.lf_ms2, bands[1], f"{where} lf")
                _close(e.hf_ms2, bands[2], f"{where} hf")
                _close(e.lf_hf, bands[1] / bands[2] if bands[2] >= 1e-4 else None, where)
                n_welch += 1
    assert n_coh > 5 and n_welch > 5, (n_coh, n_welch)


# ---------------------------------------------------------- corrector invariants


def test_every_measured_beat_comes_out_once_with_consistent_nn(
    run: tuple[str, list[Event]],
) -> None:
    """Beats in time order; a normal beat's NN is its RR; a missed beat is split in two
    halves (one inserted beat before it); an extra/range merge gives its partner the sum;
    NN is None only for removed beats and otherwise within [125, 2500] ms."""
    name, events = run
    beats = [e for e in events if isinstance(e, Beat)]
    assert all(a.t_s <= b.t_s for a, b in itertools.pairwise(beats)), name
    for i, b in enumerate(beats):
        if b.artifact is None:
            assert b.nn_ms == b.rr_ms and not b.inserted
        elif b.inserted:
            nxt = beats[i + 1]
            assert b.artifact == nxt.artifact == "missed" and not nxt.inserted
            assert b.nn_ms == nxt.nn_ms == b.rr_ms / 2 == nxt.rr_ms / 2
        if b.nn_ms is None:
            assert b.artifact in ("extra", "range")
        else:
            assert 125.0 <= b.nn_ms <= 2500.0


def test_batching_the_input_changes_no_event() -> None:
    """RR fed one by one, in lists of any length, or packed into notifications: the
    same beats, metrics and spectra (the pipeline may process a batch at once)."""
    rng = np.random.default_rng(3)
    n = 900
    rr = 850 + 120 * np.sin(2 * np.pi * np.arange(n) / 9.0) + rng.normal(0, 25, n)
    rr[rng.choice(n, 12, replace=False)] *= 2.0  # missed beats
    rr[rng.choice(n, 12, replace=False)] *= 0.45  # extra detections
    ticks = np.round(rr * 1.024).astype(int)
    values = (ticks * (1000 / 1024)).tolist()
    one = Pipeline()
    for v in values:
        one.receive_rr(v)
    one.close()
    want = one.events_received()
    chunks = Pipeline()
    i = 0
    while i < n:
        k = int(rng.integers(1, 40))
        chunks.receive_rr(values[i : i + k])
        i += k
    chunks.close()
    assert chunks.events_received() == want
    whole = Pipeline()
    whole.receive_rr(values)
    whole.close()
    assert whole.events_received() == want
    assert sum(isinstance(e, Spectrum) and e.coherence_ratio is not None for e in want) > 50
    assert math.isclose(len([e for e in want if isinstance(e, Beat)]), n, rel_tol=0.05)
