"""The session report: replay a stored session, summarise it, write one HTML file.

``vagus report ID`` runs :func:`write_session_report`, which

1. replays the session's input through the one replay (:mod:`vagus.store.replay`:
   one :class:`~vagus.core.pipeline.Pipeline` per participant, markers and pacer
   changes to each, exactly as ``vagus replay`` and as live) and collects each
   participant's events into a :class:`~vagus.report.model.SessionReplay`
   (:func:`~vagus.report.model.replay_participants`);
2. summarises each participant (:func:`~vagus.report.model.summarize_replay`): our
   whole-session time- and frequency-domain values (:mod:`vagus.core.metrics`,
   SCIENCE.md definitions), session means of the real-time metrics, coherence, signal
   quality, and the paced-versus-unpaced spectrum;
3. runs the neurokit2 HRV battery on each participant's corrected NN
   (:func:`hrv_battery`; neurokit2 is imported here only, lazily, never on the live
   path);
4. draws the figures (:mod:`vagus.report.plots`, matplotlib, imported lazily) and writes
   a single self-contained HTML file (:func:`render_session_html`): figures as inline
   base64 PNG, CSS inline, no external reference, page breaks between sections for print.

A session with several participants gets one document with the session's markers and
pacer once (a table and a shared pacer/markers track), then a section per participant
(:func:`render_group_html`): participants are never pooled, and each section's numbers
are exactly those of that participant recorded alone. ``participant=`` keeps one.

Every number in the report is labelled with its formula and window; a "Definitions"
section cites SCIENCE.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vagus.core.events import ARTIFACT_CLASSES, Gap
from vagus.core.spectrum import HIGH_COHERENCE_RATIO, POWER_FLOOR_MS2
from vagus.report._common import (
    CSS,
    RR_RANGE_MS,
    ProgressCallback,
    card,
    clock,
    esc,
    fmt,
    html_table,
    no_progress,
    section_id,
    when,
)
from vagus.report.model import (
    SessionReplay,
    SessionSummary,
    SpectrumComparison,
    replay_participants,
    replay_records,
    replay_session,
    summarize_replay,
)
from vagus.store.base import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HIGH_COHERENCE_RATIO",
    "BatteryResult",
    "ParticipantReport",
    "ProgressCallback",
    "SessionReplay",
    "SessionSummary",
    "SpectrumComparison",
    "hrv_battery",
    "render_group_html",
    "render_session_html",
    "replay_participants",
    "replay_records",
    "replay_session",
    "session_report_html",
    "summarize_replay",
    "write_session_report",
]

FloatArray = npt.NDArray[np.float64]

#: The neurokit2 nonlinear domain grows as N² (entropies, correlation dimension: 1000 NN
#: take ~3 s, 6000 NN ~3 min): above this many NN it runs on the first
#: ``NONLINEAR_MAX_NN`` NN of the longest contiguous segment (about 15 min at 65 bpm).
NONLINEAR_MAX_NN = 1000

#: Above this much NN time (s), neurokit2's frequency domain interpolates at 4 Hz (the
#: Task Force rate) instead of its default 100 Hz, which needs ~2 GB for 24 h.
FREQUENCY_DEFAULT_MAX_S = 7200.0

#: Peaks for neurokit2 are sample indices at this rate, built from cumulative NN.
BATTERY_SAMPLING_RATE_HZ = 1000


# --------------------------------------------------------------------------- battery


@dataclass(frozen=True, slots=True)
class BatteryResult:
    """The neurokit2 HRV battery on the corrected NN.

    Attributes:
        values: domain ("time", "frequency", "nonlinear") -> {neurokit2 column: value}.
        errors: domain -> the error message, for each domain that failed.
        notes: what neurokit2 was given, and the warnings it raised (recorded, not shown
            on stderr).
        version: neurokit2's version, or None when it is not installed.
    """

    values: dict[str, dict[str, float]]
    errors: dict[str, str]
    notes: tuple[str, ...]
    version: str | None


def _battery_input(nn: FloatArray, seg: npt.NDArray[np.int64], t: FloatArray) -> tuple[Any, str]:
    """What to give neurokit2, and a sentence saying what it is."""
    if seg.size == 0 or seg[0] == seg[-1]:
        # One contiguous stretch: peaks (sample indices at 1000 Hz) from cumulative NN.
        peaks = np.concatenate([[0.0], np.cumsum(nn)]) * (BATTERY_SAMPLING_RATE_HZ / 1000.0)
        return (
            np.round(peaks).astype(np.int64),
            f"{nn.size} corrected NN as R-peak sample indices at {BATTERY_SAMPLING_RATE_HZ} Hz "
            "(cumulative NN, first peak at 0).",
        )
    # Gaps: intervals with their times, so that neurokit2 sees the missing stretches
    # (its time domain takes no successive difference across them).
    t_nn = np.empty_like(nn)
    start = 0.0
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        first = idx[0]
        if first > 0:
            # At least 1 s of missing time, so that neurokit2 sees the break.
            start = max(start + nn[first] / 1000.0 + 1.0, float(t[first]) - float(t[0]))
        else:
            start = nn[first] / 1000.0
        t_nn[idx] = start + (np.cumsum(nn[idx]) - nn[first]) / 1000.0
        start = float(t_nn[idx[-1]])
    return (
        {"RRI": nn, "RRI_Time": t_nn},
        f"{nn.size} corrected NN in {np.unique(seg).size} contiguous stretches, as intervals "
        "with times (neurokit2 skips successive differences across the gaps in the time "
        "domain; its frequency domain interpolates across them, so read it with care).",
    )


def hrv_battery(replay: SessionReplay, progress: ProgressCallback = no_progress) -> BatteryResult:
    """Run neurokit2's ``hrv_time``, ``hrv_frequency`` and ``hrv_nonlinear`` on the NN.

    Each domain runs on its own; a failure is caught and reported per domain. neurokit2's
    warnings are recorded (``warnings.catch_warnings`` around each call) and listed in
    the report. The frequency domain runs with ``normalize=False``, so ``HRV_LF``,
    ``HRV_HF`` etc. are absolute powers in ms² (neurokit2's default divides the PSD by
    its maximum). When its total power ``HRV_TP`` is below
    :data:`vagus.core.spectrum.POWER_FLOOR_MS2` (a flat series: only round-off), every
    frequency value is null (NaN, shown "–"), as our own spectra are.
    """
    has_nn = np.isfinite(replay.beat_nn_ms)
    nn = replay.beat_nn_ms[has_nn]
    seg = replay.beat_segment[has_nn]
    t = replay.beat_t_s[has_nn]
    progress("battery", 0.0)
    try:
        import neurokit2 as nk
    except ImportError:
        return BatteryResult(
            {},
            {"all": "neurokit2 cannot be imported: reinstall vagus (python3 -m pip install vagus)"},
            (),
            None,
        )
    values: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    notes: list[str] = []
    if nn.size < 10:
        return BatteryResult(
            {}, {"all": f"only {nn.size} NN intervals: too few for the battery"}, (), nk.__version__
        )
    peaks, described = _battery_input(nn, seg, t)
    notes.append("Input: " + described)
    nonlinear_input = peaks
    if nn.size > NONLINEAR_MAX_NN:
        seg_ids, counts = np.unique(seg, return_counts=True)
        longest = seg_ids[int(np.argmax(counts))]
        part = nn[seg == longest][:NONLINEAR_MAX_NN]
        nonlinear_input = np.round(np.concatenate([[0.0], np.cumsum(part)])).astype(np.int64)
        notes.append(
            f"Nonlinear domain: on the first {part.size} NN of the longest contiguous stretch "
            f"(the whole series has {nn.size}; several entropies grow as N²), "
            f"about {part.sum() / 60000.0:.0f} min."
        )
    freq_kwargs: dict[str, Any] = {"normalize": False}
    if float(nn.sum()) / 1000.0 > FREQUENCY_DEFAULT_MAX_S:
        freq_kwargs["interpolation_rate"] = 4
        notes.append(
            "Frequency domain: interpolated at 4 Hz (neurokit2's default of 100 Hz needs "
            f"gigabytes for recordings over {FREQUENCY_DEFAULT_MAX_S / 3600:g} h)."
        )
    domains: list[tuple[str, Callable[..., pd.DataFrame], Any, dict[str, Any]]] = [
        ("time", nk.hrv_time, peaks, {}),
        ("frequency", nk.hrv_frequency, peaks, freq_kwargs),
        ("nonlinear", nk.hrv_nonlinear, nonlinear_input, {}),
    ]
    seen: set[str] = set()
    for i, (name, func, arg, kwargs) in enumerate(domains):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = func(arg, sampling_rate=BATTERY_SAMPLING_RATE_HZ, **kwargs)
                row = df.iloc[0]
                values[name] = {
                    str(k): float(v) for k, v in row.items() if isinstance(v, int | float)
                }
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        if name == "frequency" and name in values:
            freq = values[name]
            total = freq.get("HRV_TP", math.nan)
            if not math.isfinite(total):  # TP needs VLF, which a short series lacks
                bands = [freq.get(k, math.nan) for k in ("HRV_VLF", "HRV_LF", "HRV_HF")]
                finite = [v for v in bands if math.isfinite(v)]
                total = sum(finite) if finite else math.nan
            if total < POWER_FLOOR_MS2:
                values[name] = {k: math.nan for k in values[name]}
                notes.append(
                    f"Frequency domain: total power {total:.3g} ms² is below the power "
                    f"floor of {POWER_FLOOR_MS2:g} ms² (a flat series: round-off only), so "
                    "every frequency value is null, as in our own spectra."
                )
        for w in caught:
            msg = f"{name}: {w.category.__name__}: {str(w.message).strip()[:300]}"
            if msg not in seen:
                seen.add(msg)
                notes.append("neurokit2 warned, " + msg)
        progress("battery", (i + 1) / len(domains))
    return BatteryResult(values, errors, tuple(notes), nk.__version__)


# ------------------------------------------------------------------------------ HTML
def _gap_duration_text(gap: Gap) -> str:
    if gap.duration_s is None:
        return "unknown (no beat after it)"
    if gap.duration_s <= 0:
        return f"unknown (reported {fmt(gap.duration_s, 1, 's')})"
    return fmt(gap.duration_s, 1, "s")


_NK_MS = {
    "MeanNN",
    "SDNN",
    "RMSSD",
    "SDSD",
    "MedianNN",
    "MadNN",
    "IQRNN",
    "Prc20NN",
    "Prc80NN",
    "MinNN",
    "MaxNN",
    "TINN",
    "SD1",
    "SD2",
    "SD1a",
    "SD1d",
    "SD2a",
    "SD2d",
    "SDNNa",
    "SDNNd",
}
_NK_PCT = {"pNN50", "pNN20"}


def _nk_unit(domain: str, key: str) -> str:
    k = key.removeprefix("HRV_")
    if k in _NK_MS or k.startswith(("SDANN", "SDNNI")):
        return "ms"
    if k in _NK_PCT:
        return "% (÷N)"
    if domain == "frequency" and k in {"ULF", "VLF", "LF", "HF", "VHF", "TP"}:
        return "ms² (absolute power)"
    if domain == "frequency" and k in {"LFn", "HFn"}:
        return "normalised: band power / total power"
    if domain == "frequency" and k == "LnHF":
        return "ln(ms²)"
    if k == "S":
        return "ms²"
    return ""


def _battery_html(battery: BatteryResult) -> str:
    parts: list[str] = []
    version = f"neurokit2 {battery.version}" if battery.version else "neurokit2"
    parts.append(
        f'<p class="note">Computed by {esc(version)} (<code>hrv_time</code>, '
        "<code>hrv_frequency</code>, <code>hrv_nonlinear</code>, default settings) on the "
        "corrected NN. Its band powers (<code>HRV_LF</code>, <code>HRV_HF</code>, …) are "
        "absolute powers in ms² (<code>normalize=False</code>; neurokit2's default divides "
        "the PSD by its maximum), from its own Welch settings over the whole series, so "
        "they differ from our mean of 5-min windows; <code>LFn</code>/<code>HFn</code> are "
        "band power / total power. Its pNN50 divides by N, ours by the number of "
        "differences (N−1).</p>"
    )
    for domain, err in battery.errors.items():
        parts.append(f'<p class="warn">neurokit2 {esc(domain)} domain failed: {esc(err)}</p>')
    tables = []
    for domain, vals in battery.values.items():
        rows = [
            (esc(k.removeprefix("HRV_")), fmt(v, 4 if abs(v) < 10 else 2), esc(_nk_unit(domain, k)))
            for k, v in vals.items()
        ]
        tables.append(
            f"<div><h3>{esc(domain.capitalize())} domain</h3>"
            + html_table(("neurokit2 index", "value", "unit"), rows, (1,))
            + "</div>"
        )
    parts.append('<div class="battery">' + "".join(tables) + "</div>")
    if battery.notes:
        parts.append(
            '<ul class="note">' + "".join(f"<li>{esc(n)}</li>" for n in battery.notes) + "</ul>"
        )
    return "".join(parts)


def _definitions_html() -> str:
    items = [
        (
            "Beat times",
            "Beat time = previous beat time + RR (cumulative RR chain, anchored to the "
            "arrival clock at the start and after every gap), never packet arrival times "
            "(SCIENCE.md, “Beats and time”).",
        ),
        (
            "Artifacts and NN",
            "Lipponen & Tarvainen 2019 (J Med Eng Technol 43:173), made causal with a "
            "two-beat decision delay: ectopic, long and short beats are replaced by "
            "interpolation, a missed beat is split in two, an extra beat is merged with its "
            "neighbour; ‘range’ = outside 250–2500 ms. NN = the corrected intervals. "
            "“RR as measured” = the intervals as sent, without the out-of-range ones.",
        ),
        (
            "Gap",
            "A break in the beat chain (link lost, dropout, contact lost, clock jump, an "
            "RR too long to be a beat). No beat is invented; no successive difference is "
            "taken across a gap. Duration: from the last beat before it to the start of "
            "the first interval after it; a source that reports a duration ≤ 0 (it "
            "re-anchored its chain before the gap's start) gets “unknown”, a line in the "
            "figures instead of a span, and is left out of the total gap time.",
        ),
        ("Mean NN, HR", "mean(NN) in ms; HR = 60000 / mean(NN) in beats/min."),
        ("SDNN", "std(NN, ddof=1), ms (Task Force 1996)."),
        (
            "RMSSD",
            "sqrt(mean(ΔNN²)), ms, ΔNN = NN[i] − NN[i−1] only between adjacent beats with no "
            "gap between them. Real time: over the last 30 s and 60 s of beat time; whole "
            "session: over all NN.",
        ),
        ("SDSD", "std(ΔNN, ddof=1), ms (pyhrv uses the std of |ΔNN| instead)."),
        ("pNN50", "100 × #(|ΔNN| > 50 ms) / #ΔNN, % (neurokit2 divides by N instead)."),
        (
            "LF, HF (Welch)",
            "NN resampled at 4 Hz by a natural cubic spline through the beats (linear "
            "interpolation would bias HF at 0.25 Hz low by 23–33 % at 75–60 bpm), Welch "
            "with Hann segments of 64 s (256 samples), 50 % overlap, linear detrend; PSD "
            "in ms²/Hz; band power by trapezoid "
            "integration. VLF 0.0033–0.04 Hz, LF 0.04–0.15 Hz, HF 0.15–0.40 Hz (Task Force "
            "1996). Whole session: mean over back-to-back 5-min windows within contiguous "
            "stretches; live: last 120 s. At 6 breaths/min the breathing (RSA) is at 0.1 Hz, "
            "inside LF: HF is not the vagal proxy during slow paced breathing.",
        ),
        (
            "Coherence ratio (CR)",
            "Our implementation of the published HeartMath formula (McCraty & Childre "
            "2010; McCraty & Zayas 2014), not HeartMath's proprietary score: last 64 s of NN "
            "→ 2 Hz linear interpolation → linear detrend → Hann window → periodogram "
            "zero-padded to 1024 points → peak f_p in 0.04–0.26 Hz → peak power P over "
            "|f − f_p| ≤ 0.015 Hz → total power T over 0.0033–0.4 Hz → CR = P / (T − P). "
            "Recomputed every 5 s of beat time. The peak frequency × 60 is the breathing "
            "rhythm seen in the heart rate (breaths/min).",
        ),
        (
            "High coherence",
            f"A 64 s window with CR ≥ {HIGH_COHERENCE_RATIO:g}. This threshold is ours "
            "(the peak then holds three times the power of the rest of the spectrum); "
            "HeartMath's level thresholds are proprietary and not used. Time in high "
            "coherence = number of such windows × 5 s.",
        ),
        (
            "Paced / unpaced spectrum",
            "Mean of the 64 s coherence spectra (ms²/Hz) over the windows during which a "
            "pacer was set for the whole 64 s, and over those with no pacer at all; windows "
            "that straddle switching the pacer on or off are left out.",
        ),
        (
            "Resting RMSSD",
            "RMSSD (whole-stretch formula) over the NN recorded while no pacer was set "
            "(at least 60 s of them); no difference is taken across a gap or a pacer switch.",
        ),
        (
            "RSA amplitude",
            "Per breath: max(HR) − min(HR) over the beats in it, HR = 60000 / NN placed at "
            "the middle of each interval; a breath is one pacer cycle (inhale start to the "
            "next), or without a pacer one period of the spectral peak. The mean is over "
            "clean breaths (no artifact, gap or missing stretch). SCIENCE.md “RSA amplitude”.",
        ),
        (
            "Resonance rate",
            "The breathing rate where heart rate swings most and in step with the breath "
            "(heart rate leads breathing by about 0°; Vaschillo et al. 2002): the final "
            "result of the pacer's scan (each rate scored by amplitude, pacer-band power, "
            "coherence and phase), else the last adaptive estimate with confidence ≥ 0.5.",
        ),
        (
            "Plan phases",
            "A session plan's phases (marker “phase n/N: name”) each measured on its own: "
            "HR and RMSSD of the NN in it, the mean coherence ratio of the spectra computed "
            "in it, the mean RSA amplitude of its clean breaths.",
        ),
        (
            "Artifact %",
            "Measured beats of a class / all measured beats × 100 (beats inserted by the "
            "corrector are not measured beats). Real-time artifact rate: the same over the "
            "last 60 s.",
        ),
        (
            "Contact loss",
            "Time from a strap's “no skin contact” report to its next “contact” report "
            "(only for straps that report contact); RR sent without contact is not used.",
        ),
    ]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return (
        f"<dl>{body}</dl><p class='note'>Formulas pinned in the project's SCIENCE.md; "
        "references: Task Force of the ESC and NASPE 1996 (Circulation 93:1043); Lipponen & "
        "Tarvainen 2019; McCraty & Childre 2010 (Altern Ther Health Med 16:10).</p>"
    )


def _events_html(replay: SessionReplay, t0_s: float) -> str:
    """The session's markers (numbered [1], [2], ... in stored order) and pacer changes as
    one table in time order (a marker before a pacer change at the same instant), times
    from ``t0_s``; a note where there are none."""
    ev_rows: list[tuple[float, str, str]] = []
    for i, m in enumerate(replay.markers, 1):
        ev_rows.append((m.t_s, f"marker [{i}]", esc(m.text)))
    for pc in replay.pacer_changes:
        what = (
            "pacer off"
            if pc.rate_bpm is None
            else f"pacer {pc.rate_bpm:g} breaths/min, inhale {100 * pc.inhale_fraction:.0f} %"
        )
        ev_rows.append((pc.t_s, "pacer", esc(what)))
    ev_rows.sort(key=lambda x: x[0])
    if not ev_rows:
        return "<p class='note'>No markers and no pacer changes in this session.</p>"
    return html_table(
        ("at (from start)", "event", "text"), [(clock(t - t0_s), k, v) for t, k, v in ev_rows], ()
    )


def _pieces(
    replay: SessionReplay,
    summary: SessionSummary,
    battery: BatteryResult,
    figures: dict[str, str],
) -> dict[str, str]:
    """The HTML fragments of one participant's report (see :func:`render_session_html`)."""
    from vagus import __version__

    r, s, info = replay, summary, replay.info
    title = info.title or f"Session {info.id}"

    def fig(name: str, caption: str) -> str:
        body = figures.get(name)
        if body is None:
            return f'<p class="note">(No {name} figure: not enough data.)</p>'
        return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"

    rt = s.realtime_means
    nn, rr = s.nn, s.rr
    cards = "".join(
        [
            card("duration (first to last event)", clock(s.duration_s)),
            card("beats measured", f"{r.beats_measured:,}"),
            card("mean HR, whole session (60000/mean NN)", fmt(nn.hr_bpm, 1, "bpm")),
            card("RMSSD, whole session (corrected NN)", fmt(nn.rmssd_ms, 1, "ms")),
            card("mean RMSSD 60 s (real time)", fmt(rt["rmssd_60s_ms"], 1, "ms")),
            card("mean coherence ratio (64 s windows)", fmt(rt["coherence_ratio"], 2)),
            card(
                f"time in high coherence (CR ≥ {HIGH_COHERENCE_RATIO:g}, ours)",
                clock(s.high_coherence_s),
            ),
            card("artifacts (% of measured beats)", fmt(s.artifact_total_pct, 1, "%")),
            card(
                "gaps in the beat chain (total known time; see Signal quality)",
                f"{s.gap_count} · {clock(s.gap_total_s)}",
            ),
            card(
                "mean RSA amplitude (peak-to-trough HR per clean breath)",
                fmt(s.rsa_mean_amplitude_bpm, 1, "bpm"),
            ),
        ]
        + (
            [
                card(
                    f"resonance rate ({s.resonance.method}, confidence "
                    f"{s.resonance.confidence:.2f})",
                    fmt(s.resonance.rate_bpm, 2, "breaths/min"),
                )
            ]
            if s.resonance is not None
            else []
        )
    )

    # --- our numbers beside the real-time means
    def pair(label: str, formula: str, v_nn: float | None, v_rr: float | None, d: int) -> str:
        return (
            f"<tr><td>{esc(label)}</td><td class='num'>{fmt(v_nn, d)}</td>"
            f"<td class='num'>{fmt(v_rr, d)}</td><td>{esc(formula)}</td></tr>"
        )

    ours = "".join(
        [
            pair("Mean NN (ms)", "mean(NN)", nn.mean_nn_ms, rr.mean_nn_ms, 1),
            pair("HR (bpm)", "60000 / mean NN", nn.hr_bpm, rr.hr_bpm, 1),
            pair("SDNN (ms)", "std(NN, ddof=1)", nn.sdnn_ms, rr.sdnn_ms, 2),
            pair("RMSSD (ms)", "sqrt(mean ΔNN²), no Δ across gaps", nn.rmssd_ms, rr.rmssd_ms, 3),
            pair("SDSD (ms)", "std(ΔNN, ddof=1)", nn.sdsd_ms, rr.sdsd_ms, 2),
            pair("pNN50 (%)", "100·#(|ΔNN|>50 ms)/#ΔNN", nn.pnn50_pct, rr.pnn50_pct, 2),
            pair(
                "VLF (ms²)",
                "Welch, 0.0033–0.04 Hz, mean of 5-min windows",
                nn.frequency.vlf_ms2,
                rr.frequency.vlf_ms2,
                1,
            ),
            pair(
                "LF (ms²)",
                "Welch, 0.04–0.15 Hz, mean of 5-min windows",
                nn.frequency.lf_ms2,
                rr.frequency.lf_ms2,
                1,
            ),
            pair(
                "HF (0.15–0.40 Hz) (ms²)",
                "Welch, 0.15–0.40 Hz, mean of 5-min windows",
                nn.frequency.hf_ms2,
                rr.frequency.hf_ms2,
                1,
            ),
            pair("LF/HF", "LF / HF (ms² / ms²)", nn.frequency.lf_hf, rr.frequency.lf_hf, 2),
        ]
    )
    ours_table = (
        "<table><thead><tr><th>whole session</th><th>corrected NN</th>"
        "<th>RR as measured</th><th>formula / window</th></tr></thead>"
        f"<tbody>{ours}</tbody></table>"
        f"<p class='note'>Welch windows averaged: {nn.frequency.welch_windows} (NN)"
        + (
            " (no 5-min stretch without a gap: no VLF, LF, HF). "
            if nn.frequency.welch_windows == 0
            else ". "
        )
        + "“RR as measured” applies the same formulas to the intervals the strap sent "
        "(or the file held), without artifact correction, to show what the correction "
        f"changed; it leaves out the {len(s.out_of_range_rr_ms):,} out-of-range value(s) "
        f"(outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms, see Signal quality) and takes "
        "no difference across one.</p>"
    )
    realtime_rows = [
        ("HR (bpm)", "60000 / mean NN over the last 10 s", rt["hr_bpm"], 1),
        (
            "RMSSD 30 s (ms)",
            "sqrt(mean ΔNN²), no Δ across gaps, last 30 s of beat time",
            rt["rmssd_30s_ms"],
            1,
        ),
        (
            "RMSSD 60 s (ms)",
            "sqrt(mean ΔNN²), no Δ across gaps, last 60 s of beat time",
            rt["rmssd_60s_ms"],
            1,
        ),
        ("SDNN 60 s (ms)", "std(NN, ddof=1), last 60 s", rt["sdnn_60s_ms"], 1),
        ("pNN50 60 s (%)", "100·#(|ΔNN|>50 ms)/#ΔNN, last 60 s", rt["pnn50_60s"], 1),
        (
            "artifact rate 60 s (%)",
            "artifacts / measured beats, last 60 s",
            rt["artifact_rate_60s"],
            2,
        ),
        (
            "coherence ratio",
            "64 s windows every 5 s (ours, see Definitions)",
            rt["coherence_ratio"],
            2,
        ),
        (
            "peak frequency (breaths/min)",
            "highest peak in 0.04–0.26 Hz × 60, 64 s windows",
            None if rt["peak_hz"] is None else rt["peak_hz"] * 60.0,
            2,
        ),
    ]
    realtime_table = html_table(
        ("real-time metric (session mean)", "mean", "window / formula"),
        [(esc(a), fmt(v, d), esc(b)) for a, b, v, d in realtime_rows],
        (1,),
    ) + (
        "<p class='note'>Mean over every beat's (or every 5-s spectrum's) value once its "
        "window held enough data (75 % coverage, ≥ 5 values).</p>"
    )
    # --- signal quality
    q_rows = [
        (
            esc(cls),
            f"{s.artifacts.get(cls, 0):,}",
            fmt(s.artifact_pct.get(cls, 0.0), 2, "%"),
        )
        for cls in ARTIFACT_CLASSES
    ]
    q_rows.append(
        (
            "<b>all artifacts</b>",
            f"{sum(s.artifacts.values()):,}",
            fmt(s.artifact_total_pct, 2, "%"),
        )
    )
    reasons = ", ".join(f"{esc(k)} × {v}" for k, v in sorted(s.gap_reasons.items())) or "none"
    contact = (
        clock(s.contact_loss_s)
        if s.contact_reported
        else "not reported (the strap does not report skin contact)"
    )
    gap_rows = [
        (
            clock(g.t_s - r.t0_s),
            _gap_duration_text(g),
            esc(g.reason),
        )
        for g in r.gaps
    ]
    oor = s.out_of_range_rr_ms
    if oor:
        shown = ", ".join(f"{v:,.0f}" for v in sorted(set(oor))[:6])
        oor_text = (
            f"{s.out_of_range_low:,} below {RR_RANGE_MS[0]:g} ms, {s.out_of_range_high:,} "
            f"above {RR_RANGE_MS[1]:g} ms (values: {shown} ms); not heartbeats (typically "
            "the first packets after a strap (re)connects): left out of “RR as measured”, "
            "drawn at the tachogram's axis edge, classed ‘range’ above"
        )
    else:
        oor_text = f"none outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms"
    unmeasured = (
        f"; {s.unmeasured_gaps} with a reported duration ≤ 0 (not summed; drawn as a line)"
        if s.unmeasured_gaps
        else ""
    )
    quality = (
        html_table(("artifact class", "beats", "% of measured beats"), q_rows, (1, 2))
        + "<table><tbody>"
        + f"<tr><td>gaps in the beat chain</td><td class='num'>{s.gap_count}</td>"
        f"<td>{reasons}</td></tr>"
        + f"<tr><td>total gap time (known durations)</td><td class='num'>"
        f"{fmt(s.gap_total_s, 1, 's')}</td><td>{s.open_gaps} gap(s) without an end"
        f"{unmeasured}</td></tr>"
        + f"<tr><td>out-of-range RR (outside {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms)</td>"
        f"<td class='num'>{len(oor):,}</td><td>{esc(oor_text)}</td></tr>"
        + f"<tr><td>skin-contact loss</td><td class='num'>{contact}</td><td></td></tr>"
        + f"<tr><td>packets / malformed packets</td><td class='num'>{r.packets:,} / "
        f"{r.malformed_packets:,}</td><td>malformed packets are skipped, as live</td></tr>"
        + "</tbody></table>"
        + (
            "<h3>Gaps</h3>" + html_table(("at (from start)", "duration", "reason"), gap_rows, (1,))
            if gap_rows
            else ""
        )
    )
    events_html = _events_html(r, r.t0_s)
    # --- spectrum text
    cmp_ = s.spectrum
    if not cmp_.has_pacer:
        spec_note = (
            "This session has no pacer: the figure shows the whole-session spectrum "
            f"(mean of {cmp_.n_unpaced} 64 s windows)."
        )
    else:
        rates = ", ".join(f"{x:g}" for x in cmp_.pacer_rates) or "–"
        spec_note = (
            f"Paced: mean of {cmp_.n_paced} 64 s windows (pacer rates {rates} breaths/min; "
            f"dotted lines at the pacer frequencies); unpaced: mean of {cmp_.n_unpaced} "
            f"windows; {cmp_.straddling} windows straddling a pacer switch left out."
        )
    paced_min = clock(s.paced_s)
    rest_min = clock(s.resting_s)
    header = (
        f"<h1>{esc(title)}</h1><p class='sub'>Session <code>{esc(info.id)}</code> · "
        f"participant {esc(r.participant)} · started {when(info.started_unix_s)} · "
        f"source {esc(info.source)} · device profile {esc(info.device_profile)}"
        + (f" · tags {esc(', '.join(info.tags))}" if info.tags else "")
        + "</p>"
        + (f"<p>{esc(info.notes)}</p>" if info.notes else "")
    )
    fig_tachogram = fig(
        "tachogram",
        "RR as measured (grey) and corrected NN (blue) against time from the start. "
        "Artifacts are marked by class; shaded spans are gaps (no beats, none invented; a "
        "solid line where the gap's duration is unknown), hatched spans are skin-contact "
        "loss; dashed lines are markers [n] (see the table). The interval axis is clipped "
        f"to the physiological {RR_RANGE_MS[0]:g}–{RR_RANGE_MS[1]:g} ms: out-of-range RR "
        "are black triangles on the top (too long) or bottom (too short) edge, labelled "
        "with their value.",
    )
    fig_hr = fig(
        "hr_rmssd",
        "Top: HR (60000 / mean NN over the last 10 s). Bottom: RMSSD over the last 30 s "
        "and 60 s of beat time (ΔNN only between adjacent beats with no gap). Shaded: gaps.",
    )
    fig_coherence = fig(
        "coherence",
        "Top: coherence ratio of the last 64 s every 5 s (our implementation of the "
        "published formula; dotted line: our high-coherence threshold CR = "
        f"{HIGH_COHERENCE_RATIO:g}). Bottom: pacer rate (step line) and the spectral "
        "peak frequency × 60 (dots: the rhythm seen in the heart rate), breaths/min.",
    )
    # --- breathing: RSA, resonance, plan phases
    breathing = fig(
        "rsa",
        "Top: RSA amplitude of every breath, max(HR) − min(HR) over the beats in it "
        "(a pacer cycle when paced, one period of the spectral peak when not; faint dots: "
        "breaths with an artifact, gap or missing stretch), against time from the start; "
        "dashed lines are markers [n]. Bottom (a resonance scan only): the scan's mean "
        "amplitude per pacer rate and the rate it found.",
    )
    res = s.resonance
    if res is not None and res.rates_bpm:
        breathing += (
            f"<h3>Resonance {esc(res.method)}: {fmt(res.rate_bpm, 2, 'breaths/min')}, "
            f"confidence {res.confidence:.2f}</h3>"
            + html_table(
                (
                    "pacer rate (breaths/min)",
                    "mean amplitude (bpm)",
                    "pacer-band power (ms²)",
                    "coherence ratio",
                    "HR-pacer phase (°)",
                    "score",
                ),
                [
                    (f"{rate:g}", fmt(a, 1), fmt(pw, 0), fmt(c, 2), fmt(ph, 0), fmt(sc, 2))
                    for rate, a, pw, c, ph, sc in zip(
                        res.rates_bpm,
                        res.amplitude_bpm,
                        res.power_ms2,
                        res.coherence,
                        res.phase_deg,
                        res.score,
                        strict=False,
                    )
                ],
                (0, 1, 2, 3, 4, 5),
            )
            + "<p class='note'>Phase: heart rate against the pacer's breathing at the "
            "breathing frequency; positive = heart rate leads (below the resonance rate), "
            "0° at resonance (SCIENCE.md “Resonance frequency and the adaptive "
            "pacer”).</p>"
        )
    elif res is not None:
        breathing += (
            f"<p>Resonance rate ({esc(res.method)}): {fmt(res.rate_bpm, 2, 'breaths/min')}, "
            f"confidence {res.confidence:.2f}.</p>"
        )
    if s.phases:
        breathing += (
            "<h3>Plan phases side by side</h3>"
            + html_table(
                (
                    "phase",
                    "from",
                    "length",
                    "pacer",
                    "HR (bpm)",
                    "RMSSD (ms)",
                    "coherence ratio",
                    "RSA amplitude (bpm)",
                    "breaths",
                ),
                [
                    (
                        f"{ph.number}. {esc(ph.name)}",
                        clock(ph.start_s - r.t0_s),
                        clock(ph.duration_s),
                        esc(ph.pacer),
                        fmt(ph.hr_bpm, 1),
                        fmt(ph.rmssd_ms, 1),
                        fmt(ph.coherence, 2),
                        fmt(ph.rsa_bpm, 1),
                        str(ph.rsa_breaths),
                    )
                    for ph in s.phases
                ],
                (4, 5, 6, 7, 8),
            )
            + (
                "<p class='note'>Each phase from its marker to the next (or the plan's end): "
                "HR = 60000 / mean NN, RMSSD = sqrt(mean ΔNN²) with no difference across a "
                "gap, the mean coherence ratio of the 64 s spectra computed in the phase (the "
                "first minute's windows reach back into the phase before), the mean RSA "
                "amplitude of the clean breaths that ended in it.</p>"
            )
        )
    return {
        "breathing": breathing,
        "title": title,
        "header": header,
        "cards": cards,
        "note": f"""<p class="note">Replayed from the raw record through the same pipeline as live
(vagus {esc(__version__)}). Times (M:SS or H:MM:SS) count from the participant's first data.
Paced time {paced_min}, unpaced (resting) time {rest_min}; resting RMSSD
{fmt(s.resting_rmssd_ms, 1, "ms")} (RMSSD of the NN while no pacer was set).</p>""",
        "events": events_html,
        "tachogram": fig_tachogram,
        "hr_rmssd": fig_hr,
        "coherence": fig_coherence,
        "spectrum": fig(
            "spectrum", esc(spec_note) + " Bands: VLF 0.0033–0.04, LF 0.04–0.15, HF 0.15–0.40 Hz."
        ),
        "ours": ours_table,
        "realtime": realtime_table,
        "battery": _battery_html(battery),
        "quality": quality,
    }


