"""``vagus report ID`` and ``vagus progress``: HTML reports on stored sessions.

``vagus report ID [-o FILE.html] [--participant P] [--data-dir D] [--json]`` replays the
session through the pipeline and writes one self-contained HTML file (figures inline,
opens offline, prints with a page per section). A session with several participants
gets the session's markers and pacer once (a table and a shared track) and a section
per participant, each replayed through its own pipeline (never pooled);
``--participant`` keeps one (an unknown name is an error listing the participants).

``vagus progress [--participant P] [-o FILE.html] [--refresh] [--data-dir D] [--json]``
writes the trend across sessions (resting RMSSD, mean coherence, time in high
coherence, resonance rate and its confidence once the pacer's scan or adaptive mode found one, mean
RSA amplitude) as figures and a table, one section per
participant (sessions without a named participant under "(no participant)");
``--participant`` keeps one section.

Both show a progress bar on stderr (a rewritten line on a terminal; one line per stage
otherwise) and print the path written (or, with ``--json``, one JSON object). The HTML is
written atomically (:mod:`vagus.files`): a missing folder, a directory, a full disk or
Ctrl-C leaves the target as it was, with one error naming the path and the reason.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vagus.cli import _common
from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli.sessions import session_id_arg

__all__ = ["ProgressBar", "register"]

_STAGES = {
    "replay": "replaying",
    "battery": "HRV battery (neurokit2)",
    "plots": "figures",
    "sessions": "sessions",
}


class ProgressBar(_common.ProgressBar):
    """The shared progress bar, with the report's stage names spelled out."""

    def __call__(self, stage: str, fraction: float) -> None:
        super().__call__(_STAGES.get(stage, stage), fraction)


def register(subparsers: Any) -> None:
    """Add the ``report`` and ``progress`` commands."""
    rep = subparsers.add_parser(
        "report",
        help="write an HTML report for a session",
        description=(
            "Replay a stored session through the pipeline and write one self-contained "
            "HTML report (figures inline, opens offline, prints well): tachogram with "
            "artifacts and gaps, HR and RMSSD, coherence and pacer, paced against unpaced "
            "spectrum, RSA amplitude per breath and the resonance scan's table, a session "
            "plan's phases side by side (baseline, practice, recovery: HR, RMSSD, "
            "coherence, RSA amplitude), the neurokit2 HRV battery beside our real-time "
            "metrics, signal quality, and the definitions of every number. A session with several "
            "participants gets one section per participant (each replayed through its "
            "own pipeline, never pooled) after the session's markers and pacer track."
        ),
    )
    rep.add_argument(
        "session_id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)"
    )
    rep.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE.html",
        help=(
            "where to write the report (default: vagus-report-ID.html here; "
            "vagus-report-ID-P.html with --participant P)"
        ),
    )
    rep.add_argument(
        "--participant",
        default=None,
        metavar="P",
        help=(
            "only this participant (default: every participant, a section each); a "
            "name the session does not have is an error listing those it has"
        ),
    )
    rep.add_argument("--json", action="store_true", help="print a JSON object, not text")
    rep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_data_dir_argument(rep)
    rep.set_defaults(func=run_report)

    prog = subparsers.add_parser(
        "progress",
        help="write an HTML trend report across sessions",
        description=(
            "Replay every session and write an HTML report of the trends, one section "
            "(figure and table) per participant, never pooled across participants: "
            "resting RMSSD, mean coherence, time in high coherence (CR >= 3, our "
            "threshold), mean RSA amplitude, and the resonance rate (with its confidence) "
            "that the pacer's scan or adaptive mode found. Sessions recorded or imported "
            "without --participant (stored as 'me') form the '(no participant)' section. "
            "Values are cached in each finished session's summary; --refresh recomputes "
            "them."
        ),
    )
    prog.add_argument(
        "--participant",
        default=None,
        help=(
            "only this participant's section ('me' or '(no participant)': the unnamed one); "
            "a name no session has is an error that lists the participants"
        ),
    )
    prog.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE.html",
        help="where to write the report (default: vagus-progress[-P].html here)",
    )
    prog.add_argument("--refresh", action="store_true", help="ignore cached values")
    prog.add_argument("--json", action="store_true", help="print a JSON object, not text")
    prog.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_data_dir_argument(prog)
    prog.set_defaults(func=run_progress)


