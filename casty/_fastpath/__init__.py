"""casty's hot paths: compiled (Cython) when available, else their pure-Python twins.

The choice is made once, at import. ``CASTY_NO_EXTENSIONS=1`` forces the pure twins.
``COMPILED`` is True exactly when every compiled module is the one in use;
``IMPLEMENTATION`` is ``"compiled"``, ``"pure"`` or ``"mixed"`` (a partial build).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "COMPILED",
    "IMPLEMENTATION",
    "KIND_CALL",
    "KIND_DICT",
    "KIND_SLOTS",
    "KIND_TUPLE",
    "MAX_DEMAND",
    "ConsumerWindow",
    "EnvelopeReader",
    "EnvelopeWriter",
    "FrameDecoder",
    "FrameEncoder",
    "MailboxRunner",
    "MessageReader",
    "ProducerLedger",
    "RecordBuilder",
    "RunWriter",
    "encode_frame",
    "has_timestamp_ext",
    "modules",
]

NO_EXTENSIONS = os.environ.get("CASTY_NO_EXTENSIONS", "") not in ("", "0")


def _select(name: str) -> tuple[ModuleType, bool]:
    import importlib

    if not NO_EXTENSIONS:
        try:
            return importlib.import_module(f"casty._fastpath._{name}_c"), True
        except ImportError:
            pass
    return importlib.import_module(f"casty._fastpath._{name}_py"), False


if TYPE_CHECKING:
    from casty._fastpath._decoder_py import MessageReader
    from casty._fastpath._demand_py import MAX_DEMAND, ConsumerWindow, ProducerLedger
    from casty._fastpath._envelope_py import EnvelopeReader, EnvelopeWriter
    from casty._fastpath._frame_py import FrameDecoder, FrameEncoder, encode_frame
    from casty._fastpath._mailbox_py import MailboxRunner
    from casty._fastpath._runcodec_py import (
        KIND_CALL,
        KIND_DICT,
        KIND_SLOTS,
        KIND_TUPLE,
        RecordBuilder,
        RunWriter,
        has_timestamp_ext,
    )

    COMPILED: bool
    IMPLEMENTATION: str
    modules: dict[str, ModuleType]
else:
    modules = {}
    _compiled = []
    for _name in ("mailbox", "frame", "demand", "runcodec", "envelope", "decoder"):
        modules[_name], _flag = _select(_name)
        _compiled.append(_flag)
    COMPILED = all(_compiled)
    IMPLEMENTATION = "compiled" if COMPILED else ("mixed" if any(_compiled) else "pure")

    MailboxRunner = modules["mailbox"].MailboxRunner
    FrameEncoder = modules["frame"].FrameEncoder
    FrameDecoder = modules["frame"].FrameDecoder
    encode_frame = modules["frame"].encode_frame
    ProducerLedger = modules["demand"].ProducerLedger
    ConsumerWindow = modules["demand"].ConsumerWindow
    MAX_DEMAND = modules["demand"].MAX_DEMAND
    EnvelopeReader = modules["envelope"].EnvelopeReader
    EnvelopeWriter = modules["envelope"].EnvelopeWriter
    MessageReader = modules["decoder"].MessageReader
    RunWriter = modules["runcodec"].RunWriter
    RecordBuilder = modules["runcodec"].RecordBuilder
    has_timestamp_ext = modules["runcodec"].has_timestamp_ext
    KIND_DICT = modules["runcodec"].KIND_DICT
    KIND_SLOTS = modules["runcodec"].KIND_SLOTS
    KIND_TUPLE = modules["runcodec"].KIND_TUPLE
    KIND_CALL = modules["runcodec"].KIND_CALL
