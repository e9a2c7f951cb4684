"""Reports: ``vagus report`` on a simulated and on an imported real session, ``vagus progress``.

Sessions live in a real SQLite store (``open_store(tmp_path)``); the simulated one is made
of real 0x2A37 packets from the sans-I/O :class:`~vagus.sources.simulator.VirtualStrap`,
with markers, pacer changes and a link dropout (a gap).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pytest

from vagus.cli import main
from vagus.core.events import Beat, Gap, Marker, PacerChange
from vagus.core.pipeline import Pipeline
from vagus.sources.base import Packet
from vagus.sources.simulator import StrapConfig, SubjectConfig, VirtualStrap
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord, feed
from vagus.store.base import Store as StoreProtocol
from vagus.store.open import open_store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PYHRV_SHORT = DATA / "pyhrv" / "SampleNNISeriesShort.txt"

#: Markers and pacer of the simulated session: rest, pace at 6/min, change to 5.5/min,
#: pacer off, rest. The link drops out at 250 s for 12 s.
CONTROLS: tuple[Marker | PacerChange, ...] = (
    Marker(5.0, "baseline <rest> & settle"),
    PacerChange(100.0, 6.0),
    Marker(100.0, "start pacing"),
    PacerChange(220.0, 5.5),
    PacerChange(330.0, None),
    Marker(330.0, "rest again"),
)
DROPOUT = (250.0, 12.0)
CONTACT_LOSS = (370.0, 8.0)


def simulated_records(
    duration_s: float = 420.0,
    *,
    seed: int = 3,
    controls: tuple[Marker | PacerChange, ...] = CONTROLS,
    dropouts: tuple[tuple[float, float], ...] = (DROPOUT,),
    contact_losses: tuple[tuple[float, float], ...] = (),
) -> list[InputRecord]:
    """The input records a live recording of the virtual strap would have stored."""
    strap = VirtualStrap(
        SubjectConfig(),
        StrapConfig(
            dropouts=dropouts,
            contact_losses=contact_losses,
            missed_rate=0.004,
            ectopic_rate=0.004,
        ),
        seed=seed,
    )
    for ev in controls:
        if isinstance(ev, PacerChange):
            strap.subject.set_pacer(ev.rate_bpm, ev.t_s)
    pending = sorted(controls, key=lambda e: e.t_s)
    records: list[InputRecord] = []
    t = 0.0
    while t < duration_s:
        t += 1.0
        while pending and pending[0].t_s <= t:
            records.append(ControlRecord(pending.pop(0)))
        for item in strap.packets_until(t):
            if isinstance(item, Packet):
                records.append(PacketRecord(item.t_arrival_s, item.payload))
            else:
                records.append(GapRecord(item.t_s, item.reason))
    return records


def store_session(
    store: StoreProtocol,
    records: list[InputRecord],
    *,
    title: str,
    source: str = "sim",
    started_unix_s: float | None = None,
) -> str:
    info = store.create_session(title=title, source=source, started_unix_s=started_unix_s)
    store.append_many(info.id, records)
    store.end_session(info.id)
    return info.id


def numpy_rmssd_of_replay(records: list[InputRecord]) -> tuple[float, int]:
    """Independent check: replay with a bare Pipeline, RMSSD of the corrected NN with numpy,
    no difference across a gap. Returns (RMSSD ms, number of gaps)."""
    p = Pipeline()
    for rec in records:
        feed(p, rec)
    p.close()
    seg = 0
    nn: list[float] = []
    segs: list[int] = []
    gaps = 0
    for ev in p.events_received():
        if isinstance(ev, Gap):
            seg += 1
            gaps += 1
        elif isinstance(ev, Beat) and ev.nn_ms is not None:
            nn.append(ev.nn_ms)
            segs.append(seg)
    d = np.diff(np.asarray(nn))[np.diff(np.asarray(segs)) == 0]
    return float(np.sqrt(np.mean(d**2))), gaps


def assert_self_contained(doc: str) -> None:
    """No external reference: nothing fetched over the network or from files."""
    assert doc.startswith("<!DOCTYPE html>")
    assert doc.count("<html") == 1 and doc.rstrip().endswith("</html>")
    for attr in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', doc, flags=re.I):
        assert attr.startswith("data:") or attr.startswith("#"), attr
    assert not re.search(r"(?:https?|file|ftp)://", doc, flags=re.I)
    assert "@import" not in doc and "url(" not in doc
    assert "<script" not in doc.lower()
    assert "<link" not in doc.lower()


def inline_images(doc: str) -> list[str]:
    return re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', doc)


def test_report_on_simulated_session(tmp_path: Path) -> None:
    records = simulated_records(contact_losses=(CONTACT_LOSS,))
    store = open_store(tmp_path / "data")
    sid = store_session(store, records, title="Evening <breathwork>")
    store.close()
    out = tmp_path / "report.html"
    code = main(["report", sid, "-o", str(out), "--data-dir", str(tmp_path / "data"), "-q"])
    assert code == 0
    doc = out.read_text(encoding="utf-8")
    assert_self_contained(doc)
    # The five figures: tachogram, HR/RMSSD, coherence/pacer, spectrum, RSA per breath.
    assert len(inline_images(doc)) == 5
    # Every section, page breaks for print.
    for section in ("tachogram", "hr-rmssd", "coherence", "spectrum", "battery", "quality"):
        assert f'<section id="{section}">' in doc
    assert "@media print" in doc and "break-before: page" in doc
    # User text is escaped.
    assert "Evening &lt;breathwork&gt;" in doc and "<breathwork>" not in doc
    # Markers, with their text and times from the start (M:SS).
    assert "baseline &lt;rest&gt; &amp; settle" in doc
    assert "start pacing" in doc and "rest again" in doc
    # Times count from the session's first data (here the first packet's arrival).
    first = records[0]
    assert isinstance(first, PacketRecord)
    at = 100.0 - first.t_arrival_s
    assert f"<td>{int(at // 60)}:{round(at % 60):02d}</td><td>pacer</td>" in doc
    assert "pacer 6 breaths/min" in doc and "pacer 5.5 breaths/min" in doc and "pacer off" in doc
    # The gap: in the signal-quality table with its reason and duration.
    rmssd, gaps = numpy_rmssd_of_replay(records)
    assert gaps == 2  # the dropout and the contact loss
    m = re.search(r"<td>(\d+:\d\d)</td><td class=\"num\">([\d.]+) s</td><td>link_lost</td>", doc)
    assert m is not None, "gap row missing"
    minutes, seconds = m.group(1).split(":")
    # The gap starts at the last beat before the dropout (at most ~2 s before it).
    assert DROPOUT[0] - 3.0 <= 60 * int(minutes) + int(seconds) + first.t_arrival_s <= DROPOUT[0]
    assert DROPOUT[1] <= float(m.group(2)) <= DROPOUT[1] + 4.0
    # Contact loss: the time without skin contact (packets arrive about once a second).
    lost = re.search(r"<td>skin-contact loss</td><td class='num'>0:(\d\d)</td>", doc)
    assert lost is not None and CONTACT_LOSS[1] - 1.5 <= int(lost.group(1)) <= CONTACT_LOSS[1] + 1.5
    assert re.search(r"<td>contact_lost</td>", doc)
    # A summary number against plain numpy: whole-session RMSSD of the corrected NN.
    assert f"<td>RMSSD (ms)</td><td class='num'>{rmssd:,.3f}</td>" in doc
    # neurokit2's battery ran (all three domains) and agrees on RMSSD (same definition,
    # no difference across the gap).
    nk_rmssd = re.search(r"<td>RMSSD</td><td class=\"num\">([\d.,]+)</td><td>ms</td>", doc)
    assert nk_rmssd is not None
    assert float(nk_rmssd.group(1)) == pytest.approx(rmssd, abs=0.01)
    assert "failed" not in doc
    for domain in ("Time domain", "Frequency domain", "Nonlinear domain"):
        assert domain in doc
    assert "ms² (absolute power)" in doc  # neurokit2's band powers, absolute and labelled
    assert "not HeartMath's proprietary score" in html.unescape(doc)
    # Paced against unpaced spectra were both found.
    assert re.search(r"Paced: mean of [1-9]\d* 64 s windows", doc)
    assert re.search(r"unpaced: mean of [1-9]\d* windows", doc)


def test_report_summary_values(tmp_path: Path) -> None:
    """Library API: the summary's values against plain numpy on the replayed beats."""
    from vagus.report.session import (
        HIGH_COHERENCE_RATIO,
        replay_records,
        summarize_replay,
    )
    from vagus.store.base import SessionInfo

    records = simulated_records(300.0, seed=5)
    replay = replay_records(SessionInfo(id="x", started_unix_s=0.0), records)
    summary = summarize_replay(replay)
    rmssd, _ = numpy_rmssd_of_replay(records)
    assert summary.nn.rmssd_ms == pytest.approx(rmssd, rel=1e-12)
    # Resting RMSSD: the NN before the pacer starts (100 s) and after it stops (330 s is
    # past the end), no difference across the pacer switch.
    has_nn = np.isfinite(replay.beat_nn_ms)
    t, nn = replay.beat_t_s[has_nn], replay.beat_nn_ms[has_nn]
    rest = nn[t < 100.0]
    d = np.diff(rest)
    assert summary.resting_rmssd_ms == pytest.approx(float(np.sqrt(np.mean(d * d))), rel=1e-12)
    # Coherence: session mean and time in high coherence from the Spectrum events.
    crs = [s.coherence_ratio for s in replay.spectra if s.coherence_ratio is not None]
    assert summary.realtime_means["coherence_ratio"] == pytest.approx(float(np.mean(crs)))
    n_high = sum(1 for c in crs if c >= HIGH_COHERENCE_RATIO)
    assert summary.high_coherence_s == pytest.approx(5.0 * n_high)
    assert n_high > 0  # the simulated subject is coherent while paced
    rmssd60 = replay.rmssd_60s_ms[np.isfinite(replay.rmssd_60s_ms)]
    assert summary.realtime_means["rmssd_60s_ms"] == pytest.approx(float(rmssd60.mean()))
    # Artifacts by class, over measured beats.
    assert sum(summary.artifacts.values()) == sum(
        1
        for a, ins in zip(replay.beat_artifact, replay.beat_inserted, strict=True)
        if a is not None and not ins
    )


