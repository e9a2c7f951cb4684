"""Frequency-domain HRV for the real-time path: coherence ratio and Welch LF/HF.

Both functions take the NN intervals of one contiguous stretch of beats (no gap
inside; the pipeline passes only the current segment) with their beat times, and
work on the window that ends at ``t_end_s``. They are written for speed (a few tens
of microseconds each): grids, windows and band weights are built once and cached.

Coherence ratio (SCIENCE.md "Coherence ratio"; McCraty & Childre 2010, McCraty &
Zayas 2014; this is *our implementation of the published formula*, not HeartMath's
proprietary score):

    last 64 s of NN -> 2 Hz linear interpolation (128 samples) -> linear detrend
    -> Hann window -> periodogram zero-padded to nfft = 1024 (0.00195 Hz grid)
    -> one-sided PSD (ms²/Hz) -> peak f_p = argmax PSD in [0.04, 0.26] Hz
    -> peak power P = ∫ PSD over |f - f_p| <= 0.015 Hz (exact window edges)
    -> total power T = ∫ PSD over [0.0033, 0.4] Hz
    -> CR = P / (T - P)

The reported peak frequency is refined between bins (log-parabolic interpolation);
the grid alone is 0.117 breaths/min coarse.

LF/HF (Task Force 1996): last 120 s of NN -> 4 Hz natural cubic spline -> Welch with
Hann segments of 256 samples (64 s), ~50 % overlap, each segment linearly detrended
-> PSD in ms²/Hz -> band power by trapezoid integration over the exact band edges,
VLF 0.0033-0.04 Hz, LF 0.04-0.15 Hz, HF 0.15-0.40 Hz.

Power floor (SCIENCE.md "Frequency domain": "A window whose NN power is below a stated
floor has no spectrum"): a window whose total power over 0.0033-0.40 Hz is below
:data:`POWER_FLOOR_MS2` has no spectrum. :func:`coherence` and :func:`welch_lf_hf` return
None for it (coherence ratio, peak frequency, band powers and LF/HF all null: live, in
``vagus analyze`` and in reports alike), and LF/HF is null when HF alone is below it.

Deviation from SCIENCE.md, measured: the pinned tachogram is *linearly* interpolated.
For LF/HF we use a natural cubic spline (as Kubios HRV does) because linear
interpolation low-passes the beat-sampled series by about sinc⁴(f/f_beat) in power:
at 75 bpm a 0.25 Hz sine loses 23 % of its power, and on pyhrv's 5-minute sample series
HF came out 36 % below pyhrv's (cubic) value for that reason alone. With the spline a
0.25 Hz sine keeps its analytic power within 2 % and pyhrv's LF/HF agree within 12 %
(tests/test_validation.py). The coherence ratio keeps the pinned linear interpolation:
its recipe (and its expected values on the VU-AMS recording) are defined that way.
During slow breathing (6/min = 0.1 Hz) the RSA lies in LF: HF is labelled
"HF (0.15-0.40 Hz)" and is not the vagal proxy then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.linalg.lapack import dptsv

try:  # np.interp without its Python wrapper (complex dispatch), ~0.6 µs a call
    from numpy._core.multiarray import interp as _interp
except ImportError:  # pragma: no cover - numpy < 2
    _interp = np.interp
_dot = np.dot  # for 1-D·2-D and 2-D·2-D, the BLAS call of @ with ~0.3 µs less overhead

__all__ = [
    "COHERENCE_WINDOW_S",
    "DISPLAY_MAX_HZ",
    "HIGH_COHERENCE_RATIO",
    "POWER_FLOOR_MS2",
    "SPLINE_CONTEXT_KNOTS",
    "WELCH_WINDOW_S",
    "CoherenceResult",
    "IncrementalTachogram",
    "WelchResult",
    "band_power",
    "coherence",
    "welch_lf_hf",
    "welch_psd",
]

FloatArray = npt.NDArray[np.float64]

COHERENCE_WINDOW_S = 64.0
COHERENCE_FS_HZ = 2.0
COHERENCE_NFFT = 1024
COHERENCE_PEAK_BAND_HZ = (0.04, 0.26)
COHERENCE_PEAK_HALF_WIDTH_HZ = 0.015
COHERENCE_TOTAL_BAND_HZ = (0.0033, 0.4)
#: Coherence ratio at or above which a 64 s window counts as "high coherence" (session
#: summaries, reports, progress: the one threshold). OURS: a CR of 3 is a clear single
#: peak holding 3x the power of the rest of the spectrum; HeartMath's own level
#: thresholds are proprietary (SCIENCE.md "Coherence ratio").
HIGH_COHERENCE_RATIO = 3.0

WELCH_WINDOW_S = 120.0
WELCH_FS_HZ = 4.0
WELCH_NPERSEG = 256
VLF_BAND_HZ = (0.0033, 0.04)
LF_BAND_HZ = (0.04, 0.15)
HF_BAND_HZ = (0.15, 0.40)

#: Total power (ms², the PSD integrated over 0.0033-0.40 Hz) below which a window has no
#: spectrum: coherence ratio, peak frequency, band powers and LF/HF are None, never
#: ratios of round-off (SCIENCE.md "Frequency domain"). Physically: straps and ECG
#: resolve RR to about 1 ms (1/1024 s on a Polar strap), and the smallest real change,
#: one tick in one beat of a 64 s window, carries about 0.98² / 64 ≈ 0.015 ms²; the
#: floor, 1e-4 ms² (an RMS variation of 0.01 ms, a hundredth of that resolution), is
#: more than a hundred times below it. A flat NN series gives powers of float64
#: round-off, about (NN · 2.2e-16)² ≈ 1e-26 ms² at NN = 1000 ms (3e-25 at 2500 ms), 21
#: orders of magnitude below the floor, so no NN series at any heart rate crosses it by
#: round-off alone.
POWER_FLOOR_MS2 = 1e-4

#: The window must hold beats this close to its start (s): np.interp holds the
#: first value flat before the first beat, which is harmless for one RR interval.
_EDGE_TOLERANCE_S = 2.5

#: Display spectrum: every 2nd bin of the coherence periodogram (0-0.398 Hz).
_DISPLAY_STEP = 2
#: Highest frequency of the display spectrum (Hz): the periodogram is computed up to
#: the first bin at or above 0.4 Hz (bin 205, 0.4004 Hz), and every 2nd bin of it ends
#: at bin 204, 204 × 2 Hz / 1024 = 0.3984375 Hz.
DISPLAY_MAX_HZ = 0.3984375

#: Knots of context taken beyond the grid points a spline is evaluated at. The natural
#: spline is global, but a knot's influence decays by 2 − √3 ≈ 0.27 per knot, so with
#: 20 knots of context the values equal those of the spline through *all* beats of the
#: segment to about 0.27²⁰ ≈ 3e-12 of the local curvature.
SPLINE_CONTEXT_KNOTS = 20


@dataclass(frozen=True, slots=True)
class CoherenceResult:
    """Coherence over one 64 s window: peak frequency (Hz), ratio, and the PSD for display."""

    peak_hz: float
    coherence_ratio: float
    peak_power_ms2: float
    total_power_ms2: float
    freqs_hz: FloatArray
    psd_ms2_per_hz: FloatArray


@dataclass(frozen=True, slots=True)
class WelchResult:
    """Welch band powers (ms²) over one window."""

    vlf_ms2: float
    lf_ms2: float
    hf_ms2: float

    @property
    def lf_hf(self) -> float | None:
        """LF/HF ratio, None when HF power is below :data:`POWER_FLOOR_MS2`."""
        return self.lf_ms2 / self.hf_ms2 if self.hf_ms2 >= POWER_FLOOR_MS2 else None


def _trapz_weights(freqs: FloatArray, lo: float, hi: float) -> FloatArray:
    """Weights w so that ``psd @ w`` integrates psd exactly over [lo, hi] (Hz).

    The PSD is taken as linear between bins (the trapezoid rule), and the partial bin
    intervals at both band edges are included, so a band is integrated over its full
    width whatever the bin grid: with the 0.0156 Hz bins of a 64 s Welch segment, the
    bins inside LF (0.04-0.15 Hz) span only 0.094 of its 0.11 Hz, and summing just them
    would lose about 15 % of the band. ``freqs`` must be evenly spaced and reach ``hi``.
    """
    df = float(freqs[1] - freqs[0])
    w = np.zeros_like(freqs)
    left = freqs[:-1]
    right = freqs[1:]
    a = np.clip(left, lo, hi)
    b = np.clip(right, lo, hi)
    # ∫_a^b of the linear interpolant: weight of the left bin ((r-a)² - (r-b)²)/2df,
    # of the right bin ((b-l)² - (a-l)²)/2df.
    w[:-1] += ((right - a) ** 2 - (right - b) ** 2) / (2.0 * df)
    w[1:] += ((b - left) ** 2 - (a - left) ** 2) / (2.0 * df)
    return w


def _one_sided(n_bins: int, nfft: int) -> FloatArray:
    """Factor 2 for every bin but DC (and Nyquist, when it is among the bins)."""
    f = np.full(n_bins, 2.0)
    f[0] = 1.0
    if n_bins == nfft // 2 + 1:
        f[-1] = 1.0
    return f


def _dft_plan(n: int, nfft: int, fs_hz: float, f_max_hz: float, window: FloatArray) -> FloatArray:
    """Matrix M (n × 2K) with ``y @ M`` = [Re X | Im X] of the detrended, windowed,
    zero-padded DFT of y for the K bins from 0 up to the first bin at or above f_max_hz.

    The linear detrend is the projection D = I − 11ᵀ/n − x_c x_cᵀ/(x_c·x_c) (x_c the
    centred sample index); X = (D y ⊙ w) · e^{−2πi k m / nfft} = y · (D (w ⊙ E)) since D is
    symmetric. One matrix product replaces detrend, window, padding and FFT: for the
    few bins HRV needs it is several times faster than a full FFT.
    """
    freqs = np.arange(nfft // 2 + 1) * fs_hz / nfft
    # Bins 0 … the first bin at or above f_max (needed to integrate up to f_max exactly).
    k = int(np.flatnonzero(freqs >= f_max_hz - 1e-12)[0]) + 1
    m = np.arange(n, dtype=np.float64)[:, None]
    phase = 2.0 * np.pi * m * np.arange(k)[None, :] / nfft
    basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1) * window[:, None]
    xc = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    proj = np.eye(n) - 1.0 / n - np.outer(xc, xc) / float(xc @ xc)
    return np.ascontiguousarray(proj @ basis)


@dataclass(frozen=True, slots=True)
class _CoherencePlan:
    t_rel: FloatArray
    dft_cos: FloatArray
    dft_sin: FloatArray
    k: int
    scale: FloatArray
    freqs: FloatArray
    peak_lo: int
    peak_hi: int
    half: int
    df: float
    w_total: FloatArray
    display_freqs: tuple[float, ...]
    edge_r: float


@lru_cache(maxsize=1)
def _coherence_plan() -> _CoherencePlan:
    n = int(COHERENCE_WINDOW_S * COHERENCE_FS_HZ)  # 128 samples
    # Samples at t_end − 63.5 s … t_end (every 0.5 s).
    t_rel = (np.arange(n, dtype=np.float64) + 1.0) / COHERENCE_FS_HZ - COHERENCE_WINDOW_S
    hann = np.hanning(n)  # symmetric Hann, as scipy.signal.get_window('hann', n, False)
    k = (
        int(
            np.flatnonzero(
                np.arange(COHERENCE_NFFT // 2 + 1) * COHERENCE_FS_HZ / COHERENCE_NFFT
                >= COHERENCE_TOTAL_BAND_HZ[1] - 1e-12
            )[0]
        )
        + 1
    )
    freqs = np.arange(k) * COHERENCE_FS_HZ / COHERENCE_NFFT
    # One-sided periodogram PSD: |X|² / (fs · Σw²), doubled off DC.
    scale = _one_sided(k, COHERENCE_NFFT) / (COHERENCE_FS_HZ * float(hann @ hann))
    df = float(freqs[1])
    # The DFT taken about the window's centre (sample index m − 63.5): |X| is unchanged
    # (a phase factor per bin), the cosine part is symmetric and the sine part
    # antisymmetric in m, and so stay their columns after the linear detrend (the
    # projection commutes with the reflection m -> 127 − m) and the symmetric Hann
    # window. So y @ M_cos = (y_m + y_127−m)_{m<64} @ M_cos[:64] and likewise for the
    # sine part with y_m − y_127−m: two 64-row matrices instead of one 128-row one,
    # half the memory to stream through per call. √scale is folded into the columns.
    xc = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    phase = 2.0 * np.pi * xc[:, None] * np.arange(k)[None, :] / COHERENCE_NFFT
    proj = np.eye(n) - 1.0 / n - np.outer(xc, xc) / float(xc @ xc)
    root = np.sqrt(scale)[None, :]
    half = n // 2
    dft_cos = np.ascontiguousarray((proj @ (np.cos(phase) * hann[:, None]))[:half] * root)
    dft_sin = np.ascontiguousarray((proj @ (np.sin(phase) * hann[:, None]))[:half] * root)
    return _CoherencePlan(
        t_rel=t_rel,
        dft_cos=dft_cos,
        dft_sin=dft_sin,
        k=k,
        scale=scale,
        freqs=freqs,
        peak_lo=int(np.searchsorted(freqs, COHERENCE_PEAK_BAND_HZ[0] - 1e-12, side="left")),
        peak_hi=int(np.searchsorted(freqs, COHERENCE_PEAK_BAND_HZ[1] + 1e-12, side="right")),
        half=int(np.floor(COHERENCE_PEAK_HALF_WIDTH_HZ / df + 1e-9)),
        df=df,
        w_total=_trapz_weights(freqs, *COHERENCE_TOTAL_BAND_HZ),
        display_freqs=tuple(freqs[::_DISPLAY_STEP].tolist()),
        edge_r=COHERENCE_PEAK_HALF_WIDTH_HZ / df
        - int(np.floor(COHERENCE_PEAK_HALF_WIDTH_HZ / df + 1e-9)),
    )


def coherence(t_s: FloatArray, nn_ms: FloatArray, t_end_s: float) -> CoherenceResult | None:
    """Coherence ratio of the 64 s of NN ending at ``t_end_s`` (pinned formula above).

    Args:
        t_s: beat times (s), increasing, of one contiguous segment.
        nn_ms: NN intervals (ms) at those beats.
        t_end_s: end of the window (s).

    Returns:
        The result, or None when the beats do not cover the whole 64 s window or its
        total power is below :data:`POWER_FLOOR_MS2`. The display PSD is every 2nd bin
        of the periodogram (0.0039 Hz apart) from 0 to 0.398 Hz, the last display bin
        below 0.4 Hz (:data:`DISPLAY_MAX_HZ`).
    """
    out = _coherence_values(t_s, nn_ms, t_end_s)
    if out is None:
        return None
    peak_hz, ratio, peak, total, psd, _ = out
    return CoherenceResult(
        peak_hz=peak_hz,
        coherence_ratio=ratio,
        peak_power_ms2=peak,
        total_power_ms2=total,
        freqs_hz=_coherence_plan().freqs[::_DISPLAY_STEP],
        psd_ms2_per_hz=psd[::_DISPLAY_STEP],
    )


def _coherence_values(
    t_s: FloatArray, nn_ms: FloatArray, t_end_s: float
) -> tuple[float, float, float, float, FloatArray, list[float]] | None:
    """The computation behind :func:`coherence`, without building a result object.

    Returns ``(peak_hz, ratio, peak_power, total_power, psd, display)``: the full
    periodogram (0-0.4 Hz) as an array and its display bins (every
    ``_DISPLAY_STEP``-th) as a list of floats, or None (see :func:`coherence`).
    """
    if t_s.size < 8 or t_s[0] > t_end_s - COHERENCE_WINDOW_S + _EDGE_TOLERANCE_S:
        return None
    plan = _coherence_plan()
    y = _interp(plan.t_rel + t_end_s, t_s, nn_ms)
    head = y[:64]
    tail = y[:63:-1]  # y[127], y[126], …, y[64]
    # np.dot rather than @: the same BLAS call with less Python overhead (hot path).
    psd = _dot(head + tail, plan.dft_cos)
    psd *= psd
    im = _dot(head - tail, plan.dft_sin)
    im *= im
    psd += im
    i_peak = plan.peak_lo + int(psd[plan.peak_lo : plan.peak_hi].argmax())
    total = float(_dot(psd, plan.w_total))
    if not total >= POWER_FLOOR_MS2:  # a flat window: no spectrum (round-off only)
        return None
    # Python floats of the bins around the peak only (half-width + 1 on each side).
    lo = i_peak - plan.half - 1
    p = psd[lo : i_peak + plan.half + 2].tolist()
    peak = _peak_power(p, plan.half + 1, plan)
    rest = total - peak
    ratio = peak / rest if rest > 0 else float("inf")
    peak_hz = _refined_peak_hz(p, plan.half + 1, plan.df, lo)
    return peak_hz, ratio, peak, total, psd, psd[::_DISPLAY_STEP].tolist()


def _refined_peak_hz(psd: list[float], i_peak: int, df: float, offset: int = 0) -> float:
    """Peak frequency refined between bins by a parabola through the log-PSD of the peak
    bin and its two neighbours (exact for a Gaussian-shaped peak, close for a Hann
    main lobe). The 0.00195 Hz grid alone is 0.117 breaths/min coarse; the refined value
    is what is reported as the breathing rhythm. The peak *power* stays centred on the
    peak bin, as pinned. ``psd[0]`` is bin ``offset`` of the periodogram.
    """
    lo = psd[i_peak - 1]
    mid = psd[i_peak]
    hi = psd[i_peak + 1]
    if lo <= 0.0 or mid <= 0.0 or hi <= 0.0:
        return (offset + i_peak) * df
    a, b, c = math.log(lo), math.log(mid), math.log(hi)
    denom = a - 2.0 * b + c
    delta = 0.5 * (a - c) / denom if denom < 0.0 else 0.0
    return (offset + i_peak + max(-0.5, min(0.5, delta))) * df


def _peak_power(psd: list[float], i_peak: int, plan: _CoherencePlan) -> float:
    """∫ PSD over exactly |f − f_peak| ≤ 0.015 Hz, the PSD taken as linear between bins.

    The bins within the window are integrated by the trapezoid rule; the two partial
    bin intervals at its edges (0.015 Hz is 7.68 bins of 0.00195 Hz) are added with the
    PSD interpolated linearly, so the window is 0.030 Hz wide, not 14 or 16 bins.
    """
    h = plan.half
    df = plan.df
    i_lo = i_peak - h
    i_hi = i_peak + h
    p_lo = psd[i_lo]
    p_hi = psd[i_hi]
    inner = df * (sum(psd[i_lo : i_hi + 1]) - 0.5 * (p_lo + p_hi))
    r = plan.edge_r  # fraction of the next bin interval
    edge_lo = p_lo + r * (psd[i_lo - 1] - p_lo)
    edge_hi = p_hi + r * (psd[i_hi + 1] - p_hi)
    return inner + r * df * 0.5 * (p_lo + edge_lo) + r * df * 0.5 * (p_hi + edge_hi)


@dataclass(frozen=True, slots=True)
class _WelchPlan:
    idx: npt.NDArray[np.intp]
    dft: FloatArray
    k: int
    scale: FloatArray
    freqs: FloatArray
    w_vlf: FloatArray
    w_lf: FloatArray
    w_hf: FloatArray
    grid_rel: FloatArray
    starts: tuple[int, ...]
    dft_t: FloatArray
    w_bands: FloatArray


@lru_cache(maxsize=8)
def _welch_plan(n: int) -> _WelchPlan:
    """Segments, detrend+window+DFT matrix and PSD scale for a tachogram of n samples.

    Segments: as many 256-sample segments as 50 % overlap needs to cover all n samples,
    spaced evenly from the first sample to the last (for 120 s at 4 Hz: 3 segments
    112 samples apart, 56 % overlap), so the newest seconds are never dropped (a plain
    ``scipy.signal.welch`` would ignore the last 24 s of a 120 s window). For n = 512
    this is exactly ``scipy.signal.welch(y, 4, nperseg=256, detrend="linear")``.
    """
    m = WELCH_NPERSEG
    n_seg = 1 + int(np.ceil((n - m) / (m // 2)))
    starts = np.round(np.linspace(0, n - m, n_seg)).astype(np.intp)
    idx = starts[:, None] + np.arange(m, dtype=np.intp)[None, :]
    hann = np.hanning(m + 1)[:-1]  # periodic Hann, as scipy.signal.get_window("hann")
    dft = _dft_plan(m, m, WELCH_FS_HZ, HF_BAND_HZ[1], hann)
    k = dft.shape[1] // 2
    freqs = np.arange(k) * WELCH_FS_HZ / m
    scale = _one_sided(k, m) / (WELCH_FS_HZ * float(hann @ hann) * n_seg)
    w_vlf = _trapz_weights(freqs, *VLF_BAND_HZ)
    w_lf = _trapz_weights(freqs, *LF_BAND_HZ)
    w_hf = _trapz_weights(freqs, *HF_BAND_HZ)
    # Band powers straight from the squared DFT values of all segments:
    # [VLF, LF, HF] = ravel([Re X | Im X]²) @ w_bands, which folds the |X|² sum,
    # the average over segments, the PSD scale and the band weights into one matrix.
    # Each segment's [Re X | Im X] is one matrix-vector product dft_t (2K × 256) @ the
    # segment (a contiguous slice, no gather): for a handful of segments OpenBLAS's
    # gemv kernel takes about a fifth of the instructions of one dgemm with n_seg
    # columns (whose micro-kernel pads them to its tile). Ravel order (segment, bin).
    per_bin = np.stack([w_vlf, w_lf, w_hf], axis=1) * scale[:, None]
    w_bands = np.ascontiguousarray(np.tile(np.concatenate([per_bin, per_bin]), (n_seg, 1)))
    return _WelchPlan(
        idx=idx,
        dft=dft,
        k=k,
        scale=scale,
        freqs=freqs,
        w_vlf=w_vlf,
        w_lf=w_lf,
        w_hf=w_hf,
        grid_rel=(np.arange(n, dtype=np.float64) + 1.0) / WELCH_FS_HZ,
        starts=tuple(int(v) for v in starts),
        dft_t=np.ascontiguousarray(dft.T),
        w_bands=w_bands,
    )


def welch_psd(y_ms: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Welch PSD (ms²/Hz, 0-0.40 Hz) of an evenly sampled 4 Hz tachogram.

    Hann segments of 256 samples (64 s), about 50 % overlap (segments spread evenly
    over the whole input, see ``_welch_plan``), each linearly detrended, periodograms
    averaged (Task Force 1996).

    Returns:
        (frequencies in Hz, PSD in ms²/Hz) for the bins from 0 to 0.40 Hz.
    """
    if y_ms.size < WELCH_NPERSEG:
        raise ValueError(
            f"Welch needs at least {WELCH_NPERSEG} samples (64 s at 4 Hz), got {y_ms.size}"
        )
    plan = _welch_plan(int(y_ms.size))
    return plan.freqs, _welch(plan, y_ms)


