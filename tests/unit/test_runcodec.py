"""The record-run codec: both implementations write the same bytes and build equal records.

Every test takes the implementation as a parameter. The serializer-level tests switch the
codec the serde modules use to the given twin, so the whole encoder and decoder run on it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casty import _fastpath
from casty._fastpath import _runcodec_py
from casty.actors.ref import ActorRef, SystemAddress, parse_uri
from casty.errors import DeserializationError, SerializationError
from casty.serde import MsgpackSerializer, RecordRun, TypeRegistry, type_name
from casty.serde import _decoder as serde_decoder
from casty.serde import _records as serde_records

pytestmark = pytest.mark.timeout(120)


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._runcodec_c")
    except ImportError:
        return None


IMPLS = [
    pytest.param(_runcodec_py, id="py"),
    pytest.param(
        _compiled(),
        id="c",
        marks=pytest.mark.skipif(_compiled() is None, reason="run codec not compiled"),
    ),
]
BOTH = [m for m in (_runcodec_py, _compiled()) if m is not None]


def test_selector_uses_the_build_it_should() -> None:
    chosen = _fastpath.modules["runcodec"]
    assert _fastpath.RunWriter is chosen.RunWriter
    assert _fastpath.RecordBuilder is chosen.RecordBuilder
    assert chosen.__name__.endswith("_c") == (_fastpath.IMPLEMENTATION == "compiled" or _fastpath.COMPILED)


# --------------------------------------------------------------------------- record classes


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    value: float
    timestamp: float
    node: str


@dataclass
class Mutable:
    a: Any
    b: Any = None


@dataclass(frozen=True, slots=True)
class SlottedFrozen:
    x: Any
    y: Any


@dataclass(slots=True)
class Slotted:
    x: Any


class Pair(NamedTuple):
    left: Any
    right: Any = "dflt"


@dataclass(frozen=True)
class Checked:
    value: Any

    def __post_init__(self) -> None:
        if self.value == "refuse":
            raise ValueError("refused value")


@dataclass(frozen=True, kw_only=True)
class KwOnly:
    p: Any
    q: Any = 0


@dataclass
class Factory:
    items: Any = field(default_factory=list)


@dataclass
class Derived:
    a: Any
    total: int = field(init=False, default=0)


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Nested:
    inner: SensorReading
    pair: Pair


RECORD_CLASSES: list[type] = [SensorReading, Mutable, SlottedFrozen, Slotted, Pair, Checked, KwOnly, Factory, Nested]


def make_ref(path: str = "/user/a", port: int = 1234) -> ActorRef[Any]:
    return ActorRef(SystemAddress("sys", "127.0.0.1", port), path, tell=lambda m: None, target=None)


def resolve_ref(uri: str) -> ActorRef[Any]:
    address, path = parse_uri(uri)
    return ActorRef(address, path, tell=lambda m: None, target=None)


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """Run the serde encoder and decoder on the given twin of the run codec."""
    module: ModuleType = request.param
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(serde_records, "RunWriter", module.RunWriter)
        mp.setattr(serde_records, "RecordBuilder", module.RecordBuilder)
        mp.setattr(serde_records, "MappedRecordBuilder", module.MappedRecordBuilder)
        mp.setattr(serde_decoder, "has_timestamp_ext", module.has_timestamp_ext)
        yield module


def pair() -> tuple[Any, Any]:
    ser = MsgpackSerializer()
    return ser.new_encoder(lambda r: r.uri), ser.new_decoder(resolve_ref)


def with_twin(module: ModuleType) -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    mp.setattr(serde_records, "RunWriter", module.RunWriter)
    mp.setattr(serde_records, "RecordBuilder", module.RecordBuilder)
    mp.setattr(serde_records, "MappedRecordBuilder", module.MappedRecordBuilder)
    mp.setattr(serde_decoder, "has_timestamp_ext", module.has_timestamp_ext)
    return mp


def exact_equal(a: Any, b: Any) -> bool:
    """Equal, of exactly the same types all the way down (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return False
        if dataclasses.is_dataclass(a):
            return exact_equal(_fields(a), _fields(b))
        return all(exact_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact_equal(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return exact_equal(_fields(a), _fields(b))
    return bool(a == b)


def _fields(obj: Any) -> list[Any]:
    return [getattr(obj, f.name) for f in dataclasses.fields(obj)]


# --------------------------------------------------------------------------- strategies

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=6),
    st.binary(max_size=12),
    st.builds(make_ref, st.sampled_from(["/user/a", "/user/b/c", "/temp/9"]), st.integers(1, 3)),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.builds(Pair, inner, inner),
        st.builds(Mutable, inner, inner),
    ),
    max_leaves=8,
)


