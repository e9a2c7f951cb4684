"""``vagus import`` and ``vagus export``: RR files in, session files out.

``vagus import FILE [--format F] [--unit ms|s] [--column NAME] [--tz ZONE] [--title T]
[--participant P] [--again] [--data-dir D] [--json]``
    A file whose bytes (SHA-256) this store imported before is refused, naming that
    session, unless ``--again`` (a copy would count twice in progress trends).
    Reads the whole file first (format detected from its content unless ``--format``;
    :mod:`vagus.formats.registry`), then stores it as one new session (source
    ``import:<format>``) in one transaction: a bad line anywhere imports nothing, and an
    import killed part way (even ``kill -9``) leaves no trace, not even an empty
    session. The session replays like a recorded one. Its summary is computed by running
    the pipeline.
    Naive local times in the file (VU-AMS, Polar, HRV Logger, Elite HRV file names) are
    read in ``--tz`` (an IANA name; default: this machine's time zone) and stored as UTC.
    vagus's own exports (``json``, ``csv``, ``edf``, ``kubios``) import back: a JSON
    export replays to exactly the exported session's events.

``vagus export ID --format kubios|csv|json|edf [--participant P] [-o PATH] [--data-dir D] [--json]``
    Replays the session through the pipeline and writes Kubios RR text, one CSV table,
    one JSON document or EDF+ (:mod:`vagus.formats.export`). ``-o -`` writes the text
    formats to stdout. Default path: ``vagus-<id>.<txt|csv|json|edf>`` here
    (``vagus-<id>-<participant>.<ext>`` with ``--participant``). A file holds one
    participant: a session with several needs ``--participant`` (the error lists them).

Both show a progress bar on stderr when it is a terminal (``--quiet`` turns it off).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vagus.cli._common import ProgressBar
from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli.sessions import session_id_arg
from vagus.exceptions import InvalidInput
from vagus.store.base import Store

__all__ = ["export_session", "import_file", "register", "time_zone"]

_EXTENSIONS = {"kubios": "txt", "csv": "csv", "json": "json", "edf": "edf"}


def time_zone(text: str) -> dt.tzinfo:
    """argparse type for ``--tz``: an IANA time zone name."""
    from vagus.formats.common import parse_time_zone

    try:
        return parse_time_zone(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    """Add the ``import`` and ``export`` commands."""
    from vagus.formats.export import EXPORT_FORMATS
    from vagus.formats.registry import FORMATS

    imp = subparsers.add_parser(
        "import",
        help="import an RR file as a session",
        description=(
            "Import an RR-interval file as a new session. The format is detected from the "
            "content where that is unambiguous; otherwise pass --format (and --unit)."
        ),
    )
    imp.add_argument("file", type=Path, metavar="FILE", help="the RR file")
    imp.add_argument("--format", choices=FORMATS, default=None, help="the file's format")
    imp.add_argument(
        "--unit", choices=("ms", "s"), default=None, help="RR unit (plain text; never guessed)"
    )
    imp.add_argument("--column", default=None, metavar="NAME", help="RR column of a CSV table")
    imp.add_argument(
        "--tz",
        type=time_zone,
        default=None,
        metavar="ZONE",
        help=(
            "time zone of the file's local (naive) times, an IANA name such as "
            "Europe/Amsterdam (default: this machine's time zone); stored as UTC"
        ),
    )
    imp.add_argument("--title", default=None, help="session title (default: the file name)")
    imp.add_argument("--participant", default=None, help="participant name (default: from file)")
    imp.add_argument(
        "--again",
        action="store_true",
        help=(
            "import a file even if the store already holds a session imported from the "
            "same content (it is refused without this: a copy counts twice in trends)"
        ),
    )
    imp.add_argument("--json", action="store_true", help="print the result as one JSON object")
    imp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_data_dir_argument(imp)
    imp.set_defaults(func=_import)

    exp = subparsers.add_parser(
        "export",
        help="export a session (kubios, csv, json, edf)",
        description=(
            "Replay a session through the pipeline and write it in a file format, one "
            "participant per file (--participant P for a session with several). Without "
            "-o the file is vagus-ID.EXT in the current folder (vagus-ID.txt for kubios; "
            "vagus-ID-P.EXT with --participant). "
            "The file is written to a temporary next to it and renamed into place: a full "
            "disk or Ctrl-C leaves an existing file as it was."
        ),
    )
    exp.add_argument(
        "session_id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)"
    )
    exp.add_argument("--format", choices=EXPORT_FORMATS, required=True, help="output format")
    exp.add_argument(
        "--participant",
        default=None,
        metavar="P",
        help=(
            "whose beats to export (a file holds one participant; needed when the "
            "session has several: a name it does not have is an error listing them)"
        ),
    )
    exp.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="PATH",
        help=(
            "output file ('-': stdout, not for edf); default: vagus-ID.EXT in the current "
            "folder (EXT: txt for kubios, csv, json, edf), ID the full session id"
        ),
    )
    exp.add_argument("--json", action="store_true", help="print the result as one JSON object")
    exp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_data_dir_argument(exp)
    exp.set_defaults(func=_export)


def file_sha256(path: Path) -> str | None:
    """SHA-256 (hex) of the bytes of the regular file ``path``, read in 1 MiB blocks;
    None for anything else (a pipe, a device, a missing or unreadable file), which is
    then never matched as a re-import."""
    import hashlib

    try:
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _refuse_reimport(store: Store, path: Path, sha256: str) -> None:
    """InvalidInput naming the sessions already imported from a file with these bytes."""
    from vagus.cli.sessions import local_time

    earlier = store.find_imports(sha256)
    if not earlier:
        return
    first = earlier[0]
    also = f" (and {len(earlier) - 1} more)" if len(earlier) > 1 else ""
    raise InvalidInput(
        f"{path} was already imported as session {first.id}{also} "
        f"({local_time(first.started_unix_s)}, {first.title!r}): the same bytes "
        f"(SHA-256 {sha256[:12]}...), so a second copy would count twice in `vagus "
        f"progress`. `vagus show {first.id}` shows it; add --again to import it anyway"
    )


def import_file(
    store: Store,
    path: Path,
    *,
    fmt: str | None = None,
    unit: str | None = None,
    column: str | None = None,
    tz: dt.tzinfo | None = None,
    title: str | None = None,
    participant: str | None = None,
    progress: ProgressBar | None = None,
    again: bool = False,
) -> dict[str, Any]:
    """Parse ``path`` fully, then store it as one session in one transaction.

    A file whose bytes (SHA-256, :func:`file_sha256`) were imported before into this
    store is refused with InvalidInput naming that session, unless ``again``; the hash
    is stored with the session. Sessions imported before hashes were kept never match.

    ``tz``: the zone of naive local times in the file (None: this machine's). The title,
    device profile and end time come from the file where it names them (a vagus JSON
    export), else the title is the file name.

    Returns a dict with the session ``id``, ``format``, ``beats``, ``gaps``, ``markers``,
    ``duration_s`` and the ``summary``. The session, its records, summary and end are
    written in one transaction (:meth:`~vagus.store.base.Store.import_session`): when
    parsing or storing fails, or the process is killed, nothing is stored.
    """
    from vagus.core.events import Marker
    from vagus.formats.registry import open_rr_file
    from vagus.session import check_participant_name
    from vagus.store.recorder import SessionSummaries
    from vagus.store.replay import replay_records

    sha256 = file_sha256(path)
    if sha256 is not None and not again:
        _refuse_reimport(store, path, sha256)
    # A plain RR list is streamed: its records are read from the file as they are used.
    imported = open_rr_file(path, fmt, unit=unit, column=column, tz=tz)
    who = participant or imported.participant or "me"
    try:
        check_participant_name(who)  # the name a live session would accept
    except InvalidInput as exc:
        if participant:
            raise InvalidInput(f"--participant: {exc}") from None
        raise InvalidInput(
            f"the participant named in {path.name} cannot name a participant ({exc}); "
            "name one with --participant NAME"
        ) from None
    records = imported.records(participant=who)
    # Run the pipeline before storing: the summary, and a last check of every value.
    summary = SessionSummaries((who,))
    for step in replay_records(records, {who: who}):
        summary.add_step(step)
        if progress is not None and step.index >= 0:
            progress.update(step.index + 1, len(records))
    stats = summary.as_dict(len(records))
    started = imported.started_unix_s if imported.started_unix_s is not None else time.time()
    ended = (
        imported.ended_unix_s
        if imported.ended_unix_s is not None
        else started + imported.duration_s
    )
    info = store.import_session(
        records,
        title=title if title is not None else (imported.title or path.name),
        participants=(who,),
        device_profile=imported.device_profile or "generic",
        source=f"import:{imported.format}",
        started_unix_s=started,
        ended_unix_s=ended,
        notes=imported.notes,
        tags=imported.tags,
        summary=stats,
        content_sha256=sha256,
        unique_content=not again,
    )
    return {
        "id": info.id,
        "file": str(path),
        "format": imported.format,
        "beats": imported.beats,
        "gaps": len(imported.breaks),
        "markers": sum(isinstance(m, Marker) for m in imported.markers),
        "duration_s": imported.duration_s,
        "started_unix_s": started,
        "content_sha256": sha256,
        "summary": stats,
    }


def _import(args: argparse.Namespace) -> int:
    from vagus.store.open import open_store

    progress = ProgressBar(f"import {args.file.name}", enabled=not args.quiet)
    from vagus.cli.sessions import refuse_malformed

    store = open_store(args.data_dir)
    try:
        refuse_malformed(store, "import")
        result = import_file(
            store,
            args.file,
            fmt=args.format,
            unit=args.unit,
            column=args.column,
            tz=args.tz,
            title=args.title,
            participant=args.participant,
            progress=progress,
            again=args.again,
        )
    finally:
        progress.finish()
        store.close()
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        s = result["summary"]
        rmssd = s.get("rmssd_ms")
        print(
            f"imported {result['file']} ({result['format']}) as session {result['id']}: "
            f"{result['beats']} beats, {result['duration_s'] / 60:.1f} min, "
            f"{result['gaps']} gap(s)" + (f", RMSSD {rmssd:.1f} ms" if rmssd is not None else "")
        )
    return 0


def export_session(
    store: Store,
    session_id: str,
    fmt: str,
    output: str | None,
    *,
    participant: str | None = None,
    progress: ProgressBar | None = None,
) -> dict[str, Any]:
    """Replay one participant of the session and write it in ``fmt`` to ``output`` (see
    the module doc); ``participant`` None: the session's only one."""
    from vagus.files import atomic_write, check_target
    from vagus.formats import export as ex

    if fmt == "edf" and output == "-":
        raise InvalidInput("EDF+ is binary: give a file with -o, not '-'")
    if output is not None and output != "-":
        check_target(output)  # a missing folder or a directory: say so before replaying
    run = ex.run_session(
        store,
        session_id,
        progress.update if progress is not None else None,
        keep_input=fmt == "json",
        participant=participant,
    )
    if not run.measured_rr()[1]:
        raise InvalidInput(
            f"session {run.info.id} has no beats: nothing to export "
            "(`vagus show` lists what it holds; `vagus delete` removes it)"
        )
    if output is not None:
        path = output
    elif participant is None:
        path = f"vagus-{run.info.id}.{_EXTENSIONS[fmt]}"
    else:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in participant)
        path = f"vagus-{run.info.id}-{safe}.{_EXTENSIONS[fmt]}"
    # Every file is written to a temporary next to it and renamed into place
    # (vagus.files): a full disk or Ctrl-C leaves the target as it was.
    if fmt == "edf":
        n = ex.write_edf(run, path)
        what = f"{n} annotations"
    else:
        writers = {"kubios": ex.write_kubios_rr, "csv": ex.write_csv, "json": ex.write_json}
        unit = {"kubios": "beats", "csv": "rows", "json": "events"}[fmt]
        if path == "-":
            n = writers[fmt](run, sys.stdout)
        else:
            with atomic_write(path, newline="") as out:
                n = writers[fmt](run, out)
        what = f"{n} {unit}"
    return {
        "id": run.info.id,
        "participant": run.participant,
        "format": fmt,
        "path": path,
        "written": what,
    }


def _export(args: argparse.Namespace) -> int:
    from vagus.cli.sessions import note_read_only
    from vagus.store.open import open_store

    progress = ProgressBar(f"export {args.session_id}", enabled=not args.quiet)
    store = open_store(args.data_dir, create=False)  # read-only where it cannot be written
    note_read_only(store, "export")
    try:
        result = export_session(
            store,
            args.session_id,
            args.format,
            args.output,
            participant=args.participant,
            progress=progress,
        )
    except BrokenPipeError:  # `vagus export ID --format csv -o - | head`: the reader left
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0
    finally:
        progress.finish()
        store.close()
    if args.json:
        print(json.dumps(result))
    elif result["path"] != "-":
        print(
            f"exported session {result['id']} ({result['format']}, {result['written']}) "
            f"to {result['path']}"
        )
    return 0
