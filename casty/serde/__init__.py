"""Message serialization for the wire.

A :class:`Serializer` makes one :class:`MessageEncoder` and one :class:`MessageDecoder`
per connection direction, so both may keep per-connection tables. Actor refs never travel
as objects: the encoder turns each into a URI with ``ref_to_wire`` and the decoder turns
it back with ``resolve_ref``.

:class:`MsgpackSerializer` is the default. Type names and actor URIs are sent in full only
the first time a connection uses them, then as small integer ids; from protocol version 3 on a
record type's definition also names its fields, which the receiver maps by name to its own
class (the encoder and decoder of a connection get its version as ``protocol_version``). Decoding never imports a
module and builds only dataclasses, Enum members (by value) and registered types.
:class:`PickleSerializer` is an opt-in for trusted peers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from casty.actors.ref import ActorRef

from ._msgpack import MsgpackDecoder, MsgpackEncoder, MsgpackSerializer, RecordRun
from ._pickle import PickleDecoder, PickleEncoder, PickleSerializer
from ._registry import TypeRegistry, type_name

__all__ = [
    "MessageDecoder",
    "MessageEncoder",
    "MsgpackDecoder",
    "MsgpackEncoder",
    "MsgpackSerializer",
    "PickleDecoder",
    "PickleEncoder",
    "PickleSerializer",
    "RecordRun",
    "Serializer",
    "TypeRegistry",
    "type_name",
]


@runtime_checkable
class MessageEncoder(Protocol):
    """Encodes whole messages for one connection direction.

    ``encode`` raises :class:`~casty.errors.SerializationError` for an unsupported message
    and must then leave its per-connection state as it was before the call: the failed
    bytes are never sent.
    """

    def encode(self, obj: object) -> bytes: ...


@runtime_checkable
class MessageDecoder(Protocol):
    """Decodes whole messages of one connection direction, in the order they were sent.

    ``decode`` raises :class:`~casty.errors.DeserializationError` (and nothing else) for
    bytes it refuses.
    """

    def decode(self, data: bytes) -> object: ...


@runtime_checkable
class Serializer(Protocol):
    """The plug-in protocol for whole-message serializers."""

    def new_encoder(self, ref_to_wire: Callable[[ActorRef[Any]], str]) -> MessageEncoder: ...

    def new_decoder(self, resolve_ref: Callable[[str], ActorRef[Any]]) -> MessageDecoder: ...
