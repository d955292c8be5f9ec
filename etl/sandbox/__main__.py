"""``python -m etl.sandbox``: serve the local Connect double."""

from .server import main

raise SystemExit(main())
