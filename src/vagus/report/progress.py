"""The progress report: trends across sessions (``vagus progress``).

For each session of a participant, the values are computed by replaying the session
through the pipeline (:func:`vagus.report.session.replay_session`) and summarising it
(:meth:`~vagus.report.session.SessionSummary.trend_values`):

- resting RMSSD (ms): RMSSD of the NN recorded while no pacer was set (≥ 60 s of them);
- mean RMSSD 60 s (ms): session mean of the real-time 60 s RMSSD;
- mean coherence: session mean of the 64 s coherence ratio (our implementation of the
  published HeartMath formula, not HeartMath's score);
- time in high coherence: windows with CR ≥ :data:`~vagus.report.session.HIGH_COHERENCE_THRESHOLD`
  (our threshold) × 5 s;
- resonance rate (breaths/min): from the session summary's ``resonance_rate_bpm`` when a
  resonance assessment stored one, else "not yet assessed".

Derived values are cached in the session summary under :data:`CACHE_KEY` (for ended
sessions only, keyed by the vagus version and :data:`TREND_VERSION`), never trusted over
the raw record: ``refresh=True`` recomputes them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vagus.exceptions import StoreError
from vagus.report.session import (
    HIGH_COHERENCE_THRESHOLD,
    ProgressCallback,
    replay_session,
    summarize_replay,
)
from vagus.store.base import SessionInfo, Store

__all__ = [
    "CACHE_KEY",
    "TREND_VERSION",
    "ProgressRow",
    "progress_rows",
    "render_progress_html",
    "write_progress_report",
]

#: Key of the cached trend values in a session's summary.
CACHE_KEY = "report_trend"
#: Bumped whenever the trend values' definitions change (invalidates the cache).
TREND_VERSION = 1


def _nothing(stage: str, fraction: float) -> None:
    """The default progress callback: report nothing."""


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """One session's trend values (None: not available for this session)."""

    session_id: str
    started_unix_s: float
    title: str
    participant: str
    duration_s: float | None
    beats: int | None
    resting_rmssd_ms: float | None
    rmssd_ms: float | None
    mean_rmssd_60s_ms: float | None
    mean_hr_bpm: float | None
    mean_coherence: float | None
    high_coherence_s: float | None
    high_coherence_pct: float | None
    artifact_pct: float | None
    resonance_rate_bpm: float | None
    cached: bool = False

    @property
    def date(self) -> str:
        """Start date (UTC, YYYY-MM-DD)."""
        return _dt.datetime.fromtimestamp(self.started_unix_s, tz=_dt.UTC).strftime("%Y-%m-%d")


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _cache_tag() -> dict[str, Any]:
    from vagus import __version__

    return {"trend_version": TREND_VERSION, "vagus": __version__}


def _cached(info: SessionInfo, participant: str) -> dict[str, Any] | None:
    entry = info.summary.get(CACHE_KEY)
    if not isinstance(entry, dict) or info.ended_unix_s is None:
        return None
    if any(entry.get(k) != v for k, v in _cache_tag().items()):
        return None
    per = entry.get("participants")
    if not isinstance(per, dict):
        return None
    values = per.get(participant)
    return values if isinstance(values, dict) else None


def _row(info: SessionInfo, participant: str, v: dict[str, Any], cached: bool) -> ProgressRow:
    beats = _num(v.get("beats"))
    return ProgressRow(
        session_id=info.id,
        started_unix_s=info.started_unix_s,
        title=info.title,
        participant=participant,
        duration_s=_num(v.get("duration_s")),
        beats=None if beats is None else int(beats),
        resting_rmssd_ms=_num(v.get("resting_rmssd_ms")),
        rmssd_ms=_num(v.get("rmssd_ms")),
        mean_rmssd_60s_ms=_num(v.get("mean_rmssd_60s_ms")),
        mean_hr_bpm=_num(v.get("mean_hr_bpm")),
        mean_coherence=_num(v.get("mean_coherence")),
        high_coherence_s=_num(v.get("high_coherence_s")),
        high_coherence_pct=_num(v.get("high_coherence_pct")),
        artifact_pct=_num(v.get("artifact_pct")),
        resonance_rate_bpm=_num(info.summary.get("resonance_rate_bpm")),
        cached=cached,
    )


