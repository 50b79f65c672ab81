"""Builds casty's Cython fast paths; the pure-Python twins are used when the build is unavailable.

CASTY_NO_EXTENSIONS=1 at build time skips compilation; CASTY_REQUIRE_EXTENSIONS=1 turns a
failed compilation into a build error instead of a silent fallback. Both switches are parsed by
casty/_fastpath/_env.py, the same parser the runtime uses, loaded here by path (casty itself is
not importable before it is built).

Wheels carry the compiled modules and the sources of the pure twins, never the generated C.
"""

from __future__ import annotations

import binascii
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
FASTPATH = HERE / "casty" / "_fastpath"


def _load_env() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_casty_build_env", FASTPATH / "_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_env = _load_env()
NO_EXTENSIONS: bool = _env.env_flag(_env.NO_EXTENSIONS)
REQUIRE: bool = _env.env_flag(_env.REQUIRE_EXTENSIONS)


DIRECTIVES = {"language_level": "3", "boundscheck": False, "wraparound": False}


class OptionalBuildExt(build_ext):
    """Compile what can be compiled; without a compiler casty still installs (pure Python).

    With Cython installed, setuptools' build_ext is Cython's, which translates each ``.pyx`` when
    its extension is built. The generated C goes to the build's temporary directory: it never
    lands in the source tree, so neither the sdist nor a wheel can pick it up.
    """

    def initialize_options(self) -> None:
        super().initialize_options()
        self.cython_c_in_temp = 1
        # the extensions are independent: compile them on every core (``--parallel`` overrides)
        self.parallel = True

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


def extensions() -> list[Extension]:
    """One extension per ``.pyx``; Cython translates them at build time (see OptionalBuildExt)."""
    if NO_EXTENSIONS:
        return []
    try:
        import Cython  # noqa: F401
    except ImportError:
        if REQUIRE:
            raise
        sys.stderr.write("casty: Cython not available; using the pure-Python fast paths\n")
        return []
    exts = []
    for pyx in sorted(FASTPATH.glob("*.pyx")):
        # the source's CRC-32, compiled in (``_SOURCE_DIGEST``): the selector sets a module aside
        # when the .pyx beside it is no longer what it was built from
        digest = f"{binascii.crc32(pyx.read_bytes()):08x}"
        ext = Extension(
            f"casty._fastpath.{pyx.stem}",
            [pyx.relative_to(HERE).as_posix()],
            define_macros=[("CASTY_SOURCE_DIGEST", f'"{digest}"')],
            depends=[(FASTPATH / "_source.pxi").relative_to(HERE).as_posix()],
        )
        ext.cython_directives = DIRECTIVES  # type: ignore[attr-defined]
        if sys.platform != "win32":
            # no DWARF debug info (the interpreter's CFLAGS ask for -g): it is a third of the
            # compile time and nothing at run time uses it; the symbols profilers read stay
            ext.extra_compile_args = ["-g0"]
        exts.append(ext)
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
