"""The one parser for casty's build and runtime switches (``CASTY_NO_EXTENSIONS`` and friends).

``setup.py`` loads this file by path, before casty is installed, so it imports nothing but the
standard library and nothing from casty.

A switch is on for ``1``, ``true``, ``yes`` or ``on`` and off when unset, empty, ``0``, ``false``,
``no`` or ``off`` (any case, surrounding spaces ignored). Any other value is a ``ValueError``
naming the variable: a typo must not silently pick the build you did not ask for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["EXPECT_COMPILED", "NO_EXTENSIONS", "REQUIRE_EXTENSIONS", "env_flag"]

NO_EXTENSIONS = "CASTY_NO_EXTENSIONS"
"""Build: compile nothing. Runtime: use the pure-Python twins even where compiled modules exist."""
REQUIRE_EXTENSIONS = "CASTY_REQUIRE_EXTENSIONS"
"""Build: a fast path that fails to compile is a build error instead of a fallback to its twin."""
EXPECT_COMPILED = "CASTY_EXPECT_COMPILED"
"""Tests: every compiled module must be the one in use."""

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the switch ``name`` is on in ``environ`` (default: the process environment)."""
    raw = (os.environ if environ is None else environ).get(name, "")
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError(f"{name}={raw!r} is not a switch value: use 1/true/yes/on or 0/false/no/off (or leave it unset)")
