"""The progress report: trends across sessions (``vagus progress``).

The report has one section per participant (trend figure and table), never pooling
values across people: a session with two participants (a client and a therapist, both
wearing straps) gives one row in each of their sections, each from that person's beats.
Sessions recorded or imported without naming a participant carry the store's default
name :data:`DEFAULT_PARTICIPANT` ("me") and form the section labelled
:data:`NO_PARTICIPANT_LABEL`. ``participant=`` restricts the report to one section.

For each session of a participant, the values are computed by replaying the session
through the one replay (:func:`vagus.report.model.replay_participants`: all of the
session's participants in one pass, each through its own pipeline) and summarising it
(:meth:`~vagus.report.model.SessionSummary.trend_values`):

- resting RMSSD (ms): RMSSD of the NN recorded while no pacer was set (≥ 60 s of them);
- mean RMSSD 60 s (ms): session mean of the real-time 60 s RMSSD;
- mean coherence: session mean of the 64 s coherence ratio (our implementation of the
  published HeartMath formula, not HeartMath's score);
- time in high coherence: windows with CR ≥
  :data:`~vagus.core.spectrum.HIGH_COHERENCE_RATIO` (our threshold) × 5 s;
- resonance rate (breaths/min) and its confidence: what the pacer's ``scan`` found for
  this participant (its final result), else the last ``adaptive`` estimate with a
  confidence of at least 0.5 (:func:`vagus.report.model.session_resonance_result`; the
  replay makes the same decisions as live), else a rate stored in the session's summary
  (``resonance_rate_bpm``, an assessment made elsewhere), else "not yet assessed";
- mean RSA amplitude (bpm): mean peak-to-trough heart rate of the clean breaths.

Derived values are cached in the session summary under :data:`CACHE_KEY` (for ended
sessions only, keyed by the vagus version and :data:`TREND_VERSION`), never trusted over
the raw record: ``refresh=True`` recomputes them.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vagus.core.spectrum import HIGH_COHERENCE_RATIO
from vagus.exceptions import InvalidInput, StoreError
from vagus.report._common import CSS, ProgressCallback, no_progress, section_id, when
from vagus.report.model import ProgressRow, replay_participants, summarize_replay
from vagus.store.base import SessionInfo, Store

__all__ = [
    "CACHE_KEY",
    "DEFAULT_PARTICIPANT",
    "NO_PARTICIPANT_LABEL",
    "TREND_VERSION",
    "ProgressRow",
    "check_participant",
    "group_by_participant",
    "participant_label",
    "participants_in",
    "progress_rows",
    "render_progress_html",
    "write_progress_report",
]

#: Key of the cached trend values in a session's summary.
CACHE_KEY = "report_trend"
#: Bumped whenever the trend values' definitions change (invalidates the cache).
#: 2: the session start ignores an out-of-range first RR (duration_s).
#: 3: resonance rate and confidence from the replay, mean RSA amplitude.
TREND_VERSION = 3
#: The participant name the store, ``vagus record`` and ``vagus import`` use when none is
#: given: such sessions have no named participant.
DEFAULT_PARTICIPANT = "me"
#: The section heading of the sessions without a named participant.
NO_PARTICIPANT_LABEL = "(no participant)"


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
    rate = _num(v.get("resonance_rate_bpm"))
    if rate is None:
        # A rate stored with the session (an assessment made elsewhere) when the pacer
        # found none in it.
        rate = _num(info.summary.get("resonance_rate_bpm"))
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
        resonance_rate_bpm=rate,
        cached=cached,
        resonance_confidence=_num(v.get("resonance_confidence")),
        rsa_mean_amplitude_bpm=_num(v.get("rsa_mean_amplitude_bpm")),
    )


def participant_label(participant: str) -> str:
    """The name a participant's section is headed by (:data:`NO_PARTICIPANT_LABEL` for
    the default, unnamed participant)."""
    return NO_PARTICIPANT_LABEL if participant == DEFAULT_PARTICIPANT else participant


def group_by_participant(rows: Sequence[ProgressRow]) -> list[tuple[str, list[ProgressRow]]]:
    """The rows by participant, in report order: named participants by name (case-folded),
    then the unnamed one; within a participant the rows keep their order (oldest first)."""
    groups: dict[str, list[ProgressRow]] = {}
    for r in rows:
        groups.setdefault(r.participant, []).append(r)
    order = sorted(groups, key=lambda p: (p == DEFAULT_PARTICIPANT, p.casefold(), p))
    return [(p, groups[p]) for p in order]


def progress_rows(
    store: Store,
    participant: str | None = None,
    *,
    refresh: bool = False,
    write_cache: bool = True,
    progress: ProgressCallback = no_progress,
) -> list[ProgressRow]:
    """One row per session and participant (sessions oldest first).

    Args:
        participant: only sessions with this participant, and their values for this
            participant (:data:`NO_PARTICIPANT_LABEL` means :data:`DEFAULT_PARTICIPANT`);
            None: every participant of every session, each row from that participant's
            own beats (:func:`group_by_participant` makes the report's sections).
        refresh: ignore cached values and replay every session.
        write_cache: store the computed values in each ended session's summary.
    """
    if participant == NO_PARTICIPANT_LABEL:
        participant = DEFAULT_PARTICIPANT
    sessions = sorted(store.list_sessions(), key=lambda s: (s.started_unix_s, s.id))
    work: list[tuple[SessionInfo, str]] = []
    for info in sessions:
        people = info.participants or (DEFAULT_PARTICIPANT,)
        if participant is None:
            work += [(info, who) for who in dict.fromkeys(people)]
        elif participant in people:
            work.append((info, participant))
    rows: list[ProgressRow] = []
    progress("sessions", 0.0)
    # A session's participants that need values are replayed together, in one pass
    # (each through its own pipeline: the one replay, never pooled).
    fresh: dict[tuple[str, str], dict[str, Any]] = {}
    for i, (listed, who) in enumerate(work):
        # Re-read: an earlier row of the same session may have updated its cache.
        info = store.get_session(listed.id) if write_cache else listed
        values = None if refresh else _cached(info, who)
        if values is not None:
            rows.append(_row(info, who, values, cached=True))
        else:
            if (info.id, who) not in fresh:
                todo = [
                    w for s, w in work if s.id == info.id and (refresh or _cached(info, w) is None)
                ]
                for replay in replay_participants(store, info.id, participants=todo):
                    fresh[(info.id, replay.participant)] = summarize_replay(replay).trend_values()
            values = fresh.pop((info.id, who))
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
        progress("sessions", (i + 1) / len(work))
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


_HEADER = (
    "#",
    "date (UTC)",
    "session",
    "title",
    "duration",
    "mean HR (bpm), whole session",
    "resting RMSSD (ms), unpaced NN",
    "mean RMSSD 60 s (ms)",
    "mean coherence ratio (64 s)",
    f"time with CR ≥ {HIGH_COHERENCE_RATIO:g} (% of windows)",
    "resonance rate (breaths/min) · confidence",
    "mean RSA amplitude (bpm, clean breaths)",
    "artifacts (% of measured beats)",
)
_NUM_COLS = {0, 4, 5, 6, 7, 8, 9, 10, 11, 12}


def _table_html(rows: Sequence[ProgressRow]) -> str:
    body_rows = []
    for i, r in enumerate(rows, 1):
        conf = "" if r.resonance_confidence is None else f" · {r.resonance_confidence:.2f}"
        res = (
            f"{round(r.resonance_rate_bpm, 2):g}{conf}"
            if r.resonance_rate_bpm is not None
            else "<span class='muted'>not yet assessed</span>"
        )
        pct = "" if r.high_coherence_pct is None else f" ({r.high_coherence_pct:.0f} %)"
        cells = [
            str(i),
            _e(r.date),
            f"<code>{_e(r.session_id)}</code>",
            _e(r.title),
            _clock(r.duration_s),
            _fmt(r.mean_hr_bpm),
            _fmt(r.resting_rmssd_ms),
            _fmt(r.mean_rmssd_60s_ms),
            _fmt(r.mean_coherence, 2),
            _clock(r.high_coherence_s) + pct,
            res,
            _fmt(r.rsa_mean_amplitude_bpm, 1),
            _fmt(r.artifact_pct, 1),
        ]
        body_rows.append(
            "<tr>"
            + "".join(
                f"<td class='num'>{c}</td>" if j in _NUM_COLS else f"<td>{c}</td>"
                for j, c in enumerate(cells)
            )
            + "</tr>"
        )
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in _HEADER)
        + "</tr></thead><tbody>"
        + "".join(body_rows)
        + "</tbody></table>"
    )


def _participant_section(
    participant: str, rows: Sequence[ProgressRow], slug: str, *, first: bool
) -> str:
    from vagus.report import plots

    label = participant_label(participant)
    heading = _e(label) if label == NO_PARTICIPANT_LABEL else f"Participant: {_e(label)}"
    figure = plots.progress_figure(rows, HIGH_COHERENCE_RATIO, label)
    fig_html = (
        f"<figure>{figure}<figcaption>{_e(label)}: per session, oldest first (x: session "
        "number within this participant, and date). Resonance rate: only for sessions "
        "where the pacer's scan or adaptive mode found one for this participant."
        "</figcaption></figure>"
        if figure
        else "<p class='note'>No sessions to plot.</p>"
    )
    span = rows[0].date if rows[0].date == rows[-1].date else f"{rows[0].date} – {rows[-1].date}"
    unnamed = (
        "<p class='note'>Sessions recorded or imported without <code>--participant</code> "
        f"(stored under the default name “{_e(DEFAULT_PARTICIPANT)}”).</p>"
        if participant == DEFAULT_PARTICIPANT
        else ""
    )
    cls = ' class="participant first"' if first else ' class="participant"'
    return (
        f'<section{cls} id="{slug}" data-participant="{_e(participant)}">'
        f"<h2>{heading}</h2>"
        f"<p class='sub'>{len(rows)} session(s) · {_e(span)} · not pooled with any other "
        "section</p>"
        f"{unnamed}{fig_html}<h3>Sessions</h3>{_table_html(rows)}</section>"
    )


def render_progress_html(
    rows: Sequence[ProgressRow],
    participant: str | None,
    *,
    generated_unix_s: float | None = None,
) -> str:
    """The progress report as one self-contained HTML document: one section per
    participant (:func:`group_by_participant`), each with its own figure and table."""
    from vagus import __version__

    groups = group_by_participant(rows)
    who = (
        participant_label(participant)
        if participant is not None
        else f"{len(groups)} participant(s), one section each"
    )
    taken: set[str] = set()
    slugs = [section_id(p, taken) for p, _ in groups]
    sections = "\n".join(
        _participant_section(p, g, slug, first=(k == 0))
        for k, ((p, g), slug) in enumerate(zip(groups, slugs, strict=True))
    )
    if not groups:
        sections = (
            '<section class="first" id="no-sessions">'
            "<p class='note'>No sessions to plot.</p></section>"
        )
    toc = ""
    if len(groups) > 1:
        toc = (
            "<ul class='toc'>"
            + "".join(
                f'<li><a href="#{slug}">{_e(participant_label(p))}</a>: {len(g)} session(s)</li>'
                for (p, g), slug in zip(groups, slugs, strict=True)
            )
            + "</ul><p class='note'>Values are never pooled across participants: each "
            "section replays only that participant's beats.</p>"
        )
    generated = when(generated_unix_s) if generated_unix_s is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Progress · {_e(who)} · vagus</title>
<style>{CSS}</style></head>
<body>
<header id="trends">
<h1>Progress across sessions</h1>
<p class="sub">{_e(who)} · {len({r.session_id for r in rows})} session(s)</p>
{toc}
</header>
{sections}
<section id="definitions"><h2>Definitions</h2>
<dl>
<dt>Resting RMSSD</dt><dd>sqrt(mean(ΔNN²)) over the corrected NN recorded while no pacer was
set (at least 60 s of them), no difference across a gap or a pacer switch; “–” when the
session had less unpaced time.</dd>
<dt>Mean RMSSD 60 s</dt><dd>Session mean of the real-time RMSSD (sqrt(mean(ΔNN²)), no
difference across a gap) over the last 60 s of beat time, at every beat once that window
is 75 % covered.</dd>
<dt>Mean coherence</dt><dd>Session mean of the coherence ratio of 64 s windows every 5 s: our
implementation of the published HeartMath formula (McCraty &amp; Childre 2010), not
HeartMath's proprietary score.</dd>
<dt>Time in high coherence</dt><dd>Number of 64 s windows with CR ≥
{HIGH_COHERENCE_RATIO:g} × 5 s (percentage: of the windows with a CR). The threshold is
ours; HeartMath's level thresholds are proprietary.</dd>
<dt>Resonance rate</dt><dd>The breathing rate (breaths/min) at which heart rate swings the
most and in step with the breath (heart-rate/pacer phase near 0°): the final result of the
pacer's <code>scan</code> for this participant, else the last <code>adaptive</code> estimate
with a confidence ≥ 0.5 (confidence 0–1 shown beside it); “not yet assessed” otherwise.
The latest one is the default rate of the participant's next session.</dd>
<dt>Mean RSA amplitude</dt><dd>Mean over the clean breaths (no artifact, gap or missing
stretch) of the peak-to-trough heart rate max(HR) − min(HR) within each breath (a pacer
cycle, or one period of the spectral peak without a pacer).</dd>
<dt>Mean HR</dt><dd>60000 / mean(NN) over the whole session.</dd>
<dt>Artifacts</dt><dd>Measured beats classified as artifacts (Lipponen &amp; Tarvainen 2019) /
all measured beats × 100.</dd>
<dt>Duration</dt><dd>From the session's first data to its last event, gaps included.</dd>
</dl>
<p class="note">Values come from replaying each session's raw record through the pipeline,
for each participant separately (cached per session and participant for finished
sessions). Report written by vagus {_e(__version__)} {generated}.</p>
</section>
</body></html>
"""


def write_progress_report(
    store: Store,
    out_path: Path | str | None = None,
    *,
    participant: str | None = None,
    refresh: bool = False,
    progress: ProgressCallback = no_progress,
) -> tuple[Path, list[ProgressRow]]:
    """Compute the rows and write the progress report.

    Args:
        out_path: the HTML file; default ``vagus-progress[-<participant>].html``.

    Returns:
        (the file written, the rows).

    Raises:
        InvalidInput: no session has ``participant`` (the message names those there are).
        WriteError: the file cannot be written (a missing folder, a directory, a full
            disk); the target is left as it was (:mod:`vagus.files`).
    """
    import time

    from vagus.files import check_target, write_text

    if participant == NO_PARTICIPANT_LABEL:
        participant = DEFAULT_PARTICIPANT
    if out_path is not None:
        check_target(out_path)  # a missing folder or a directory: say so before replaying
    if participant is not None:
        check_participant(store, participant)
    rows = progress_rows(store, participant, refresh=refresh, progress=progress)
    doc = render_progress_html(rows, participant, generated_unix_s=time.time())
    if out_path is None:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in participant or "")
        out_path = f"vagus-progress-{safe}.html" if safe else "vagus-progress.html"
    path = Path(out_path)
    write_text(path, doc)  # atomic: a failure or Ctrl-C leaves the target as it was
    return path, rows


def participants_in(store: Store) -> list[str]:
    """Every participant of the store's sessions, in report order (named ones by name,
    then the unnamed :data:`DEFAULT_PARTICIPANT`)."""
    names: set[str] = set()
    for info in store.list_sessions():
        names.update(info.participants or (DEFAULT_PARTICIPANT,))
    return sorted(names, key=lambda p: (p == DEFAULT_PARTICIPANT, p.casefold(), p))


def check_participant(store: Store, participant: str) -> None:
    """Raise :class:`~vagus.exceptions.InvalidInput` when no session has ``participant``,
    naming the participants there are (``--participant`` of ``vagus progress``)."""
    people = participants_in(store)
    if participant in people:
        return
    if not people:
        raise InvalidInput(
            f"no sessions with participant {participant!r}: the store has no sessions yet "
            "(`vagus record` or `vagus import` adds one)"
        )
    shown = ", ".join(
        repr(NO_PARTICIPANT_LABEL) if p == DEFAULT_PARTICIPANT else repr(p) for p in people
    )
    raise InvalidInput(
        f"no sessions with participant {participant!r}; the participants are: {shown} "
        "(names are case-sensitive; `vagus sessions` lists who is in each session)"
    )
