"""Atomic file writes: every file vagus writes goes through here.

A writer gets a temporary file in the target's own directory (so the final rename never
crosses a file system), writes it, and on success the temporary is flushed, fsynced,
given the permissions a new file would get (or the old file's), renamed over the target
(``os.replace``, atomic on POSIX) and the directory is fsynced, so the rename itself
survives a power cut. On any failure (a full disk, a file-size limit, a writer's own
error) or a Ctrl-C (``KeyboardInterrupt``) the temporary is removed and the target is
left exactly as it was: a reader never sees a truncated or empty file at the final path.

Errors are :class:`WriteError` (a :class:`~vagus.exceptions.VagusError`): the message
names the path and the reason ("no space left on the device", "is a directory", ...),
so the CLI prints it with exit 1 and no traceback.

- :func:`atomic_write` yields an open text file;
- :func:`atomic_path` yields the temporary's path, for libraries that write by name
  (pyedflib);
- :func:`write_text` writes one string.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from vagus.exceptions import VagusError

__all__ = ["WriteError", "atomic_path", "atomic_write", "check_target", "write_text"]


class WriteError(VagusError):
    """A file could not be written; the message names the path and the reason. The
    target was left as it was."""


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit, or the file system's maximum)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.EIO: "input/output error (a failing disk or a lost network drive?)",
}


def reason(exc: OSError) -> str:
    """A plain-words reason for an OS error (its errno), e.g. "no space left on the device"."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def check_target(path: Path | str) -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there, else a
    :class:`WriteError` saying why not (a directory, a missing folder)."""
    target = Path(path)
    if target.is_dir():
        raise WriteError(
            f"cannot write {target}: it is a directory; give a file name, e.g. {target / 'NAME'}"
        )
    parent = target.parent
    if not parent.exists():
        raise WriteError(
            f"cannot write {target}: the folder {parent} does not exist "
            "(create it first, or give another path)"
        )
    if not parent.is_dir():
        raise WriteError(f"cannot write {target}: {parent} is not a folder")
    return target


def _new_file_mode(target: Path) -> int:
    """The permission bits the file should get: the old file's, or 0o666 minus the umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(target.stat().st_mode)
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; on a clean exit it replaces ``path``.

    The temporary is named ``.<name>.<random>.tmp`` (hidden, and clearly not the file).
    A symbolic link is followed (the file it points to is replaced, the link kept); a
    device or a pipe (``/dev/stdout``, a FIFO) is written in place, never replaced.
    On a clean exit: fsync the temporary, set its permissions, ``os.replace`` it onto
    ``path``, fsync the directory. On an exception (including ``KeyboardInterrupt``):
    remove the temporary and re-raise; an ``OSError`` becomes a :class:`WriteError`
    naming ``path`` and the reason.
    """
    target = check_target(path)
    if target.is_symlink():
        # Replace the file the link points to, and keep the link.
        target = check_target(os.path.realpath(target))
    if target.exists() and not target.is_file():
        # A device or a pipe (-o /dev/stdout, a FIFO): write to it as it is; renaming a
        # file over it would replace the device node.
        try:
            yield target
        except OSError as exc:
            raise WriteError(f"cannot write {target}: {reason(exc)}") from None
        return
    parent = target.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {reason(exc)}") from None
    os.close(fd)
    tmp = Path(name)
    done = False
    try:
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
        done = True
        _fsync_path(parent, directory=True)
    except OSError as exc:
        where = "" if not done else " (the file is in place, but the folder could not be synced)"
        raise WriteError(f"cannot write {target}: {reason(exc)}{where}") from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_write(
    path: Path | str, *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[TextIO]:
    """Yield a text file open for writing (``encoding``, ``newline`` as :func:`open`); see
    :func:`atomic_path` for what happens on success and on failure. (Binary writers that
    write by name, such as pyedflib, use :func:`atomic_path`.)"""
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline=newline) as f:
        yield f


def write_text(path: Path | str, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_write(path, encoding=encoding) as f:
        f.write(text)
    return Path(path)
