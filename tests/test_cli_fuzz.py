"""Every option of every command, fuzzed as a user's typing would arrive (issue 13).

For each command, each option that takes a value is given values drawn by hypothesis
(numbers far out of range, negative, NaN, unicode digits, empty, very long, shell junk)
with the command's other arguments valid. Whatever the value, the command must end with
exit status 0, 1 (an error that says what to do) or 2 (a usage error), and never raise:
an exception escaping ``main`` is the traceback a user would see.

The live commands run on the simulator at ``--speed max`` for a few simulated seconds; their
``--duration`` and ``--speed`` themselves are checked by their parsers (a fuzzed duration
could legitimately ask for a year of simulation). ``scan`` and the benchmarks are left out:
they need the simulated BlueZ or minutes of work, and have their own tests.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vagus.cli import _build_parser, main
from vagus.store.open import open_store

#: Commands whose run is bounded by these fixed arguments (appended last, so they win).
LIVE_TAIL = ["--sim", "--speed", "max", "--duration", "3"]
#: Options not fuzzed by running the command (see the module docstring).
NOT_RUN = {"--duration", "--speed", "--device", "--data-dir", "--help", "--version"}

#: Values a user (or a script gone wrong) might pass.
NASTY = st.one_of(
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "-0",
            "1e308",
            "-1e308",
            "1e999",
            "nan",
            "inf",
            "-inf",
            "99999999999999999999999999",
            "²",
            "١٢",
            "5:75",
            "1:2:3:4",
            "x=1",
            "foo=1",
            "dropouts=[[1,1e308]]",
            "dropouts=[[5,1]]",
            "artifact_rate=2",
            "rf_bpm=-3",
            "0x10",
            "../../etc/passwd",
            "/nonexistent/dir/file.html",
            "/tmp",
            "a" * 5000,
            "%s%n",
            "\x00",
            "Europe/Nowhere",
            "UTC",
        ]
    ),
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


def _rr_file(directory: Path) -> Path:
    path = directory / "rr.txt"
    values = [800 + 60 * ((i % 9) - 4) / 4 for i in range(600)]
    path.write_text("\n".join(f"{v:.1f}" for v in values) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fuzzed ``-o VALUE`` is a relative path: keep what it writes out of the checkout."""
    monkeypatch.chdir(tmp_path)


@contextmanager
def _one_session() -> Iterator[tuple[Path, str, Path]]:
    """A fresh data directory holding one imported session: (directory, its ID, RR file)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        rr = _rr_file(Path(tmp))
        argv = ["import", str(rr), "--format", "plain", "--unit", "ms", "-q"]
        assert main([*argv, "--data-dir", str(data)]) == 0
        with open_store(data) as s:
            session_id = s.list_sessions()[0].id
        yield data, session_id, rr


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[Path, str, Path]]:
    """One session for the option fuzz (which adds sessions of its own to the store)."""
    with _one_session() as made:
        yield made


def _value_options(command: str) -> list[argparse.Action]:
    parser = _build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cmd_parser = sub.choices[command]
    return [
        a
        for a in cmd_parser._actions
        if a.option_strings and a.nargs != 0 and not set(a.option_strings) & NOT_RUN
    ]


def _base(command: str, data: Path, session_id: str, rr: Path, out: Path) -> list[str]:
    if command in ("monitor", "record"):
        return [command]
    if command in ("analyze", "import"):
        return [command, str(rr), "--format", "plain", "--unit", "ms"]
    if command == "export":
        return [command, session_id, "--format", "csv", "-o", str(out / "x.csv")]
    if command in ("report",):
        return [command, session_id, "-o", str(out / "r.html"), "-q"]
    if command == "progress":
        return [command, "-o", str(out / "p.html"), "-q"]
    if command == "replay":
        return [command, session_id, "--speed", "max"]
    if command in ("show", "edit"):
        return [command, session_id]
    return [command]


#: Examples per command where one run takes seconds (a report renders its plots).
SLOW_COMMANDS = {"monitor": 12, "record": 12, "report": 5, "progress": 8, "replay": 15}

COMMANDS = [
    "monitor",
    "record",
    "analyze",
    "import",
    "export",
    "report",
    "progress",
    "show",
    "edit",
    "replay",
    "sessions",
    "devices",
]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_value_ends_in_a_clear_status(
    command: str,
    store: tuple[Path, str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, session_id, rr = store
    options = _value_options(command)
    if not options:
        pytest.skip(f"{command} has no value options")
    out = Path(tempfile.mkdtemp())

    @settings(
        max_examples=SLOW_COMMANDS.get(command, 40),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(option=st.sampled_from(options), value=NASTY)
    def run(option: argparse.Action, value: str) -> None:
        argv = _base(command, data, session_id, rr, out)
        argv += [f"{option.option_strings[-1]}={value}", "--data-dir", str(data)]
        if command in ("monitor", "record"):
            argv += LIVE_TAIL
        if command == "import":
            argv += ["--again", "-q"] if "--again" in _flags(command) else ["-q"]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)

    run()


def _flags(command: str) -> set[str]:
    parser = _build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for a in sub.choices[command]._actions for s in a.option_strings}


@pytest.fixture(scope="module")
def id_store() -> Iterator[tuple[Path, list[str]]]:
    """A data directory of its own (the option fuzz adds sessions), with one session."""
    with _one_session() as (data, session_id, _rr):
        yield data, [session_id]


@pytest.mark.parametrize("command", ["show", "edit", "replay", "export", "report", "delete"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(session_id=NASTY)
def test_any_session_id_is_a_clear_error(
    command: str,
    session_id: str,
    id_store: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, real_ids = id_store
    if session_id.strip() and any(i.startswith(session_id.strip().lower()) for i in real_ids):
        return  # a real prefix of the fixture's session: not a bad ID
    argv = [command, session_id, "--data-dir", str(data)]
    if command == "export":
        argv += ["--format", "csv", "-o", str(Path(tempfile.mkdtemp()) / "x.csv")]
    if command == "replay":
        argv += ["--speed", "max"]
    if command == "delete":
        argv += ["--yes"]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    err = capsys.readouterr().err
    assert code in (1, 2), (argv, code, err)
    assert "Traceback" not in err