def _welch(plan: _WelchPlan, y_ms: FloatArray) -> FloatArray:
    re_im = y_ms[plan.idx] @ plan.dft
    k = plan.k
    psd: FloatArray = (np.square(re_im[:, :k]) + np.square(re_im[:, k:])).sum(axis=0) * plan.scale
    return psd


def natural_cubic_spline(x: FloatArray, y: FloatArray, x_new: FloatArray) -> FloatArray:
    """Natural cubic spline through (x, y) evaluated at ``x_new`` (held flat outside x).

    Used for the Welch tachogram instead of linear interpolation: linear interpolation of
    a beat-sampled series low-passes it by about sinc⁴(f / f_beat) in power (−23 % at
    0.25 Hz and 75 bpm), which biases HF power low; the cubic spline (as in Kubios HRV)
    keeps it within a few percent. Second derivatives M from the tridiagonal system
    h_{i-1} M_{i-1} + 2(h_{i-1} + h_i) M_i + h_i M_{i+1} = 6(Δy_i/h_i − Δy_{i-1}/h_{i-1}),
    M_0 = M_n = 0 (symmetric positive definite), solved with LAPACK ``dptsv``; the same
    values as ``scipy.interpolate.CubicSpline(x, y, bc_type="natural")`` (within 1e-15)
    at a fifth of the cost.
    On interval i (b = x − x_i) the spline is evaluated by Horner's rule,
    y_i + b (c_i + b (M_i / 2 + b d_i)) with c_i = Δy_i/h_i − h_i (2 M_i + M_{i+1}) / 6 and
    d_i = (M_{i+1} − M_i) / (6 h_i), the interval found with one ``searchsorted`` over the
    interior knots (``x_new`` is usually sorted; any order works).
    """
    if x.size >= 3 and x_new.size and (x_new.min() < x[0] or x_new.max() > x[-1]):
        x_new = np.minimum(np.maximum(x_new, x[0]), x[-1])
    return _spline(x, y, x_new)


