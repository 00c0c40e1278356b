"""``python -m silkwatch`` runs the command line."""

from silkwatch.cli import main

raise SystemExit(main())
