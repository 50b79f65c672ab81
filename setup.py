"""Builds casty's Cython fast paths; the pure-Python twins are used when the build is unavailable.

CASTY_NO_EXTENSIONS=1 at build time skips compilation; CASTY_REQUIRE_EXTENSIONS=1 turns a
failed compilation into a build error instead of a silent fallback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
REQUIRE = os.environ.get("CASTY_REQUIRE_EXTENSIONS") == "1"


class OptionalBuildExt(build_ext):
    """Compile what can be compiled; without a compiler casty still installs (pure Python)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine
            if REQUIRE:
                raise
            sys.stderr.write(f"casty: C extensions not built ({exc}); using the pure-Python fast paths\n")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover - depends on the machine
            if REQUIRE:
                raise
            sys.stderr.write(f"casty: {ext.name} not built ({exc}); using its pure-Python twin\n")


def extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("CASTY_NO_EXTENSIONS") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        sys.stderr.write("casty: Cython not available; using the pure-Python fast paths\n")
        return []
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "casty" / "_fastpath").glob("*.pyx"))
    return cythonize(
        sources,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
