"""``python -m casty.config [README.md]``: print the configuration reference, or refresh the
README's copy of it."""

from __future__ import annotations

import sys

from ._reference import config_reference, update_readme

if len(sys.argv) > 1:
    print("updated" if update_readme(sys.argv[1]) else "unchanged")
else:
    print(config_reference())