def _import_pyhrv_short() -> list[InputRecord]:
    try:
        from vagus.formats.registry import read_rr_file
    except ImportError:  # the import module is not there yet: the same records by hand
        values = [float(x) for x in PYHRV_SHORT.read_text().split()]
        return [RRRecord(rr_ms=tuple(values))]
    return read_rr_file(PYHRV_SHORT, "plain", unit="ms").records()


@pytest.mark.skipif(not PYHRV_SHORT.exists(), reason=f"shared data not found at {DATA}")
def test_report_on_imported_pyhrv_file(tmp_path: Path) -> None:
    """pyhrv's 5-min NN series: the RMSSD of the intervals as imported (the report's
    "RR as measured" column, no artifact correction) is the README's 101.301 ms. Our
    corrector flags some of its beats, so the corrected-NN RMSSD differs; neurokit2 run on
    the corrected NN must agree with our corrected-NN RMSSD (same definition)."""
    from vagus.report.session import hrv_battery, replay_session, session_report_html

    store = open_store(tmp_path)
    sid = store_session(store, _import_pyhrv_short(), title="pyhrv short", source="import:plain")
    replay = replay_session(store, sid)
    store.close()
    doc, summary = session_report_html(replay)
    assert_self_contained(doc)
    assert summary.rr.beats == 337
    assert summary.rr.rmssd_ms == pytest.approx(101.301, abs=5e-4)
    assert summary.rr.sdnn_ms == pytest.approx(95.690, abs=5e-4)
    assert summary.rr.pnn50_pct == pytest.approx(48.512, abs=5e-4)
    row = re.search(r"<td>RMSSD \(ms\)</td><td class='num'>([\d.,]+)</td>"
                    r"<td class='num'>([\d.,]+)</td>", doc)  # fmt: skip
    assert row is not None and row.group(2) == "101.301"
    # No pacer: the whole-session spectrum, said so.
    assert "This session has no pacer" in doc
    assert len(inline_images(doc)) == 5  # with the RSA amplitude per (unpaced) breath
    # neurokit2 on the corrected NN (peaks at 1000 Hz from cumulative NN: ≤ 1 ms rounding).
    battery = hrv_battery(replay)
    assert not battery.errors
    assert battery.values["time"]["HRV_RMSSD"] == pytest.approx(summary.nn.rmssd_ms, abs=0.5)
    assert battery.values["time"]["HRV_SDNN"] == pytest.approx(summary.nn.sdnn_ms, abs=0.5)