def _body_sections(p: dict[str, str], suffix: str = "", who: str = "") -> str:
    """One participant's sections after its summary: figures, numbers, battery, quality
    (ids end in ``suffix`` and headings name ``who`` when the document has several)."""
    by = f" · {esc(who)}" if who else ""
    return f"""<section id="tachogram{suffix}"><h2>Tachogram{by}</h2>
{p["tachogram"]}
</section>
<section id="hr-rmssd{suffix}"><h2>Heart rate and RMSSD over time{by}</h2>
{p["hr_rmssd"]}
</section>
<section id="coherence{suffix}"><h2>Coherence and breathing rate over time{by}</h2>
{p["coherence"]}
</section>
<section id="spectrum{suffix}"><h2>Spectrum: paced against unpaced{by}</h2>
{p["spectrum"]}
</section>
<section id="breathing{suffix}"><h2>RSA amplitude, resonance and plan phases{by}</h2>
{p["breathing"]}
</section>
<section id="numbers{suffix}"><h2>Summary: our metrics{by}</h2>
{p["ours"]}
<h3>Real-time metrics, session means</h3>
{p["realtime"]}
</section>
<section id="battery{suffix}"><h2>neurokit2 HRV battery (corrected NN){by}</h2>
{p["battery"]}
</section>
<section id="quality{suffix}"><h2>Signal quality{by}</h2>
{p["quality"]}
</section>
"""


