"""``python -m compactstore.bench``: see :mod:`compactstore.bench`."""

from compactstore.bench.cli import main

raise SystemExit(main())