def test_report_on_tiny_and_empty_sessions(tmp_path: Path) -> None:
    """Too little data gives a report that says so, never a crash or a made-up number."""
    from vagus.report.session import hrv_battery, replay_session, session_report_html

    store = open_store(tmp_path)
    empty = store_session(store, [], title="empty")
    tiny = store_session(store, [RRRecord(rr_ms=(800.0, 810.0, 790.0, 805.0))], title="tiny")
    for sid in (empty, tiny):
        replay = replay_session(store, sid)
        doc, summary = session_report_html(replay)
        assert_self_contained(doc)
        assert summary.nn.rmssd_ms is None or math.isfinite(summary.nn.rmssd_ms)
        assert "too few for the battery" in doc
        assert hrv_battery(replay).values == {}
    store.close()


def test_report_unknown_session_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(tmp_path).close()
    code = main(["report", "nosuchid", "--data-dir", str(tmp_path), "-q"])
    assert code == 1
    assert "nosuchid" in capsys.readouterr().err


def test_progress_over_three_sessions(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    ids = []
    for k in range(3):
        # Rest 0-90 s, paced at 6/min from 90 s: resting RMSSD and coherence per session.
        controls = (PacerChange(90.0, 6.0), Marker(90.0, f"pace {k}"))
        recs = simulated_records(200.0, seed=10 + k, controls=controls, dropouts=())
        ids.append(
            store_session(store, recs, title=f"day {k + 1}", started_unix_s=1.7e9 + 86400 * k)
        )
    store.update_session(ids[2], summary={"resonance_rate_bpm": 5.5})
    store.close()
    out = tmp_path / "progress.html"
    args = ["progress", "-o", str(out), "--data-dir", str(tmp_path / "data"), "-q"]
    assert main(args) == 0
    doc = out.read_text(encoding="utf-8")
    assert_self_contained(doc)
    assert len(inline_images(doc)) == 1
    # Sessions stored without a named participant ("me"): one "(no participant)" section.
    assert doc.count('<section class="participant') == 1
    section = doc.split('id="participant-me"', 1)[1]
    assert section.split("</h2>", 1)[0].endswith("(no participant)")
    table = section.split("<h3>Sessions</h3>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td class='num'>(\d)</td>", table)
    assert rows == ["1", "2", "3"]
    for sid in ids:
        assert f"<code>{sid}</code>" in table
    assert table.count("not yet assessed") == 2
    assert "<td class='num'>5.5</td>" in table
    assert "CR ≥ 3" in doc and "ours" in doc
    # The values are cached in each finished session's summary (the resonance rate kept),
    # and a second run uses the cache and gives the same rows.
    from vagus.report.progress import CACHE_KEY, progress_rows

    store = open_store(tmp_path / "data")
    info = store.get_session(ids[2])
    assert info.summary["resonance_rate_bpm"] == 5.5
    assert CACHE_KEY in info.summary
    cached = progress_rows(store)
    fresh = progress_rows(store, refresh=True, write_cache=False)
    store.close()
    assert [r.cached for r in cached] == [True, True, True]
    assert [r.cached for r in fresh] == [False, False, False]
    for a, b in zip(cached, fresh, strict=True):
        assert a.resting_rmssd_ms == pytest.approx(b.resting_rmssd_ms)
        assert a.mean_coherence == pytest.approx(b.mean_coherence)
        assert a.high_coherence_s == pytest.approx(b.high_coherence_s)
        assert a.resting_rmssd_ms is not None and a.mean_coherence is not None


def test_progress_filters_by_participant(tmp_path: Path) -> None:
    from vagus.report.progress import progress_rows

    store = open_store(tmp_path)
    a = store.create_session(title="a", participants=("ann",))
    store.append_many(a.id, [RRRecord(rr_ms=(800.0,) * 120, participant="ann")])
    b = store.create_session(title="b", participants=("bob",))
    store.append_many(b.id, [RRRecord(rr_ms=(900.0,) * 120, participant="bob")])
    rows = progress_rows(store, "bob", write_cache=False)
    store.close()
    assert [r.session_id for r in rows] == [b.id]
    assert rows[0].mean_hr_bpm == pytest.approx(60000.0 / 900.0)


def test_report_does_not_import_heavy_libraries_on_import() -> None:
    """The live path never loads matplotlib or neurokit2: importing the report modules
    does not either (they are imported inside the functions that draw or run the battery)."""
    import subprocess
    import sys

    code = (
        "import sys, vagus.report, vagus.cli.report; "
        "print(any(m.split('.')[0] in ('matplotlib', 'neurokit2') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_progress_bar_output() -> None:
    """Non-terminal: one line per stage; terminal: one rewritten line, ended by finish()."""
    import io

    from vagus.cli.report import ProgressBar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain = io.StringIO()
    bar = ProgressBar("vagus report x", stream=plain)
    for stage in ("replay", "battery", "plots"):
        for f in (0.0, 0.5, 1.0):
            bar(stage, f)
    bar.finish()
    assert plain.getvalue().splitlines() == [
        "vagus report x: replaying…",
        "vagus report x: HRV battery (neurokit2)…",
        "vagus report x: figures…",
    ]
    tty = Tty()
    bar = ProgressBar("vagus report x", stream=tty)
    bar("replay", 0.0)
    bar("replay", 1.0)
    bar.finish()
    text = tty.getvalue()
    assert "\r" in text and text.endswith("100.0 %\n")
    assert "[" + "#" * 30 + "]" in text
    quiet = io.StringIO()
    ProgressBar("x", stream=quiet, enabled=False)("replay", 0.5)
    assert quiet.getvalue() == ""


# ------------------------------------------------------------ progress: per participant

VU = DATA / "wearablehrv" / "test_vu.txt"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"


def _participant_sections(doc: str) -> dict[str, str]:
    """data-participant -> the section's HTML."""
    found = re.findall(
        r'<section class="participant[^"]*" id="[^"]+" data-participant="([^"]*)">(.*?)</section>',
        doc,
        flags=re.S,
    )
    return {html.unescape(who): body for who, body in found}


def _hr_of_session(store: StoreProtocol, session_id: str, participant: str) -> float:
    """Independent check: mean HR (60000 / mean corrected NN) of one participant's beats
    in one session, from a bare Pipeline over the stored input."""
    p = Pipeline()
    for rec in store.iter_input(session_id):
        if getattr(rec, "participant", participant) == participant:
            feed(p, rec)
    p.close()
    nn = [e.nn_ms for e in p.events_received() if isinstance(e, Beat) and e.nn_ms is not None]
    return 60000.0 / float(np.mean(nn))


@pytest.mark.skipif(
    not (PYHRV_SHORT.exists() and VU.exists() and HEARTMATH.exists()),
    reason=f"shared data not found at {DATA}",
)
def test_progress_one_section_per_participant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real imports for two named participants and one unnamed: one section each, each
    with its own figure and rows, values from that participant's sessions only."""
    import json

    data = str(tmp_path / "data")

    def imp(path: Path, *extra: str) -> str:
        assert main(["import", str(path), "--data-dir", data, "-q", "--json", *extra]) == 0
        return str(json.loads(capsys.readouterr().out)["id"])

    ann = [
        imp(HEARTMATH, "--participant", "ann"),
        imp(PYHRV_SHORT, "--format", "plain", "--unit", "ms", "--participant", "ann"),
    ]
    bob = [imp(VU, "--participant", "bob")]
    nobody = [
        imp(PYHRV_SHORT, "--format", "plain", "--unit", "ms", "--title", "no name", "--again")
    ]
    out = tmp_path / "progress.html"
    assert main(["progress", "-o", str(out), "--data-dir", data, "-q"]) == 0
    assert "3 participant(s)" in capsys.readouterr().out
    doc = out.read_text(encoding="utf-8")
    assert_self_contained(doc)
    sections = _participant_sections(doc)
    # Named participants by name, then the unnamed one; one figure per section.
    assert list(sections) == ["ann", "bob", "me"]
    assert len(inline_images(doc)) == 3
    assert "<h2>Participant: ann</h2>" in sections["ann"]
    assert "<h2>Participant: bob</h2>" in sections["bob"]
    assert "<h2>(no participant)</h2>" in sections["me"]
    store = open_store(data, create=False)
    try:
        for who, ids in (("ann", ann), ("bob", bob), ("me", nobody)):
            body = sections[who]
            table = body.split("<h3>Sessions</h3>", 1)[1]
            # Exactly this participant's sessions, numbered within the section.
            assert re.findall(r"<code>(\w+)</code>", table) == ids
            assert re.findall(r"<tr><td class='num'>(\d+)</td>", table) == [
                str(i) for i in range(1, len(ids) + 1)
            ]
            assert f"{len(ids)} session(s)" in body
            # Each row's mean HR is that session's own, not a pooled value.
            cells = re.findall(r"<td class='num'>[\d:]+</td><td class='num'>([\d.,]+)</td>", table)
            assert cells == [f"{_hr_of_session(store, sid, who):,.1f}" for sid in ids]
        # ann's two sessions differ, and neither is the pooled mean over her sessions.
        hr = [_hr_of_session(store, sid, "ann") for sid in ann]
        assert abs(hr[0] - hr[1]) > 1.0
        # The same file imported for "me" and for ann: the same values in both sections
        # (each replays only its own sessions).
        assert _hr_of_session(store, ann[1], "ann") == pytest.approx(
            _hr_of_session(store, nobody[0], "me")
        )
    finally:
        store.close()
    # --participant keeps one section; "(no participant)" names the unnamed one.
    one = tmp_path / "bob.html"
    assert main(["progress", "--participant", "bob", "-o", str(one), "--data-dir", data]) == 0
    capsys.readouterr()
    doc = one.read_text(encoding="utf-8")
    assert list(_participant_sections(doc)) == ["bob"]
    assert len(inline_images(doc)) == 1
    assert all(sid not in doc for sid in ann + nobody)
    unnamed = tmp_path / "nobody.html"
    args = ["progress", "--participant", "(no participant)", "-o", str(unnamed), "-q"]
    assert main([*args, "--data-dir", data]) == 0
    assert list(_participant_sections(unnamed.read_text(encoding="utf-8"))) == ["me"]


def test_progress_session_with_two_participants(tmp_path: Path) -> None:
    """A session with two participants gives one row in each of their sections, each
    from that participant's own beats; both cached values survive."""
    from vagus.report.progress import CACHE_KEY, group_by_participant, progress_rows

    store = open_store(tmp_path)
    both = store.create_session(title="dyad", participants=("client", "coach"))
    store.append_many(
        both.id,
        [
            RRRecord(rr_ms=(800.0,) * 120, participant="client"),
            RRRecord(rr_ms=(1000.0,) * 120, participant="coach"),
        ],
    )
    store.end_session(both.id)
    rows = progress_rows(store)
    grouped = dict(group_by_participant(rows))
    assert list(grouped) == ["client", "coach"]
    assert grouped["client"][0].mean_hr_bpm == pytest.approx(75.0)
    assert grouped["coach"][0].mean_hr_bpm == pytest.approx(60.0)
    cache = store.get_session(both.id).summary[CACHE_KEY]["participants"]
    assert set(cache) == {"client", "coach"}
    cached = progress_rows(store)
    store.close()
    assert [r.cached for r in cached] == [True, True]
    assert [r.mean_hr_bpm for r in cached] == pytest.approx([75.0, 60.0])


# ---------------------------------------------------- session report: implausible input


def _measured_rr_expectation(records: list[InputRecord]) -> tuple[list[float], float, float]:
    """Independent check with a bare Pipeline: (out-of-range measured RR, RMSSD of the
    in-range measured RR with no difference across a gap or an out-of-range value, the
    same RMSSD had the out-of-range values been kept)."""
    p = Pipeline()
    for rec in records:
        feed(p, rec)
    p.close()
    seg = 0
    beats: list[tuple[float, int]] = []
    for ev in p.events_received():
        if isinstance(ev, Gap):
            seg += 1
        elif isinstance(ev, Beat) and not ev.inserted:
            beats.append((ev.rr_ms, seg))
    bad = [rr for rr, _ in beats if not 250.0 <= rr <= 2500.0]
    diffs: list[float] = []
    pooled: list[float] = []
    prev: tuple[float, int] | None = None
    for i, (rr, sg) in enumerate(beats):
        if i and beats[i - 1][1] == sg:
            pooled.append(rr - beats[i - 1][0])
        if not 250.0 <= rr <= 2500.0:
            prev = None
            continue
        if prev is not None and prev[1] == sg:
            diffs.append(rr - prev[0])
        prev = (rr, sg)
    rms = float(np.sqrt(np.mean(np.square(diffs))))
    return bad, rms, float(np.sqrt(np.mean(np.square(pooled))))


def test_report_out_of_range_rr_after_reconnect(tmp_path: Path) -> None:
    """A strap that reconnects sends nonsense first (65535 ticks = 63999 ms, 28 ms, 0 ms):
    the report counts those beats, draws them at the axis edge (the axis stays
    physiological) and leaves them out of the "RR as measured" statistics."""
    from vagus.core.hrm import encode_heart_rate_measurement
    from vagus.report import plots
    from vagus.report.session import replay_session, summarize_replay

    records = simulated_records(240.0, seed=4, controls=(), dropouts=((100.0, 10.0),))
    k = next(i for i, r in enumerate(records) if isinstance(r, GapRecord))
    j = next(i for i in range(k, len(records)) if isinstance(records[i], PacketRecord))
    first = records[j]
    assert isinstance(first, PacketRecord)
    t = first.t_arrival_s
    records[j:j] = [
        PacketRecord(t - 0.4, encode_heart_rate_measurement(70, (65535,))),
        PacketRecord(t - 0.2, encode_heart_rate_measurement(70, (28, 0))),
    ]
    bad, rmssd_in_range, rmssd_pooled = _measured_rr_expectation(records)
    assert len(bad) >= 2  # at least the injected 28 and 0 ticks
    assert abs(rmssd_pooled - rmssd_in_range) > 5.0  # they would change the statistics
    store = open_store(tmp_path / "data")
    sid = store_session(store, records, title="reconnect")
    replay = replay_session(store, sid)
    store.close()
    summary = summarize_replay(replay)
    assert sorted(summary.out_of_range_rr_ms) == sorted(bad)
    assert summary.rr.rmssd_ms == pytest.approx(rmssd_in_range, rel=1e-9)
    n_in_range = replay.beats_measured - len(bad)
    assert summary.rr.beats == n_in_range
    # The tachogram's axis stays physiological.
    lo, hi = plots.tachogram_ylim(replay)
    assert 250.0 <= lo < hi <= 2500.0 and hi - lo < 1200.0
    out = tmp_path / "report.html"
    assert main(["report", sid, "-o", str(out), "--data-dir", str(tmp_path / "data"), "-q"]) == 0
    doc = out.read_text(encoding="utf-8")
    assert_self_contained(doc)
    assert len(inline_images(doc)) == 5
    # Counted in the signal-quality section, with how many were too short / too long.
    quality = doc.split('<section id="quality">', 1)[1]
    m = re.search(
        r"<td>out-of-range RR \(outside 250–2500 ms\)</td><td class='num'>(\d+)</td>"
        r"<td>(\d+) below 250 ms, (\d+) above 2500 ms",
        quality,
    )
    assert m is not None
    assert int(m.group(1)) == len(bad)
    assert int(m.group(2)) == sum(1 for v in bad if v < 250.0)
    # "RR as measured" excludes them, and says so.
    row = re.search(
        r"<td>RMSSD \(ms\)</td><td class='num'>[\d.,]+</td><td class='num'>([\d.,]+)</td>", doc
    )
    assert row is not None and row.group(1) == f"{rmssd_in_range:,.3f}"
    assert f"leaves out the {len(bad)} out-of-range value(s)" in doc


def test_report_robust_to_implausible_beats_and_gaps(tmp_path: Path) -> None:
    """Events as a source may hand them over: a 63999 ms first beat, a gap with a
    negative and one with a zero duration. The start is not moved a minute back, no gap
    is drawn or summed as a span, and the 63999 ms beats stay out of the statistics."""
    from vagus.report import plots
    from vagus.report.model import SessionReplay, _collect, summarize_replay
    from vagus.report.session import hrv_battery as battery_of
    from vagus.report.session import render_session_html
    from vagus.store.base import SessionInfo

    rng = np.random.default_rng(1)
    events: list[Beat | Gap] = []
    t = 10.0
    for part, gap in enumerate((Gap(0.0, -52.0, "link_lost"), Gap(0.0, 0.0, "dropout"), None)):
        events.append(Beat(t, 63999.0, "range", None))
        for _ in range(150):
            rr = float(900.0 + rng.normal(0.0, 30.0))
            t += rr / 1000.0
            events.append(Beat(t, rr, None, rr))
        if gap is not None:
            events.append(Gap(t, gap.duration_s, gap.reason))
            t += 5.0 if part == 0 else 0.0
    replay = SessionReplay(info=SessionInfo(id="odd", started_unix_s=0.0), participant="me")
    _collect(replay, list(events), None)
    assert replay.t0_s == pytest.approx(10.0)  # not 64 s before the first beat
    summary = summarize_replay(replay)
    assert summary.gap_count == 2 and summary.unmeasured_gaps == 2
    assert summary.gap_total_s == 0.0
    assert len(summary.out_of_range_rr_ms) == 3 and summary.out_of_range_high == 3
    rr = np.asarray([e.rr_ms for e in events if isinstance(e, Beat) and e.artifact is None])
    assert summary.rr.mean_nn_ms == pytest.approx(float(rr.mean()))
    assert summary.duration_s == pytest.approx(t - 10.0)
    gaps, contact, lines = plots._spans(replay)
    assert gaps == [] and contact == [] and len(lines) == 2
    lo, hi = plots.tachogram_ylim(replay)
    assert 250.0 <= lo < hi <= 1300.0
    figures = plots.session_figures(replay, summary)
    assert "tachogram" in figures
    doc = render_session_html(replay, summary, battery_of(replay), figures)
    assert "unknown (reported -52.0 s)" in doc and "unknown (reported 0.0 s)" in doc
    assert "2 with a reported duration ≤ 0" in doc
