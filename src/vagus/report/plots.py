"""Figures of the reports, drawn with matplotlib and embedded as inline base64 PNG.

matplotlib is imported inside the functions (it is heavy and never needed live), and
only its object-oriented API is used (``matplotlib.figure.Figure`` with the Agg canvas):
no pyplot, no global backend switch, no figure left open. Plotting stays here, apart
from the computations (which live in :mod:`vagus.report.model`; this module imports
only that and :mod:`vagus.report._common`, never the document modules).

Each public function returns an HTML fragment ``<img alt="…" src="data:image/png;base64,…">``
or None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from vagus.core.spectrum import HF_BAND_HZ, HIGH_COHERENCE_RATIO, LF_BAND_HZ, VLF_BAND_HZ
from vagus.report._common import RR_RANGE_MS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vagus.core.events import Marker, PacerChange
    from vagus.report.model import ProgressRow, SessionReplay, SessionSummary, SpectrumComparison

__all__ = [
    "ARTIFACT_COLORS",
    "AXIS_FLOORS",
    "axis_limits",
    "build_progress_figure",
    "coherence_figure",
    "figure_to_html",
    "hr_rmssd_figure",
    "pacer_track_figure",
    "progress_figure",
    "session_figures",
    "spectrum_figure",
    "tachogram_figure",
]

#: One colour per artifact class (tachogram markers and legend).
ARTIFACT_COLORS: dict[str, str] = {
    "ectopic": "#d62728",
    "missed": "#ff7f0e",
    "extra": "#9467bd",
    "long": "#8c564b",
    "short": "#e377c2",
    "range": "#111111",
}
_NN_COLOR = "#1f77b4"
_GAP_COLOR = "#f2b134"
_MARKER_COLOR = "#2ca02c"
_DPI = 130


@contextmanager
def _quiet_matplotlib() -> Iterator[None]:
    """Silence matplotlib's own UserWarnings (layout hints) while a figure is drawn.

    Targeted: only warnings raised from matplotlib modules, only inside this block.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"matplotlib\..*")
        # A label (participant, title, marker text) with a character the font lacks: it is
        # drawn as a box; matplotlib attributes that warning to its caller, so the module
        # filter above does not catch it.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def _new_figure(height_in: float, rows: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height_in), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def figure_to_html(fig: Figure, alt: str) -> str:
    """Render ``fig`` to PNG (Agg) and return an ``<img>`` with the PNG inline (base64)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def _unit_s(replay: SessionReplay) -> float:
    """Seconds per unit of the time axis: minutes, or hours for recordings over 3 h."""
    return 3600.0 if replay.t_end_s - replay.t0_s > 3 * 3600.0 else 60.0


def _time_label(replay: SessionReplay) -> str:
    return "time from start (h)" if _unit_s(replay) == 3600.0 else "time from start (min)"


def _minutes(replay: SessionReplay, t_s: Any) -> Any:
    """Time from the session start in axis units (minutes, or hours for long recordings)."""
    return (np.asarray(t_s, dtype=np.float64) - replay.t0_s) / _unit_s(replay)


def _spans(
    replay: SessionReplay,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], list[float]]:
    """(gap spans, contact-loss spans, gaps without a usable duration) in axis units.

    A gap reported with a duration <= 0 (a source re-anchoring its beat chain, e.g. after
    a 63999 ms RR from a strap that just reconnected) is no time span: it is returned as
    a single time, drawn as a line, never as a reversed or empty span.
    """
    end = replay.t_end_s
    gaps = []
    lines: list[float] = []
    for g in replay.gaps:
        if g.duration_s is not None and g.duration_s <= 0:
            lines.append(float(_minutes(replay, g.t_s)))
            continue
        stop = g.t_s + g.duration_s if g.duration_s is not None else max(end, g.t_s)
        gaps.append((float(_minutes(replay, g.t_s)), float(_minutes(replay, stop))))
    contact: list[tuple[float, float]] = []
    lost_at: float | None = None
    for c in replay.contacts:
        if c.contact is False and lost_at is None:
            lost_at = c.t_s
        elif c.contact is not False and lost_at is not None:
            contact.append((float(_minutes(replay, lost_at)), float(_minutes(replay, c.t_s))))
            lost_at = None
    if lost_at is not None:
        contact.append((float(_minutes(replay, lost_at)), float(_minutes(replay, end))))
    return gaps, contact, lines


def _break_at_gaps(replay: SessionReplay, t_s: Any, *ys: Any) -> tuple[Any, ...]:
    """(x in axis units, *ys) with NaN inserted wherever a gap starts between two
    consecutive times, so that no plotted line bridges a gap."""
    t = np.asarray(t_s, dtype=np.float64)
    gap_t = np.sort(np.asarray([g.t_s for g in replay.gaps], dtype=np.float64))
    n_before = np.searchsorted(gap_t, t, side="left")
    cut = np.flatnonzero(np.diff(n_before) != 0) + 1
    columns = [_minutes(replay, t), *(np.asarray(y, dtype=np.float64) for y in ys)]
    return tuple(np.insert(c, cut, np.nan) for c in columns)


def _decorate(ax: Axes, replay: SessionReplay, *, label_markers: bool, legend: bool) -> None:
    """Gap and contact-loss spans, marker lines and the common time axis on one axis."""
    span = float(_minutes(replay, replay.t_end_s))
    if span > 0:
        # Every time figure spans the whole session, so their time axes line up.
        ax.set_xlim(-0.01 * span, 1.01 * span)
    gaps, contact, lines = _spans(replay)
    for i, (a, b) in enumerate(gaps):
        ax.axvspan(a, max(b, a + 1e-3), color=_GAP_COLOR, alpha=0.35, lw=0,
                   label="gap" if (i == 0 and legend) else None)  # fmt: skip
    for i, x in enumerate(lines):
        ax.axvline(x, color=_GAP_COLOR, lw=2.0, alpha=0.8,
                   label="gap, duration unknown" if (i == 0 and legend) else None)  # fmt: skip
    for i, (a, b) in enumerate(contact):
        ax.axvspan(a, b, facecolor="none", edgecolor="#888888", hatch="//", lw=0,
                   label="contact lost" if (i == 0 and legend) else None)  # fmt: skip
    for i, m in enumerate(replay.markers, 1):
        x = float(_minutes(replay, m.t_s))
        ax.axvline(x, color=_MARKER_COLOR, ls="--", lw=1.0,
                   label="marker" if (i == 1 and legend) else None)  # fmt: skip
        if label_markers:
            ax.annotate(f"[{i}]", (x, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", va="top",
                        fontsize=8, color=_MARKER_COLOR)  # fmt: skip


def _legend(ax: Axes, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, **kw)


#: The smallest span each value axis shows (its unit), and the lowest value it can
#: reach: a nearly constant series (RMSSD 41.2-41.4 ms, 0 minutes of high coherence in
#: every session) is drawn as the flat line it is, not magnified into noise, and no axis
#: of a quantity that cannot be negative goes below 0.
AXIS_FLOORS: dict[str, tuple[float, float | None]] = {
    "rmssd_ms": (20.0, 0.0),
    "hr_bpm": (10.0, 0.0),
    "coherence_ratio": (4.0, 0.0),
    "minutes": (5.0, 0.0),
    "breaths_per_min": (4.0, 0.0),
}


def axis_limits(
    values: Any, min_span: float, lowest: float | None = None, *, pad: float = 0.08
) -> tuple[float, float]:
    """Value-axis limits for ``values`` (NaN ignored) spanning at least ``min_span``.

    The data range padded by ``pad`` of its span on each side; if that is narrower than
    ``min_span``, ``min_span`` centred on the data; never below ``lowest`` (the span is
    moved up, not cut). With no finite value: ``[lowest or 0, that + min_span]``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    base = 0.0 if lowest is None else lowest
    if v.size == 0:
        return base, base + min_span
    lo, hi = float(v.min()), float(v.max())
    extra = pad * (hi - lo)
    lo, hi = lo - extra, hi + extra
    if hi - lo < min_span:
        mid = (lo + hi) / 2.0
        lo, hi = mid - min_span / 2.0, mid + min_span / 2.0
    if lowest is not None and lo < lowest:
        lo, hi = lowest, max(hi, lowest + min_span)
    return lo, hi


