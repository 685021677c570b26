"""``python -m ml.phantoms``: see :mod:`ml.phantoms.cli`."""

from ml.phantoms.cli import main

raise SystemExit(main())
