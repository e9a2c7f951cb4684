"""The ``--data-dir DIR`` option shared by the commands that use the session store.

Command-line parsing only: where the store lives is :mod:`vagus.store.location`'s
business (``--data-dir``, else ``$VAGUS_DATA_DIR``, else the platform's user data
directory), and opening it is :mod:`vagus.store.open`'s.

A ``--data-dir`` that names an existing file is a usage error (argparse, exit status 2);
a directory that cannot be used for another reason is reported when the store is opened.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vagus.store.location import DATA_DIR_ENV, platform_data_dir

__all__ = ["add_data_dir_argument", "data_dir_type"]


def data_dir_type(text: str) -> Path:
    """argparse type for ``--data-dir``: a directory, existing or not, but not a file."""
    path = Path(text).expanduser()
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError:  # unreadable: the store reports it when it is opened
        is_file = False
    if is_file:
        raise argparse.ArgumentTypeError(
            f"{text} is a file, not a directory (give the directory that holds, or will "
            "hold, the session store)"
        )
    return path


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--data-dir DIR`` option shared by the commands that use the store."""
    parser.add_argument(
        "--data-dir",
        type=data_dir_type,
        default=None,
        metavar="DIR",
        help=(
            f"where sessions are stored (default: ${DATA_DIR_ENV} if set, "
            f"else {platform_data_dir()})"
        ),
    )
