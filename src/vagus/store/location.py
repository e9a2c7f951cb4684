"""Where the session store lives on disk.

The default is the platform's user data directory (``platformdirs.user_data_dir("vagus")``:
``$XDG_DATA_HOME/vagus`` or ``~/.local/share/vagus`` on Linux,
``~/Library/Application Support/vagus`` on macOS, ``%LOCALAPPDATA%\\vagus`` on Windows).
The environment variable :data:`DATA_DIR_ENV` overrides it, and a ``--data-dir``
command-line option overrides both (the option itself is parsed in the CLI layer,
:mod:`vagus.cli._data_dir`: this module knows nothing of argparse).

A data directory that cannot be used (a part of its path is a file, no permission) is a
:class:`~vagus.exceptions.StoreError` naming the path (:func:`existing_db`).

:data:`DB_FILENAME`, :func:`db_path` and :func:`existing_db` are the SQLite backend's file
layout: commands use :mod:`vagus.store.open` (``store_location``, ``store_exists``,
``open_store``) instead, so another backend needs no change in them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import platformdirs

from vagus.exceptions import StoreError

__all__ = [
    "DATA_DIR_ENV",
    "DB_FILENAME",
    "data_dir",
    "db_path",
    "existing_db",
    "platform_data_dir",
]

#: Environment variable naming the data directory.
DATA_DIR_ENV = "VAGUS_DATA_DIR"
#: The SQLite file inside the data directory.
DB_FILENAME = "sessions.sqlite3"


def platform_data_dir() -> Path:
    """The platform's user data directory for vagus (used when neither ``--data-dir`` nor
    ``$VAGUS_DATA_DIR`` is given)."""
    return Path(platformdirs.user_data_dir("vagus", appauthor=False))


def data_dir(override: Path | str | None = None) -> Path:
    """The data directory: ``override``, else ``$VAGUS_DATA_DIR``, else the platform default.

    The directory is not created here (:func:`vagus.store.open.open_store` does that).
    """
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return platform_data_dir()


def db_path(directory: Path | str | None = None) -> Path:
    """The session database file in :func:`data_dir` ``(directory)``."""
    return data_dir(directory) / DB_FILENAME


def existing_db(directory: Path | str | None = None) -> Path | None:
    """The session database of :func:`data_dir` ``(directory)``, or None if there is none yet.

    Raises:
        StoreError: the data directory cannot hold a store: it is a file, a part of its
            path is a file, or it cannot be read (permissions).
    """
    where = data_dir(directory)
    db = where / DB_FILENAME
    hint = f"choose another with --data-dir or {DATA_DIR_ENV}"
    try:
        if not where.is_dir():
            if where.exists():
                raise StoreError(f"the data directory {where} is a file, not a directory; {hint}")
            where.stat()  # not there (None), or why it cannot be: a file on the path, permissions
            return None
        db.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise StoreError(
                f"cannot use the data directory {where}: a part of that path is a file; {hint}"
            ) from None
        raise StoreError(
            f"cannot use the data directory {where}: {exc.strerror or exc}; {hint}"
        ) from None
    return db