def records_of(cls: type) -> st.SearchStrategy[Any]:
    if cls is SensorReading:
        return st.builds(
            SensorReading, st.text(max_size=8), st.floats(allow_nan=False), st.floats(), st.text(max_size=8)
        )
    if cls is Nested:
        return st.builds(Nested, records_of(SensorReading), st.builds(Pair, values, values))
    if cls is KwOnly:
        return st.builds(KwOnly, p=values, q=values)
    if cls is Factory:
        return st.builds(Factory, values)
    if cls is Checked:
        return st.builds(Checked, values.filter(lambda v: v != "refuse"))
    arity = len(cls._fields) if hasattr(cls, "_fields") else len(dataclasses.fields(cls))
    return st.tuples(*[values] * arity).map(lambda vs: cls(*vs))


runs = st.sampled_from(RECORD_CLASSES).flatmap(lambda cls: st.lists(records_of(cls), max_size=12))
mixed_runs = st.lists(st.one_of(*[records_of(c) for c in RECORD_CLASSES[:5]], values), max_size=8)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode_both(message: Any, repeat: int = 2) -> list[list[bytes]]:
    """The bytes of ``message`` sent ``repeat`` times on one connection, once per twin."""
    out: list[list[bytes]] = []
    for module in BOTH:
        mp = with_twin(module)
        try:
            enc, _ = pair()
            out.append([enc.encode(message) for _ in range(repeat)])
        finally:
            mp.undo()
    return out


def decode_with(module: ModuleType, frames: list[bytes]) -> list[Any]:
    mp = with_twin(module)
    try:
        _, dec = pair()
        return [dec.decode(data) for data in frames]
    finally:
        mp.undo()


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(runs)
def test_runs_same_bytes_and_equal_records(items: list[Any]) -> None:
    message = [[0, "/user/consumer"], RecordRun(items)]
    encoded = encode_both(message)
    assert all(e == encoded[0] for e in encoded), "the twins wrote different bytes"
    for module in BOTH:
        for decoded in decode_with(module, encoded[0]):
            assert type(decoded) is list and exact_equal(decoded[1], items)


@SETTINGS
@given(mixed_runs)
def test_mixed_runs_same_bytes_and_equal_items(items: list[Any]) -> None:
    encoded = encode_both(RecordRun(items))
    assert all(e == encoded[0] for e in encoded)
    for module in BOTH:
        for decoded in decode_with(module, encoded[0]):
            assert exact_equal(decoded, items)


@SETTINGS
@given(st.sampled_from(RECORD_CLASSES).flatmap(records_of))
def test_run_of_one_and_empty_run(one: Any) -> None:
    encoded = encode_both([RecordRun([one]), RecordRun([]), RecordRun([one, one])])
    assert all(e == encoded[0] for e in encoded)
    for module in BOTH:
        for decoded in decode_with(module, encoded[0]):
            assert exact_equal(decoded, [[one], [], [one, one]])


