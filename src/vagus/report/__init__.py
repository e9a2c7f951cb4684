"""Reports on stored sessions: one self-contained HTML file per session, and progress.

- :mod:`vagus.report.session`: ``vagus report ID`` (replay through the pipeline,
  summary, neurokit2 battery, figures, HTML);
- :mod:`vagus.report.progress`: ``vagus progress`` (trends across sessions);
- :mod:`vagus.report.plots`: the matplotlib figures, inline base64 PNG.

neurokit2 and matplotlib are imported lazily inside the functions that need them, so
importing this package (or the live path) never loads them.
"""

from __future__ import annotations

from vagus.report.progress import ProgressRow, progress_rows, write_progress_report
from vagus.report.session import (
    HIGH_COHERENCE_THRESHOLD,
    BatteryResult,
    SessionReplay,
    SessionSummary,
    hrv_battery,
    replay_records,
    replay_session,
    session_report_html,
    summarize_replay,
    write_session_report,
)

__all__ = [
    "HIGH_COHERENCE_THRESHOLD",
    "BatteryResult",
    "ProgressRow",
    "SessionReplay",
    "SessionSummary",
    "hrv_battery",
    "progress_rows",
    "replay_records",
    "replay_session",
    "session_report_html",
    "summarize_replay",
    "write_progress_report",
    "write_session_report",
]
