"""Messages to msgpack with casty's ext codes, the hot half (pure twin of ``_encoder_c``; same
behaviour and bytes).

:class:`MessageWriter` owns one connection direction's packer and is its ``default`` hook: a
value msgpack cannot pack natively goes to the handler of its class in ``handlers`` (the serde
encoder's table, which it extends as it learns classes), a class without one to ``learn(obj)``.
An actor ref (of class ``ref_type`` exactly) is encoded here: its URI and incarnation come from
``wire_prefix(address)`` when that hook is set (``(prefix, incarnation)``: the URI is the prefix
and the ref's path, the incarnation None for "the ref's own ``uid``"; cached per address), else
from ``ref_to_wire(ref)`` and ``incarnation_of(ref)``. A short-lived ref (a URI containing
``/temp/``) is sent inline and never given an id; a known one is its mark in ``refs`` (keyed by
``(uri, incarnation)``); a new one is defined by ``define_ref(uri, incarnation)``.

:class:`RecordHandler` is the handler of a record class: ``[mark, *field values]``.

:meth:`MessageWriter.encode` packs one message. When packing fails, or the message is longer
than ``max_size``, it calls ``failed(obj, error, types_before, refs_before)`` with the lengths
``learned`` and ``ref_order`` had before the call; ``failed`` rolls the tables back and raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import attrgetter
from struct import Struct
from typing import Any, NoReturn

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty.errors import FrameTooLarge, SerializationError

__all__ = ["MessageWriter", "RecordHandler"]

_EXT_REF_INLINE = 10
_EXT_REF_INLINE_INC = 12

_U64_END = 1 << 64
_pack_u64 = Struct(">Q").pack
#: an ExtType without the checks of ExtType.__new__ (code and data are known to be valid)
_new_ext: Callable[[tuple[int, bytes]], Any] = functools.partial(tuple.__new__, msgpack.ExtType)
#: addresses whose wire prefix a writer remembers before it starts over
_PREFIX_LIMIT = 1024


class RecordHandler:
    """``[mark, *values of names]`` for a record: the handler of one record class."""

    __slots__ = ("_get", "mark", "names")

    def __init__(self, mark: object, names: tuple[str, ...]) -> None:
        if type(names) is not tuple or not all(type(n) is str for n in names):
            raise TypeError("names must be a tuple of str")
        self.mark = mark
        self.names = names
        self._get = attrgetter(*names) if names else None

    def __call__(self, obj: object) -> list[Any]:
        get = self._get
        if get is None:
            return [self.mark]
        if len(self.names) == 1:
            return [self.mark, get(obj)]
        return [self.mark, *get(obj)]


class MessageWriter:
    """Packs the messages of one connection direction."""

    __slots__ = (
        "_define_ref",
        "_failed",
        "_handlers",
        "_learn",
        "_learned",
        "_packer",
        "_prefixes",
        "_ref_order",
        "_ref_to_wire",
        "_ref_type",
        "_refs",
        "incarnation_of",
        "max_size",
        "wire_prefix",
    )

    def __init__(
        self,
        handlers: dict[type, Callable[[Any], Any]],
        learn: Callable[[Any], Any],
        ref_type: type,
        refs: dict[tuple[str, int], Any],
        define_ref: Callable[[Any, Any], Any],
        ref_to_wire: Callable[[Any], Any],
        incarnation_of: Callable[[Any], Any],
        learned: list[Any],
        ref_order: list[Any],
        failed: Callable[[object, BaseException, int, int], NoReturn],
    ) -> None:
        if type(handlers) is not dict or type(refs) is not dict:
            raise TypeError("handlers and refs must be dicts")
        if type(learned) is not list or type(ref_order) is not list:
            raise TypeError("learned and ref_order must be lists")
        self._handlers = handlers
        self._learn = learn
        self._ref_type = ref_type
        self._refs = refs
        self._define_ref = define_ref
        self._ref_to_wire = ref_to_wire
        self._learned = learned
        self._ref_order = ref_order
        self._failed = failed
        self._prefixes: dict[Any, tuple[str, int | None]] = {}
        #: a message longer than this (in bytes) is refused with FrameTooLarge
        self.max_size: int = 0xFFFFFFFF
        #: a ref's incarnation, when ``wire_prefix`` is not set
        self.incarnation_of = incarnation_of
        #: ``wire_prefix(address) -> (prefix, incarnation or None)``, or None
        self.wire_prefix: Callable[[Any], tuple[str, int | None]] | None = None
        self._packer = msgpack.Packer(default=self.default, strict_types=True, use_bin_type=True, autoreset=True)

    def default(self, obj: Any) -> Any:
        """The packer's hook for a value it cannot pack natively."""
        cls = type(obj)
        if cls is self._ref_type:
            return self.encode_ref(obj)
        handler = self._handlers.get(cls)
        if handler is None:
            return self._learn(obj)
        return handler(obj)

    def encode_ref(self, ref: Any) -> Any:
        """An actor ref's wire form (an ext value)."""
        wire_prefix = self.wire_prefix
        if wire_prefix is not None:
            address = ref.system_address
            known = self._prefixes.get(address)
            if known is None:
                known = wire_prefix(address)
                if type(known) is not tuple or len(known) != 2 or type(known[0]) is not str:
                    raise SerializationError(f"wire_prefix returned {known!r}, not (str, incarnation)")
                if len(self._prefixes) >= _PREFIX_LIMIT:
                    self._prefixes.clear()
                self._prefixes[address] = known
            uri: Any = known[0] + ref.path
            incarnation: Any = known[1]
            if incarnation is None:
                incarnation = ref.uid
        else:
            uri = self._ref_to_wire(ref)
            incarnation = self.incarnation_of(ref)
        if type(uri) is str and "/temp/" in uri:
            # short-lived (an ask's reply, a probe): sent in full, so the tables of a
            # long-lived connection do not grow with every ask
            if type(incarnation) is int and 0 < incarnation < _U64_END:
                return _new_ext((_EXT_REF_INLINE_INC, _pack_u64(incarnation) + uri.encode("utf-8")))
            if type(incarnation) is int and incarnation == 0:
                return _new_ext((_EXT_REF_INLINE, uri.encode("utf-8")))
            raise SerializationError(f"the incarnation of {uri} is not a 64-bit unsigned int: {incarnation!r}")
        mark = self._refs.get((uri, incarnation))
        if mark is not None:
            return mark
        return self._define_ref(uri, incarnation)

    def encode(self, obj: object) -> bytes:
        """One message's bytes."""
        types_before = len(self._learned)
        refs_before = len(self._ref_order)
        try:
            data: bytes = self._packer.pack(obj)
        except BaseException as exc:
            self._failed(obj, exc, types_before, refs_before)
            raise  # failed() raises; this is for a failed() that returned
        if len(data) > self.max_size:
            self._failed(obj, FrameTooLarge(len(data), self.max_size), types_before, refs_before)
        return data