def progress_rows(
    store: Store,
    participant: str | None = None,
    *,
    refresh: bool = False,
    write_cache: bool = True,
    progress: ProgressCallback = _nothing,
) -> list[ProgressRow]:
    """One row per session (oldest first) of ``participant``.

    Args:
        participant: only sessions with this participant, and their values for this
            participant; None: every session, for its first participant.
        refresh: ignore cached values and replay every session.
        write_cache: store the computed values in each ended session's summary.
    """
    sessions = sorted(store.list_sessions(), key=lambda s: (s.started_unix_s, s.id))
    if participant is not None:
        sessions = [s for s in sessions if participant in s.participants]
    rows: list[ProgressRow] = []
    progress("sessions", 0.0)
    for i, info in enumerate(sessions):
        who = participant if participant is not None else (info.participants or ("me",))[0]
        values = None if refresh else _cached(info, who)
        if values is not None:
            rows.append(_row(info, who, values, cached=True))
        else:
            replay = replay_session(store, info.id, participant=who)
            values = summarize_replay(replay).trend_values()
            rows.append(_row(info, who, values, cached=False))
            if write_cache and info.ended_unix_s is not None:
                entry = info.summary.get(CACHE_KEY)
                per = dict(entry.get("participants", {})) if isinstance(entry, dict) else {}
                if isinstance(entry, dict) and any(
                    entry.get(k) != v for k, v in _cache_tag().items()
                ):
                    per = {}
                per[who] = values
                summary = {**info.summary, CACHE_KEY: {**_cache_tag(), "participants": per}}
                # A read-only store still gets its report; the cache is only a cache.
                with contextlib.suppress(StoreError):
                    store.update_session(info.id, summary=summary)
        progress("sessions", (i + 1) / len(sessions))
    return rows


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_progress_html(
    rows: Sequence[ProgressRow],
    participant: str | None,
    *,
    generated_unix_s: float | None = None,
) -> str:
    """The progress report as one self-contained HTML document."""
    from vagus import __version__
    from vagus.report import plots
    from vagus.report.session import _CSS, _when

    who = participant if participant is not None else "every session's first participant"
    figure = plots.progress_figure(rows, HIGH_COHERENCE_THRESHOLD) if rows else None
    body_rows = []
    for i, r in enumerate(rows, 1):
        res = (
            f"{r.resonance_rate_bpm:g}"
            if r.resonance_rate_bpm is not None
            else "<span class='muted'>not yet assessed</span>"
        )
        pct = "" if r.high_coherence_pct is None else f" ({r.high_coherence_pct:.0f} %)"
        cells = [
            str(i),
            _e(r.date),
            f"<code>{_e(r.session_id)}</code>",
            _e(r.title),
            _e(r.participant),
            _clock(r.duration_s),
            _fmt(r.mean_hr_bpm),
            _fmt(r.resting_rmssd_ms),
            _fmt(r.mean_rmssd_60s_ms),
            _fmt(r.mean_coherence, 2),
            _clock(r.high_coherence_s) + pct,
            res,
            _fmt(r.artifact_pct, 1),
        ]
        num = {0, 5, 6, 7, 8, 9, 10, 11, 12}
        body_rows.append(
            "<tr>"
            + "".join(
                f"<td class='num'>{c}</td>" if j in num else f"<td>{c}</td>"
                for j, c in enumerate(cells)
            )
            + "</tr>"
        )
    header = (
        "#",
        "date (UTC)",
        "session",
        "title",
        "participant",
        "duration",
        "mean HR (bpm)",
        "resting RMSSD (ms)",
        "mean RMSSD 60 s (ms)",
        "mean coherence",
        f"time with CR ≥ {HIGH_COHERENCE_THRESHOLD:g}",
        "resonance rate (breaths/min)",
        "artifacts (%)",
    )
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in header)
        + "</tr></thead><tbody>"
        + "".join(body_rows)
        + "</tbody></table>"
    )
    fig_html = (
        f"<figure>{figure}<figcaption>Per session, oldest first (x: session number and "
        "date). Resonance rate: only for sessions where a resonance assessment stored one."
        "</figcaption></figure>"
        if figure
        else "<p class='note'>No sessions to plot.</p>"
    )
    generated = _when(generated_unix_s) if generated_unix_s is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Progress · {_e(who)} · vagus</title>
<style>{_CSS}</style></head>
<body>
<section class="first" id="trends">
<h1>Progress across sessions</h1>
<p class="sub">Participant: {_e(who)} · {len(rows)} session(s)</p>
{fig_html}
</section>
<section id="table"><h2>Sessions</h2>
{table}
</section>
<section id="definitions"><h2>Definitions</h2>
<dl>
<dt>Resting RMSSD</dt><dd>sqrt(mean(ΔNN²)) over the corrected NN recorded while no pacer was
set (at least 60 s of them), no difference across a gap or a pacer switch; “–” when the
session had less unpaced time.</dd>
<dt>Mean RMSSD 60 s</dt><dd>Session mean of the real-time RMSSD over the last 60 s of beat
time.</dd>
<dt>Mean coherence</dt><dd>Session mean of the coherence ratio of 64 s windows every 5 s: our
implementation of the published HeartMath formula (McCraty &amp; Childre 2010), not
HeartMath's proprietary score.</dd>
<dt>Time in high coherence</dt><dd>Number of 64 s windows with CR ≥
{HIGH_COHERENCE_THRESHOLD:g} × 5 s (percentage: of the windows with a CR). The threshold is
ours; HeartMath's level thresholds are proprietary.</dd>
<dt>Resonance rate</dt><dd>The breathing rate (breaths/min) with the largest heart-rate
oscillation, as found by a resonance assessment and stored with the session
(<code>resonance_rate_bpm</code>); “not yet assessed” otherwise.</dd>
<dt>Mean HR</dt><dd>60000 / mean(NN) over the whole session.</dd>
<dt>Artifacts</dt><dd>Measured beats classified as artifacts (Lipponen &amp; Tarvainen 2019) /
all measured beats × 100.</dd>
</dl>
<p class="note">Values come from replaying each session's raw record through the pipeline
(cached per session for finished sessions). Report written by vagus {_e(__version__)}
{generated}.</p>
</section>
</body></html>
"""


def write_progress_report(
    store: Store,
    out_path: Path | str | None = None,
    *,
    participant: str | None = None,
    refresh: bool = False,
    progress: ProgressCallback = _nothing,
) -> tuple[Path, list[ProgressRow]]:
    """Compute the rows and write the progress report.

    Args:
        out_path: the HTML file; default ``vagus-progress[-<participant>].html``.

    Returns:
        (the file written, the rows).
    """
    import time

    rows = progress_rows(store, participant, refresh=refresh, progress=progress)
    doc = render_progress_html(rows, participant, generated_unix_s=time.time())
    if out_path is None:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in participant or "")
        out_path = f"vagus-progress-{safe}.html" if safe else "vagus-progress.html"
    path = Path(out_path)
    path.write_text(doc, encoding="utf-8")
    return path, rows
