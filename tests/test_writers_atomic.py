"""Every file vagus writes is atomic (issue 13 §2): a temporary next to the target,
flushed, fsynced and renamed into place; a failure (a full disk, a file-size limit, a
missing folder, a directory) or Ctrl-C leaves the target as it was, removes the temporary
and gives one error naming the path and the reason (exit 1, no traceback).

A full disk is simulated two ways: ``RLIMIT_FSIZE`` in a subprocess (SIGXFSZ ignored, so
``write`` fails with EFBIG, as the kernel does at a size limit; pyedflib's C library sees
it too), and ``os.fsync`` failing with ENOSPC in-process (a disk that fills while the
page cache is written back).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vagus import files
from vagus.cli import main
from vagus.files import WriteError, atomic_path, atomic_write, write_text

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HEARTMATH = DATA / "wearablehrv" / "test_heartmath.csv"
EXTENSIONS = {"edf": "edf", "csv": "csv", "json": "json", "kubios": "txt"}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared recordings are not next to the project)")
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files a writer left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".partial")))


def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    data = tmp_path / "store"
    code = main(["import", str(need(HEARTMATH)), "--data-dir", str(data), "--json", "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    return data, str(json.loads(out)["id"])


# ----------------------------------------------------------------- the helper itself


def test_atomic_write_replaces_and_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    write_text(target, "one\n")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_text() == "one\n"
    assert (target.stat().st_mode & 0o777) == 0o666 & ~mask
    target.chmod(0o640)
    write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert (target.stat().st_mode & 0o777) == 0o640  # an existing file keeps its mode
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "fault",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EFBIG, "File too large"),
        KeyboardInterrupt(),
        ValueError("a writer's own bug"),
    ],
    ids=["enospc", "efbig", "ctrl-c", "writer-error"],
)
def test_a_failure_mid_write_leaves_the_target_as_it_was(
    tmp_path: Path, fault: BaseException
) -> None:
    target = tmp_path / "r.html"
    target.write_text("the old report\n")
    with (
        pytest.raises((WriteError, KeyboardInterrupt, ValueError)) as caught,
        atomic_write(target) as f,
    ):
        f.write("half of a new report")
        raise fault
    assert target.read_text() == "the old report\n"
    assert leftovers(tmp_path) == []
    if isinstance(fault, OSError):
        assert caught.type is WriteError
        assert str(target) in str(caught.value)
        assert files.reason(fault) in str(caught.value)
    else:
        assert caught.type is type(fault)


def test_fsync_failure_is_a_write_error_and_keeps_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.csv"
    target.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(WriteError, match=r"x\.csv: no space left on the device"):
        write_text(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_missing_folder_and_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"the folder .*nope does not exist"):
        write_text(tmp_path / "nope" / "r.html", "x")
    with pytest.raises(WriteError, match="it is a directory"):
        write_text(tmp_path, "x")
    with pytest.raises(WriteError, match="is not a folder"):
        (tmp_path / "file").write_text("")
        with atomic_path(tmp_path / "file" / "r.html"):
            pass
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ export, report


def _run_limited(args: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``vagus ARGS`` in a subprocess that may write no file beyond ``limit_bytes``."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "vagus", *args],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=110,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["edf", "csv", "json"])
def test_export_to_a_full_disk_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    data, sid = imported(tmp_path, capsys)
    out = tmp_path / f"s.{EXTENSIONS[fmt]}"
    proc = _run_limited(
        ["export", sid, "--format", fmt, "-o", str(out), "--data-dir", str(data), "-q"],
        60_000,
        tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "exported" not in proc.stdout
    assert f"cannot write {out}" in proc.stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_report_to_a_full_disk_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, sid = imported(tmp_path, capsys)
    out = tmp_path / "r.html"
    out.write_text("an older report\n")
    proc = _run_limited(
        ["report", sid, "-o", str(out), "--data-dir", str(data), "-q"], 60_000, tmp_path
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"cannot write {out}: file too large" in proc.stderr
    assert out.read_text() == "an older report\n"
    assert leftovers(tmp_path) == []


def _interrupt_after(calls: int, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, but a Ctrl-C arrives on its ``calls``-th call."""
    count = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        if count >= calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("fmt", ["edf", "csv", "json", "kubios"])