def _document(title: str, body: str, generated_unix_s: float | None) -> str:
    from vagus import __version__

    generated = when(generated_unix_s) if generated_unix_s is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · vagus report</title>
<style>{CSS}</style></head>
<body>
{body}<section id="definitions"><h2>Definitions</h2>
{_definitions_html()}
<p class="note">Report written by vagus {esc(__version__)} {generated}.</p>
</section>
</body></html>
"""


def render_session_html(
    replay: SessionReplay,
    summary: SessionSummary,
    battery: BatteryResult,
    figures: dict[str, str],
    *,
    generated_unix_s: float | None = None,
) -> str:
    """The report of one participant as one self-contained HTML document.

    ``figures`` maps a figure name ("tachogram", "hr_rmssd", "coherence", "spectrum")
    to an HTML fragment (an inline ``<img src="data:image/png;base64,...">``); a missing
    figure is replaced by a note.
    """
    p = _pieces(replay, summary, battery, figures)
    body = f"""<section class="first" id="summary">
{p["header"]}
<div class="grid">{p["cards"]}</div>
{p["note"]}
<h3>Markers and pacer</h3>
{p["events"]}
</section>
{_body_sections(p)}"""
    return _document(p["title"], body, generated_unix_s)


def _session_span(replays: Sequence[SessionReplay]) -> tuple[float, float]:
    """(start, end) of a session of several participants (s): from the first data of
    any participant to the last data, marker or pacer change of any."""
    t0 = min(r.t0_s for r in replays)
    ends = [r.t_end_s for r in replays]
    ends += [m.t_s for m in replays[0].markers] + [p.t_s for p in replays[0].pacer_changes]
    return t0, max(ends)


@dataclass(frozen=True, slots=True)
class ParticipantReport:
    """One participant's part of a session report: its replay, summary, battery and
    figures (:func:`session_report_html` makes them)."""

    replay: SessionReplay
    summary: SessionSummary
    battery: BatteryResult
    figures: dict[str, str]


def render_group_html(
    parts: Sequence[ParticipantReport],
    *,
    shared_figure: str | None = None,
    generated_unix_s: float | None = None,
) -> str:
    """The report of a session with several participants as one HTML document.

    The session's header, its markers and pacer changes (a table and ``shared_figure``,
    the pacer/markers track, times from the session's first data) once; then one
    ``<section class="participant" id="participant-NAME" data-participant="NAME">`` per
    participant (its summary cards) followed by its figures, numbers, battery and signal
    quality (ids ending ``-participant-NAME``). Each participant's values are its own:
    never pooled.
    """
    if not parts:
        raise ValueError("a report needs at least one participant")
    info = parts[0].replay.info
    title = info.title or f"Session {info.id}"
    first = parts[0].replay
    t0, t_end = _session_span([p.replay for p in parts])
    names = ", ".join(esc(p.replay.participant) for p in parts)
    events_html = _events_html(first, t0)
    track = (
        "<figure>" + shared_figure + "<figcaption>The session's pacer rate (step line) "
        "and markers [n] (dashed), shared by every participant; time from the session's "
        "first data.</figcaption></figure>"
        if shared_figure
        else ""
    )
    body = [
        f"""<section class="first" id="summary">