def _spline(
    x: FloatArray, y: FloatArray, xq: FloatArray, out: FloatArray | None = None
) -> FloatArray:
    """:func:`natural_cubic_spline` for ``xq`` already within ``[x[0], x[-1]]``.

    The values are written into ``out`` when it is given (an array of ``xq.size``
    floats, not overlapping ``xq``) and returned.
    """
    n = x.size
    if n < 3:
        if out is None:
            return np.interp(xq, x, y)
        out[:] = np.interp(xq, x, y)
        return out
    h = x[1:] - x[:-1]
    slope = y[1:] - y[:-1]
    slope /= h
    # m = M / 6 (the system divided by 6, which saves three array operations).
    m = np.zeros(n)
    if n > 3:
        # Symmetric positive definite tridiagonal: LAPACK dptsv (L D Lᵀ). The right-hand
        # side is written into m[1:-1] and solved in place there (overwrite_b); the
        # diagonal is a temporary; the off-diagonal, a view of h, is left alone.
        rhs = m[1:-1]
        np.subtract(slope[1:], slope[:-1], rhs)
        diag = h[:-1] + h[1:]
        diag += diag
        dptsv(diag, h[1:-1], rhs, 1, 0, 1)
    else:
        m[1] = (slope[1] - slope[0]) / (2.0 * (h[0] + h[1]))
    # Interval index: the number of interior knots <= x_new (x_new = x[-1] -> n - 2).
    i = x[1:-1].searchsorted(xq, side="right")
    m0 = m[:-1]
    m1 = m[1:]
    c = m0 + m0  # c_i = Δy_i/h_i − h_i (2 M_i + M_{i+1}) / 6
    c += m1
    c *= h
    np.subtract(slope, c, c)
    d = m1 - m0  # d_i = (M_{i+1} − M_i) / (6 h_i)
    d /= h
    # Fancy indexing: the same gathers as .take, with less call overhead.
    b = xq - x[i]
    if out is None:
        out = d[i] * b
    else:
        np.multiply(d[i], b, out)
    m_i = m0[i]
    m_i *= 3.0  # M_i / 2
    out += m_i
    out *= b
    out += c[i]
    out *= b
    out += y[i]
    return out


