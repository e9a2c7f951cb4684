"""``vagus edit ID``: change a session's title, notes, participant or tags afterwards.

Only the session's labels change; its raw record never does. The cached summary stays
valid: titles, notes and tags do not enter it; it holds one entry per participant,
which a relabelling renames (:func:`vagus.store.recorder.relabelled_summary`). The
progress report's per-participant values are cached under the participant's name:
relabelling drops the old name's entry, and ``vagus progress`` recomputes it under the
new one.

``--participant P`` relabels the session's first (default) participant. Its records
keep the name they were recorded under (``"me"`` when recorded or imported without
``--participant``); reports and ``vagus progress`` still find them
(:func:`vagus.store.base.recorded_as`: the first participant's records are those under
its own name, else those under the one recorded name the session does not list). A
relabelling that would make them ambiguous, or hand the first participant the records
of someone else, is refused and nothing is changed.

A session being recorded may be edited: the recorder only ever writes its records, its
heartbeat and, at the end, its summary and end time, so the new labels stay. A store
that cannot be written is an error, as for ``vagus delete``; so is a store that fails
the integrity check (:func:`vagus.cli.sessions.refuse_malformed`: a session row edited
by hand into something ``vagus sessions`` calls malformed): nothing is written into it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from vagus.cli._data_dir import add_data_dir_argument
from vagus.cli.sessions import (
    json_safe,
    refuse_malformed,
    require_store,
    session_id_arg,
    session_json,
)
from vagus.exceptions import InvalidInput
from vagus.store.base import SessionInfo, Store, recorded_as
from vagus.store.recorder import relabelled_summary, session_summary

__all__ = ["register", "run_edit"]

_OPTIONS = "--title, --notes, --participant, --tag or --untag"

_EXAMPLES = """\
examples:
  vagus edit 3f2a --title "evening practice" --tag paced --tag calm
  vagus edit 3f2a --participant ann --untag test --json

Ids may be shortened to a unique prefix, as for `vagus show`. Each change is printed as
old -> new; with --json, the session after the edit (as `vagus show --json` gives it,
plus "changed").
"""


def _name(text: str) -> str:
    """argparse type for a participant or a tag: not empty (surrounding spaces dropped)."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("must not be empty")
    return name


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``edit`` to the CLI."""
    p = subparsers.add_parser(
        "edit",
        help="change a session's title, notes, participant or tags",
        description=(
            "Change a session's title, notes, participant or tags after recording or\n"
            "importing it. The raw record is never rewritten: --participant relabels the\n"
            "session's first participant, whose beats `vagus report` and `vagus progress`\n"
            "then show under the new name. A session being recorded may be edited too."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("id", metavar="ID", type=session_id_arg, help="session id (or a unique prefix)")
    p.add_argument("--title", metavar="T", help="the new title ('' clears it)")
    p.add_argument("--notes", metavar="TEXT", help="the new notes, replacing the old ('' clears)")
    p.add_argument(
        "--participant",
        metavar="P",
        type=_name,
        help="relabel the session's first (default) participant as P",
    )
    p.add_argument(
        "--tag",
        metavar="T",
        type=_name,
        action="append",
        default=[],
        help="add a tag (repeat for more; one already there is kept once)",
    )
    p.add_argument(
        "--untag",
        metavar="T",
        type=_name,
        action="append",
        default=[],
        help="remove a tag (repeat for more; a tag the session does not have is an error)",
    )
    p.add_argument("--json", action="store_true", help="print the edited session as JSON")
    add_data_dir_argument(p)
    p.set_defaults(func=lambda args: run_edit(args, p))


def _usage_error(parser: argparse.ArgumentParser | None, message: str) -> int:
    """Print a usage error as argparse does and return its exit status (2)."""
    if parser is not None:
        sys.stderr.write(parser.format_usage())
    print(f"vagus edit: error: {message}", file=sys.stderr)
    return 2


def _owner(participants: Sequence[str], names: set[str]) -> str | None:
    """The recorded name of the first participant's records (None: it has none)."""
    name = recorded_as(participants, participants[0], names)
    return name if name in names else None