def run_report(args: argparse.Namespace) -> int:
    """Write the report of one session; print where."""
    from vagus.cli.sessions import note_read_only
    from vagus.report.session import write_session_report
    from vagus.store.open import open_store

    store = open_store(args.data_dir, create=False)
    note_read_only(store, "report")
    bar = ProgressBar(f"vagus report {args.session_id}", enabled=not args.quiet)
    try:
        path, summaries = write_session_report(
            store, args.session_id, args.output, participant=args.participant, progress=bar
        )
    finally:
        bar.finish()
        store.close()
    if args.json:
        per = [
            {
                "participant": who,
                "beats": summary.nn.beats_measured,
                "duration_s": summary.duration_s,
                "rmssd_ms": summary.nn.rmssd_ms,
                "mean_rmssd_60s_ms": summary.realtime_means.get("rmssd_60s_ms"),
                "mean_coherence": summary.realtime_means.get("coherence_ratio"),
                "artifact_pct": summary.artifact_total_pct,
                "gaps": summary.gap_count,
                "rsa_mean_amplitude_bpm": summary.rsa_mean_amplitude_bpm,
                "resonance_rate_bpm": (
                    None if summary.resonance is None else summary.resonance.rate_bpm
                ),
                "phases": [
                    {
                        "name": ph.name,
                        "start_s": ph.start_s,
                        "duration_s": ph.duration_s,
                        "pacer": ph.pacer,
                        "hr_bpm": ph.hr_bpm,
                        "rmssd_ms": ph.rmssd_ms,
                        "coherence": ph.coherence,
                        "rsa_bpm": ph.rsa_bpm,
                    }
                    for ph in summary.phases
                ],
            }
            for who, summary in summaries.items()
        ]
        # The top level: the first participant's values (one-participant sessions as
        # before); "participants": each participant's own.
        out = {"path": str(path), **per[0], "participants": per}
        print(json.dumps(out))
    else:
        print(f"report written to {path}")
    return 0


def run_progress(args: argparse.Namespace) -> int:
    """Write the progress report; print where."""
    from vagus.cli.sessions import note_read_only
    from vagus.report.progress import write_progress_report
    from vagus.store.open import open_store

    store = open_store(args.data_dir, create=False)
    note_read_only(store, "progress")
    bar = ProgressBar("vagus progress", enabled=not args.quiet)
    try:
        path, rows = write_progress_report(
            store,
            args.output,
            participant=args.participant,
            refresh=args.refresh,
            progress=bar,
        )
    finally:
        bar.finish()
        store.close()
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(path),
                    "sessions": [
                        {
                            "id": r.session_id,
                            "started_unix_s": r.started_unix_s,
                            "participant": r.participant,
                            "resting_rmssd_ms": r.resting_rmssd_ms,
                            "mean_rmssd_60s_ms": r.mean_rmssd_60s_ms,
                            "mean_coherence": r.mean_coherence,
                            "high_coherence_s": r.high_coherence_s,
                            "resonance_rate_bpm": r.resonance_rate_bpm,
                            "resonance_confidence": r.resonance_confidence,
                            "rsa_mean_amplitude_bpm": r.rsa_mean_amplitude_bpm,
                        }
                        for r in rows
                    ],
                }
            )
        )
    else:
        sessions = len({r.session_id for r in rows})
        people = len({r.participant for r in rows})
        print(f"progress report ({sessions} sessions, {people} participant(s)) written to {path}")
    return 0
