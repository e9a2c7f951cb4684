"""Figures of the reports, drawn with matplotlib and embedded as inline base64 PNG.

matplotlib is imported inside the functions (it is heavy and never needed live), and
only its object-oriented API is used (``matplotlib.figure.Figure`` with the Agg canvas):
no pyplot, no global backend switch, no figure left open. Plotting stays here, apart
from the computations (which live in :mod:`vagus.report.session`).

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

from vagus.core.spectrum import HF_BAND_HZ, LF_BAND_HZ, VLF_BAND_HZ

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vagus.report.progress import ProgressRow
    from vagus.report.session import SessionReplay, SessionSummary, SpectrumComparison

__all__ = [
    "ARTIFACT_COLORS",
    "coherence_figure",
    "figure_to_html",
    "hr_rmssd_figure",
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


def _spans(replay: SessionReplay) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(gap spans, contact-loss spans) in minutes from the start."""
    end = replay.t_end_s
    gaps = []
    for g in replay.gaps:
        stop = g.t_s + g.duration_s if g.duration_s is not None else end
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
    return gaps, contact


def _decorate(ax: Axes, replay: SessionReplay, *, label_markers: bool, legend: bool) -> None:
    """Gap and contact-loss spans and marker lines on one axis."""
    gaps, contact = _spans(replay)
    for i, (a, b) in enumerate(gaps):
        ax.axvspan(a, max(b, a + 1e-3), color=_GAP_COLOR, alpha=0.35, lw=0,
                   label="gap" if (i == 0 and legend) else None)  # fmt: skip
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


def tachogram_figure(replay: SessionReplay) -> str | None:
    """RR as measured and corrected NN, artifacts by class, gaps, contact loss, markers."""
    r = replay
    if r.beat_t_s.size == 0:
        return None
    with _quiet_matplotlib():
        fig, (ax,) = _new_figure(3.8)
        x = _minutes(r, r.beat_t_s)
        measured = ~r.beat_inserted
        seg = r.beat_segment

        # Break the lines at gaps (NaN between segments): no line bridges a gap.
        def broken(xs: Any, ys: Any, segs: Any) -> tuple[Any, Any]:
            cut = np.flatnonzero(np.diff(segs) != 0) + 1
            return np.insert(xs, cut, np.nan), np.insert(ys, cut, np.nan)

        xr, yr = broken(x[measured], r.beat_rr_ms[measured], seg[measured])
        ax.plot(xr, yr, color="#9a9a9a", lw=0.7, label="RR as measured")
        has_nn = np.isfinite(r.beat_nn_ms)
        xn, yn = broken(x[has_nn], r.beat_nn_ms[has_nn], seg[has_nn])
        ax.plot(xn, yn, color=_NN_COLOR, lw=0.9, label="NN (corrected)")
        arts = np.asarray([a or "" for a in r.beat_artifact])
        for cls, color in ARTIFACT_COLORS.items():
            sel = (arts == cls) & measured
            if np.any(sel):
                ax.scatter(x[sel], r.beat_rr_ms[sel], s=16, color=color, marker="x",
                           lw=1.2, zorder=3, label=f"{cls} ({int(sel.sum())})")  # fmt: skip
        _decorate(ax, r, label_markers=True, legend=True)
        ax.set_ylabel("interval (ms)")
        ax.set_xlabel(_time_label(r))
        lo, hi = (float(v) for v in np.nanpercentile(r.beat_rr_ms, [0.5, 99.5]))
        # Keep every plausible artifact in view; out-of-range values (< 250, > 2500 ms)
        # may fall off the chart (they are counted in the legend and the quality table).
        art_rr = r.beat_rr_ms[(arts != "") & measured]
        art_rr = art_rr[(art_rr >= 250.0) & (art_rr <= 2500.0)]
        if art_rr.size:
            lo, hi = min(lo, float(art_rr.min())), max(hi, float(art_rr.max()))
        pad = max(50.0, 0.15 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), hi + pad)
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
        x = _minutes(r, r.metrics_t_s)
        ax1.plot(x, r.hr_bpm, color="#d62728", lw=0.9, label="HR (10 s)")
        ax1.set_ylabel("HR (bpm)")
        ax2.plot(x, r.rmssd_30s_ms, color="#9ecae1", lw=0.9, label="RMSSD 30 s")
        ax2.plot(x, r.rmssd_60s_ms, color=_NN_COLOR, lw=1.2, label="RMSSD 60 s")
        ax2.set_ylabel("RMSSD (ms)")
        ax2.set_xlabel(_time_label(r))
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
        t = _minutes(r, [p[0] for p in pts])
        cr = np.asarray([math.nan if p[1] is None else p[1] for p in pts], dtype=np.float64)
        pk = np.asarray([math.nan if p[2] is None else p[2] * 60 for p in pts], dtype=np.float64)
        dots = "." if len(pts) <= 400 else ""
        ax1.plot(t, cr, color="#6a3d9a", lw=0.8, marker=dots, ms=3, label="coherence ratio")
        ax1.axhline(threshold, color="#6a3d9a", ls=":", lw=1.0, label=f"CR = {threshold:g}")
        ax1.set_ylabel("coherence ratio")
        ax1.set_ylim(bottom=0)
        steps = _pacer_steps(r)
        if steps is not None:
            ax2.step(steps[0], steps[1], where="post", color="#ff7f0e", lw=1.8, label="pacer")
        ax2.plot(t, pk, ".", color="#6a3d9a", ms=4 if dots else 1.5, label="spectral peak × 60")
        ax2.set_ylabel("breaths/min")
        ax2.set_xlabel(_time_label(r))
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