def _relabelled(store: Store, info: SessionInfo, new: str) -> tuple[str, ...]:
    """The participants with the first one relabelled ``new``; raises InvalidInput if the
    first participant's records would then no longer be found under ``new``."""
    people = info.participants or ("me",)
    old = people[0]
    if new in people[1:]:
        raise InvalidInput(
            f"{new!r} is already another participant of session {info.id} "
            f"({', '.join(people)}); nothing changed"
        )
    after = (new, *people[1:])
    names = set(store.recorded_participants(info.id))
    before = _owner(people, names)
    if before is not None and _owner(after, names) != before:
        raise InvalidInput(
            f"cannot relabel {old!r} as {new!r} in session {info.id}: its records name "
            f"{', '.join(repr(n) for n in sorted(names))}, and {old!r}'s beats (recorded "
            f"as {before!r}) could then not be told from another participant's; "
            "nothing changed"
        )
    return after


def _without_trend_cache(summary: dict[str, Any], participant: str) -> dict[str, Any] | None:
    """``summary`` without the progress report's values cached for ``participant``
    (None: there are none, nothing to write)."""
    from vagus.report.progress import CACHE_KEY

    entry = summary.get(CACHE_KEY)
    per = entry.get("participants") if isinstance(entry, dict) else None
    if not isinstance(per, dict) or participant not in per:
        return None
    kept = {k: v for k, v in per.items() if k != participant}
    assert isinstance(entry, dict)
    return {**summary, CACHE_KEY: {**entry, "participants": kept}}


def run_edit(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Change the labels of one session; print what changed (or the session as JSON)."""
    adds: list[str] = list(dict.fromkeys(args.tag))
    removes: list[str] = list(dict.fromkeys(args.untag))
    if (args.title, args.notes, args.participant) == (None, None, None) and not adds + removes:
        return _usage_error(parser, f"nothing to change: give {_OPTIONS}")
    if both := [t for t in adds if t in removes]:
        return _usage_error(
            parser, f"tag {', '.join(map(repr, both))} given to both --tag and --untag"
        )

    store = require_store(args.data_dir, write=True)
    try:
        refuse_malformed(store, "edit")
        info = store.get_session(args.id)
        changes: dict[str, tuple[Any, Any]] = {}
        update: dict[str, Any] = {}
        if args.title is not None and args.title != info.title:
            changes["title"] = (info.title, args.title)
            update["title"] = args.title
        if args.notes is not None and args.notes != info.notes:
            changes["notes"] = (info.notes, args.notes)
            update["notes"] = args.notes
        if unknown := [t for t in removes if t not in info.tags]:
            have = ", ".join(map(repr, info.tags)) or "none"
            raise InvalidInput(
                f"session {info.id} has no tag {', '.join(map(repr, unknown))} "
                f"(its tags: {have}); nothing changed"
            )
        tags = [t for t in info.tags if t not in removes] + [t for t in adds if t not in info.tags]
        if tuple(tags) != info.tags:
            changes["tags"] = (list(info.tags), tags)
            update["tags"] = tags
        people = info.participants or ("me",)
        if args.participant is not None and args.participant != people[0]:
            after = _relabelled(store, info, args.participant)
            changes["participants"] = (list(people), list(after))
            update["participants"] = after
            summary = _without_trend_cache(info.summary, people[0]) or info.summary
            # The cached figures stay valid under the new label (the records are the same).
            relabelled = relabelled_summary(summary, people[0], args.participant)
            if relabelled is not None or summary is not info.summary:
                update["summary"] = relabelled if relabelled is not None else summary
        if update:
            info = store.update_session(info.id, **update)
        shown = session_summary(store, info, cache=not info.recording) if args.json else {}
    finally:
        store.close()

    if args.json:
        obj = session_json(info, shown)
        obj["changed"] = {k: {"old": old, "new": new} for k, (old, new) in changes.items()}
        print(json.dumps(json_safe(obj), allow_nan=False))
        return 0
    if not changes:
        print(f"session {info.id}: nothing changed (it already reads as asked)")
        return 0
    print(f"session {info.id}:")
    for field, (old, new) in changes.items():
        print(f"  {field}: {_show(old)} -> {_show(new)}")
    return 0


def _show(value: Any) -> str:
    """A value as JSON text, so an empty title ("") or tag list ([]) is visible."""
    return json.dumps(value, ensure_ascii=False)