def _floor_axis(ax: Axes, quantity: str, *series: Any, include: Sequence[float] = ()) -> None:
    """Set ``ax``'s value axis from ``series`` with :data:`AXIS_FLOORS` [quantity]
    (``include``: values that must stay in view, such as a threshold line)."""
    span, lowest = AXIS_FLOORS[quantity]
    parts = [np.ravel(np.asarray(s, dtype=np.float64)) for s in series]
    parts.append(np.asarray(include, dtype=np.float64))
    ax.set_ylim(*axis_limits(np.concatenate(parts), span, lowest))


#: At most this many out-of-range beats get their value written beside their marker.
_OOR_LABELS = 12


def tachogram_ylim(replay: SessionReplay) -> tuple[float, float]:
    """The tachogram's interval axis (ms): robust, physiological, never blown up.

    The 0.5th-99.5th percentiles of the in-range measured RR and the corrected NN,
    widened to keep every in-range artifact in view, padded, and clipped to
    :data:`~vagus.report._common.RR_RANGE_MS`: an out-of-range value (0 ms, 63999 ms)
    never sets the scale; it is drawn at the axis edge instead.
    """
    lo_ok, hi_ok = RR_RANGE_MS
    measured = ~replay.beat_inserted
    good = replay.beat_rr_ms[measured & ~replay.beat_out_of_range]
    nn = replay.beat_nn_ms[np.isfinite(replay.beat_nn_ms)]
    values = np.concatenate([good, nn[(nn >= lo_ok) & (nn <= hi_ok)]])
    if values.size == 0:
        return lo_ok, hi_ok
    lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    arts = np.asarray([a is not None for a in replay.beat_artifact], dtype=bool)
    art_rr = replay.beat_rr_ms[arts & measured & ~replay.beat_out_of_range]
    if art_rr.size:
        lo, hi = min(lo, float(art_rr.min())), max(hi, float(art_rr.max()))
    pad = max(50.0, 0.15 * (hi - lo))
    return max(lo_ok, lo - pad), min(hi_ok, hi + pad)


