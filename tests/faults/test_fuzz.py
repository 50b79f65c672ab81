"""Hostile bytes: the frame decoders (pure and compiled), the msgpack message decoder, and a live
node's transport, fed random, truncated, oversized, deeply nested and malicious input.

The decoders may only answer with ``FrameError`` / ``DeserializationError`` (or a value), must
hold memory bounded by ``max_frame_size``, must finish within a per-example deadline, and must
never instantiate a class that is not a message type. The live node closes the offending
connection (or, for a valid partial frame, keeps waiting for the rest) and keeps serving others;
connections that never complete their handshake are dropped after ``handshake_timeout``, and a
flood of them is bounded by ``max_connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casty import CastyConfig
from casty._fastpath import _frame_py
from casty._run import new_event_loop
from casty.actors.ref import ActorRef, parse_uri
from casty.errors import DeserializationError, FrameError, FrameTooLarge
from casty.remote import PROTOCOL_VERSION, RemoteActorSystem
from casty.remote.handshake import HANDSHAKE_LIMIT
from casty.serde import MsgpackDecoder, MsgpackSerializer, TypeRegistry
from casty.testkit import TestProbe
from tests.certs import Pki, make_pki, openssl_available
from tests.conftest import eventually
from tests.remote_app import Echo, echo

c_frame: ModuleType | None
try:
    from casty._fastpath import _frame_c as c_frame  # type: ignore[attr-defined, no-redef, unused-ignore]
except ImportError:
    c_frame = None

pytestmark = pytest.mark.timeout(120)

FRAME_IMPLS = [
    pytest.param(_frame_py, id="py"),
    pytest.param(c_frame, id="c", marks=pytest.mark.skipif(c_frame is None, reason="_frame_c is not built")),
]

# a deadline per example: a decoder that hangs or goes quadratic fails here, not at the timeout
DECODE = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SYSTEM = "fuzz"


# -- tripwires: classes that must never be instantiated from the wire ------------------------------

TRIPPED: list[str] = []


class Trap:
    """Not a dataclass, not registered: building it from the wire would be a remote code path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        TRIPPED.append("Trap.__init__")


class TrapNew:
    def __new__(cls, *args: Any, **kwargs: Any) -> TrapNew:
        TRIPPED.append("TrapNew.__new__")
        return super().__new__(cls)


