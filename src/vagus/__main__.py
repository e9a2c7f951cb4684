"""``python -m vagus`` runs the command line."""

from vagus.cli import main

raise SystemExit(main())