def tachogram_figure(replay: SessionReplay) -> str | None:
    """RR as measured and corrected NN, artifacts by class, gaps, contact loss, markers.

    Out-of-range RR (outside :data:`~vagus.report._common.RR_RANGE_MS`) are not drawn
    at their value (the axis is :func:`tachogram_ylim`): each is a triangle at the top
    (too long) or bottom (too short) edge, labelled with its value, and the "RR as
    measured" line breaks there.
    """
    r = replay
    if r.beat_t_s.size == 0:
        return None
    with _quiet_matplotlib():
        fig, (ax,) = _new_figure(3.8)
        x = _minutes(r, r.beat_t_s)
        measured = ~r.beat_inserted
        oor = r.beat_out_of_range
        seg = r.beat_segment

        # Break the lines at gaps (NaN between segments): no line bridges a gap.
        def broken(xs: Any, ys: Any, segs: Any) -> tuple[Any, Any]:
            cut = np.flatnonzero(np.diff(segs) != 0) + 1
            return np.insert(xs, cut, np.nan), np.insert(ys, cut, np.nan)

        # ... and at out-of-range values, which are left out of the line.
        rr_seg = seg * (oor.size + 1) + np.cumsum(oor)
        keep = measured & ~oor
        xr, yr = broken(x[keep], r.beat_rr_ms[keep], rr_seg[keep])
        ax.plot(xr, yr, color="#9a9a9a", lw=0.7, label="RR as measured")
        has_nn = np.isfinite(r.beat_nn_ms)
        xn, yn = broken(x[has_nn], r.beat_nn_ms[has_nn], seg[has_nn])
        ax.plot(xn, yn, color=_NN_COLOR, lw=0.9, label="NN (corrected)")
        arts = np.asarray([a or "" for a in r.beat_artifact])
        for cls, color in ARTIFACT_COLORS.items():
            sel = (arts == cls) & keep
            n_cls = int(np.count_nonzero((arts == cls) & measured))
            if np.any(sel):
                ax.scatter(x[sel], r.beat_rr_ms[sel], s=16, color=color, marker="x",
                           lw=1.2, zorder=3, label=f"{cls} ({n_cls})")  # fmt: skip
        _decorate(ax, r, label_markers=True, legend=True)
        ax.set_ylabel("interval (ms)")
        ax.set_xlabel(_time_label(r))
        ax.set_ylim(*tachogram_ylim(r))
        # Out-of-range beats: triangles on the axis edge (y in axes fraction).
        trans = ax.get_xaxis_transform()
        rr = r.beat_rr_ms
        high = oor & (rr > RR_RANGE_MS[1])
        low = oor & ~high
        for sel, y, mk, va, name in (
            (high, 1.0, "^", "top", f"> {RR_RANGE_MS[1]:g} ms"),
            (low, 0.0, "v", "bottom", f"< {RR_RANGE_MS[0]:g} ms"),
        ):
            n = int(np.count_nonzero(sel))
            if not n:
                continue
            ax.scatter(x[sel], np.full(n, y), transform=trans, marker=mk, s=42,
                       color="#111111", clip_on=False, zorder=4,
                       label=f"out of range, {name} ({n}), at axis edge")  # fmt: skip
            if np.count_nonzero(oor) <= _OOR_LABELS:
                for xi, v in zip(x[sel], rr[sel], strict=True):
                    ax.annotate(f"{v:,.0f} ms", (float(xi), y), xycoords=trans,
                                xytext=(4, -4 if va == "top" else 4),
                                textcoords="offset points", va=va, fontsize=7,
                                color="#111111")  # fmt: skip
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "Tachogram: RR and corrected NN with artifacts and gaps")