<h1>{esc(title)}</h1><p class='sub'>Session <code>{esc(info.id)}</code> · {len(parts)}
participants: {names} · started {when(info.started_unix_s)} · source {esc(info.source)}
· device profile {esc(info.device_profile)}"""
        + (f" · tags {esc(', '.join(info.tags))}" if info.tags else "")
        + "</p>"
        + (f"<p>{esc(info.notes)}</p>" if info.notes else "")
        + f"""
<p class="note">One section per participant, each replayed through its own pipeline
(participants are never pooled: each one's values are exactly those of that participant
recorded alone). The markers and the pacer belong to the whole session (duration
{clock(t_end - t0)} from the first data of any participant).</p>
<h3>Markers and pacer</h3>
{events_html}
{track}
<ul>"""
    ]
    taken: set[str] = set()
    slugs = [section_id(p.replay.participant, taken) for p in parts]
    body += [
        f'<li><a href="#{slug}">{esc(p.replay.participant)}</a></li>'
        for slug, p in zip(slugs, parts, strict=True)
    ]
    body.append("</ul>\n</section>\n")
    for slug, part in zip(slugs, parts, strict=True):
        who = part.replay.participant
        p = _pieces(part.replay, part.summary, part.battery, part.figures)
        body.append(
            f"""<section class="participant" id="{slug}" data-participant="{esc(who)}">
