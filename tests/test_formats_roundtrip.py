"""Every ``vagus export`` format imports back: ``vagus export`` then ``vagus import``.

Two sessions in a real SQLite store: a simulated strap recording (raw packets, link gaps,
artifacts, 0-ms nonsense after reconnects) with markers and pacer changes added, and an
imported RR session (RR records, a link gap, markers). Each is exported with
``main(["export", ...])`` and imported with ``main(["import", path])``; the re-imported
session's measured RR must equal the original's within the format's resolution (JSON,
CSV: exact; EDF+ and Kubios text: 7 decimals, exact for the strap's 1/1024 s ticks), and
markers survive where the format carries them. JSON carries the raw input: its import
replays to exactly the same events. Corrupt files name the line (or place) and import
nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus.cli import main
from vagus.core.events import Gap, Marker, PacerChange
from vagus.core.pipeline import Pipeline
from vagus.exceptions import FileFormatError, InvalidInput
from vagus.formats.export import SessionRun, run_session
from vagus.formats.registry import detect_format, read_rr_file
from vagus.sources.base import LinkGap, Packet
from vagus.sources.simulator import StrapConfig, VirtualStrap
from vagus.store.base import ControlRecord, GapRecord, InputRecord, PacketRecord, RRRecord
from vagus.store.open import open_store
from vagus.store.recorder import feed_counting

FORMATS = ("json", "csv", "edf", "kubios")
IMPORTED_AS = {"json": "json", "csv": "vagus_csv", "edf": "edf", "kubios": "kubios"}


def cli_import(
    capsys: pytest.CaptureFixture[str], data: Path, path: Path, *extra: str
) -> dict[str, object]:
    code = main(["import", str(path), "--data-dir", str(data), "--json", "-q", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def cli_export(
    capsys: pytest.CaptureFixture[str], data: Path, sid: str, fmt: str, out: Path
) -> None:
    code = main(["export", sid, "--format", fmt, "-o", str(out), "--data-dir", str(data), "-q"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert out.exists()


def session_count(data: Path) -> int:
    store = open_store(data)
    try:
        return len(store.list_sessions())
    finally:
        store.close()


def replay(data: Path, sid: str) -> SessionRun:
    store = open_store(data)
    try:
        return run_session(store, sid)
    finally:
        store.close()


def with_controls(records: list[InputRecord], controls: list[ControlRecord]) -> list[InputRecord]:
    """``records`` with control records put in before the first record after their time."""

    def t(r: InputRecord) -> float:
        if isinstance(r, PacketRecord):
            return r.t_arrival_s
        if isinstance(r, GapRecord):
            return r.t_s
        if isinstance(r, ControlRecord):
            return r.event.t_s
        return r.t_s[-1] if r.t_s else 0.0

    out: list[InputRecord] = []
    pending = sorted(controls, key=lambda c: c.event.t_s)
    for r in records:
        while pending and pending[0].event.t_s <= t(r):
            out.append(pending.pop(0))
        out.append(r)
    return out + pending


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A recorded simulator session (raw packets) with markers and pacer changes added."""
    data = tmp_path_factory.mktemp("sim-store")
    code = main(
        [
            "record",
            "--sim",
            "--speed",
            "max",
            "--seed",
            "7",
            "--duration",
            "900",
            "--sim-option",
            "dropouts_per_hour=16",
            "--sim-option",
            "ectopic_rate=0.02",
            "--data-dir",
            str(data),
            "--title",
            "sim with markers",
        ]
    )
    assert code == 0
    store = open_store(data)
    try:
        (rec,) = store.list_sessions()
        records = list(store.iter_input(rec.id))
        assert any(isinstance(r, PacketRecord) for r in records)
        controls = [
            ControlRecord(PacerChange(t_s=30.25, rate_bpm=6.0, inhale_fraction=0.4)),
            ControlRecord(Marker(t_s=200.5, text="start breathing, 6/min")),
            ControlRecord(PacerChange(t_s=500.0, rate_bpm=None, inhale_fraction=0.4)),
            ControlRecord(Marker(t_s=700.125, text="end; ünïcode ok")),
        ]
        info = store.create_session(
            title="sim with markers",
            source="sim",
            device_profile="polar_h10",
            started_unix_s=rec.started_unix_s,
            notes="seed 7",
        )
        store.append_many(info.id, with_controls(records, controls))
        store.end_session(info.id, rec.ended_unix_s)
        store.delete_session(rec.id)
    finally:
        store.close()
    return data, info.id