def hr_rmssd_figure(replay: SessionReplay) -> str | None:
    """HR (10 s) and RMSSD (30 s, 60 s) from the real-time Metrics events."""
    r = replay
    if r.metrics_t_s.size == 0 or not np.any(np.isfinite(r.hr_bpm)):
        return None
    with _quiet_matplotlib():
        fig, (ax1, ax2) = _new_figure(4.6, rows=2)
        x, hr, rmssd30, rmssd60 = _break_at_gaps(
            r, r.metrics_t_s, r.hr_bpm, r.rmssd_30s_ms, r.rmssd_60s_ms
        )
        ax1.plot(x, hr, color="#d62728", lw=0.9, label="HR (10 s)")
        ax1.set_ylabel("HR (bpm)")
        ax2.plot(x, rmssd30, color="#9ecae1", lw=0.9, label="RMSSD 30 s")
        ax2.plot(x, rmssd60, color=_NN_COLOR, lw=1.2, label="RMSSD 60 s")
        ax2.set_ylabel("RMSSD (ms)")
        ax2.set_xlabel(_time_label(r))
        _floor_axis(ax1, "hr_bpm", hr)
        _floor_axis(ax2, "rmssd_ms", rmssd30, rmssd60)
        for ax in (ax1, ax2):
            _decorate(ax, r, label_markers=ax is ax1, legend=False)
            ax.grid(alpha=0.3)
            _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "Heart rate and RMSSD (30 s, 60 s) over time")


def _pacer_steps(replay: SessionReplay) -> tuple[Any, Any] | None:
    r = replay
    if not r.pacer_changes:
        return None
    xs = [r.t0_s] + [p.t_s for p in r.pacer_changes] + [r.t_end_s]
    ys = [math.nan] + [math.nan if p.rate_bpm is None else p.rate_bpm for p in r.pacer_changes]
    ys.append(ys[-1])
    return _minutes(r, xs), np.asarray(ys, dtype=np.float64)


