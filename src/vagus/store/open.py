"""Open the session store: the one place that picks the backend.

Callers use :func:`open_store`, :func:`store_exists`, :func:`store_location` and the
:class:`~vagus.store.base.Store` interface only, never a backend's files or classes: a
server backend (PostgreSQL) would be chosen here without touching them.

Commands that only read (``sessions``, ``show``, ``replay``, ``export``, ``report``)
open an existing store with ``create=False``: where the store cannot be written (a
read-only directory or mount), it is opened for reading only
(:attr:`~vagus.store.base.Store.read_only`, with the reason in
:attr:`~vagus.store.base.Store.read_only_reason`). Commands that write (``record``,
``import``, ``delete``) open it for writing and get a clear
:class:`~vagus.exceptions.StoreError` where they cannot.
"""

from __future__ import annotations

import errno
from pathlib import Path

from vagus.exceptions import StoreError
from vagus.store.base import Store
from vagus.store.location import DATA_DIR_ENV, db_path, existing_db
from vagus.store.location import data_dir as _resolve_data_dir
from vagus.store.sqlite import SqliteStore

__all__ = ["open_store", "store_exists", "store_location"]


def store_location(data_dir: Path | str | None = None) -> str:
    """Where the store of ``data_dir`` is (or would be), for messages: the SQLite file.

    ``data_dir`` as for :func:`open_store`. Nothing is created or checked.
    """
    return str(db_path(data_dir))


def store_exists(data_dir: Path | str | None = None) -> bool:
    """True if the data directory holds a store (False: no sessions yet, nothing created).

    Raises:
        StoreError: the data directory cannot hold a store: it is a file, a part of its
            path is a file, or it cannot be read (permissions).
    """
    return existing_db(data_dir) is not None


def open_store(
    data_dir: Path | str | None = None,
    *,
    create: bool = True,
    read_only: bool | None = None,
) -> Store:
    """Open the store in the data directory (creating both if needed and ``create``).

    Args:
        data_dir: the data directory (``--data-dir``); None for
            ``$VAGUS_DATA_DIR`` or the platform's user data directory.
        create: create the directory and the store if they do not exist (commands that
            write); False requires an existing store (commands that read, and delete).
        read_only: True opens for reading only; False for writing (a store that cannot
            be written is a StoreError); None (the default) for writing with ``create``,
            and without it for writing where the store can be written, else for
            reading only (:attr:`~vagus.store.base.Store.read_only_reason` says why).

    Raises:
        StoreError: the directory cannot be created, there is no store (``create``
            False), or the database cannot be opened (read-only directory for a write,
            full disk, a foreign or corrupt file...).
    """
    directory = _resolve_data_dir(data_dir)
    hint = f"choose another with --data-dir or {DATA_DIR_ENV}"
    if create and read_only is not True:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                why = "a part of that path is a file"
            elif exc.errno == errno.EEXIST:
                why = "it is a file, not a directory"
            else:
                why = exc.strerror or str(exc)
            raise StoreError(
                f"cannot create the data directory {directory}: {why}; {hint}"
            ) from exc
        existing_db(directory)  # what mkdir let through (a file in the way): say so plainly
        return SqliteStore(db_path(directory))
    if existing_db(directory) is None:
        raise StoreError(
            f"no session store in {directory} yet; `vagus record` or `vagus import` creates "
            f"one (or point --data-dir / {DATA_DIR_ENV} at your store)"
        )
    return SqliteStore(db_path(directory), read_only=read_only)
