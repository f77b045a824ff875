"""``python -m balance_manager`` runs the command line."""

from balance_manager.cli.main import main

raise SystemExit(main())