def test_sensor_reading_run_is_column_wise(impl: ModuleType) -> None:
    enc, dec = pair()
    run = [SensorReading("temp-1", float(i), 1.7e9 + i, "node-a") for i in range(1024)]
    first = enc.encode(RecordRun(run))
    second = enc.encode(RecordRun(run))
    head = msgpack.unpackb(second, ext_hook=lambda code, data: (code, data))
    assert head[:3] == [(9, b""), (2, b"\x00"), 1024]
    assert len(head) == 3 + 4 * 1024
    assert dec.decode(first) == run
    built = dec.decode(second)
    assert built == run and all(type(r) is SensorReading for r in built)
    # a frozen dataclass built without its __init__ is still frozen and hashes like one built normally
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].value = 1.0  # type: ignore[misc]
    assert hash(built[5]) == hash(run[5])


def test_records_built_like_their_constructor(impl: ModuleType) -> None:
    enc, dec = pair()
    cases: list[list[Any]] = [
        [SlottedFrozen(1, (2, 3)), SlottedFrozen("a", None)],
        [Slotted([1]), Slotted({"k": b"v"})],
        [Pair(1), Pair(2, 3)],
        [Derived(4), Derived(5)],
        [KwOnly(p=1), KwOnly(p=2, q=3)],
        [Factory(), Factory([1, 2])],
    ]
    for run in cases:
        out = dec.decode(enc.encode(RecordRun(run)))
        assert exact_equal(out, run)
        for built, original in zip(out, run, strict=True):
            assert type(built) is type(original)
            if hasattr(original, "__dict__"):
                assert vars(built) == vars(original)
    assert dec.decode(enc.encode(RecordRun([Checked(2)]))) == [Checked(2)]


# --------------------------------------------------------------------------- the twins directly


@SETTINGS
@given(st.sampled_from(RECORD_CLASSES).flatmap(lambda cls: st.lists(records_of(cls), min_size=1, max_size=8)))
def test_writers_give_the_same_flat_lists(items: list[Any]) -> None:
    cls = type(items[0])
    names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else cls._fields
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init) if dataclasses.is_dataclass(cls) else names
    by_index = not dataclasses.is_dataclass(cls)
    flats = [m.RunWriter(cls, names, "RUN", "TAG", by_index).flatten(list(items)) for m in BOTH]
    assert all(exact_equal(f, flats[0]) for f in flats)
    assert flats[0][:3] == ["RUN", "TAG", len(items)]
    # a run holding another class is refused by every writer alike
    assert all(m.RunWriter(cls, names, "RUN", "TAG", by_index).flatten([*items, 1]) is None for m in BOTH)