class _TrapMeta(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        TRIPPED.append("TrapViaMeta.__call__")
        return super().__call__(*args, **kwargs)


class TrapViaMeta(metaclass=_TrapMeta):
    pass


@dataclass
class TrapDataclass:
    """A loaded dataclass: strict serializers must refuse it unless registered."""

    value: Any = None

    def __post_init__(self) -> None:
        TRIPPED.append("TrapDataclass.__post_init__")


class Holder:
    class Inner:
        def __init__(self, *args: Any) -> None:
            TRIPPED.append("Holder.Inner.__init__")


class Colour(enum.Enum):
    RED = 1

    @classmethod
    def _missing_(cls, value: object) -> Any:
        TRIPPED.append("Colour._missing_")
        return None


@pytest.fixture(autouse=True)
def no_trap_was_sprung() -> Iterator[None]:
    TRIPPED.clear()
    yield
    assert TRIPPED == [], f"instantiated from the wire: {TRIPPED}"


HERE = __name__
FORBIDDEN_TYPES = [
    "os:system",
    "posix:system",
    "builtins:eval",
    "builtins:exec",
    "builtins:__import__",
    "builtins:type",
    "builtins:object",
    "builtins:getattr",
    "builtins:open",
    "subprocess:Popen",
    "subprocess:run",
    "importlib:import_module",
    "pickle:loads",
    "casty.actors.system:ActorSystem",
    "casty.remote.system:RemoteActorSystem",
    "definitely.not.imported.module:Thing",
    "antigravity:fly",
    "builtins:object.__subclasses__",
    "os:_wrap_close",
    f"{HERE}:Trap",
    f"{HERE}:TrapNew",
    f"{HERE}:TrapViaMeta",
    f"{HERE}:Holder.Inner",
    f"{HERE}:Trap.__init__",
    f"{HERE}:TRIPPED",
    f"{HERE}:<locals>.Trap",
    f"{HERE}.Trap",
    ":",
    "",
    "\udcff",
]


# -- helpers ---------------------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def type_def(ident: int, name: str) -> msgpack.ExtType:
    return msgpack.ExtType(1, struct.pack(">I", ident) + name.encode("utf-8", "surrogatepass"))


def resolve(uri: str) -> ActorRef[Any]:
    try:
        address, path = parse_uri(uri)
    except ValueError as exc:
        raise DeserializationError(str(exc)) from None
    return ActorRef(address, path, tell=lambda m: None, target=None)


def decoder(*, strict: bool = False, registry: TypeRegistry | None = None) -> MsgpackDecoder:
    return MsgpackSerializer(registry, strict=strict).new_decoder(resolve)


def decode_or_refuse(dec: MsgpackDecoder, data: bytes) -> tuple[bool, object]:
    """(True, value) or (False, None) for a DeserializationError; anything else propagates."""
    try:
        return True, dec.decode(data)
    except DeserializationError:
        return False, None


@contextlib.contextmanager
def peak_memory(limit: int) -> Iterator[None]:
    """Fail when the block allocates more than ``limit`` bytes at its peak (traced by Python)."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= limit, f"peak allocation of {peak} bytes (limit {limit})"


# -- frame decoder: both implementations ---------------------------------------------------------------


@pytest.fixture(params=FRAME_IMPLS)
def frames(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


@DECODE
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=20),
    limit=st.sampled_from([0, 1, 4, 100, 1024, 65536]),
)
def test_frame_decoder_random_streams(frames: ModuleType, chunks: list[bytes], limit: int) -> None:
    dec = frames.FrameDecoder(limit)
    failed = False
    for chunk in chunks:
        try:
            bodies = dec.feed(chunk)
        except FrameError:
            failed = True
            assert dec.buffered == 0 and dec.failure is not None
            continue
        assert not failed, "a failed decoder accepted more input"
        assert all(len(b) <= limit for b in bodies)
        # memory held between feeds: never more than one incomplete frame within the limit
        assert dec.buffered <= limit + 4


@DECODE
@given(
    limit=st.integers(min_value=0, max_value=1 << 20),
    excess=st.integers(min_value=1, max_value=0xFFFFFFFF),
    before=st.lists(st.binary(max_size=64), max_size=3),
    tail=st.binary(max_size=70000),
    split=st.integers(min_value=0, max_value=4),
)
def test_frame_decoder_huge_length_prefix_is_refused_without_buffering(
    frames: ModuleType, limit: int, excess: int, before: list[bytes], tail: bytes, split: int
) -> None:
    size = min(limit + excess, 0xFFFFFFFF)
    if size <= limit:
        return
    good = b"".join(frame(b[:limit]) for b in before)
    stream = good + struct.pack(">I", size) + tail
    cut = len(good) + split  # the prefix may arrive in two pieces
    dec = frames.FrameDecoder(limit)
    got: list[bytes] = []
    with pytest.raises(FrameTooLarge) as info:
        got += dec.feed(stream[:cut])
        got += dec.feed(stream[cut:])
        dec.feed(b"")  # an error stored behind completed bodies is raised by the next feed
    assert info.value.size == size and info.value.limit == limit
    assert got == [b[:limit] for b in before][: len(got)]
    assert dec.buffered == 0
    with pytest.raises(FrameError):
        dec.feed(b"\x00\x00\x00\x00")


@DECODE
@given(bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=5), data=st.data())
def test_frame_decoder_truncated_stream_waits_for_the_rest(
    frames: ModuleType, bodies: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(b) for b in bodies)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream) - 1))
    dec = frames.FrameDecoder(256)
    out = dec.feed(stream[:cut])
    # only whole frames come out; the rest is held, and nothing is held beyond one frame
    assert out == bodies[: len(out)]
    assert dec.buffered == cut - sum(4 + len(b) for b in out) <= 4 + 256
    assert dec.feed(stream[cut:]) == bodies[len(out) :]
    assert dec.buffered == 0


def test_frame_decoder_limit_bounds_buffering_byte_by_byte(frames: ModuleType) -> None:
    limit = 4096
    dec = frames.FrameDecoder(limit)
    assert dec.feed(struct.pack(">I", limit)) == []
    peak = 0
    for _ in range(limit - 1):
        assert dec.feed(b"x") == []
        peak = max(peak, dec.buffered)
    assert peak == limit + 3
    assert dec.feed(b"y") == [b"x" * (limit - 1) + b"y"]
    with pytest.raises(FrameTooLarge):
        dec.feed(struct.pack(">I", limit + 1))


# -- msgpack message decoder ----------------------------------------------------------------------------

ext_codes = st.integers(min_value=0, max_value=127)  # negative codes are made as raw bytes below
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.builds(msgpack.ExtType, st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8]) | ext_codes, st.binary(max_size=24))
    | st.builds(type_def, st.integers(min_value=0, max_value=3), st.sampled_from(FORBIDDEN_TYPES))
)
structures = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5) | st.integers(min_value=-(2**63), max_value=2**64 - 1), inner, max_size=4)
    ),
    max_leaves=30,
)


def packed(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True, strict_types=False)
    return data


# msgpack tokens as raw bytes, including negative ext codes (-1 is msgpack's timestamp)
TOKENS = st.lists(
    st.sampled_from([b"\x91", b"\x92", b"\x81", b"\xc0", b"\x01", b"\xa1a", b"\xc7\x00\x05", b"\xc7\x00\x06"])
    | st.tuples(
        st.sampled_from([b"\xd4", b"\xd5", b"\xd6", b"\xd7", b"\xd8"]), st.integers(-128, 127), st.binary(max_size=16)
    ).map(lambda t: t[0] + struct.pack(">b", t[1]) + t[2])
    | st.tuples(st.integers(-128, 127), st.binary(max_size=40)).map(
        lambda t: b"\xc7" + bytes([len(t[1])]) + struct.pack(">b", t[0]) + t[1]
    ),
    max_size=40,
).map(b"".join)


@DECODE
@given(data=st.binary(max_size=4096) | structures.map(packed) | TOKENS)
def test_decoder_random_input_only_deserialization_error(data: bytes) -> None:
    dec = decoder()
    decode_or_refuse(dec, data)
    # whatever happened, the decoder still decodes a well-formed message afterwards
    assert dec.decode(packed([[0, "/user/x"], "after"])) == [[0, "/user/x"], "after"]
    assert TRIPPED == []


MESSAGES = st.recursive(
    st.none() | st.integers() | st.text(max_size=10) | st.binary(max_size=10) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
        | st.builds(Echo, inner, st.just(resolve("casty://fuzz@127.0.0.1:1/user/r")))
    ),
    max_leaves=12,
)


@DECODE
@given(value=MESSAGES, data=st.data())
def test_decoder_every_truncation_is_refused(value: object, data: st.DataObject) -> None:
    encoded = MsgpackSerializer().new_encoder(lambda ref: ref.uri).encode([[0, "/user/x"], value])
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    dec = decoder()
    # a msgpack value is prefix-free: every strict prefix is incomplete
    assert decode_or_refuse(dec, encoded[:cut]) == (False, None)
    # and the refusal leaves no half-learned definitions behind
    assert dec.known_types == 0 and dec.known_refs == 0
    assert dec.decode(encoded) == [[0, "/user/x"], value]


HUGE_HEADERS = [
    b"\xdd\xff\xff\xff\xff",  # array32 of 2**32-1 items
    b"\xdf\xff\xff\xff\xff",  # map32
    b"\xdb\xff\xff\xff\xff",  # str32
    b"\xc6\xff\xff\xff\xff",  # bin32
    b"\xc9\xff\xff\xff\xff\x01",  # ext32 (type def)
    b"\xc9\xff\xff\xff\xff\x08",  # ext32 (big integer)
    b"\xdc\xff\xff",  # array16
    b"\xde\xff\xff",  # map16
]


@DECODE
@given(
    header=st.sampled_from(HUGE_HEADERS),
    tail=st.binary(max_size=64) | st.integers(min_value=0, max_value=80000),
    wrapped=st.booleans(),
)
def test_decoder_huge_length_headers_allocate_nothing_big(header: bytes, tail: bytes | int, wrapped: bool) -> None:
    body = header + (tail if isinstance(tail, bytes) else b"\xc0" * tail)
    data = (b"\x92\xc0" + body) if wrapped else body
    with peak_memory(4 * len(data) + (1 << 20)):
        ok, _ = decode_or_refuse(decoder(), data)
    if header[0] in (0xDD, 0xDF, 0xDB, 0xC6, 0xC9):
        assert not ok  # 2**32 - 1 items or bytes cannot follow in these few bytes


def nested(opener: bytes, depth: int, leaf: bytes = b"\xc0") -> bytes:
    return opener * depth + leaf


DEEP = {
    "arrays": lambda n: nested(b"\x91", n),
    "maps": lambda n: nested(b"\x81\xc0", n),
    "tuples": lambda n: nested(b"\x92\xc7\x00\x05", n),  # [TUPLE tag, [TUPLE tag, ...]]
    "sets": lambda n: nested(b"\x92\xc7\x00\x06", n, b"\x01"),
    "map keys": lambda n: nested(b"\x81\x91", n, b"\xc0" * (n + 1)),  # {[{[...]: None}]: None}
}


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
@pytest.mark.parametrize("shape", sorted(DEEP))
def test_decoder_deep_nesting(shape: str, depth: int) -> None:
    data = DEEP[shape](depth)
    with peak_memory(64 * len(data) + (4 << 20)):
        ok, value = decode_or_refuse(decoder(), data)
    if depth > 1_000:
        assert not ok  # msgpack's unpacker stack is far shallower than this
    del value  # a deep value, if accepted, is freed here without recursion errors


@DECODE
@given(name=st.sampled_from(FORBIDDEN_TYPES) | st.text(max_size=40), args=st.lists(st.text(max_size=8), max_size=3))
def test_decoder_never_builds_a_non_message_class(name: str, args: list[str]) -> None:
    message = packed([[0, "/user/echo"], [type_def(0, name), *args]])
    dec = decoder()
    ok, _ = decode_or_refuse(dec, message)
    if name in FORBIDDEN_TYPES:
        assert not ok, f"{name!r} was accepted"
    # the definition is kept (its encoder counts it sent), and every later use is refused too
    again = packed([[0, "/user/echo"], [msgpack.ExtType(2, b"\x00"), *args]])
    if name in FORBIDDEN_TYPES and dec.known_types:
        assert decode_or_refuse(dec, again) == (False, None)
    assert TRIPPED == []


@DECODE
@given(value=st.none() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=10))
def test_strict_decoder_refuses_unregistered_dataclass(value: object) -> None:
    registry = TypeRegistry()
    registry.register(Echo)
    dec = decoder(strict=True, registry=registry)
    assert decode_or_refuse(dec, packed([type_def(0, f"{HERE}:TrapDataclass"), value])) == (False, None)
    # a registered one still works on the same decoder
    ok, echo_msg = decode_or_refuse(
        dec,
        packed([type_def(1, "tests.remote_app:Echo"), value, msgpack.ExtType(3, b"\x00\x00\x00\x00casty://f@h:1/p")]),
    )
    assert ok and isinstance(echo_msg, Echo)


def test_enum_unknown_value_is_refused() -> None:
    dec = decoder()
    assert dec.decode(packed([type_def(0, f"{HERE}:Colour"), 1])) is Colour.RED
    # an unknown value goes through Enum's own lookup (its _missing_ hook): refused either way
    ok, _ = decode_or_refuse(dec, packed([msgpack.ExtType(2, b"\x00"), 2]))
    assert not ok
    TRIPPED.clear()  # Colour._missing_ is an Enum hook of a loaded message type, not a forbidden class


@DECODE
@given(size=st.integers(min_value=1, max_value=300_000))
def test_decoder_big_integers_are_bounded_by_the_message(size: int) -> None:
    data = packed(msgpack.ExtType(8, b"\x7f" + b"\xff" * (size - 1)))
    with peak_memory(8 * len(data) + (1 << 20)):
        value = decoder().decode(data)
    assert isinstance(value, int) and value.bit_length() <= 8 * size


# -- the transport, over real sockets ------------------------------------------------------------------


def node_config(**remote: Any) -> CastyConfig:
    base: dict[str, Any] = {
        "max_frame_size": 65536,
        "handshake_timeout": 2.0,
        "give_up_after": 2.0,
        "reconnect_backoff_max": 0.2,
    }
    base.update(remote)
    return CastyConfig.from_dict({"remote": base})


async def raw_session(port: int, ident: str = "client-fuzz") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with a completed handshake (as a client: the node never dials it back)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hello = {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "system": SYSTEM,
        "host": ident,
        "port": 0,
        "uid": int.from_bytes(os.urandom(7), "big") | 1,
        "kind": "client",
        "nonce": os.urandom(16),
    }
    writer.write(frame(msgpack.packb(hello)))
    size = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 10))[0]
    welcome = msgpack.unpackb(await asyncio.wait_for(reader.readexactly(size), 10))
    assert welcome["t"] == "welcome", welcome
    writer.write(frame(msgpack.packb({"t": "confirm", "mac": b""})))
    await writer.drain()
    return reader, writer


def echo_of(payload: Any) -> Callable[[ActorRef[Any]], Echo]:
    return lambda reply_to: Echo(payload, reply_to)


async def open_quietly(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A plain TCP connection that will never say a word; None if the connect itself failed."""
    try:
        return await asyncio.open_connection("127.0.0.1", port)
    except ConnectionError:
        return None


async def closed_by_node(reader: asyncio.StreamReader, timeout: float) -> None:
    """Returns once the node has closed (or reset) the connection; fails after ``timeout``."""
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass


def node_must_close(payload: bytes, limit: int) -> bool:
    """What the node does with ``payload`` after a handshake, predicted with the same decoders:
    True when it must close the connection; False when the bytes are acceptable envelopes or an
    incomplete frame (it may still close, for example when a decoded message is refused later)."""
    frames = _frame_py.FrameDecoder(limit)
    try:
        bodies = frames.feed(payload)
    except FrameError:
        return True
    dec = decoder()
    paths: list[str] = []
    for body in bodies:
        try:
            envelope = dec.decode(body)
            if type(envelope) is not list or len(envelope) != 2:
                return True
            target = envelope[0]
            if type(target) is int:
                paths[target]  # an unknown path id raises IndexError: the node closes
            elif type(target) is str:
                pass  # a path sent in full, without an id
            else:
                ident, path = target
                if ident != len(paths) or type(path) is not str:
                    return True
                paths.append(path)
        except (DeserializationError, IndexError, TypeError, ValueError):
            return True
    return frames.failure is not None


PATHS = st.sampled_from(["/user/echo", "/user/nobody", "/system/remote", "/temp/x", "", "relative"])
# real message types whose handlers run inside the transport: built with arbitrary field values
TRANSPORT_TYPES = ["casty.remote.transport:Watch", "casty.remote.transport:Unwatch", "casty.actors.events:Terminated"]
REF_DEF = msgpack.ExtType(3, b"\x00\x00\x00\x00casty://fuzz@client-fuzz:0/user/w")
ENVELOPES = st.tuples(
    st.one_of(st.tuples(st.integers(min_value=0, max_value=2), PATHS).map(list), st.integers(-1, 3), structures),
    structures,
).map(list)
BODIES = st.one_of(
    ENVELOPES.map(packed),
    structures.map(packed),
    st.binary(max_size=256),
    st.tuples(st.sampled_from(FORBIDDEN_TYPES), st.lists(st.text(max_size=5), max_size=2)).map(
        lambda t: packed([[0, "/user/echo"], [type_def(0, t[0]), *t[1]]])
    ),
    st.tuples(
        PATHS,
        st.sampled_from(TRANSPORT_TYPES),
        st.lists(structures | PATHS | st.just(REF_DEF), max_size=3),
    ).map(lambda t: packed([[0, t[0]], [type_def(0, t[1]), *t[2]]])),
    st.sampled_from([1_000, 5_000]).map(lambda n: nested(b"\x91", n)),
)
PAYLOADS = st.one_of(
    st.binary(min_size=1, max_size=1024),
    st.lists(BODIES.map(frame), min_size=1, max_size=4).map(b"".join),
    st.tuples(BODIES.map(frame), st.integers(min_value=1, max_value=200)).map(
        lambda t: t[0][: max(1, len(t[0]) - t[1])]
    ),
    st.tuples(st.integers(min_value=65537, max_value=0xFFFFFFFF), st.binary(max_size=64)).map(
        lambda t: struct.pack(">I", t[0]) + t[1]
    ),
)


def test_transport_survives_arbitrary_bytes_after_the_handshake() -> None:
    """Each example opens a fresh, fully handshaken connection to a live node and sends arbitrary
    bytes: the node closes that connection when it must, and answers another system's ask."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        node = RemoteActorSystem(SYSTEM, config=node_config())
        friend = RemoteActorSystem(SYSTEM, config=node_config())
        runner.run(node.start())
        runner.run(friend.start())
        node.spawn(echo(), "echo")
        echo_ref = friend.ref(f"{node.address}/user/echo")
        counter = iter(range(1_000_000))
        loop_errors: list[dict[str, Any]] = []
        runner.get_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))

        async def one(payload: bytes) -> None:
            reader, writer = await raw_session(node.port, f"client-fuzz-{next(counter)}")
            writer.write(payload)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if node_must_close(payload, 65536):
                await closed_by_node(reader, 10)
            writer.close()  # if the node kept it open, our closing must not hurt either
            assert await friend.ask(echo_ref, lambda r: Echo("still here", r), timeout=10) == "still here"

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(payload=PAYLOADS)
        def example(payload: bytes) -> None:
            runner.run(asyncio.wait_for(one(payload), 30))

        try:
            example()
            transport = node.transport
            assert transport is not None
            # every fuzzing connection is gone: only the friend's remains
            runner.run(
                eventually(
                    lambda: len(transport._inbound) + len(transport._established) <= 1, 10, what="fuzz connections to close"
                )
            )
            # nothing escaped the transport into the event loop's error handler
            assert loop_errors == []
            # and the echo actor can still be stopped (no junk watcher was planted on it)
            runner.run(asyncio.wait_for(node.stop(node.ref(f"{node.address}/user/echo")), 10))
        finally:
            runner.run(friend.shutdown())
            runner.run(node.shutdown())


HOSTILE_AFTER_HANDSHAKE: dict[str, Callable[[], bytes]] = {
    "deep nesting in an envelope": lambda: frame(b"\x92\x00" + nested(b"\x91", 60_000)),
    "deep nesting over max_frame_size": lambda: frame(nested(b"\x91", 70_000)),
    "type def: os.system": lambda: frame(packed([[0, "/user/echo"], [type_def(0, "os:system"), "true"]])),
    "type def: trap class": lambda: frame(packed([[0, "/user/echo"], [type_def(0, f"{HERE}:Trap"), 1]])),
    "type def: unloaded module": lambda: frame(packed([[0, "/user/echo"], [type_def(0, "zz_not_loaded:X"), 1]])),
    "huge array header": lambda: frame(b"\x92\x00\xdd\xff\xff\xff\xff"),
    "path id before definition": lambda: frame(packed([5, "x"])),
    "prefix one over the limit": lambda: struct.pack(">I", 65537) + b"\x00" * 100,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(HOSTILE_AFTER_HANDSHAKE))
async def test_hostile_envelopes_close_the_connection(case: str) -> None:
    async with (
        RemoteActorSystem(SYSTEM, config=node_config()) as node,
        RemoteActorSystem(SYSTEM, config=node_config()) as friend,
    ):
        node.spawn(echo(), "echo")
        reader, writer = await raw_session(node.port)
        writer.write(HOSTILE_AFTER_HANDSHAKE[case]())
        await closed_by_node(reader, 10)
        writer.close()
        ref = friend.ref(f"{node.address}/user/echo")
        assert await friend.ask(ref, lambda r: Echo("ok", r), timeout=10) == "ok"


def watch(path: Any, watcher: Any) -> Any:
    return [[0, "/system/remote"], [type_def(0, "casty.remote.transport:Watch"), path, watcher]]


HOSTILE_CONTROL: dict[str, Any] = {
    "Watch with a string watcher": watch("/user/echo", "junk"),
    "Watch with a list path": watch([1], REF_DEF),
    "Watch with an int path": watch(5, REF_DEF),
    "Unwatch with an int watcher": [
        [0, "/system/remote"],
        [type_def(0, "casty.remote.transport:Unwatch"), "/user/echo", 7],
    ],
    "Terminated without a ref": [[0, "/user/echo"], [type_def(0, "casty.actors.events:Terminated"), "x", 5]],
    "Terminated to the control path": [
        [0, "/system/remote"],
        [type_def(0, "casty.actors.events:Terminated"), None, None],
    ],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(HOSTILE_CONTROL))
async def test_malformed_control_messages_close_the_connection_cleanly(case: str) -> None:
    """Real message types with junk fields: refused like any malformed message, nothing planted
    in the node's state, nothing raised into the event loop."""
    async with (
        RemoteActorSystem(SYSTEM, config=node_config()) as node,
        RemoteActorSystem(SYSTEM, config=node_config()) as friend,
    ):
        loop_errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        target = node.spawn(echo(), "echo")
        reader, writer = await raw_session(node.port)
        writer.write(frame(packed(HOSTILE_CONTROL[case])))
        await closed_by_node(reader, 10)
        writer.close()
        assert loop_errors == []
        ref = friend.ref(f"{node.address}/user/echo")
        assert await friend.ask(ref, lambda r: Echo("ok", r), timeout=10) == "ok"
        # the actor has no junk watcher: it stops, and its watchers are all real refs
        await asyncio.wait_for(node.stop(target), 10)
        assert loop_errors == []


@pytest.mark.timeout(60)
async def test_refs_to_many_addresses_do_not_grow_the_node_without_bound() -> None:
    async with RemoteActorSystem(SYSTEM, config=node_config(max_frame_size=1 << 22)) as node:
        transport = node.transport
        assert transport is not None
        probe = TestProbe(node, "growth")
        _, writer = await raw_session(node.port)
        refs = [
            msgpack.ExtType(
                3, struct.pack(">I", i) + f"casty://{SYSTEM}@10.{i >> 16}.{(i >> 8) & 255}.{i & 255}:1/a".encode()
            )
            for i in range(5000)
        ]
        writer.write(frame(packed([[0, "/user/nobody"], refs])) + frame(packed([[1, probe.ref.path], "done"])))
        assert await probe.receive(10) == "done"  # both frames were processed
        writer.close()
        assert len(transport.associations) < 100, len(transport.associations)


# -- handshake timeout and connection floods -------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("behaviour", ["silent", "hello only", "slow drip", "endless handshake frame"])
async def test_incomplete_handshake_is_dropped_after_handshake_timeout(behaviour: str) -> None:
    timeout = 0.6
    async with RemoteActorSystem(SYSTEM, config=node_config(handshake_timeout=timeout)) as node:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        started = loop.time()
        hello = frame(
            msgpack.packb(
                {"t": "hello", "v": PROTOCOL_VERSION, "system": SYSTEM, "host": "client-x", "port": 0, "uid": 7,
                 "kind": "client", "nonce": os.urandom(16)}
            )
        )  # fmt: skip
        drip: asyncio.Task[None] | None = None
        if behaviour == "hello only":
            writer.write(hello)  # the welcome comes, the confirm never does
        elif behaviour == "slow drip":

            async def trickle() -> None:
                # bytes keep arriving, but the deadline is for the whole handshake
                for byte in hello[:-1]:
                    writer.write(bytes([byte]))
                    await asyncio.sleep(timeout / 10)

            drip = asyncio.create_task(trickle())
        elif behaviour == "endless handshake frame":
            writer.write(struct.pack(">I", 60_000) + b"\x00" * 1000)
        try:
            await closed_by_node(reader, timeout + 5)
        finally:
            if drip is not None:
                drip.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await drip
        elapsed = loop.time() - started
        writer.close()
        assert timeout * 0.8 <= elapsed < timeout + 3, elapsed
        transport = node.transport
        assert transport is not None
        await eventually(
            lambda: not transport._inbound and not transport._established, 5, what="the node to forget the connection"
        )
        assert not any(a.conn is not None for a in transport.associations.values())


async def test_oversized_handshake_frame_is_cut_off_early() -> None:
    async with RemoteActorSystem(SYSTEM, config=node_config(max_frame_size=1 << 22, handshake_timeout=30)) as node:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # within max_frame_size, but a handshake frame has no business being this large
        writer.write(struct.pack(">I", 1 << 21) + b"\x00" * (70 * 1024))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        await closed_by_node(reader, 10)
        assert loop.time() - started < 5  # long before the 30 s handshake timeout
        writer.close()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "header in parts"])