_GRID_RAMP: list[FloatArray] = [np.arange(2048, dtype=np.float64) / WELCH_FS_HZ]


def _grid_ramp(n: int) -> FloatArray:
    """0, 0.25, …, (n − 1) / 4 s: times of n samples of the 4 Hz grid (a cached view)."""
    ramp = _GRID_RAMP[0]
    if ramp.size < n:
        ramp = np.arange(max(n, 2 * ramp.size), dtype=np.float64) / WELCH_FS_HZ
        _GRID_RAMP[0] = ramp
    return ramp[:n]


def band_power(freqs_hz: FloatArray, psd: FloatArray, band_hz: tuple[float, float]) -> float:
    """Trapezoid integral of ``psd`` over the bins within ``band_hz`` (inclusive)."""
    return float(psd @ _trapz_weights(freqs_hz, *band_hz))


def welch_lf_hf(
    t_s: FloatArray, nn_ms: FloatArray, t_end_s: float, window_s: float = WELCH_WINDOW_S
) -> WelchResult | None:
    """VLF, LF and HF power (ms²) of the ``window_s`` of NN ending at ``t_end_s``.

    Args:
        t_s: beat times (s), increasing, of one contiguous segment.
        nn_ms: NN intervals (ms) at those beats.
        t_end_s: end of the window (s).
        window_s: window length, at least 64 s (120 s live; 300 s segments in reports).

    Returns:
        The band powers, or None when the beats do not cover the whole window or its
        total power (VLF + LF + HF) is below :data:`POWER_FLOOR_MS2`.
    """
    bands = _welch_bands(t_s, nn_ms, t_end_s, window_s)
    if bands is None:
        return None
    return WelchResult(vlf_ms2=bands[0], lf_ms2=bands[1], hf_ms2=bands[2])