@pytest.mark.parametrize("module", IMPLS)
def test_writer_and_builder_refuse_bad_arguments(module: ModuleType) -> None:
    with pytest.raises(TypeError):
        module.RunWriter("not a class", ("a",), 1, 2)
    with pytest.raises(ValueError):
        module.RunWriter(SensorReading, (), 1, 2)
    with pytest.raises(TypeError):
        module.RunWriter(SensorReading, ["sensor"], 1, 2)
    with pytest.raises(TypeError):
        module.RunWriter(SensorReading, ("sensor",), 1, 2, True)  # by index needs a tuple class
    with pytest.raises(TypeError):
        module.RunWriter(SensorReading, ("sensor",), 1, 2).flatten((SensorReading("a", 1, 2, "b"),))
    with pytest.raises(AttributeError):
        module.RunWriter(SensorReading, ("nope",), 1, 2).flatten([SensorReading("a", 1, 2, "b")])
    with pytest.raises(ValueError):
        module.RecordBuilder(SensorReading, ("a",), 2, module.KIND_CALL)
    with pytest.raises(ValueError):
        module.RecordBuilder(SensorReading, ("a",), 1, 99)
    with pytest.raises(ValueError):
        module.RecordBuilder(SensorReading, ("a", "b"), 1, module.KIND_DICT)
    with pytest.raises(TypeError):
        module.RecordBuilder(SensorReading, ("a",), 1, module.KIND_TUPLE)
    builder = module.RecordBuilder(SensorReading, ("sensor", "value", "timestamp", "node"), 4, module.KIND_DICT)
    assert builder.arity == 4 and builder.kind == module.KIND_DICT and builder.record_class is SensorReading
    values = ["s", 1.0, 2.0, "n", "t", 3.0, 4.0, "m"]
    assert builder.run(values, 0, 2) == [SensorReading("s", 1.0, 2.0, "n"), SensorReading("t", 3.0, 4.0, "m")]
    assert builder.run(values, 4, 1) == [SensorReading("t", 3.0, 4.0, "m")]
    assert builder.run(values, 8, 0) == []
    for start, count in ((0, 3), (-1, 1), (1, 2), (9, 0), (0, -1)):
        with pytest.raises(ValueError):
            builder.run(values, start, count)
    with pytest.raises(TypeError):
        builder.run(tuple(values), 0, 1)
    with pytest.raises(TypeError):
        builder.run(values, 0.0, 1)
    with pytest.raises(TypeError):
        builder.make(("s", 1.0, 2.0, "n"))
    with pytest.raises(TypeError):
        builder.build([])
    assert builder.build([None, "s", 1.0, 2.0, "n"]) == SensorReading("s", 1.0, 2.0, "n")
    with pytest.raises(TypeError):
        builder.build([None, "s"])  # too few values: the constructor refuses
    empty = module.RecordBuilder(Empty, (), 0, module.KIND_DICT)
    with pytest.raises(ValueError):
        empty.run([1, 2, 3], 3, 1_000_000_000)  # a record without fields never travels in a run
    assert empty.make([]) == Empty()
    pairs = module.RecordBuilder(Pair, ("left", "right"), 2, module.KIND_TUPLE)
    assert pairs.build([None, 1]) == Pair(1)  # the NamedTuple's default fills the missing field
    assert pairs.run([1, 2, 3, 4], 0, 2) == [Pair(1, 2), Pair(3, 4)]
    assert all(type(p) is Pair for p in pairs.run([1, 2, 3, 4], 0, 2))


def test_record_kinds() -> None:
    kinds = {cls: serde_records.record_kind(cls) for cls in [*RECORD_CLASSES, Derived, Empty]}
    assert kinds[SensorReading] == kinds[Mutable] == kinds[Nested] == _fastpath.KIND_DICT
    assert kinds[SlottedFrozen] == kinds[Slotted] == _fastpath.KIND_SLOTS
    assert kinds[Pair] == _fastpath.KIND_TUPLE
    assert kinds[Checked] == kinds[KwOnly] == kinds[Factory] == kinds[Derived] == _fastpath.KIND_CALL

    @dataclass
    class CustomSetattr:
        a: int

        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, value * 2)

    class Sub(Pair):
        def __new__(cls, left: Any, right: Any = "x") -> Sub:
            return super().__new__(cls, left, right)

    class Shadowed(SensorReading):
        @property
        def value(self) -> float:  # type: ignore[override]
            return 0.0

    assert serde_records.record_kind(CustomSetattr) == _fastpath.KIND_CALL
    assert serde_records.record_kind(Sub) == _fastpath.KIND_CALL
    assert serde_records.record_kind(Shadowed) == _fastpath.KIND_CALL


# --------------------------------------------------------------------------- refusals


def _run_frame(type_ext: Any, count: Any, *fields: Any) -> bytes:
    return msgpack.packb([msgpack.ExtType(9, b""), type_ext, count, *fields])


def _type_def(ident: int, cls: type) -> Any:
    return msgpack.ExtType(1, struct.pack(">I", ident) + type_name(cls).encode())


