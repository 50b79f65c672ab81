"""The message reader under the serde decoder: both implementations decode alike.

Each case is decoded by a serde decoder running on each twin; the outcomes (value, or the
error's type and text) and the tables learned must be the same.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casty._fastpath import _decoder_py
from casty.actors.ref import ActorRef, SystemAddress, parse_uri
from casty.errors import DeserializationError
from casty.serde import MsgpackSerializer, RecordRun, type_name
from casty.serde import _decoder as serde_decoder

pytestmark = pytest.mark.timeout(120)


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._decoder_c")
    except ImportError:
        return None


BOTH = [m for m in (_decoder_py, _compiled()) if m is not None]
IMPLS = [
    pytest.param(_decoder_py, id="py"),
    pytest.param(_compiled(), id="c", marks=pytest.mark.skipif(_compiled() is None, reason="reader not compiled")),
]


@dataclass(frozen=True)
class Reading:
    sensor: str
    value: float


@dataclass(frozen=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


def resolve_ref(uri: str, incarnation: int = 0) -> ActorRef[Any]:
    if "bad" in uri or incarnation == 13:
        raise ValueError("no such address")
    address, path = parse_uri(uri)
    return ActorRef(address, path, tell=lambda m: None, target=None)


def make_ref(path: str) -> ActorRef[Any]:
    return ActorRef(SystemAddress("sys", "127.0.0.1", 1), path, tell=lambda m: None, target=None)


@pytest.fixture(params=IMPLS)
def reader(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(serde_decoder, "MessageReader", request.param.MessageReader)
        yield request.param


def outcomes(module: ModuleType, frames: list[bytes]) -> tuple[list[Any], int, int]:
    mp = pytest.MonkeyPatch()
    mp.setattr(serde_decoder, "MessageReader", module.MessageReader)
    try:
        dec = MsgpackSerializer().new_decoder(resolve_ref)
        out: list[Any] = []
        for data in frames:
            try:
                out.append(("ok", repr(dec.decode(data))))
            except DeserializationError as exc:
                out.append(("refused", str(exc), exc.type_name))
        return out, dec.known_types, dec.known_refs
    finally:
        mp.undo()


def ext(code: int, payload: bytes) -> Any:
    return msgpack.ExtType(code, payload)


def type_def(ident: int, name: str) -> Any:
    return ext(1, struct.pack(">I", ident) + name.encode())


def record_def(ident: int, name: str, fields: tuple[str, ...]) -> Any:
    payload = struct.pack(">IH", ident, len(fields))
    for f in fields:
        payload += struct.pack(">H", len(f)) + f.encode()
    return ext(13, payload + name.encode())


def ref_def(ident: int, uri: str) -> Any:
    return ext(3, struct.pack(">I", ident) + uri.encode())


READING = type_name(Reading)
CHECKED = type_name(Checked)
URI = "casty://sys@127.0.0.1:1/user/a"

CASES: list[Any] = [
    [[0, "/user/x"], 1],
    [type_def(0, READING), "s", 1.0],
    [ext(2, b"\x00"), "t", 2.0],
    [ext(2, b"\x05"), 1],
    [type_def(1, CHECKED), -1],
    [type_def(1, CHECKED), 1],
    [type_def(2, "os:system"), "true"],
    [ref_def(0, URI), ext(4, b"\x00"), ext(10, URI.encode())],
    [ext(4, b"\x07")],
    [ext(10, b"\xff\xfe")],
    [ext(10, b"casty://sys@bad:1/user/a")],
    [ext(11, struct.pack(">IQ", 1, 7) + URI.encode()), ext(4, b"\x01")],
    [ext(11, struct.pack(">I", 2) + b"\x00")],
    [ext(12, struct.pack(">Q", 7) + URI.encode()), ext(12, struct.pack(">Q", 13) + URI.encode())],
    [ext(12, b"\x00\x01")],
    [ext(5, b""), 1, 2],
    [ext(6, b""), 1, 1],
    [ext(6, b""), [1]],
    [ext(7, b""), "a"],
    [ext(8, b"\x01\x00\x00\x00\x00\x00\x00\x00\x00")],
    [ext(8, b"")],
    [ext(9, b""), ext(2, b"\x00"), 2, "a", 1.0, "b", 2.0],
    [ext(9, b""), ext(2, b"\x00"), 3, "a", 1.0],
    [ext(9, b""), "x", 1],
    [ext(2, b"\x00")],
    ext(2, b"\x00"),
    [ext(99, b"")],
    {"k": [ext(5, b""), 1]},
    # record definitions naming the sender's fields (protocol 3): the class's own, reordered,
    # one more field, one missing; malformed ones
    [record_def(3, READING, ("sensor", "value")), "r", 1.0],
    [record_def(4, READING, ("value", "extra", "sensor")), 2.0, "x", "r"],
    [ext(2, b"\x04"), 3.0, "y", "q"],
    [ext(9, b""), ext(2, b"\x04"), 2, 1.0, 0, "a", 2.0, 0, "b"],
    [record_def(5, READING, ("sensor",)), "r"],
    [ext(9, b""), ext(2, b"\x05"), 1, "a"],
    [record_def(6, CHECKED, ("value", "more")), -1, 0],
    [ext(13, struct.pack(">IH", 7, 2) + b"\x00\x01a")],
    [ext(13, struct.pack(">I", 7))],
]


def test_hostile_and_good_messages_decode_alike() -> None:
    frames = [msgpack.packb(c) for c in CASES]
    frames += [b"", b"\xc1", b"\x92\x01", msgpack.packb([1]) + b"\x00", b"\xd6\xff\x00\x00\x00\x01"]
    results = [outcomes(m, frames) for m in BOTH]
    assert all(r == results[0] for r in results), results
    kinds = [o[0] for o in results[0][0]]
    assert "ok" in kinds and "refused" in kinds


messages = st.recursive(
    st.one_of(
        st.none(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False),
        st.text(max_size=6),
        st.binary(max_size=6),
        st.builds(Reading, st.text(max_size=4), st.floats(allow_nan=False)),
        st.builds(make_ref, st.sampled_from(["/user/a", "/temp/1"])),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.lists(st.builds(Reading, st.text(max_size=4), st.floats(allow_nan=False)), max_size=4).map(RecordRun),
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_streams_of_messages_and_their_damage_decode_alike(values: list[Any], data: st.DataObject) -> None:
    enc = MsgpackSerializer().new_encoder(lambda r: r.uri)
    frames = [enc.encode(v) for v in values]
    i = data.draw(st.integers(0, len(frames) - 1))
    cut = data.draw(st.integers(0, max(0, len(frames[i]) - 1)))
    damaged = [*frames[:i], frames[i][:cut], *frames[i:]]
    for stream in (frames, damaged):
        results = [outcomes(m, stream) for m in BOTH]
        assert all(r == results[0] for r in results), results
    assert all(o[0] == "ok" for o in outcomes(BOTH[-1], frames)[0])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_decodes_alike(data: bytes) -> None:
    results = [outcomes(m, [data, msgpack.packb([1, "ok"])]) for m in BOTH]
    assert all(r == results[0] for r in results), results


def test_reader_keeps_definitions_of_refused_messages(reader: ModuleType) -> None:
    dec = MsgpackSerializer().new_decoder(resolve_ref)
    with pytest.raises(DeserializationError):
        dec.decode(msgpack.packb([type_def(0, CHECKED), -1]))
    assert dec.known_types == 1
    assert dec.decode(msgpack.packb([ext(2, b"\x00"), 3])) == Checked(3)
    with pytest.raises(DeserializationError):
        dec.decode(msgpack.packb([type_def(1, READING), "a", 1.0])[:-2])  # cut: learns nothing
    assert dec.known_types == 1


def test_a_refused_message_names_the_reply_slots_it_carried(reader: ModuleType) -> None:
    """The URIs of the short-lived refs in a refused message travel on its MessageRefused
    (their asks can then be failed at once); a message that decodes leaves none behind."""
    from casty.errors import MessageRefused

    dec = MsgpackSerializer().new_decoder(resolve_ref)
    temp = "casty://sys@127.0.0.1:1/temp/ask-7"
    inline = ext(12, struct.pack(">Q", 7) + temp.encode())
    with pytest.raises(MessageRefused) as refused:
        dec.decode(msgpack.packb([type_def(0, "os:system"), inline, ext(10, URI.encode())]))
    assert refused.value.replies == (temp,)
    assert dec.decode(msgpack.packb([ext(5, b""), inline])) is not None
    with pytest.raises(MessageRefused) as refused:
        dec.decode(msgpack.packb([type_def(1, CHECKED), -1]))
    assert refused.value.replies == ()