def test_ctrl_c_mid_export_leaves_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    data, sid = imported(tmp_path, capsys)
    out = tmp_path / f"s.{EXTENSIONS[fmt]}"
    if fmt == "edf":
        import pyedflib

        monkeypatch.setattr(
            pyedflib.EdfWriter,
            "writeAnnotation",
            _interrupt_after(500, pyedflib.EdfWriter.writeAnnotation),
        )
    else:
        import vagus.formats.export as ex
        import vagus.formats.kubios as kubios

        if fmt == "kubios":
            monkeypatch.setattr(ex, "write_kubios", _interrupt_after(1, kubios.write_kubios))
        else:
            import io

            real = io.TextIOWrapper.write
            monkeypatch.setattr(
                ex,
                f"write_{fmt}",
                _write_then_interrupt(getattr(ex, f"write_{fmt}"), real),
            )
    code = main(["export", sid, "--format", fmt, "-o", str(out), "--data-dir", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 130, err
    assert "interrupted" in err
    assert not out.exists()
    assert leftovers(tmp_path) == []


def _write_then_interrupt(writer: Callable[..., int], write: Any) -> Callable[..., int]:
    """The writer writes everything, then a Ctrl-C arrives before the file is closed."""

    def wrapped(run: Any, out: Any) -> int:
        writer(run, out)
        write(out, "more")
        raise KeyboardInterrupt

    return wrapped


def test_ctrl_c_mid_export_keeps_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyedflib

    data, sid = imported(tmp_path, capsys)
    out = tmp_path / "s.edf"
    out.write_bytes(b"the previous export")
    monkeypatch.setattr(
        pyedflib.EdfWriter,
        "writeAnnotation",
        _interrupt_after(100, pyedflib.EdfWriter.writeAnnotation),
    )
    code = main(["export", sid, "--format", "edf", "-o", str(out), "--data-dir", str(data), "-q"])
    capsys.readouterr()
    assert code == 130
    assert out.read_bytes() == b"the previous export"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["report", "progress", "export"])
def test_output_to_a_missing_folder_or_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    data, sid = imported(tmp_path, capsys)
    args = {
        "report": ["report", sid],
        "progress": ["progress"],
        "export": ["export", sid, "--format", "csv"],
    }[command]
    for target, words in (
        (tmp_path / "nonexistent" / "dir" / "r.html", "does not exist"),
        (tmp_path, "is a directory"),
    ):
        code = main([*args, "-o", str(target), "--data-dir", str(data), "-q"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert f"cannot write {target}" in err and words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize("command", ["report", "progress"])
def test_report_when_fsync_fails_keeps_the_old_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    data, sid = imported(tmp_path, capsys)
    out = tmp_path / "r.html"
    out.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    args = ["report", sid] if command == "report" else ["progress"]
    code = main([*args, "-o", str(out), "--data-dir", str(data), "-q"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"cannot write {out}: no space left on the device" in err
    assert out.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_export_of_a_session_without_beats_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vagus.core.events import Marker
    from vagus.store.base import ControlRecord
    from vagus.store.open import open_store

    store = open_store(tmp_path)
    try:
        info = store.create_session(title="nothing", source="sim")
        store.append_many(info.id, [ControlRecord(Marker(1.0, "started, strap never came"))])
        store.end_session(info.id)
    finally:
        store.close()
    for fmt in ("edf", "csv", "json", "kubios"):
        out = tmp_path / f"empty.{EXTENSIONS[fmt]}"
        code = main(
            ["export", info.id, "--format", fmt, "-o", str(out), "--data-dir", str(tmp_path)]
        )
        err = capsys.readouterr().err
        assert code == 1, (fmt, err)
        assert "no beats: nothing to export" in err
        assert not out.exists()


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert leftovers(tmp_path) == []


def test_a_device_is_written_in_place_never_replaced(tmp_path: Path) -> None:
    import stat

    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        pytest.skip("creating a device node needs root")
    write_text(node, "into the device")
    assert stat.S_ISCHR(node.stat().st_mode)  # still the device, not a file over it
    assert leftovers(tmp_path) == []
