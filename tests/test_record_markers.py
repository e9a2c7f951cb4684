"""``vagus record`` stores control events with the session: a start and a stop marker,
markers and pacer changes typed on stdin; and it says how much was really saved when the
store fails."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from vagus.cli import main
from vagus.core.events import Marker, PacerChange
from vagus.exceptions import ConnectionLost
from vagus.sources.base import SourceBase
from vagus.store.base import ControlRecord
from vagus.store.sqlite import SqliteStore


def _vagus(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VAGUS_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "vagus", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def _controls(data: Path) -> tuple[str, list[Marker | PacerChange]]:
    with SqliteStore(data / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
        records = list(store.iter_input(info.id))
    return info.id, [r.event for r in records if isinstance(r, ControlRecord)]


def test_record_takes_markers_and_pacer_changes_from_stdin(tmp_path: Path) -> None:
    lines = "eyes closed\npacer 6\n\n  start breathing, 6/min  \npacer 0\npacer off\n"
    args = ["record", "--sim", "--speed", "30", "--duration", "90", "--seed", "5", "--json"]
    proc = _vagus(tmp_path, *args, "--markers-from-stdin", stdin=lines)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "add a marker" in proc.stderr  # the hint at the start
    assert "pacer 0" in proc.stderr and "1-40" in proc.stderr  # refused, with the range

    sid, controls = _controls(tmp_path)
    markers = [c.text for c in controls if isinstance(c, Marker)]
    assert markers == ["start", "eyes closed", "start breathing, 6/min", "stop: duration reached"]
    pacers = [c.rate_bpm for c in controls if isinstance(c, PacerChange)]
    assert pacers == [6.0, None]
    times = [c.t_s for c in controls]
    assert times == sorted(times) and times[0] < times[-1]

    # The live events include them, and a replay gives exactly the live events.
    live = proc.stdout.splitlines()
    live_markers = [json.loads(x)["text"] for x in live if json.loads(x)["type"] == "marker"]
    assert live_markers == markers
    replay = _vagus(tmp_path, "replay", sid, "--speed", "max", "--json")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines() == live

    # `vagus show` lists them, and the summary counts them.
    show = _vagus(tmp_path, "show", sid)
    assert show.returncode == 0, show.stderr
    assert re.search(r"marker +\d\d:\d\d  eyes closed", show.stdout)
    assert re.search(r"pacer +\d\d:\d\d  6\.0 breaths/min", show.stdout)
    assert re.search(r"pacer +\d\d:\d\d  off", show.stdout)
    assert "stop: duration reached" in show.stdout
    doc = json.loads(_vagus(tmp_path, "show", sid, "--json").stdout)
    assert doc["summary"]["markers"] == 4 and doc["summary"]["pacer_changes"] == 2


def test_without_a_terminal_or_the_flag_stdin_is_not_read(tmp_path: Path) -> None:
    proc = _vagus(tmp_path, "record", "--sim", "--speed", "max", "--duration", "30", stdin="x\n")
    assert proc.returncode == 0, proc.stderr
    assert "add a marker" not in proc.stderr
    _sid, controls = _controls(tmp_path)
    assert [c.text for c in controls if isinstance(c, Marker)] == [
        "start",
        "stop: duration reached",
    ]


def test_a_failing_store_reports_the_records_actually_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vagus.store.open as open_mod

    real_open = open_mod.open_store

    def full_disk_store(*args: object, **kwargs: object) -> object:
        store = real_open(*args, **kwargs)  # type: ignore[arg-type]
        store._conn.execute("PRAGMA max_page_count = 8")  # type: ignore[attr-defined]
        # A commit every 100 clock readings: records are pending when the disk fills up.
        store._clock = itertools.count(0.0, 0.01).__next__  # type: ignore[attr-defined]
        store._last_commit = 0.0  # type: ignore[attr-defined]
        return store

    monkeypatch.setattr(open_mod, "open_store", full_disk_store)
    data = tmp_path / "full"
    code = main(["record", "--sim", "--speed", "max", "--duration", "900", "--data-dir", str(data)])
    err = capsys.readouterr().err
    assert code == 1
    found = re.search(r"(\d+) records were committed", err)
    assert found is not None, err
    with SqliteStore(data / "sessions.sqlite3") as store:
        (info,) = store.list_sessions()
        assert int(found.group(1)) == store.input_count(info.id) > 0


class _StrapLostAfter(SourceBase):
    """The simulator's source, losing the strap for good after ``n`` items (a source
    of its own: it declares no capabilities)."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n = inner, n

    async def __aenter__(self) -> _StrapLostAfter:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.inner.__aexit__(*exc_info)

    async def _items(self) -> AsyncIterator[Any]:
        async for item in self.inner:
            if self.n == 0:
                raise ConnectionLost("the strap did not come back after 8 attempts")
            self.n -= 1
            yield item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()


def test_a_lost_strap_ends_the_recording_with_a_stop_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vagus.sources.base as sources_base

    real_open = sources_base.open_source
    monkeypatch.setattr(
        sources_base, "open_source", lambda spec: _StrapLostAfter(real_open(spec), 120)
    )
    code = main(["record", "--sim", "--speed", "max", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "did not come back" in err and "saved session" in err
    _sid, controls = _controls(tmp_path)
    assert [c.text for c in controls if isinstance(c, Marker)] == ["start", "stop: strap lost"]