def coherence_figure(replay: SessionReplay, threshold: float) -> str | None:
    """Coherence ratio over time; pacer rate and spectral peak (breaths/min) with markers."""
    r = replay
    pts = [(s.t_s, s.coherence_ratio, s.peak_hz) for s in r.spectra]
    if not any(cr is not None for _, cr, _ in pts) and not r.pacer_changes:
        return None
    with _quiet_matplotlib():
        fig, (ax1, ax2) = _new_figure(4.6, rows=2)
        t, cr, pk = _break_at_gaps(
            r,
            [p[0] for p in pts],
            [math.nan if p[1] is None else p[1] for p in pts],
            [math.nan if p[2] is None else p[2] * 60 for p in pts],
        )
        dots = "." if len(pts) <= 400 else ""
        ax1.plot(t, cr, color="#6a3d9a", lw=0.8, marker=dots, ms=3, label="coherence ratio")
        ax1.axhline(threshold, color="#6a3d9a", ls=":", lw=1.0, label=f"CR = {threshold:g}")
        ax1.set_ylabel("coherence ratio")
        _floor_axis(ax1, "coherence_ratio", cr, include=(threshold,))
        steps = _pacer_steps(r)
        if steps is not None:
            ax2.step(steps[0], steps[1], where="post", color="#ff7f0e", lw=1.8, label="pacer")
        ax2.plot(t, pk, ".", color="#6a3d9a", ms=4 if dots else 1.5, label="spectral peak × 60")
        ax2.set_ylabel("breaths/min")
        ax2.set_xlabel(_time_label(r))
        _floor_axis(ax2, "breaths_per_min", pk, steps[1] if steps is not None else ())
        for ax in (ax1, ax2):
            _decorate(ax, r, label_markers=ax is ax1, legend=False)
            ax.grid(alpha=0.3)
            _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "Coherence ratio, pacer rate and breathing peak over time")