def session_figures(
    replay: SessionReplay,
    summary: SessionSummary,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, str]:
    """All figures of a session report, by name (missing when there is nothing to draw)."""
    from vagus.report.session import HIGH_COHERENCE_THRESHOLD

    makers: list[tuple[str, Callable[[], str | None]]] = [
        ("tachogram", lambda: tachogram_figure(replay)),
        ("hr_rmssd", lambda: hr_rmssd_figure(replay)),
        ("coherence", lambda: coherence_figure(replay, HIGH_COHERENCE_THRESHOLD)),
        ("spectrum", lambda: spectrum_figure(summary.spectrum)),
    ]
    out: dict[str, str] = {}
    for i, (name, make) in enumerate(makers):
        html = make()
        if html is not None:
            out[name] = html
        if progress is not None:
            progress("plots", (i + 1) / len(makers))
    return out


def progress_figure(rows: Sequence[ProgressRow], threshold: float) -> str | None:
    """Trends across sessions: RMSSD, coherence, time in high coherence, resonance rate."""
    if not rows:
        return None

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
        a2.plot(x, col("mean_coherence"), "o-", color="#6a3d9a", label="mean coherence ratio")
        a2.axhline(threshold, color="#6a3d9a", ls=":", lw=1.0, label=f"CR = {threshold:g}")
        a2.set_ylabel("coherence ratio")
        minutes = col("high_coherence_s") / 60.0
        a3.bar(x, np.nan_to_num(minutes), color="#b2abd2",
               label=f"time with CR ≥ {threshold:g}")  # fmt: skip
        a3.set_ylabel("minutes")
        resonance = col("resonance_rate_bpm")
        a4.plot(x, resonance, "D-", color="#ff7f0e", label="resonance rate")
        if not np.any(np.isfinite(resonance)):
            a4.set_yticks([])
            a4.text(0.5, 0.5, "resonance rate not yet assessed", transform=a4.transAxes,
                    ha="center", va="center", color="#777777")  # fmt: skip
        a4.set_ylabel("breaths/min")
        a4.set_xlabel("session")
        a4.set_xticks(x, [f"{i}\n{r.date}" for i, r in zip(x, rows, strict=True)], fontsize=7)
        for ax in axes:
            ax.grid(alpha=0.3)
            _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_to_html(fig, "Trends across sessions")
