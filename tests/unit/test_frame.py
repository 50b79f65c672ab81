"""Frame codec: the pure-Python and compiled twins must behave identically."""

from __future__ import annotations

import itertools
import struct
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casty._fastpath import _frame_py
from casty.errors import FrameError, FrameTooLarge

c_module: ModuleType | None
try:
    from casty._fastpath import _frame_c as c_module  # type: ignore[attr-defined, no-redef, unused-ignore]
except ImportError:
    c_module = None

IMPLS = [
    pytest.param(_frame_py, id="py"),
    pytest.param(c_module, id="c", marks=pytest.mark.skipif(c_module is None, reason="_frame_c not built")),
]

MAX = 1 << 20
pytestmark = pytest.mark.timeout(60)
HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def header(n: int) -> bytes:
    return struct.pack(">I", n)


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


def test_encode_frame(impl: ModuleType) -> None:
    assert impl.encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert impl.encode_frame(b"") == b"\x00\x00\x00\x00"
    assert impl.encode_frame(bytearray(b"xy")) == b"\x00\x00\x00\x02xy"
    assert impl.encode_frame(memoryview(b"hello")[1:4]) == b"\x00\x00\x00\x03ell"
    assert type(impl.encode_frame(b"a")) is bytes


def test_encoder_batches_and_resets(impl: ModuleType) -> None:
    enc = impl.FrameEncoder(100)
    assert enc.take() == b""
    assert enc.pending_bytes == 0 and enc.pending_frames == 0
    enc.add(b"one")
    enc.add(bytearray(b""))
    enc.add(memoryview(b"three"))
    assert enc.pending_frames == 3
    assert enc.pending_bytes == 4 * 3 + 3 + 0 + 5
    out = enc.take()
    assert out == impl.encode_frame(b"one") + impl.encode_frame(b"") + impl.encode_frame(b"three")
    assert enc.take() == b""
    assert enc.pending_bytes == 0 and enc.pending_frames == 0


def test_encoder_too_large_appends_nothing(impl: ModuleType) -> None:
    enc = impl.FrameEncoder(4)
    enc.add(b"abcd")
    with pytest.raises(FrameTooLarge) as info:
        enc.add(b"abcde")
    assert info.value.size == 5 and info.value.limit == 4
    assert enc.pending_frames == 1 and enc.pending_bytes == 8
    assert enc.take() == header(4) + b"abcd"


def test_encoder_properties_read_only(impl: ModuleType) -> None:
    enc = impl.FrameEncoder(10)
    dec = impl.FrameDecoder(10)
    with pytest.raises(AttributeError):
        enc.pending_bytes = 3
    with pytest.raises(AttributeError):
        enc.pending_frames = 3
    with pytest.raises(AttributeError):
        dec.buffered = 3