def spectrum_figure(cmp_: SpectrumComparison) -> str | None:
    """Mean 64 s spectra, paced against unpaced (or the whole session without a pacer)."""
    if cmp_.freqs_hz.size == 0:
        return None
    curves: list[tuple[str, Any, str]] = []
    if cmp_.has_pacer:
        if cmp_.paced_psd is not None:
            curves.append((f"paced ({cmp_.n_paced} windows)", cmp_.paced_psd, "#ff7f0e"))
        if cmp_.unpaced_psd is not None:
            curves.append((f"unpaced ({cmp_.n_unpaced} windows)", cmp_.unpaced_psd, _NN_COLOR))
    else:
        whole = cmp_.whole_psd
        if whole is not None:
            curves.append((f"whole session, no pacer ({cmp_.n_unpaced} windows)", whole, _NN_COLOR))
    if not curves:
        return None
    with _quiet_matplotlib():
        fig, (ax,) = _new_figure(3.4)
        f = cmp_.freqs_hz
        for (lo, hi), name, shade in (
            (VLF_BAND_HZ, "VLF", "#f0f0f0"),
            (LF_BAND_HZ, "LF", "#e6f0fa"),
            (HF_BAND_HZ, "HF", "#fdf0e6"),
        ):
            ax.axvspan(lo, hi, color=shade, lw=0)
            ax.annotate(name, ((lo + hi) / 2, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=8, color="#777777")  # fmt: skip
        for label, psd, color in curves:
            ax.plot(f, psd, color=color, lw=1.4, label=label)
        for rate in cmp_.pacer_rates:
            ax.axvline(rate / 60.0, color="#ff7f0e", ls=":", lw=1.0)
        ax.set_xlim(0.0, min(0.4, float(f[-1])))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (ms²/Hz)")
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper right")
        return figure_to_html(fig, "Mean heart-rate spectrum, paced against unpaced")


def rsa_figure(replay: SessionReplay) -> str | None:
    """RSA amplitude per breath (peak-to-trough HR, bpm) over time, paced and unpaced
    breaths apart, with the breath's rate; and the resonance scan's amplitude per rate
    when the session has one."""
    r = replay
    pts = [b for b in r.rsa if b.amplitude_bpm is not None]
    if not pts:
        return None
    scan = next(
        (e for e in reversed(r.resonance) if e.method == "scan" and e.final and e.rates_bpm),
        None,
    )
    with _quiet_matplotlib():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10.0, 5.6 if scan else 3.4), dpi=_DPI, layout="constrained")
        grid = fig.subplots(2 if scan else 1, 1, squeeze=False)
        ax = grid[0][0]
        for paced, color, name in ((True, "#ff7f0e", "paced"), (False, _NN_COLOR, "unpaced")):
            sel = [b for b in pts if b.paced is paced]
            if not sel:
                continue
            x = _minutes(r, [b.t_s for b in sel])
            y = [b.amplitude_bpm for b in sel]
            clean = [b.clean for b in sel]
            ax.plot(x, y, ".", color=color, ms=4, alpha=0.35)
            ax.plot(
                np.asarray(x)[clean], np.asarray(y, dtype=np.float64)[clean], ".",
                color=color, ms=5, label=f"{name} breaths (clean)",
            )  # fmt: skip
        ax.set_ylabel("RSA amplitude (bpm)")
        ax.set_xlabel(_time_label(r))
        ax.set_ylim(bottom=0)
        _decorate(ax, r, label_markers=True, legend=False)
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if scan is not None:
            a2 = grid[1][0]
            amps = [math.nan if v is None else v for v in scan.amplitude_bpm]
            a2.bar(scan.rates_bpm, amps, width=0.35, color="#fdd0a2", label="mean amplitude")
            if scan.rate_bpm is not None:
                a2.axvline(scan.rate_bpm, color="#d62728", ls="--", lw=1.2,
                           label=f"resonance {scan.rate_bpm:.2f}")  # fmt: skip
            a2.set_xlabel("pacer rate (breaths/min)")
            a2.set_ylabel("amplitude (bpm)")
            a2.grid(alpha=0.3)
            _legend(a2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "RSA amplitude per breath and the resonance scan")


def session_figures(
    replay: SessionReplay,
    summary: SessionSummary,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, str]:
    """All figures of a session report, by name (missing when there is nothing to draw)."""
    makers: list[tuple[str, Callable[[], str | None]]] = [
        ("tachogram", lambda: tachogram_figure(replay)),
        ("hr_rmssd", lambda: hr_rmssd_figure(replay)),
        ("coherence", lambda: coherence_figure(replay, HIGH_COHERENCE_RATIO)),
        ("spectrum", lambda: spectrum_figure(summary.spectrum)),
        ("rsa", lambda: rsa_figure(replay)),
    ]
    out: dict[str, str] = {}
    for i, (name, make) in enumerate(makers):
        html = make()
        if html is not None:
            out[name] = html
        if progress is not None:
            progress("plots", (i + 1) / len(makers))
    return out


def pacer_track_figure(
    markers: Sequence[Marker],
    pacer_changes: Sequence[PacerChange],
    t0_s: float,
    t_end_s: float,
) -> str | None:
    """The session's shared track: the pacer rate (step line) and the markers [n] over
    the whole session (times from ``t0_s``), drawn once for all participants."""
    if not markers and not pacer_changes:
        return None
    unit = 3600.0 if t_end_s - t0_s > 3 * 3600.0 else 60.0
    with _quiet_matplotlib():
        fig, (ax,) = _new_figure(1.9)
        changes = sorted(pacer_changes, key=lambda p: p.t_s)
        if changes:
            xs = [t0_s] + [p.t_s for p in changes] + [max(t_end_s, changes[-1].t_s)]
            ys = [math.nan] + [math.nan if p.rate_bpm is None else p.rate_bpm for p in changes]
            ys.append(ys[-1])
            x = (np.asarray(xs, dtype=np.float64) - t0_s) / unit
            ax.step(x, ys, where="post", color="#ff7f0e", lw=1.8, label="pacer")
            _floor_axis(ax, "breaths_per_min", ys)
        else:
            _floor_axis(ax, "breaths_per_min", ())
        for i, m in enumerate(markers, 1):
            xm = (m.t_s - t0_s) / unit
            ax.axvline(xm, color=_MARKER_COLOR, ls="--", lw=1.0,
                       label="marker" if i == 1 else None)  # fmt: skip
            ax.annotate(f"[{i}]", (xm, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", va="top",
                        fontsize=8, color=_MARKER_COLOR)  # fmt: skip
        span = (t_end_s - t0_s) / unit
        if span > 0:
            ax.set_xlim(-0.01 * span, 1.01 * span)
        ax.set_ylabel("breaths/min")
        ax.set_xlabel("time from the session's start (" + ("h" if unit == 3600.0 else "min") + ")")
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "Pacer rate and markers over the session")


