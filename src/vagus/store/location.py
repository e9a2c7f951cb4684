"""Where the session store lives on disk.

The default is the platform's user data directory (``platformdirs.user_data_dir("vagus")``:
``$XDG_DATA_HOME/vagus`` or ``~/.local/share/vagus`` on Linux,
``~/Library/Application Support/vagus`` on macOS, ``%LOCALAPPDATA%\\vagus`` on Windows).
The environment variable :data:`DATA_DIR_ENV` overrides it, and a ``--data-dir``
command-line option overrides both.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import platformdirs

__all__ = ["DATA_DIR_ENV", "DB_FILENAME", "add_data_dir_argument", "data_dir", "db_path"]

#: Environment variable naming the data directory.
DATA_DIR_ENV = "VAGUS_DATA_DIR"
#: The SQLite file inside the data directory.
DB_FILENAME = "sessions.sqlite3"


def data_dir(override: Path | str | None = None) -> Path:
    """The data directory: ``override``, else ``$VAGUS_DATA_DIR``, else the platform default.

    The directory is not created here (:func:`vagus.store.open.open_store` does that).
    """
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("vagus", appauthor=False))


def db_path(directory: Path | str | None = None) -> Path:
    """The session database file in :func:`data_dir` ``(directory)``."""
    return data_dir(directory) / DB_FILENAME


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--data-dir DIR`` option shared by the commands that use the store."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            f"where sessions are stored (default: ${DATA_DIR_ENV} if set, "
            f"else {platformdirs.user_data_dir('vagus', appauthor=False)})"
        ),
    )