<h2>Participant: {esc(who)}</h2>
<div class="grid">{p["cards"]}</div>
{p["note"]}
</section>
{_body_sections(p, "-" + slug, who)}"""
        )
    return _document(title, "".join(body), generated_unix_s)


def _participant_report(replay: SessionReplay, progress: ProgressCallback) -> ParticipantReport:
    from vagus.report import plots

    summary = summarize_replay(replay)
    battery = hrv_battery(replay, progress=progress)
    progress("plots", 0.0)
    figures = plots.session_figures(replay, summary, progress=progress)
    progress("plots", 1.0)
    return ParticipantReport(replay, summary, battery, figures)


def session_report_html(
    replay: SessionReplay,
    *,
    progress: ProgressCallback = no_progress,
    generated_unix_s: float | None = None,
) -> tuple[str, SessionSummary]:
    """Summarise, run the battery, draw the figures and render the HTML of one
    participant's replay."""
    part = _participant_report(replay, progress)
    doc = render_session_html(
        replay, part.summary, part.battery, part.figures, generated_unix_s=generated_unix_s
    )
    return doc, part.summary


def group_report_html(
    replays: Sequence[SessionReplay],
    *,
    progress: ProgressCallback = no_progress,
    generated_unix_s: float | None = None,
) -> tuple[str, dict[str, SessionSummary]]:
    """The report of several participants of one session (one replay each, as
    :func:`~vagus.report.model.replay_participants` gives): one document, a section per
    participant (:func:`render_group_html`); a single replay gives the one-participant
    document of :func:`render_session_html`. Returns (HTML, summary by participant)."""
    from vagus.report import plots

    if len(replays) == 1:
        doc, summary = session_report_html(
            replays[0], progress=progress, generated_unix_s=generated_unix_s
        )
        return doc, {replays[0].participant: summary}
    parts = [_participant_report(r, progress) for r in replays]
    first = replays[0]
    shared = plots.pacer_track_figure(first.markers, first.pacer_changes, *_session_span(replays))
    doc = render_group_html(parts, shared_figure=shared, generated_unix_s=generated_unix_s)
    return doc, {p.replay.participant: p.summary for p in parts}