def progress_figure(
    rows: Sequence[ProgressRow], threshold: float, label: str | None = None
) -> str | None:
    """Trends across sessions: RMSSD, coherence, time in high coherence, resonance rate.

    ``rows`` are one participant's (the report never pools participants); ``label``
    names them in the figure's title and alt text.
    """
    if not rows:
        return None
    with _quiet_matplotlib():
        fig = build_progress_figure(rows, threshold, label)
        alt = "Trends across sessions" + (f": {label}" if label is not None else "")
        return figure_to_html(fig, alt)


def build_progress_figure(
    rows: Sequence[ProgressRow], threshold: float, label: str | None = None
) -> Figure:
    """The progress figure (see :func:`progress_figure`), not yet rendered. Each value
    axis keeps its :data:`AXIS_FLOORS` span."""

    def col(name: str) -> Any:
        return np.asarray(
            [math.nan if (v := getattr(r, name)) is None else v for r in rows], dtype=np.float64
        )

    with _quiet_matplotlib():
        fig, axes = _new_figure(7.2, rows=4)
        x = np.arange(1, len(rows) + 1)
        a1, a2, a3, a4 = axes
        a1.plot(x, col("resting_rmssd_ms"), "o-", color=_NN_COLOR, label="resting RMSSD")
        a1.plot(x, col("mean_rmssd_60s_ms"), "s--", color="#9ecae1", label="mean RMSSD 60 s")
        a1.set_ylabel("RMSSD (ms)")
        _floor_axis(a1, "rmssd_ms", col("resting_rmssd_ms"), col("mean_rmssd_60s_ms"))
        a2.plot(x, col("mean_coherence"), "o-", color="#6a3d9a", label="mean coherence ratio")
        a2.axhline(threshold, color="#6a3d9a", ls=":", lw=1.0, label=f"CR = {threshold:g}")
        a2.set_ylabel("coherence ratio")
        _floor_axis(a2, "coherence_ratio", col("mean_coherence"), include=(threshold,))
        minutes = np.nan_to_num(col("high_coherence_s") / 60.0)
        a3.bar(x, minutes, color="#b2abd2", label=f"time with CR ≥ {threshold:g}")
        a3.set_ylabel("minutes")
        _floor_axis(a3, "minutes", minutes, include=(0.0,))
        resonance = col("resonance_rate_bpm")
        a4.plot(x, resonance, "D-", color="#ff7f0e", label="resonance rate")
        if not np.any(np.isfinite(resonance)):
            a4.set_yticks([])
            a4.text(0.5, 0.5, "resonance rate not yet assessed", transform=a4.transAxes,
                    ha="center", va="center", color="#777777")  # fmt: skip
        else:
            _floor_axis(a4, "breaths_per_min", resonance)
        a4.set_ylabel("breaths/min")
        a4.set_xlabel("session")
        a4.set_xticks(x, [f"{i}\n{r.date}" for i, r in zip(x, rows, strict=True)], fontsize=7)
        for ax in axes:
            ax.grid(alpha=0.3)
            _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if label is not None:
            fig.suptitle(label, fontsize=10, x=0.01, ha="left")
        return fig
