"""Benchmarks behind ``vagus bench <name>``: each module exposes ``add_arguments(parser)`` and
``run(args) -> int`` and prints its figures (speed targets live here, not in timed tests)."""
