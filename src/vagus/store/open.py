"""Open the session store: the one place that picks the backend.

Callers use :func:`open_store` and the :class:`~vagus.store.base.Store` interface only;
a server backend (PostgreSQL) would be chosen here without touching them.
"""

from __future__ import annotations

from pathlib import Path

from vagus.exceptions import StoreError
from vagus.store.base import Store
from vagus.store.location import DATA_DIR_ENV, DB_FILENAME
from vagus.store.location import data_dir as _resolve_data_dir
from vagus.store.sqlite import SqliteStore

__all__ = ["open_store"]


def open_store(data_dir: Path | str | None = None, *, create: bool = True) -> Store:
    """Open (creating if needed) the store in the data directory.

    Args:
        data_dir: the data directory (``--data-dir``); None for
            ``$VAGUS_DATA_DIR`` or the platform's user data directory.
        create: create the directory if it does not exist.

    Raises:
        StoreError: the directory cannot be created or the database cannot be opened
            (read-only directory, full disk, a foreign or corrupt file...).
    """
    directory = _resolve_data_dir(data_dir)
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {directory}: {exc.strerror or exc}; "
                f"choose another with --data-dir or {DATA_DIR_ENV}"
            ) from exc
    elif not directory.is_dir():
        raise StoreError(
            f"no session store at {directory} (the directory does not exist); "
            f"record or import a session first, or point --data-dir / {DATA_DIR_ENV} at one"
        )
    return SqliteStore(directory / DB_FILENAME)
