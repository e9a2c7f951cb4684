"""Reports on stored sessions: one self-contained HTML file per session, and progress.

- :mod:`vagus.report.model`: a session replayed per participant (the one replay,
  :mod:`vagus.store.replay`) and summarised; no plotting, no HTML;
- :mod:`vagus.report.plots`: the matplotlib figures, inline base64 PNG;
- :mod:`vagus.report.session`: ``vagus report ID`` (neurokit2 battery, HTML: a section
  per participant, the session's markers and pacer once);
- :mod:`vagus.report.progress`: ``vagus progress`` (trends across sessions, a section
  per participant);
- :mod:`vagus.report._common`: what they share (style sheet, formatting).

Imports go one way, ``_common`` → ``model`` → ``plots`` → ``session`` / ``progress``:
no cycle.

neurokit2 and matplotlib are imported lazily inside the functions that need them, so
importing this package (or the live path) never loads them.
"""

from __future__ import annotations

from vagus.report.model import (
    ProgressRow,
    SessionReplay,
    SessionSummary,
    replay_participants,
    replay_records,
    replay_session,
    summarize_replay,
)
from vagus.report.progress import progress_rows, write_progress_report
from vagus.report.session import (
    BatteryResult,
    hrv_battery,
    session_report_html,
    write_session_report,
)

__all__ = [
    "BatteryResult",
    "ProgressRow",
    "SessionReplay",
    "SessionSummary",
    "hrv_battery",
    "progress_rows",
    "replay_participants",
    "replay_records",
    "replay_session",
    "session_report_html",
    "summarize_replay",
    "write_progress_report",
    "write_session_report",
]