def test_bad_limits(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.FrameEncoder(-1)
    with pytest.raises(ValueError):
        impl.FrameDecoder(1 << 33)


def test_decoder_whole_and_split(impl: ModuleType) -> None:
    stream = impl.encode_frame(b"hello") + impl.encode_frame(b"") + impl.encode_frame(b"world!")
    dec = impl.FrameDecoder(MAX)
    assert dec.feed(stream) == [b"hello", b"", b"world!"]
    assert dec.buffered == 0
    dec = impl.FrameDecoder(MAX)
    got: list[bytes] = []
    for i in range(len(stream)):
        got += dec.feed(stream[i : i + 1])
    assert got == [b"hello", b"", b"world!"]
    assert dec.buffered == 0


def test_decoder_keeps_partial(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(MAX)
    assert dec.feed(b"\x00\x00") == []
    assert dec.buffered == 2
    assert dec.feed(b"\x00\x05he") == []
    assert dec.buffered == 6
    assert dec.feed(b"llo\x00") == [b"hello"]
    assert dec.buffered == 1
    assert dec.feed(bytearray(b"\x00\x00\x01!")) == [b"!"]
    assert dec.feed(b"") == []


def test_decoder_accepts_buffers_and_copies(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(MAX)
    chunk = bytearray(impl.encode_frame(b"abc") + b"\x00\x00\x00\x02x")
    out = dec.feed(memoryview(chunk))
    assert out == [b"abc"] and all(type(b) is bytes for b in out)
    chunk[:] = b"\xff" * len(chunk)  # the caller reuses its buffer; nothing kept may change
    assert out == [b"abc"]
    assert dec.feed(b"y") == [b"xy"]


def test_too_large_prefix_raises_immediately(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(10)
    with pytest.raises(FrameTooLarge) as info:
        dec.feed(header(11))
    assert info.value.size == 11 and info.value.limit == 10
    assert dec.buffered == 0
    with pytest.raises(FrameError, match="decoder failed"):
        dec.feed(impl.encode_frame(b"ok"))
    with pytest.raises(FrameError, match="decoder failed"):
        dec.feed(b"")


def test_too_large_prefix_split_across_feeds(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(10)
    assert dec.feed(b"\x00\x00") == []
    with pytest.raises(FrameTooLarge):
        dec.feed(b"\x10\x00")  # body never buffered, never waited for


def test_error_after_completed_bodies_is_deferred(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(10)
    data = impl.encode_frame(b"a") + impl.encode_frame(b"bb") + header(1000) + b"zzz"
    assert dec.feed(data) == [b"a", b"bb"]
    assert dec.buffered == 0
    with pytest.raises(FrameTooLarge) as info:
        dec.feed(impl.encode_frame(b"c"))
    assert info.value.size == 1000
    with pytest.raises(FrameError, match="decoder failed"):
        dec.feed(impl.encode_frame(b"c"))


def test_error_after_completing_held_frame_is_deferred(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(10)
    assert dec.feed(b"\x00\x00\x00\x02a") == []
    assert dec.feed(b"b" + header(99)) == [b"ab"]
    with pytest.raises(FrameTooLarge):
        dec.feed(b"")
    with pytest.raises(FrameError, match="decoder failed"):
        dec.feed(b"")


def test_zero_limit_allows_only_empty_bodies(impl: ModuleType) -> None:
    dec = impl.FrameDecoder(0)
    assert dec.feed(header(0) * 3) == [b"", b"", b""]
    with pytest.raises(FrameTooLarge):
        dec.feed(header(1))


def test_large_frame_in_small_chunks(impl: ModuleType) -> None:
    body = bytes(range(256)) * 4000
    stream = impl.encode_frame(body) + impl.encode_frame(b"tail")
    dec = impl.FrameDecoder(MAX)
    got: list[bytes] = []
    for i in range(0, len(stream), 997):
        got += dec.feed(stream[i : i + 997])
    assert got == [body, b"tail"]


def test_implementations_agree_on_encoder_output() -> None:
    if c_module is None:
        pytest.skip("_frame_c not built")
    for body in (b"", b"x", bytes(300)):
        assert c_module.encode_frame(body) == _frame_py.encode_frame(body)


bodies_st = st.lists(st.binary(max_size=300), max_size=25)


@HYP
@given(bodies=bodies_st, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_property_any_chunking_round_trips(impl: ModuleType, bodies: list[bytes], cuts: list[int]) -> None:
    enc = impl.FrameEncoder(MAX)
    for b in bodies:
        enc.add(b)
    stream = enc.take()
    assert stream == b"".join(impl.encode_frame(b) for b in bodies)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = impl.FrameDecoder(MAX)
    got: list[bytes] = []
    for start, stop in itertools.pairwise(points):
        got += dec.feed(stream[start:stop])
    assert got == bodies
    assert dec.buffered == 0


@HYP
@given(
    bodies=st.lists(st.binary(max_size=20), max_size=5),
    size=st.integers(min_value=101, max_value=0xFFFFFFFF),
    split=st.integers(min_value=0, max_value=4),
)
def test_property_huge_prefix_raises(impl: ModuleType, bodies: list[bytes], size: int, split: int) -> None:
    good = b"".join(impl.encode_frame(b) for b in bodies)
    bad = header(size)
    dec = impl.FrameDecoder(100)
    if split == 4 and not bodies:
        with pytest.raises(FrameTooLarge):
            dec.feed(good + bad)
    else:
        # Bodies before the bad prefix are returned; the error comes with the next feed.
        assert dec.feed(good + bad[:split]) == bodies
        with pytest.raises(FrameTooLarge) as info:
            dec.feed(bad[split:] + b"rest")
        assert info.value.size == size
    assert dec.buffered == 0
    with pytest.raises(FrameError, match="decoder failed"):
        dec.feed(b"x")


@HYP
@given(chunks=st.lists(st.binary(max_size=64), max_size=20), limit=st.integers(min_value=0, max_value=300))
def test_property_garbage_never_crashes(impl: ModuleType, chunks: list[bytes], limit: int) -> None:
    dec = impl.FrameDecoder(limit)
    total = 0
    for chunk in chunks:
        try:
            out = dec.feed(chunk)
        except FrameError:
            continue
        assert all(type(b) is bytes and len(b) <= limit for b in out)
        total += sum(len(b) + 4 for b in out)
        assert total + dec.buffered <= sum(len(c) for c in chunks)


@pytest.mark.skipif(c_module is None, reason="_frame_c not built")
@HYP
@given(chunks=st.lists(st.binary(max_size=40), max_size=15), limit=st.integers(min_value=0, max_value=64))
def test_property_twins_agree(chunks: list[bytes], limit: int) -> None:
    assert c_module is not None
    results = []
    for module in (_frame_py, c_module):
        dec = module.FrameDecoder(limit)
        trace: list[object] = []
        for chunk in chunks:
            try:
                trace.append(dec.feed(chunk))
            except FrameError as exc:
                trace.append((type(exc).__name__, str(exc)))
            trace.append(dec.buffered)
        results.append(trace)
    assert results[0] == results[1]
