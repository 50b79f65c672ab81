"""Schema evolution of record messages: from protocol 3 on, a record definition names the
sender's fields and the receiver maps them by name to its own class.

Sender and receiver each have their own class under one wire name (registered with an explicit
name in their own registry), as two releases of a program would. Every test runs on both twins
of the run codec and of the message reader.
"""

from __future__ import annotations

import dataclasses
import importlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from types import ModuleType
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest

from casty._fastpath import _decoder_py, _runcodec_py
from casty.actors.ref import ActorRef, parse_uri
from casty.errors import DeserializationError, MessageRefused, SerializationError
from casty.serde import MsgpackSerializer, RecordRun, TypeRegistry
from casty.serde import _decoder as serde_decoder
from casty.serde import _records as serde_records
from casty.serde._wire import EXT_RECORD_DEF, EXT_TYPE_DEF, RECORD_FIELDS_VERSION, pack_record_def, unpack_record_def

pytestmark = pytest.mark.timeout(60)

WIRE = "sensors:Reading"


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"casty._fastpath._{name}_c")
    except ImportError:
        return None


TWINS = [
    pytest.param((_runcodec_py, _decoder_py), id="py"),
    pytest.param(
        (_compiled("runcodec"), _compiled("decoder")),
        id="c",
        marks=pytest.mark.skipif(_compiled("runcodec") is None or _compiled("decoder") is None, reason="not compiled"),
    ),
]


