"""Reports a user can read (issue 8 §4, §1): progress --participant for nobody is an error
naming who is there; value axes keep a sensible span; a neurokit2 domain's heading stays
with its table; neurokit2's band powers are absolute (ms²); a flat session's spectra are
null ("–") everywhere in the report."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.report.progress import ProgressRow
from vagus.store.base import RRRecord
from vagus.store.open import open_store


def _row(k: int, **values: float | None) -> ProgressRow:
    fields: dict[str, float | None] = {
        "duration_s": 600.0,
        "resting_rmssd_ms": None,
        "rmssd_ms": None,
        "mean_rmssd_60s_ms": None,
        "mean_hr_bpm": 60.0,
        "mean_coherence": None,
        "high_coherence_s": 0.0,
        "high_coherence_pct": 0.0,
        "artifact_pct": 0.0,
        "resonance_rate_bpm": None,
    }
    fields.update(values)
    return ProgressRow(
        session_id=f"s{k}",
        started_unix_s=1.7e9 + 86400 * k,
        title=f"day {k}",
        participant="me",
        beats=600,
        **fields,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------- --participant nobody


def test_progress_for_an_unknown_participant_names_those_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(tmp_path)
    for who in (("ann",), ("Bob", "ann"), ()):
        info = store.create_session(title="s", participants=who or ("me",))
        rr = RRRecord(rr_ms=(800.0,) * 120, participant=(who or ("me",))[0])
        store.append_many(info.id, [rr])
        store.end_session(info.id)
    store.close()
    out = tmp_path / "p.html"
    data = ["--data-dir", str(tmp_path)]
    code = main(["progress", "--participant", "nobody", "-o", str(out), *data])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "'nobody'" in err
    assert "'ann', 'Bob', '(no participant)'" in err
    assert "Traceback" not in err
    assert not out.exists()
    # A participant who is there still gets a report.
    code = main(["progress", "--participant", "Bob", "-o", str(out), *data])
    capsys.readouterr()
    assert code == 0 and out.exists()


def test_progress_on_an_empty_store_with_a_participant_says_there_are_no_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(tmp_path).close()
    code = main(["progress", "--participant", "ann", "--data-dir", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "no sessions yet" in err


# --------------------------------------------------------------------------- axis floors


def test_axis_limits_keep_a_minimum_span_and_a_floor() -> None:
    from vagus.report.plots import axis_limits

    lo, hi = axis_limits([41.2, 41.3, 41.4], 20.0, 0.0)
    assert hi - lo == pytest.approx(20.0) and lo < 41.2 and hi > 41.4
    assert axis_limits([0.0, 0.0], 5.0, 0.0) == (0.0, 5.0)  # never -0.05 .. 0.05
    assert axis_limits([1.0, 2.0], 20.0, 0.0) == (0.0, 20.0)  # moved up, not cut
    assert axis_limits([math.nan], 4.0, 0.0) == (0.0, 4.0)
    lo, hi = axis_limits([10.0, 90.0], 20.0, 0.0)  # a real range is kept (padded)
    assert 0.0 <= lo < 10.0 and hi > 90.0 and hi - lo < 100.0


def test_progress_figure_axes_have_sensible_ranges() -> None:
    from vagus.report.plots import AXIS_FLOORS, build_progress_figure

    rows = [
        _row(k, resting_rmssd_ms=41.2 + 0.1 * k, mean_rmssd_60s_ms=41.3, mean_coherence=0.6)
        for k in range(3)
    ]
    fig = build_progress_figure(rows, 3.0, "me")
    rmssd, coherence, minutes = fig.axes[:3]
    lo, hi = rmssd.get_ylim()
    assert hi - lo >= AXIS_FLOORS["rmssd_ms"][0] - 1e-9 and lo >= 0.0
    assert lo < 41.2 and hi > 41.4
    lo, hi = coherence.get_ylim()
    assert lo == 0.0 and hi > 3.0  # the CR = 3 line stays in view
    assert minutes.get_ylim() == (0.0, AXIS_FLOORS["minutes"][0])  # 0 minutes every time
    # Resonance rates 5.5 and 5.6 breaths/min: a span of at least 4 breaths/min.
    rows[1] = _row(1, resonance_rate_bpm=5.5)
    rows[2] = _row(2, resonance_rate_bpm=5.6)
    lo, hi = build_progress_figure(rows, 3.0).axes[3].get_ylim()
    assert hi - lo >= AXIS_FLOORS["breaths_per_min"][0] - 1e-9 and lo < 5.5 < 5.6 < hi


# ----------------------------------------------------------- the report: layout, units


def _simulated_report(tmp_path: Path) -> str:
    from test_report import simulated_records, store_session

    store = open_store(tmp_path / "data")
    sid = store_session(store, simulated_records(420.0, dropouts=()), title="s")
    store.close()
    out = tmp_path / "r.html"
    assert main(["report", sid, "-o", str(out), "--data-dir", str(tmp_path / "data"), "-q"]) == 0
    return out.read_text(encoding="utf-8")


def test_battery_headings_stay_with_their_tables_and_powers_are_ms2(tmp_path: Path) -> None:
    doc = _simulated_report(tmp_path)
    battery = doc.split('<section id="battery">', 1)[1].split("</section>", 1)[0]
    # Each domain is one block: heading and table together, a block never split.
    blocks = re.findall(r"<div><h3>(\w+) domain</h3><table>.*?</table></div>", battery)
    assert blocks == ["Time", "Frequency", "Nonlinear"]
    css = doc.split("<style>", 1)[1].split("</style>", 1)[0]
    rule = re.search(r"\.battery > div \{([^}]*)\}", css)
    assert rule is not None and "break-inside: avoid" in rule.group(1)
    assert "inline-block" in rule.group(1)  # the robust way to keep a column item whole
    # neurokit2's band powers: absolute, labelled ms², the same order as our Welch LF.
    freq = battery.split("<h3>Frequency domain</h3>", 1)[1].split("</table>", 1)[0]
    lf = re.search(r"<td>LF</td><td class=\"num\">([\d.,]+)</td><td>ms² \(absolute power\)", freq)
    assert lf is not None, freq[:500]
    ours = re.search(r"<td>LF \(ms²\)</td><td class='num'>([\d.,]+)</td>", doc)
    assert ours is not None
    nk_lf, our_lf = float(lf.group(1).replace(",", "")), float(ours.group(1).replace(",", ""))
    assert our_lf / 4 < nk_lf < our_lf * 4  # normalised units would be below 1
    assert "normalised: band power / total power" in freq  # LFn, HFn
    assert "not ms²" not in doc


def test_flat_session_has_no_spectrum_values_in_the_report(tmp_path: Path) -> None:
    """Constant RR: coherence, peak frequency, LF/HF and neurokit2's frequency values are
    null ("–"), not numbers from round-off."""
    from vagus.report.session import hrv_battery, replay_session

    store = open_store(tmp_path / "data")
    info = store.create_session(title="flat", source="sim")
    store.append_many(info.id, [RRRecord(rr_ms=(1000.0,) * 200)])
    store.end_session(info.id)
    battery = hrv_battery(replay_session(store, info.id))
    store.close()
    out = tmp_path / "flat.html"
    code = main(["report", info.id, "-o", str(out), "--data-dir", str(tmp_path / "data"), "-q"])
    assert code == 0
    doc = out.read_text(encoding="utf-8")
    assert re.search(r"<td>coherence ratio</td><td class=\"num\">–</td>", doc)
    assert re.search(r"<td>peak frequency \(breaths/min\)</td><td class=\"num\">–</td>", doc)
    assert re.search(r"<td>LF/HF</td><td class='num'>–</td><td class='num'>–</td>", doc)
    assert "mean coherence ratio (64 s windows)" in doc
    card = re.search(r'<div class="v">([^<]*)</div><div class="k">mean coherence ratio', doc)
    assert card is not None and card.group(1) == "–"
    freq = battery.values.get("frequency", {})
    assert freq and all(math.isnan(v) for v in freq.values())
    assert any("below the power floor" in n for n in battery.notes)
    # The time domain is still there: RMSSD 0 for constant NN.
    assert battery.values["time"]["HRV_RMSSD"] == pytest.approx(0.0)


def test_hr_rmssd_axes_of_a_flat_session_are_not_magnified() -> None:
    from vagus.report.plots import AXIS_FLOORS, axis_limits

    rmssd = np.zeros(50)
    lo, hi = axis_limits(rmssd, *AXIS_FLOORS["rmssd_ms"])
    assert (lo, hi) == (0.0, AXIS_FLOORS["rmssd_ms"][0])
    lo, hi = axis_limits(np.full(50, 60.0), *AXIS_FLOORS["hr_bpm"])
    assert hi - lo == pytest.approx(AXIS_FLOORS["hr_bpm"][0]) and lo < 60.0 < hi