async def test_first_frame_announcing_more_than_a_handshake_is_refused_at_its_header(
    split: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are not casty's (here a header announcing one byte more than a handshake
    frame may have, and a few bytes of body) close the connection as soon as the header is
    in, not after ``handshake_timeout``: they hold no place in the unauthenticated pool."""
    async with (
        RemoteActorSystem(SYSTEM, config=node_config(max_frame_size=1 << 22, handshake_timeout=30)) as node,
        RemoteActorSystem(SYSTEM, config=node_config()) as friend,
    ):
        node.spawn(echo(), "echo")
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        header = struct.pack(">I", HANDSHAKE_LIMIT + 1)
        if split:
            writer.write(header[:1])
            await writer.drain()
            await asyncio.sleep(0.05)  # a separate read for the first byte (nothing to await)
            writer.write(header[1:] + b"\x00" * 16)
        else:
            writer.write(header + b"\x00" * 16)
        await closed_by_node(reader, 10)
        assert loop.time() - started < 5  # long before the 30 s handshake timeout
        writer.close()
        echo_ref = friend.ref(f"{node.address}/user/echo")
        assert await friend.ask(echo_ref, lambda r: Echo("still here", r), timeout=10) == "still here"
    refused = [r for r in caplog.records if "larger than a handshake" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not openssl_available():
        pytest.skip("the openssl command line tool is needed to generate test certificates")
    return make_pki(tmp_path_factory.mktemp("fuzz-pki"))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_connection_flood_is_bounded_and_the_node_keeps_serving(
    tls: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    max_connections, flood, handshake_timeout = 48, 320, 1.5
    extra: dict[str, Any] = {}
    if tls:
        pki: Pki = request.getfixturevalue("pki")
        extra = {
            "tls": {
                "enabled": True,
                "certfile": str(pki.node_cert),
                "keyfile": str(pki.node_key),
                "cafile": str(pki.ca),
            }
        }
    remote = {"max_connections": max_connections, "handshake_timeout": handshake_timeout, "max_frame_size": 65536}
    cfg = CastyConfig.from_dict({"remote": remote, **extra})
    friend_cfg = CastyConfig.from_dict({"remote": {"give_up_after": 30.0}, **extra})
    async with RemoteActorSystem(SYSTEM, config=cfg) as node, RemoteActorSystem(SYSTEM, config=friend_cfg) as friend:
        node.spawn(echo(), "echo")
        transport = node.transport
        assert transport is not None
        ref = friend.ref(f"{node.address}/user/echo")
        assert await friend.ask(ref, lambda r: Echo("before", r), timeout=10) == "before"
        loop = asyncio.get_running_loop()
        started = loop.time()
        peak = 0
        conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

        for batch in range(flood // 40):
            opened = await asyncio.gather(*(open_quietly(node.port) for _ in range(40)))
            conns += [c for c in opened if c is not None]
            peak = max(peak, len(transport._inbound))
            assert len(transport._inbound) <= max_connections, (batch, len(transport._inbound))
            # the established peer is served in the middle of the flood
            assert await friend.ask(ref, echo_of(batch), timeout=10) == batch
        assert peak >= max_connections - 8  # the flood did fill the node up
        # every flood connection ends: refused at once or dropped at the handshake timeout
        await asyncio.wait_for(
            asyncio.gather(*(closed_by_node(reader, handshake_timeout + 10) for reader, _ in conns)),
            handshake_timeout + 20,
        )
        # the last ones went at most one handshake timeout (plus scheduling) after they came
        assert loop.time() - started < handshake_timeout * (flood // 40) + 15
        for _, writer in conns:
            writer.close()
        await eventually(
            lambda: len(transport._inbound) + len(transport._established) <= 1,
            10,
            what="the flood connections to be forgotten",
        )
        # a new peer can connect once the flood is over
        async with RemoteActorSystem(SYSTEM, config=friend_cfg) as late:
            late_ref = late.ref(f"{node.address}/user/echo")
            assert await late.ask(late_ref, lambda r: Echo("late", r), timeout=10) == "late"


@pytest.mark.timeout(60)
async def test_flood_refusals_are_logged_at_most_once_per_second(caplog: pytest.LogCaptureFixture) -> None:
    cfg = CastyConfig.from_dict({"remote": {"max_connections": 4, "handshake_timeout": 1.0}})
    async with RemoteActorSystem(SYSTEM, config=cfg) as node:
        transport = node.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        with caplog.at_level(logging.WARNING, logger="casty.remote"):
            started = loop.time()
            conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
            for _ in range(5):
                opened = await asyncio.gather(*(open_quietly(node.port) for _ in range(40)))
                conns += [c for c in opened if c is not None]
            await asyncio.wait_for(asyncio.gather(*(closed_by_node(r, 10) for r, _ in conns)), 20)
            elapsed = loop.time() - started
        for _, writer in conns:
            writer.close()
        lines = [r.getMessage() for r in caplog.records if "too many connections" in r.getMessage()]
        assert 1 <= len(lines) <= int(elapsed) + 1, (len(lines), elapsed)
        assert all(re.match(r"refused connection from 127\.0\.0\.1:\d+: too many", line) for line in lines)
        # each line counts the refusals it stands for; none is lost
        counted = sum(int(n) for line in lines for n in re.findall(r"(\d+) refused since", line))
        assert counted + transport._excess_refused >= 100