def rr_session(data: Path) -> str:
    """An imported-style session: RR records with beat times, a link gap, markers, pacer."""
    rng = np.random.default_rng(11)
    rr = [float(v) for v in rng.normal(850, 45, 900)]
    t = list(np.cumsum(rr) / 1000.0)
    t2 = [v + 12.0 for v in t[450:]]
    store = open_store(data)
    try:
        info = store.create_session(title="rr", source="import:test", started_unix_s=1.7e9 + 0.25)
        store.append_many(
            info.id,
            [
                ControlRecord(PacerChange(t_s=0.5, rate_bpm=6.0, inhale_fraction=0.4)),
                RRRecord(rr_ms=tuple(rr[:300]), t_s=tuple(t[:300])),
                ControlRecord(Marker(t_s=t[299] + 0.1, text="start breathing, 6/min")),
                RRRecord(rr_ms=tuple(rr[300:450]), t_s=tuple(t[300:450])),
                GapRecord(t_s=t[449], reason="link_lost"),
                RRRecord(rr_ms=tuple(rr[450:]), t_s=tuple(t2)),
                ControlRecord(Marker(t_s=t2[-1] + 0.2, text="end")),
            ],
        )
        store.end_session(info.id)
        return info.id
    finally:
        store.close()


def measured_nonzero(run: SessionRun) -> tuple[list[float], list[float]]:
    """Measured (t_s, rr_ms), without the 0-ms nonsense values no import can carry."""
    ts, rr = run.measured_rr()
    keep = [i for i, v in enumerate(rr) if v != 0.0]
    return [ts[i] for i in keep], [rr[i] for i in keep]


def controls_wall(run: SessionRun) -> list[tuple[str, float, str]]:
    """Markers and pacer changes as (type, wall-clock time, text), from a replay."""
    from vagus.formats.export import edf_origin

    origin = edf_origin(run)
    out = []
    for e in run.events:
        if isinstance(e, Marker):
            out.append(("marker", run.info.started_unix_s + e.t_s - origin, e.text))
        elif isinstance(e, PacerChange):
            out.append(("pacer", run.info.started_unix_s + e.t_s - origin, str(e.rate_bpm)))
    return out


def gaps(run: SessionRun) -> list[str]:
    return [e.reason for e in run.events if isinstance(e, Gap) and e.duration_s is not None]


# ------------------------------------------------------------------ round trips


