"""``python -m etl``: the ``etl`` command, for where its script is not on the PATH."""

from etl.cli.main import main

raise SystemExit(main())