def _welch_bands(
    t_s: FloatArray, nn_ms: FloatArray, t_end_s: float, window_s: float = WELCH_WINDOW_S
) -> list[float] | None:
    """The computation behind :func:`welch_lf_hf`: ``[vlf, lf, hf]`` (ms²) or None."""
    if t_s.size < 8 or t_s[0] > t_end_s - window_s + _EDGE_TOLERANCE_S:
        return None
    n = round(window_s * WELCH_FS_HZ)
    plan = _welch_plan(n)
    grid = t_end_s - window_s + plan.grid_rel
    # Knots: the beats of the window plus SPLINE_CONTEXT_KNOTS on each side.
    j0, j1 = t_s.searchsorted(grid[:: n - 1]).tolist()
    i0 = max(j0 - SPLINE_CONTEXT_KNOTS, 0)
    i1 = min(j1 + SPLINE_CONTEXT_KNOTS, t_s.size)
    x = t_s[i0:i1]
    # Beats on both sides of the grid unless the first/last beat is within it: then the
    # grid is held flat beyond the beats (np.searchsorted: t_s[j0 - 1] < grid[0] and
    # t_s[j1] >= grid[-1]).
    if (j0 == 0 or j1 == t_s.size) and (grid[0] < x[0] or grid[-1] > x[-1]):
        grid = np.minimum(np.maximum(grid, x[0]), x[-1])
    return _welch_bands_of_grid(_spline(x, nn_ms[i0:i1], grid))