def test_malformed_runs_only_deserialization_error(impl: ModuleType) -> None:
    _, dec = pair()
    good = _run_frame(_type_def(0, SensorReading), 1, "s", 1.0, 2.0, "n")
    assert dec.decode(good) == [SensorReading("s", 1.0, 2.0, "n")]
    ref0 = msgpack.ExtType(2, b"\x00")
    for bad in (
        _run_frame(ref0, 2, "s", 1.0, 2.0, "n"),  # fewer values than the count says
        _run_frame(ref0, 0, "s", 1.0, 2.0, "n"),  # more values than the count says
        _run_frame(ref0, -1),
        _run_frame(ref0, 2**40),
        _run_frame(ref0, "1", "s", 1.0, 2.0, "n"),
        _run_frame(ref0, 1.0, "s", 1.0, 2.0, "n"),
        _run_frame("no tag", 1, "s", 1.0, 2.0, "n"),
        msgpack.packb([msgpack.ExtType(9, b"")]),
        msgpack.packb([msgpack.ExtType(9, b""), ref0]),
        _run_frame(_type_def(1, Empty), 1_000_000),  # no fields: never a run, however long
        _run_frame(_type_def(2, Checked), 1, "refuse"),
        _run_frame(_type_def(3, KwOnly), 1, 1),  # the constructor of a keyword-only record wants both
    ):
        with pytest.raises(DeserializationError):
            dec.decode(bad)
    assert dec.decode(_run_frame(ref0, 1, "t", 3.0, 4.0, "m")) == [SensorReading("t", 3.0, 4.0, "m")]


@SETTINGS
@given(runs.filter(bool), st.data())
def test_truncated_runs_only_deserialization_error(items: list[Any], data: st.DataObject) -> None:
    encoded = encode_both([[0, "/user/x"], RecordRun(items)], repeat=1)[0][0]
    cut = data.draw(st.integers(0, len(encoded) - 1))
    outcomes = []
    for module in BOTH:
        mp = with_twin(module)
        try:
            _, dec = pair()
            with pytest.raises(DeserializationError) as info:
                dec.decode(encoded[:cut])
            outcomes.append(type(info.value))
        finally:
            mp.undo()
    assert len(set(outcomes)) == 1


def test_failed_encode_of_a_run_rolls_back(impl: ModuleType) -> None:
    enc, dec = pair()
    with pytest.raises(SerializationError):
        enc.encode(RecordRun([SensorReading("a", 1.0, 2.0, "n"), SensorReading("b", lambda: 0, 2.0, "n")]))  # type: ignore[arg-type]
    assert dec.decode(enc.encode(RecordRun([SensorReading("c", 3.0, 4.0, "m")]))) == [SensorReading("c", 3.0, 4.0, "m")]


# --------------------------------------------------------------------------- the timestamp scan


def _timestamp_headers() -> list[bytes]:
    out = []
    for payload in (bytes(4), bytes(8), bytes(12)):
        n = len(payload)
        if n in (4, 8):
            out.append((b"\xd6" if n == 4 else b"\xd7") + b"\xff" + payload)
        out.append(b"\xc7" + bytes([n]) + b"\xff" + payload)
        out.append(b"\xc8" + n.to_bytes(2, "big") + b"\xff" + payload)
        out.append(b"\xc9" + n.to_bytes(4, "big") + b"\xff" + payload)
    return out


@pytest.mark.parametrize("module", IMPLS)
def test_every_timestamp_form_is_found(module: ModuleType) -> None:
    for header in _timestamp_headers():
        msgpack.unpackb(header)  # msgpack accepts each of them as a timestamp
        for data in (header, b"\x92\x01" + header, b"\x81\xa1k" + header):
            assert module.has_timestamp_ext(data), data


@pytest.mark.parametrize("module", IMPLS)
def test_timestamp_lookalikes_are_not_found(module: ModuleType) -> None:
    for value in (["\xd6\xff", b"\xd6\xff\xc7\x0c\xff", -1, 255], b"\xc7\x04\xff" * 3, 1.7e9, [1.0e-300, -1]):
        assert not module.has_timestamp_ext(msgpack.packb(value, use_bin_type=True))
    assert not module.has_timestamp_ext(b"")


