"""casty's hot paths: compiled (Cython) when available, else their pure-Python twins.

Each fast path ``x`` exists twice: ``_x_c.pyx`` (compiled) and ``_x_py.py`` (pure Python), with
identical behaviour (tests/unit/test_twins.py drives both with the same generated operations).
Everything outside this package imports the fast paths from here, never a twin directly.

The choice is made once, at import. ``CASTY_NO_EXTENSIONS=1`` forces the pure twins (the switch
is parsed by ``_env``, which ``setup.py`` shares). ``COMPILED`` is True exactly when every
compiled module is the one in use; ``IMPLEMENTATION`` is ``"compiled"``, ``"pure"`` or
``"mixed"`` (a partial build). A compiled module built from other sources is not used: one
whose public API differs from its twin's (a stale build left beside newer Python), or whose
``.pyx`` beside it no longer has the checksum compiled into it (``_SOURCE_DIGEST``, set by
``setup.py``). When compiled modules
are missing or stale and the pure build was not asked for, one warning is logged on the
``casty`` logger, naming each and why.
"""

from __future__ import annotations

import binascii
import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from casty._fastpath._env import NO_EXTENSIONS as _NO_EXTENSIONS_VAR
from casty._fastpath._env import env_flag
from casty.errors import ConfigError

__all__ = [
    "COMPILED",
    "DONE",
    "DROP_NEW",
    "DROP_OLDEST",
    "FAST_PATHS",
    "IMPLEMENTATION",
    "KIND_CALL",
    "KIND_DICT",
    "KIND_SLOTS",
    "KIND_TUPLE",
    "MAX_DEMAND",
    "NO_EXTENSIONS",
    "REJECT",
    "ConsumerWindow",
    "Done",
    "EnvelopeReader",
    "EnvelopeWriter",
    "FrameDecoder",
    "FrameEncoder",
    "MailboxRunner",
    "MappedRecordBuilder",
    "MessageReader",
    "MessageWriter",
    "ProducerLedger",
    "RecordBuilder",
    "RecordHandler",
    "ReplySlot",
    "RunStore",
    "RunWriter",
    "SinkBuffer",
    "encode_frame",
    "has_timestamp_ext",
    "modules",
    "twins",
]

FAST_PATHS = ("mailbox", "frame", "demand", "runcodec", "decoder", "encoder", "envelope", "ask")
"""Every fast path; each has a compiled ``_<name>_c`` and a pure ``_<name>_py`` module."""

try:
    NO_EXTENSIONS = env_flag(_NO_EXTENSIONS_VAR)
except ValueError as exc:
    raise ConfigError(str(exc)) from None


def twins(name: str) -> tuple[ModuleType, ModuleType | None]:
    """Both implementations of fast path ``name``: (pure, compiled or None when not built)."""
    if name not in FAST_PATHS:
        raise ValueError(f"unknown fast path {name!r}; known: {', '.join(FAST_PATHS)}")
    pure = importlib.import_module(f"casty._fastpath._{name}_py")
    try:
        compiled: ModuleType | None = importlib.import_module(f"casty._fastpath._{name}_c")
    except ImportError:
        compiled = None
    return pure, compiled


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _differs(pure: ModuleType, compiled: ModuleType) -> str | None:
    """How ``compiled`` differs from its twin's public API (None: it does not): a compiled
    module built from other sources than the Python beside it (a stale build) would otherwise
    fail later, at the first use of what it lacks."""
    names = getattr(pure, "__all__", ())
    if getattr(compiled, "__all__", None) != names:
        return "its names differ from its twin's"
    for name in names:
        mine, theirs = getattr(pure, name), getattr(compiled, name, None)
        if isinstance(mine, type):
            if not isinstance(theirs, type):
                return f"{name} is not a class"
            odd = _public(mine) ^ _public(theirs)
            if odd:
                return f"{name} differs in {', '.join(sorted(odd))}"
    return None


def _source_changed(name: str, compiled: ModuleType) -> str | None:
    """Why ``compiled`` was built from other sources than the ``.pyx`` beside it (None: it was
    not, or nothing tells: no digest compiled in, no ``.pyx`` installed)."""
    built = getattr(compiled, "_SOURCE_DIGEST", "")
    where = getattr(compiled, "__file__", None)
    if not built or not where:
        return None
    pyx = Path(where).with_name(f"_{name}_c.pyx")
    try:
        source = pyx.read_bytes()
    except OSError:
        return None
    if f"{binascii.crc32(source):08x}" != built:
        return f"{pyx.name} changed since it was built"
    return None