def test_json_import_replays_to_identical_events(
    sim_store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, sid = sim_store
    out = tmp_path / "s.json"
    cli_export(capsys, data, sid, "json", out)
    doc = json.loads(out.read_text())
    assert doc["version"] == 2 and doc["input"][0]["kind"] in ("packet", "control")
    before = session_count(data)
    result = cli_import(capsys, data, out)
    original = replay(data, sid)
    assert result["format"] == "json"
    assert result["markers"] == sum(isinstance(e, Marker) for e in original.events) >= 2
    again = replay(data, str(result["id"]))
    assert again.events == original.events  # every event, exactly
    assert again.info.started_unix_s == original.info.started_unix_s
    assert again.info.ended_unix_s == original.info.ended_unix_s
    assert again.info.title == "sim with markers"
    assert again.info.device_profile == "polar_h10"
    assert again.info.source == "import:json"
    assert session_count(data) == before + 1


def test_json_version_1_imports_from_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "store"
    sid = rr_session(data)
    out = tmp_path / "s.json"
    cli_export(capsys, data, sid, "json", out)
    doc = json.loads(out.read_text())
    del doc["input"]
    doc["version"] = 1
    out.write_text(json.dumps(doc))
    result = cli_import(capsys, data, out)
    original, again = replay(data, sid), replay(data, str(result["id"]))
    assert measured_nonzero(again) == measured_nonzero(original)  # exact
    assert controls_wall(again) == controls_wall(original)
    assert gaps(again) == gaps(original) == ["link_lost"]


@pytest.mark.parametrize("fmt", ["csv", "edf", "kubios"])
@pytest.mark.parametrize("which", ["sim", "rr"])
def test_export_then_import_gives_the_same_rr(
    sim_store: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    which: str,
) -> None:
    if fmt == "edf":
        pytest.importorskip("pyedflib")
    if which == "sim":
        data, sid = sim_store
    else:
        data = tmp_path / "store"
        sid = rr_session(data)
    out = tmp_path / f"s.{fmt}"
    cli_export(capsys, data, sid, fmt, out)
    assert detect_format(out) == IMPORTED_AS[fmt]
    before = session_count(data)
    result = cli_import(capsys, data, out)
    assert result["format"] == IMPORTED_AS[fmt]
    assert session_count(data) == before + 1
    original, again = replay(data, sid), replay(data, str(result["id"]))
    t0, rr0 = measured_nonzero(original)
    t1, rr1 = measured_nonzero(again)
    assert len(rr1) == len(rr0) > 500
    if fmt == "csv":
        assert rr1 == rr0  # repr(): every digit
        assert np.max(np.abs(np.subtract(t1, t0))) < 1e-9  # re-anchoring: float rounding
    else:  # 7 decimals: exact for 1/1024 s ticks, within 1e-7 ms for any RR
        assert np.max(np.abs(np.subtract(rr1, rr0))) <= 5e-8
        if which == "sim":
            assert rr1 == rr0
    # Wall-clock beat times: the start to 1 ms (CSV time_utc, Kubios header), EDF+ onsets
    # to 100 µs.
    from vagus.formats.export import edf_origin

    w0 = original.info.started_unix_s - edf_origin(original) + np.asarray(t0)
    w1 = again.info.started_unix_s - edf_origin(again) + np.asarray(t1)
    assert np.max(np.abs(w1 - w0)) < 1.5e-3
    assert len(gaps(original)) >= 1
    if fmt == "kubios":  # gaps found again from the beat times (reasons: dropout, clock)
        assert len(gaps(again)) == len(gaps(original))
        assert controls_wall(again) == []  # Kubios RR text carries no markers
        return
    assert gaps(again) == gaps(original)
    got, want = controls_wall(again), controls_wall(original)
    assert [(k, text) for k, _, text in got] == [(k, text) for k, _, text in want]
    assert np.allclose([w for _, w, _ in got], [w for _, w, _ in want], atol=2e-3)


def test_csv_format_without_column_reads_a_vagus_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "store"
    sid = rr_session(data)
    out = tmp_path / "s.csv"
    cli_export(capsys, data, sid, "csv", out)
    got = read_rr_file(out, "csv")
    assert got.format == "vagus_csv" and got.beats == 900
    assert [m.text for m in got.markers if isinstance(m, Marker)] == [
        "start breathing, 6/min",
        "end",
    ]


@pytest.fixture(scope="module")
def raw_sim_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A session of the virtual strap's raw output, settling packets included.

    The recorder drops the packets of the settling time after each (re)connect, where
    straps send 0 ms; a store written by an older recorder, or an import of raw packets,
    can still hold them, so the exporters must cope.
    """
    data = tmp_path_factory.mktemp("raw-sim-store")
    strap = VirtualStrap(strap=StrapConfig(dropouts_per_hour=16.0), seed=7)
    records: list[InputRecord] = []
    for item in strap.items_until(900.0):
        if isinstance(item, Packet):
            records.append(PacketRecord(item.t_arrival_s, item.payload))
        elif isinstance(item, LinkGap):
            records.append(GapRecord(item.t_s, item.reason))
    store = open_store(data)
    try:
        info = store.create_session(title="raw strap output", source="sim", started_unix_s=1.7e9)
        store.append_many(info.id, records)
        store.end_session(info.id, 1.7e9 + 900.0)
        return data, info.id
    finally:
        store.close()


def test_zero_ms_values_are_left_out_with_a_note(
    raw_sim_store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, sid = raw_sim_store
    _, rr = replay(data, sid).measured_rr()
    zeros = rr.count(0.0)
    assert zeros > 0, "the simulated strap sends 0 ms right after (re)connecting"
    out = tmp_path / "s.csv"
    cli_export(capsys, data, sid, "csv", out)
    got = read_rr_file(out)
    assert got.beats == len(rr) - zeros
    assert f"{zeros} RR value(s) of 0 ms left out" in got.notes


# ------------------------------------------------------------------ corrupt files


def import_fails(capsys: pytest.CaptureFixture[str], data: Path, path: Path, *expect: str) -> None:
    before = session_count(data)
    code = main(["import", str(path), "--data-dir", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("vagus import: error: ")
    for text in expect:
        assert text in err, err
    assert session_count(data) == before  # nothing imported


@pytest.fixture
def rr_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, Path]]:
    data = tmp_path / "store"
    sid = rr_session(data)
    paths = {}
    for fmt in ("json", "csv", "edf"):
        if fmt == "edf" and not _has_pyedflib():
            continue
        paths[fmt] = tmp_path / f"s.{fmt}"
        cli_export(capsys, data, sid, fmt, paths[fmt])
    return data, paths


def _has_pyedflib() -> bool:
    try:
        import pyedflib  # noqa: F401
    except ImportError:
        return False
    return True


def test_corrupt_json(
    rr_exports: tuple[Path, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, paths = rr_exports
    text = paths["json"].read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    import_fails(capsys, data, cut, "cut.json: line 1: not valid JSON", "truncated")

    doc = json.loads(text)
    doc["input"][3] = {"kind": "rr", "rr_ms": [800.0, -3.0], "t_s": [1.0, 2.0]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    import_fails(capsys, data, bad, "bad.json: input[3]: RR intervals must be > 0 ms")

    doc = json.loads(text)
    doc["input"].insert(2, {"kind": "packet", "t_arrival_s": 1.0, "payload": "0x16zz"})
    bad.write_text(json.dumps(doc, indent=1))
    import_fails(capsys, data, bad, "input[2]: payload '0x16zz' is not hex")

    doc = json.loads(text)
    doc["version"] = 99
    bad.write_text(json.dumps(doc))
    import_fails(capsys, data, bad, "version: 99 is not a version this vagus reads")

    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else", "rr": [800, 810]}\n')
    import_fails(capsys, data, other, "line 1: JSON that is not a vagus session export")
    code = main(["import", str(other), "--format", "json", "--data-dir", str(data), "-q"])
    assert code == 1 and "not a vagus session export" in capsys.readouterr().err


def test_corrupt_vagus_csv(
    rr_exports: tuple[Path, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, paths = rr_exports
    lines = paths["csv"].read_text().splitlines()
    beat_at = next(i for i, ln in enumerate(lines) if ln.startswith("beat,") and i > 50)
    bad = tmp_path / "bad.csv"

    cut = [*lines[:beat_at], lines[beat_at][:20]]
    bad.write_text("\n".join(cut) + "\n")
    import_fails(capsys, data, bad, f"bad.csv: line {beat_at + 1}: ", "truncated")

    fields = lines[beat_at].split(",")
    fields[3] = "8x1.5"
    bad.write_text("\n".join([*lines[:beat_at], ",".join(fields), *lines[beat_at + 1 :]]) + "\n")
    import_fails(capsys, data, bad, f"line {beat_at + 1}: rr_ms '8x1.5' is not a number")

    fields[3] = "-5"
    bad.write_text("\n".join([*lines[:beat_at], ",".join(fields), *lines[beat_at + 1 :]]) + "\n")
    import_fails(capsys, data, bad, f"line {beat_at + 1}: RR interval -5 ms is not > 0")

    fields = lines[beat_at].split(",")
    fields[0] = "beet"
    bad.write_text("\n".join([*lines[:beat_at], ",".join(fields), *lines[beat_at + 1 :]]) + "\n")
    import_fails(capsys, data, bad, f"line {beat_at + 1}: row type 'beet'")

    swapped = [*lines]
    swapped[beat_at], swapped[beat_at + 2] = swapped[beat_at + 2], swapped[beat_at]
    bad.write_text("\n".join(swapped) + "\n")
    import_fails(capsys, data, bad, "beat times must increase")


def test_corrupt_edf(
    rr_exports: tuple[Path, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyedflib = pytest.importorskip("pyedflib")
    data, paths = rr_exports
    raw = paths["edf"].read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(raw[: len(raw) - 1000])
    import_fails(capsys, data, cut, "cut.edf: data: ", "truncated or damaged file")
    import_fails(capsys, data, cut, "truncated")

    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"0       " + b"\x00\xff" * 400)
    import_fails(capsys, data, junk, "junk.edf: header: ")

    # A readable EDF+ whose annotations are wrong: named by number and onset.
    import datetime as dt

    bad = tmp_path / "bad.edf"
    writer = pyedflib.EdfWriter(str(bad), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(
            [
                {
                    "label": "RR",
                    "dimension": "ms",
                    "sample_frequency": 4,
                    "physical_min": 0.0,
                    "physical_max": 3000.0,
                    "digital_min": -32768,
                    "digital_max": 32767,
                }
            ]
        )
        writer.setStartdatetime(dt.datetime(2024, 1, 1, 12, 0, 0))
        writer.setEquipment("vagus_test")
        writer.writeSamples([np.zeros(40)])
        writer.writeAnnotation(1.0, -1, "RR=800.5")
        writer.writeAnnotation(1.8, -1, "RR=8OO")
    finally:
        writer.close()
    import_fails(capsys, data, bad, "bad.edf: annotation 2 (at 1.8000 s): RR '8OO' is not a number")

    empty = tmp_path / "noann.edf"
    writer = pyedflib.EdfWriter(str(empty), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(
            [
                {
                    "label": "ECG",
                    "dimension": "uV",
                    "sample_frequency": 4,
                    "physical_min": -100.0,
                    "physical_max": 100.0,
                    "digital_min": -32768,
                    "digital_max": 32767,
                }
            ]
        )
        writer.writeSamples([np.zeros(40)])
        writer.writeAnnotation(1.0, -1, "Lights off")
    finally:
        writer.close()
    import_fails(capsys, data, empty, "no 'RR=<ms>' annotations", "vagus export --format edf")


# -------------------------------------------------------------------- fuzzing


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet='0123456789.,-:"{}[] \nabcdefinprstuxyz_ekT', max_size=300),
    head=st.sampled_from(
        [
            "",
            '{"format":"vagus-session","version":2,"session":{"started_unix_s":1},"input":[',
            '{"format":"vagus-session","version":1,"session":{"started_unix_s":1},"events":[',
            '{"format":"vagus-session","version":2,"session":{"started_unix_s":1},"input":'
            '[{"kind":"rr","rr_ms":[800,810,820,790,805],"t_s":null},',
            "type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,reason,text,rate_bpm,"
            "inhale_fraction\n",
            "type,t_s,time_utc,rr_ms,nn_ms,artifact,inserted,reason,text,rate_bpm,"
            "inhale_fraction\nbeat,0.8,2024-01-01T00:00:00.800Z,800,800,,false,,,,\n",
        ]
    ),
    fmt=st.sampled_from([None, "json", "vagus_csv", "edf"]),
)
def test_fuzzed_exports_are_read_or_rejected_cleanly(
    tmp_path: Path, text: str, head: str, fmt: str | None
) -> None:
    f = tmp_path / "fuzz.txt"
    f.write_text(head + text)
    try:
        got = read_rr_file(f, fmt)
    except (FileFormatError, InvalidInput):
        return
    assert got.beats > 0
    p = Pipeline()
    for r in got.records():
        feed_counting(p, r)
    p.close()


@settings(max_examples=60, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_damaged_edf_is_read_or_rejected_cleanly(
    edits: list[tuple[int, int]], edf_bytes: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    raw = bytearray(edf_bytes)
    for at, value in edits:
        raw[at % len(raw)] = value
    f = tmp_path_factory.mktemp("edf") / "damaged.edf"
    f.write_bytes(bytes(raw))
    try:
        got = read_rr_file(f)
    except (FileFormatError, InvalidInput):
        return
    assert got.beats > 0 and all(v > 0 for v in got.rr_ms)


@pytest.fixture(scope="module")
def edf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pytest.importorskip("pyedflib")
    data = tmp_path_factory.mktemp("edf-store")
    sid = rr_session(data)
    out = data / "s.edf"
    assert main(["export", sid, "--format", "edf", "-o", str(out), "--data-dir", str(data)]) == 0
    return out.read_bytes()


def test_edf_export_of_a_long_title_fits_the_header(tmp_path: Path) -> None:
    """EDF+ allows 80 characters for equipment + recording fields together; a long
    title is cut to fit (pyedflib warns otherwise, an error under this suite)."""
    pytest.importorskip("pyedflib")
    src = tmp_path / "rr.txt"
    src.write_text("\n".join(str(800 + (i % 7) * 10) for i in range(400)) + "\n")
    title = "a very long session title, " * 6
    args = ["--data-dir", str(tmp_path)]
    assert main(["import", str(src), "--unit", "ms", "--title", title, "-q", *args]) == 0
    store = open_store(tmp_path)
    try:
        sid = store.list_sessions()[0].id
    finally:
        store.close()
    out = tmp_path / "long.edf"
    assert main(["export", sid, "--format", "edf", "-o", str(out), *args]) == 0
    assert main(["import", str(out), "-q", *args]) == 0


def test_edf_with_a_latin1_annotation_still_imports(edf_bytes: bytes, tmp_path: Path) -> None:
    """An annotation text that is not UTF-8 (another tool's Latin-1 marker) is read as
    Latin-1 without a warning reaching the user (pyedflib warns; an error here)."""
    raw = bytearray(edf_bytes)
    at = raw.index(b"Marker:")
    raw[at + len(b"Marker:") + 1] = 0xE9
    f = tmp_path / "latin1.edf"
    f.write_bytes(bytes(raw))
    assert read_rr_file(f).beats > 0