def test_timestamp_ext_is_refused_by_the_decoder(impl: ModuleType) -> None:
    _, dec = pair()
    for header in _timestamp_headers():
        with pytest.raises(DeserializationError, match="-1"):
            dec.decode(b"\x92\x01" + header)


scannable = st.recursive(
    st.one_of(
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(max_size=20),
        st.binary(max_size=300),
        st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20)),
        st.builds(msgpack.Timestamp, st.integers(0, 2**34 - 1), st.integers(0, 999_999_999)),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10,
)


@SETTINGS
@given(scannable)
def test_twins_agree_on_timestamps(value: Any) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    has = "Timestamp" in repr(value)
    assert [m.has_timestamp_ext(data) for m in BOTH] == [has] * len(BOTH)
    assert [m.has_timestamp_ext(bytearray(data)) for m in BOTH] == [has] * len(BOTH)


# --------------------------------------------------------------------------- mapped records


@dataclass(frozen=True)
class Evolved:
    """A receiving class for records sent by another definition of it (see the property below)."""

    a: Any
    b: Any = "b"
    c: list[Any] = field(default_factory=list)
    d: Any = None


@dataclass(frozen=True, slots=True)
class EvolvedSlots:
    a: Any
    b: Any = "b"
    d: Any = None


class EvolvedTuple(NamedTuple):
    a: Any
    b: Any = "b"
    d: Any = None


EVOLVED = [Evolved, EvolvedSlots, EvolvedTuple]
EVOLVED_NAME = "evolving:Record"

#: the sender's fields: some of the receiver's, in any order, and some it does not have
sender_fields = st.lists(st.sampled_from(["a", "b", "c", "d", "x", "y"]), unique=True, max_size=6)


def _sender_class(fields: list[str]) -> type:
    return dataclasses.make_dataclass("Sender", [(f, Any) for f in fields], frozen=True)


@SETTINGS
@given(st.sampled_from(EVOLVED), sender_fields, st.lists(st.lists(values, min_size=6, max_size=6), max_size=6))
def test_mapped_records_same_on_both_twins(receiver: type, fields: list[str], rows: list[list[Any]]) -> None:
    """Records of a sender's definition with other fields decode alike on both twins, single and
    in runs: by name, the receiver's defaults where the sender has no field, or a refusal naming
    the field when it has no default there."""
    sender = _sender_class(fields)
    items = [sender(*row[: len(fields)]) for row in rows]
    out_registry = TypeRegistry()
    out_registry.register(sender, name=EVOLVED_NAME)
    in_registry = TypeRegistry()
    in_registry.register(receiver, name=EVOLVED_NAME)
    enc = MsgpackSerializer(out_registry).new_encoder(lambda r: r.uri)
    frames = [enc.encode(RecordRun(items)), enc.encode(list(items)), enc.encode(RecordRun(items))]
    results = []
    for module in BOTH:
        mp = with_twin(module)
        mp.setattr(serde_decoder, "_TAG_CACHE", {})
        try:
            dec = MsgpackSerializer(in_registry).new_decoder(resolve_ref)
            seen: list[Any] = []
            for data in frames:
                try:
                    seen.append(("ok", dec.decode(data)))
                except DeserializationError as exc:
                    seen.append(("refused", str(exc)))
            results.append(seen)
        finally:
            mp.undo()
    assert all(r == results[0] for r in results)
    if "a" not in fields and items:
        assert all(outcome[0] == "refused" and "'a'" in outcome[1] for outcome in results[0])
        return
    defaults = {"b": "b", "c": [], "d": None}
    expected = [
        receiver(**{name: getattr(item, name) if name in fields else defaults[name] for name in receiver_fields(receiver)})
        for item in items
    ]
    for outcome in results[0]:
        assert outcome[0] == "ok" and exact_equal(outcome[1], expected)


def receiver_fields(cls: type) -> list[str]:
    return list(cls._fields) if hasattr(cls, "_fields") else [f.name for f in dataclasses.fields(cls)]
