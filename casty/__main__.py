"""``python -m casty``: the ``casty`` command (see :mod:`casty.cli`)."""

from __future__ import annotations

import sys

from casty.cli import main

sys.exit(main())
