"""Benchmarks behind ``vagus bench <name>``: each module exposes ``add_arguments(parser)`` and
``run(args) -> int`` and prints its figures (speed targets live here, not in timed tests).

The pipeline and replay benches run on the same default record, found by
:func:`find_default_record`.
"""

from __future__ import annotations

from pathlib import Path

from vagus.exceptions import InvalidInput

__all__ = ["DEFAULT_RECORD", "find_default_record"]

#: The default benchmark record (PhysioNet nsr2db nsr001, a 24 h Holter RR record in
#: seconds whose first line is the time of the first beat), relative to a search root.
DEFAULT_RECORD = Path("shared") / "data" / "physionet_nsr2db" / "nsr001_rr_secs.txt"


def _search_roots() -> list[Path]:
    """Where :data:`DEFAULT_RECORD` may live: beside the current directory (the
    repository's parent), in it, or above this installed package."""
    here = Path(__file__).resolve()
    return [Path.cwd().parent, Path.cwd(), *here.parents]


def find_default_record(bench: str) -> Path:
    """The default record for ``vagus bench <bench>``.

    Raises:
        InvalidInput: it is nowhere to be found; the message says how to pass a path.
    """
    for root in _search_roots():
        candidate = root / DEFAULT_RECORD
        if candidate.is_file():
            return candidate
    raise InvalidInput(
        f"no benchmark record found (looked for ../{DEFAULT_RECORD}); pass its path: "
        f"vagus bench {bench} PATH"
    )
