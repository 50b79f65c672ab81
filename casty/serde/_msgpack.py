"""The default serializer: msgpack with per-connection type and actor-ref tables.

It is made of one module per job: ``_wire`` (the layout: ext codes, marks, id encoding),
``_encoder`` and ``_decoder`` (one of each per connection direction) and ``_records`` (how
records are read and built; the record-run codec itself and the scan refusing msgpack's
built-in timestamp ext are hot loops in ``casty._fastpath``).
This module ties them together as :class:`MsgpackSerializer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casty.actors.ref import ActorRef

from ._decoder import MsgpackDecoder
from ._encoder import MsgpackEncoder
from ._records import RecordRun
from ._registry import TypeRegistry

__all__ = ["MsgpackDecoder", "MsgpackEncoder", "MsgpackSerializer", "RecordRun"]


class MsgpackSerializer:
    """The default serializer (msgpack). ``casty.serde._wire`` describes the wire layout.

    Without ``strict``, dataclasses and enums of classes loaded in the decoding process
    travel without registration; with ``strict=True`` every such type must be registered.
    """

    __slots__ = ("_registry", "_strict")

    def __init__(self, registry: TypeRegistry | None = None, *, strict: bool = False) -> None:
        self._registry = registry if registry is not None else TypeRegistry()
        self._strict = strict

    @property
    def registry(self) -> TypeRegistry:
        """The registry consulted by every encoder and decoder made by this serializer."""
        return self._registry

    @property
    def strict(self) -> bool:
        """True when only registered types are accepted."""
        return self._strict

    def new_encoder(self, ref_to_wire: Callable[[ActorRef[Any]], str]) -> MsgpackEncoder:
        """A fresh encoder (with empty tables) for one connection direction."""
        return MsgpackEncoder(self._registry, self._strict, ref_to_wire)

    def new_decoder(self, resolve_ref: Callable[[str], ActorRef[Any]]) -> MsgpackDecoder:
        """A fresh decoder (with empty tables) for one connection direction."""
        return MsgpackDecoder(self._registry, self._strict, resolve_ref)