def _select(name: str) -> tuple[ModuleType, str | None]:
    """The module to use for ``name`` and, when the compiled one is missing or stale, why."""
    pure = importlib.import_module(f"casty._fastpath._{name}_py")
    if NO_EXTENSIONS:
        return pure, None
    try:
        compiled = importlib.import_module(f"casty._fastpath._{name}_c")
    except ImportError as exc:
        # "not found" is the usual case (no compiler at install); anything else (built for
        # another Python, a missing symbol) is worth its own words in the warning.
        return pure, "not built" if isinstance(exc, ModuleNotFoundError) else str(exc)
    differs = _differs(pure, compiled) or _source_changed(name, compiled)
    if differs is not None:
        return pure, f"built from other sources, {differs}; rebuild it"
    return compiled, None


def _warn_fallback(missing: dict[str, str]) -> None:
    details = ", ".join(name if why == "not built" else f"{name} ({why})" for name, why in missing.items())
    logging.getLogger("casty").warning(
        "casty: compiled fast paths missing (%s); running the pure-Python twins, about 2x slower for a "
        "local tell. Reinstall with a C compiler and CASTY_REQUIRE_EXTENSIONS=1 to make a failed build an "
        "error, or set CASTY_NO_EXTENSIONS=1 to choose the pure build knowingly.",
        details,
    )


if TYPE_CHECKING:
    from casty._fastpath._ask_py import ReplySlot
    from casty._fastpath._decoder_py import MessageReader
    from casty._fastpath._demand_py import DONE, MAX_DEMAND, ConsumerWindow, Done, ProducerLedger, RunStore, SinkBuffer
    from casty._fastpath._encoder_py import MessageWriter, RecordHandler
    from casty._fastpath._envelope_py import EnvelopeReader, EnvelopeWriter
    from casty._fastpath._frame_py import FrameDecoder, FrameEncoder, encode_frame
    from casty._fastpath._mailbox_py import DROP_NEW, DROP_OLDEST, REJECT, MailboxRunner
    from casty._fastpath._runcodec_py import (
        KIND_CALL,
        KIND_DICT,
        KIND_SLOTS,
        KIND_TUPLE,
        MappedRecordBuilder,
        RecordBuilder,
        RunWriter,
        has_timestamp_ext,
    )

    COMPILED: bool
    IMPLEMENTATION: Literal["compiled", "pure", "mixed"]
    modules: dict[str, ModuleType]
else:
    modules = {}
    _missing = {}
    for _name in FAST_PATHS:
        modules[_name], _why = _select(_name)
        if _why is not None:
            _missing[_name] = _why
    _n_compiled = sum(m.__name__.endswith("_c") for m in modules.values())
    COMPILED = _n_compiled == len(FAST_PATHS)
    IMPLEMENTATION = "compiled" if COMPILED else ("mixed" if _n_compiled else "pure")
    if _missing:
        _warn_fallback(_missing)

    MailboxRunner = modules["mailbox"].MailboxRunner
    DROP_NEW = modules["mailbox"].DROP_NEW
    DROP_OLDEST = modules["mailbox"].DROP_OLDEST
    REJECT = modules["mailbox"].REJECT
    FrameEncoder = modules["frame"].FrameEncoder
    FrameDecoder = modules["frame"].FrameDecoder
    encode_frame = modules["frame"].encode_frame
    ProducerLedger = modules["demand"].ProducerLedger
    ConsumerWindow = modules["demand"].ConsumerWindow
    MAX_DEMAND = modules["demand"].MAX_DEMAND
    SinkBuffer = modules["demand"].SinkBuffer
    RunStore = modules["demand"].RunStore
    Done = modules["demand"].Done
    DONE = modules["demand"].DONE
    RunWriter = modules["runcodec"].RunWriter
    RecordBuilder = modules["runcodec"].RecordBuilder
    MappedRecordBuilder = modules["runcodec"].MappedRecordBuilder
    has_timestamp_ext = modules["runcodec"].has_timestamp_ext
    KIND_DICT = modules["runcodec"].KIND_DICT
    KIND_SLOTS = modules["runcodec"].KIND_SLOTS
    KIND_TUPLE = modules["runcodec"].KIND_TUPLE
    KIND_CALL = modules["runcodec"].KIND_CALL
    MessageReader = modules["decoder"].MessageReader
    MessageWriter = modules["encoder"].MessageWriter
    RecordHandler = modules["encoder"].RecordHandler
    EnvelopeReader = modules["envelope"].EnvelopeReader
    EnvelopeWriter = modules["envelope"].EnvelopeWriter
    ReplySlot = modules["ask"].ReplySlot