@pytest.fixture(params=TWINS, autouse=True)
def twin(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """Run the serde encoder and decoder on the given twins of the run codec and the reader."""
    runcodec, decoder = request.param
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(serde_records, "RunWriter", runcodec.RunWriter)
        mp.setattr(serde_records, "RecordBuilder", runcodec.RecordBuilder)
        mp.setattr(serde_records, "MappedRecordBuilder", runcodec.MappedRecordBuilder)
        mp.setattr(serde_decoder, "has_timestamp_ext", runcodec.has_timestamp_ext)
        mp.setattr(serde_decoder, "MessageReader", decoder.MessageReader)
        mp.setattr(serde_decoder, "_TAG_CACHE", {})  # tags made by the other twin are not reused
        yield runcodec


# --------------------------------------------------------------------------- two releases of a class


@dataclass(frozen=True)
class ReadingV1:
    sensor: str
    seq: int
    value: float


@dataclass(frozen=True)
class ReadingV2:
    """V1 with the fields reordered, ``value`` removed and two fields added with defaults."""

    seq: int
    sensor: str
    unit: str = "C"
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadingNeedsUnit:
    sensor: str
    seq: int
    unit: str


@dataclass
class ReadingKw:
    sensor: str
    seq: int = 0
    unit: str = dataclasses.field(default="K", kw_only=True)


@dataclass(frozen=True, slots=True)
class ReadingSlots:
    seq: int
    sensor: str
    unit: str = "C"


class PairV1(NamedTuple):
    left: Any
    right: Any


class PairV2(NamedTuple):
    right: Any
    middle: Any = "mid"
    left: Any = None


class Colour(Enum):
    RED = 1


class Opaque:
    def __init__(self, v: int) -> None:
        self.v = v


def resolve_ref(uri: str, incarnation: int = 0) -> ActorRef[Any]:
    address, path = parse_uri(uri)
    return ActorRef(address, path, tell=lambda m: None, target=None)


def serializer(cls: type, *others: type) -> MsgpackSerializer:
    registry = TypeRegistry()
    registry.register(cls, name=WIRE)
    for other in others:
        registry.register(other)
    return MsgpackSerializer(registry)


def link(sender: type, receiver: type, version: int = RECORD_FIELDS_VERSION) -> tuple[Any, Any]:
    """An encoder with ``sender`` and a decoder with ``receiver`` under the same wire name, on a
    connection at protocol ``version``."""
    enc = serializer(sender).new_encoder(lambda r: r.uri)
    dec = serializer(receiver).new_decoder(resolve_ref)
    enc.protocol_version = version
    dec.protocol_version = version
    return enc, dec


def ext_codes(data: bytes) -> list[int]:
    codes: list[int] = []

    def hook(code: int, payload: bytes) -> Any:
        codes.append(code)
        return None

    msgpack.unpackb(data, ext_hook=hook)
    return codes


# --------------------------------------------------------------------------- the definition on the wire


def test_record_definition_names_the_senders_fields() -> None:
    enc, _ = link(ReadingV1, ReadingV1)
    data = enc.encode(ReadingV1("t", 1, 2.5))
    head = msgpack.unpackb(data, ext_hook=lambda code, payload: (code, payload))
    assert head[0] == (EXT_RECORD_DEF, pack_record_def(0, WIRE, ("sensor", "seq", "value")))
    assert unpack_record_def(head[0][1]) == (0, WIRE, ("sensor", "seq", "value"))
    # exactly: u32 id, u16 field count, (u16 length + name) per field, then the type name
    assert head[0][1] == struct.pack(">IH", 0, 3) + b"\x00\x06sensor\x00\x03seq\x00\x05value" + WIRE.encode()
    assert head[1:] == ["t", 1, 2.5]
    assert ext_codes(enc.encode(ReadingV1("t", 2, 2.5))) == [2]  # then the short id, as before


@pytest.mark.parametrize("version", [1, 2])
def test_older_versions_define_types_as_before(version: int) -> None:
    enc, dec = link(ReadingV1, ReadingV1, version)
    data = enc.encode(ReadingV1("t", 1, 2.5))
    expected = msgpack.packb([msgpack.ExtType(EXT_TYPE_DEF, struct.pack(">I", 0) + WIRE.encode()), "t", 1, 2.5])
    assert data == expected
    assert dec.decode(data) == ReadingV1("t", 1, 2.5)
    # at an older version a record definition naming fields is a protocol violation
    bad = msgpack.packb([msgpack.ExtType(EXT_RECORD_DEF, pack_record_def(1, WIRE, ("sensor",))), "x"])
    with pytest.raises(DeserializationError, match=f"protocol version {version}") as info:
        dec.decode(bad)
    assert not isinstance(info.value, MessageRefused)


def test_enums_and_custom_types_keep_their_definition() -> None:
    registry = TypeRegistry()
    registry.register(Opaque, name="x:Opaque", encode=lambda o: o.v, decode=Opaque)
    ser = MsgpackSerializer(registry)
    enc, dec = ser.new_encoder(lambda r: r.uri), ser.new_decoder(resolve_ref)
    data = enc.encode([Colour.RED, Opaque(3)])
    assert ext_codes(data) == [EXT_TYPE_DEF, EXT_TYPE_DEF]
    out = dec.decode(data)
    assert type(out) is list and out[0] is Colour.RED and out[1].v == 3


def test_same_fields_use_the_class_own_builder() -> None:
    """The common case: the sender's fields are the receiver's, and the decoder uses the very
    tag (and builder) a positional definition gets: no mapping, nothing per message."""
    enc, dec = link(ReadingV1, ReadingV1)
    assert dec.decode(enc.encode(ReadingV1("a", 1, 1.0))) == ReadingV1("a", 1, 1.0)
    tag = dec._tags[b"\x00"]
    assert tag is serde_decoder._dataclass_tag(WIRE, ReadingV1)
    assert type(tag.records) is serde_records.RecordBuilder


# --------------------------------------------------------------------------- mapping by name


def test_added_fields_take_their_defaults_and_removed_fields_are_ignored() -> None:
    enc, dec = link(ReadingV1, ReadingV2)
    first = dec.decode(enc.encode(ReadingV1("t", 7, 2.5)))
    second = dec.decode(enc.encode(ReadingV1("u", 8, 3.5)))
    assert first == ReadingV2(seq=7, sensor="t", unit="C", tags=[])
    assert second == ReadingV2(seq=8, sensor="u")
    assert type(first) is ReadingV2
    assert first.tags is not second.tags  # default_factory: a fresh list per record
    assert type(dec._tags[b"\x00"].records) is serde_records.MappedRecordBuilder


def test_extra_and_reordered_fields_map_by_name() -> None:
    enc, dec = link(ReadingV2, ReadingV1)
    with pytest.raises(DeserializationError, match=r"ReadingV1 here\): its field 'value' has no default"):
        dec.decode(enc.encode(ReadingV2(1, "s")))
    # fields of both in the other order, one extra: the extra one is ignored
    enc, dec = link(ReadingSlots, ReadingNeedsUnit)
    out = dec.decode(enc.encode(ReadingSlots(4, "s", "F")))
    assert out == ReadingNeedsUnit(sensor="s", seq=4, unit="F")
    enc, dec = link(ReadingNeedsUnit, ReadingSlots)
    built = dec.decode(enc.encode(ReadingNeedsUnit("s", 4, "F")))
    assert built == ReadingSlots(4, "s", "F") and type(built) is ReadingSlots
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.seq = 5  # type: ignore[misc]


def test_keyword_only_fields_map_by_name() -> None:
    enc, dec = link(ReadingV1, ReadingKw)
    assert dec.decode(enc.encode(ReadingV1("s", 3, 1.0))) == ReadingKw("s", 3, unit="K")
    enc, dec = link(ReadingKw, ReadingNeedsUnit)
    assert dec.decode(enc.encode(ReadingKw("s", 3, unit="F"))) == ReadingNeedsUnit("s", 3, "F")


def test_namedtuples_map_by_name() -> None:
    enc, dec = link(PairV1, PairV2)
    assert dec.decode(enc.encode(PairV1(1, 2))) == PairV2(right=2, middle="mid", left=1)
    assert type(dec.decode(enc.encode(PairV1(3, 4)))) is PairV2
    enc, dec = link(PairV2, PairV1)
    assert dec.decode(enc.encode(PairV2(right=2, middle="m", left=1))) == PairV1(1, 2)


def test_runs_of_mapped_records() -> None:
    enc, dec = link(ReadingV1, ReadingV2)
    run = [ReadingV1(f"s{i}", i, float(i)) for i in range(50)]
    for _ in range(2):  # the first run defines the type, the second uses its id
        data = enc.encode(RecordRun(run))
        built = dec.decode(data)
        assert built == [ReadingV2(seq=i, sensor=f"s{i}") for i in range(50)]
        assert all(type(r) is ReadingV2 for r in built)
        assert len({id(r.tags) for r in built}) == 50
    enc, dec = link(PairV2, PairV1)
    assert dec.decode(enc.encode(RecordRun([PairV2(1, 2, 3), PairV2(4)]))) == [PairV1(3, 1), PairV1(None, 4)]
    assert dec.decode(enc.encode(RecordRun([]))) == []


def test_mapping_is_made_once_per_class_and_sender_fields() -> None:
    tags = []
    for _ in range(3):  # three connections
        enc, dec = link(ReadingV1, ReadingV2)
        dec.decode(enc.encode([ReadingV1("a", 1, 1.0), ReadingV1("b", 2, 2.0)]))
        tags.append(dec._tags[b"\x00"])
    assert tags[0] is tags[1] is tags[2]


# --------------------------------------------------------------------------- a field that cannot be filled


def test_missing_field_without_default_refuses_the_message_only() -> None:
    enc, dec = link(ReadingV1, ReadingNeedsUnit, )
    with pytest.raises(MessageRefused) as info:
        dec.decode(enc.encode([[0, "/user/a"], ReadingV1("s", 1, 1.0)]))
    message = str(info.value)
    assert "'unit'" in message and "ReadingNeedsUnit" in message and WIRE in message
    assert info.value.type_name == WIRE
    assert info.value.value == [[0, "/user/a"], None]  # the envelope parsed: its target is known
    # the definition was learned: the next message by id is refused alike, others go through
    with pytest.raises(MessageRefused, match="'unit'"):
        dec.decode(enc.encode(ReadingV1("t", 2, 2.0)))
    with pytest.raises(MessageRefused, match="'unit'"):
        dec.decode(enc.encode(RecordRun([ReadingV1("t", 2, 2.0)] * 3)))
    assert dec.decode(enc.encode(["next", 1])) == ["next", 1]


def test_wrong_value_count_for_the_definition_is_refused() -> None:
    enc, dec = link(ReadingV1, ReadingV2)
    dec.decode(enc.encode(ReadingV1("a", 1, 1.0)))
    with pytest.raises(DeserializationError, match="2 values for the 3 fields the sender defined"):
        dec.decode(msgpack.packb([msgpack.ExtType(2, b"\x00"), "a", 1]))
    assert dec.decode(enc.encode(ReadingV1("b", 2, 2.0))) == ReadingV2(2, "b")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        struct.pack(">I", 0),
        struct.pack(">IH", 0, 1),  # a field announced and missing
        struct.pack(">IH", 0, 1) + b"\x00\x09sen",  # a field name cut short
        struct.pack(">IH", 0, 1) + b"\x00\x01a",  # no type name
        struct.pack(">IH", 0, 2) + b"\x00\x01a\x00\x01a" + WIRE.encode(),  # a field named twice
        struct.pack(">IH", 0, 1) + b"\x00\x01\xff" + WIRE.encode(),  # not UTF-8
        struct.pack(">IH", 5, 0) + WIRE.encode(),  # out of order
    ],
)
def test_malformed_record_definitions(payload: bytes) -> None:
    _, dec = link(ReadingV1, ReadingV1)
    with pytest.raises(DeserializationError) as info:
        dec.decode(msgpack.packb([msgpack.ExtType(EXT_RECORD_DEF, payload), "x"]))
    assert not isinstance(info.value, MessageRefused)  # bad bytes: the connection must close
    assert dec.known_types == 0


def test_record_definition_limits() -> None:
    with pytest.raises(ValueError):
        pack_record_def(0, WIRE, tuple(f"f{i}" for i in range(0x10000)))
    with pytest.raises(ValueError):
        pack_record_def(0, WIRE, ("x" * 0x10000,))
    big = dataclasses.make_dataclass("Big", [("x" * 0x10000, int)])
    enc = MsgpackSerializer().new_encoder(lambda r: r.uri)
    registry_name = f"{big.__module__}:{big.__qualname__}"
    assert "<locals>" not in registry_name
    with pytest.raises(SerializationError, match="cannot define"):
        enc.encode(big(1))
    assert enc.known_types == 0