def _welch_bands_of_grid(y_ms: FloatArray) -> list[float] | None:
    """``[vlf, lf, hf]`` (ms²) of an evenly sampled 4 Hz tachogram (the Welch stage of
    :func:`_welch_bands`), or None when their sum is below :data:`POWER_FLOOR_MS2`."""
    plan = _welch_plan(int(y_ms.size))
    dft_t = plan.dft_t
    starts = plan.starts
    re_im = np.empty((len(starts), dft_t.shape[0]))
    for row, start in zip(re_im, starts, strict=True):
        _dot(dft_t, y_ms[start : start + WELCH_NPERSEG], row)
    re_im *= re_im
    bands: list[float] = _dot(re_im.ravel(), plan.w_bands).tolist()
    if not bands[0] + bands[1] + bands[2] >= POWER_FLOOR_MS2:
        return None
    return bands


class IncrementalTachogram:
    """The 4 Hz Welch tachogram of one segment, kept up to date as beats arrive.

    The values are the natural cubic spline through all the segment's beats (knots:
    beat time, NN), on the absolute grid ``t = j / 4 s``, held flat before the first
    beat. Recomputing the spline of a 120 s window every 5 s costs most of the live
    spectrum; here each update solves it only over the newest beats plus
    :data:`SPLINE_CONTEXT_KNOTS` of context, and rewrites only the grid points that the
    new beats can still move (those after the last beat minus the context). Older grid
    points are kept: they equal the segment-wide spline to ~3e-12 relative, as do the
    values :func:`welch_lf_hf` computes from scratch (same spline, same context), so
    live and offline LF/HF agree to rounding.

    Args:
        capacity: grid points kept (2048 = 512 s at 4 Hz).
    """

    __slots__ = ("_buf", "_j0", "_n", "_t_s", "_unsettled_t")

    def __init__(self, capacity: int = 2048) -> None:
        self._buf = np.empty(capacity)
        self._j0 = 0  # grid index of _buf[0]
        self._t_s = _grid_ramp(capacity).copy()  # grid times (s) of _buf: (_j0 + i) / 4
        self._n = 0  # _buf[:_n] holds grid indices _j0 .. _j0 + _n - 1
        self._unsettled_t = -math.inf  # grid points after this time must be recomputed

    def reset(self) -> None:
        """Forget the grid (a new segment starts)."""
        self._n = 0
        self._unsettled_t = -math.inf

    def window(self, x: FloatArray, y: FloatArray, j_end: int, n_win: int) -> FloatArray:
        """Grid values at indices ``j_end - n_win + 1 .. j_end`` (a view, valid until the
        next call).

        Args:
            x: beat times (s) of the segment, increasing, at least those from
                :data:`SPLINE_CONTEXT_KNOTS` beats before the window (or the segment
                start) to a beat at or after ``j_end / 4``.
            y: NN intervals (ms) at those beats.
            j_end: grid index of the last sample (``t_end * 4``).
            n_win: samples in the window (at most the capacity).
        """
        j_first = j_end - n_win + 1
        j0 = self._j0
        valid_end = j0 + self._n
        buf = self._buf
        if self._n and j0 <= j_first <= valid_end:
            r = max(j_first, min(valid_end, math.floor(self._unsettled_t * WELCH_FS_HZ) + 1))
            if j_end - j0 + 1 > buf.size:  # keep the window's part, move it to the front
                keep = r - j_first
                buf[:keep] = buf[j_first - j0 : r - j0]
                j0 = self._set_origin(j_first)
        else:
            r = j_first
            j0 = self._set_origin(j_first)
        # Knots: SPLINE_CONTEXT_KNOTS before the first grid point to recompute, to the end.
        k = x.size
        a = int(x.searchsorted(r / WELCH_FS_HZ)) - 1 - SPLINE_CONTEXT_KNOTS
        a = max(a, 0)
        xs = x[a:]
        # r/4, (r+1)/4, … s: the cached grid times (exact: quarters of integers).
        tq = self._t_s[r - j0 : j_end - j0 + 1]
        x_first = float(xs[0])
        x_last = float(xs[-1])
        if r / WELCH_FS_HZ < x_first or j_end / WELCH_FS_HZ > x_last:
            tq = np.minimum(np.maximum(tq, x_first), x_last)
        _spline(xs, y[a:], tq, buf[r - j0 : j_end - j0 + 1])
        self._n = j_end - j0 + 1
        self._unsettled_t = float(x[max(k - 1 - SPLINE_CONTEXT_KNOTS, a)])
        return buf[j_first - j0 : j_end - j0 + 1]

    def _set_origin(self, j0: int) -> int:
        """Make grid index ``j0`` the buffer's first sample (and its times j/4 s)."""
        if j0 != self._j0:
            self._t_s = _grid_ramp(self._buf.size) + j0 / WELCH_FS_HZ
            self._j0 = j0
        return j0