def write_session_report(
    store: Store,
    session_id: str,
    out_path: Path | str | None = None,
    *,
    participant: str | None = None,
    progress: ProgressCallback = no_progress,
) -> tuple[Path, dict[str, SessionSummary]]:
    """Replay a stored session and write its HTML report: every participant (a section
    each; one participant: the one-participant document), or only ``participant``.

    Args:
        out_path: the HTML file; default ``vagus-report-<id>.html`` in the current folder
            (``vagus-report-<id>-<participant>.html`` with ``participant``).

    Returns:
        (the file written, each participant's summary, in the session's order).

    Raises:
        UnknownParticipant: the session has no such participant (the message lists them).
        WriteError: the file cannot be written (a missing folder, a directory, a full
            disk); the target is left as it was (:mod:`vagus.files`).
    """
    import time

    from vagus.files import check_target, write_text

    if out_path is not None:
        check_target(out_path)  # a missing folder or a directory: say so before replaying
    replays = replay_participants(
        store,
        session_id,
        participants=None if participant is None else (participant,),
        progress=progress,
    )
    doc, summaries = group_report_html(replays, progress=progress, generated_unix_s=time.time())
    sid = replays[0].info.id
    if out_path is not None:
        path = Path(out_path)
    elif participant is None:
        path = Path(f"vagus-report-{sid}.html")
    else:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in participant)
        path = Path(f"vagus-report-{sid}-{safe}.html")
    write_text(path, doc)  # atomic: a failure or Ctrl-C leaves the target as it was
    return path, summaries
