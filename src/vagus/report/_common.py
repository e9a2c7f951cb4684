"""What the report modules share: styles, formatting helpers and common constants.

:mod:`vagus.report.model` (data), :mod:`vagus.report.plots` (figures),
:mod:`vagus.report.session` and :mod:`vagus.report.progress` (documents) all import
from here and from the modules before them, never the other way round: the report
package has no import cycle.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Iterable, Sequence

from vagus.store.base import unix_datetime

__all__ = [
    "CSS",
    "RR_RANGE_MS",
    "ProgressCallback",
    "card",
    "clock",
    "esc",
    "fmt",
    "html_table",
    "no_progress",
    "section_id",
    "when",
]

#: ``progress(stage, fraction)``: ``stage`` names the step ("replay", "battery", "plots",
#: "sessions"), ``fraction`` is its completion in [0, 1].
ProgressCallback = Callable[[str, float], None]

#: The physiological RR range (ms), as the artifact corrector's ``range`` class
#: (:class:`~vagus.core.artifacts.Lipponen2019` defaults, SCIENCE.md "Artifacts"). A
#: measured RR outside it (a strap's 0 ms or 63999 ms = 65535 ticks right after a
#: (re)connect) is no heartbeat: the report counts it, draws it at the tachogram's axis
#: edge and leaves it out of the "RR as measured" statistics.
RR_RANGE_MS = (250.0, 2500.0)


def no_progress(stage: str, fraction: float) -> None:
    """The default progress callback: report nothing."""


#: The reports' style sheet (inline in each document: no external reference).

CSS = """
:root { --fg:#1d2329; --muted:#5b6670; --line:#d5dbe0; --accent:#2a6f97; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--accent); padding-bottom: 3px;
     margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.sub, .muted, figcaption, .note { color: var(--muted); }
figure { margin: 12px 0; }
figure img, figure svg { width: 100%; height: auto; }
figcaption { font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f2f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.warn { background: #fff5e0; border-left: 4px solid #e0a030; padding: 6px 10px; }
.battery { columns: 2; column-gap: 24px; }
/* One domain (its heading and its table) is one unit: never split across columns or
   pages, so no heading is stranded at the foot of a column with its table in the next. */
.battery > div { display: inline-block; width: 100%; break-inside: avoid;
                 page-break-inside: avoid; }
.battery h3 { margin-top: 0; }
.battery table { break-inside: avoid; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
dl dt { font-weight: 600; margin-top: 6px; }
dl dd { margin-left: 16px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section { break-before: page; page-break-before: always; }
  section.first { break-before: auto; page-break-before: auto; }
  figure, table, .card { break-inside: avoid; page-break-inside: avoid; }
  .battery { columns: 2; }
  h2 { margin-top: 0; }
}
"""


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    """``value`` with ``digits`` decimals and thousands separators (and ``unit``); "–"
    for None or a value that is not finite."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip() if unit else text


def clock(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS``) of a duration or a time from the session start."""
    s = round(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def when(unix_s: float | None) -> str:
    """A date and time (UTC) for a report; "date out of range" for a stored time no
    calendar holds."""
    if unix_s is None:
        return "–"
    when = unix_datetime(unix_s, _dt.UTC)  # None: a stored time no calendar holds
    return "date out of range" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


def esc(text: object) -> str:
    """``text`` escaped for HTML (quotes too)."""
    return html.escape(str(text), quote=True)


def html_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], num_cols: Sequence[int]
) -> str:
    """An HTML table; the columns in ``num_cols`` are right-aligned numbers."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for r in rows:
        cells = [
            f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
            for i, c in enumerate(r)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def card(label: str, value: str) -> str:
    """One figure of a report's summary grid."""
    return f'<div class="card"><div class="v">{value}</div><div class="k">{label}</div></div>'


#: neurokit2 columns whose unit is ms (the rest: stated per column below or unitless).


def section_id(name: str, taken: set[str]) -> str:
    """A unique HTML id for a participant's section."""
    base = "participant-" + (
        "".join(c if c.isalnum() else "-" for c in name.casefold()).strip("-") or "x"
    )
    slug, k = base, 1
    while slug in taken:
        k += 1
        slug = f"{base}-{k}"
    taken.add(slug)
    return slug
