"""The envelope reader: both implementations resolve targets and hand messages on alike."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty._fastpath import _envelope_py
from casty.errors import DeserializationError

pytestmark = pytest.mark.timeout(60)


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._envelope_c")
    except ImportError:
        return None


IMPLS = [
    pytest.param(_envelope_py, id="py"),
    pytest.param(
        _compiled(), id="c", marks=pytest.mark.skipif(_compiled() is None, reason="envelope reader not compiled")
    ),
]
BOTH = [m for m in (_envelope_py, _compiled()) if m is not None]

CONTROL = "/system/remote"


class Special:
    def __init__(self, stop: bool = False) -> None:
        self.stop = stop

    def __repr__(self) -> str:
        return f"Special(stop={self.stop})"


class Recorder:
    def __init__(self, module: ModuleType, decode: Any = None) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.reader = module.EnvelopeReader(
            decode if decode is not None else (lambda body: msgpack.unpackb(body)),
            lambda path, msg: self.events.append(("deliver", path, msg)),
            self.special,
            CONTROL,
            Special,
        )

    def special(self, path: str, msg: Any) -> bool:
        self.events.append(("special", path, repr(msg)))
        return not (isinstance(msg, Special) and msg.stop)

    def run(self, bodies: list[Any]) -> tuple[Any, list[Any], list[str]]:
        try:
            outcome: Any = self.reader.dispatch(bodies)
        except Exception as exc:  # the outcome is compared between the twins
            outcome = (type(exc), str(exc))
        return outcome, self.events, list(self.reader.paths)


@pytest.mark.parametrize("module", IMPLS)
def test_paths_defined_then_used_by_id(module: ModuleType) -> None:
    rec = Recorder(module)
    bodies = [
        msgpack.packb([[0, "/user/a"], 1]),
        msgpack.packb([0, 2]),
        msgpack.packb([[1, "/user/b"], "x"]),
        msgpack.packb([1, None]),
        msgpack.packb(["/temp/7", 3]),
        msgpack.packb([0, [4]]),
    ]
    assert rec.reader.dispatch(bodies) == 6
    assert rec.events == [
        ("deliver", "/user/a", 1),
        ("deliver", "/user/a", 2),
        ("deliver", "/user/b", "x"),
        ("deliver", "/user/b", None),
        ("deliver", "/temp/7", 3),
        ("deliver", "/user/a", [4]),
    ]
    assert rec.reader.paths == ["/user/a", "/user/b"]


@pytest.mark.parametrize("module", IMPLS)
@pytest.mark.parametrize(
    "envelope",
    [
        [5, "x"],  # an id never defined
        [-1, "x"],
        [[1, "/user/a"], "x"],  # defined out of order
        [[0, 5], "x"],
        [["0", "/user/a"], "x"],
        [[0, "/user/a", 1], "x"],
        [True, "x"],
        [1.0, "x"],
        [None, "x"],
        ["/user/a"],
        ["/user/a", 1, 2],
        "not a list",
        {"t": 1},
    ],
)
def test_malformed_envelopes_refused(module: ModuleType, envelope: Any) -> None:
    rec = Recorder(module)
    with pytest.raises(DeserializationError):
        rec.reader.dispatch([msgpack.packb(["/user/ok", 0]), msgpack.packb(envelope), msgpack.packb(["/user/ok", 1])])
    assert rec.events == [("deliver", "/user/ok", 0)]  # nothing after the refused body


@pytest.mark.parametrize("module", IMPLS)
def test_special_messages_and_stopping(module: ModuleType) -> None:
    rec = Recorder(module, decode=lambda body: body)
    bodies = [
        ["/user/a", 1],
        [CONTROL, "ping"],
        ["/user/a", Special()],
        ["/user/b", Special(stop=True)],
        ["/user/a", 2],
    ]
    assert rec.reader.dispatch(bodies) == 4
    assert rec.events == [
        ("deliver", "/user/a", 1),
        ("special", CONTROL, "'ping'"),
        ("special", "/user/a", "Special(stop=False)"),
        ("special", "/user/b", "Special(stop=True)"),
    ]
    rec.reader.closed = True
    assert rec.reader.dispatch([["/user/a", 3]]) == 0
    assert len(rec.events) == 4


@pytest.mark.parametrize("module", IMPLS)
def test_decoder_errors_pass_through(module: ModuleType) -> None:
    def decode(body: bytes) -> Any:
        raise DeserializationError("bad body")

    rec = Recorder(module, decode=decode)
    with pytest.raises(DeserializationError, match="bad body"):
        rec.reader.dispatch([b"x"])
    with pytest.raises(TypeError):
        module.EnvelopeReader(decode, print, print, 5, Special)
    with pytest.raises(TypeError):
        rec.reader.dispatch((b"x",))


@pytest.mark.parametrize("module", IMPLS)
def test_marked_and_gone_targets(module: ModuleType) -> None:
    events: list[tuple[str, str, Any]] = []
    gone: set[str] = set()

    def marked(key: str) -> str:
        path, _, incarnation = key.partition("\x00")
        if incarnation == "1":
            return path  # this process's incarnation: the mark is dropped
        gone.add(key)
        return key

    def special(path: str, msg: Any) -> bool:
        events.append(("special", path, msg))
        return True

    reader = module.EnvelopeReader(
        lambda body: body,
        lambda path, msg: events.append(("deliver", path, msg)),
        special,
        CONTROL,
        Special,
        marked,
        gone,
    )
    bodies: list[Any] = [
        [[0, "/user/a\x001"], 1],
        [[1, "/user/b\x002"], 2],
        [0, 3],
        [1, 4],
        ["/temp/x\x002", 5],
        ["/user/c", 6],
    ]
    assert reader.dispatch(bodies) == 6
    assert reader.taken == 6
    assert reader.paths == ["/user/a", "/user/b\x002"]
    assert events == [
        ("deliver", "/user/a", 1),
        ("special", "/user/b\x002", 2),
        ("deliver", "/user/a", 3),
        ("special", "/user/b\x002", 4),
        ("special", "/temp/x\x002", 5),
        ("deliver", "/user/c", 6),
    ]


@pytest.mark.parametrize("module", IMPLS)
def test_own_mark_is_dropped_without_calling_marked(module: ModuleType) -> None:
    """A target ending in this process's own incarnation mark (and holding no other NUL) is
    taken without a call; every other marked target still goes through ``marked``."""
    asked: list[str] = []
    events: list[tuple[str, Any]] = []

    def marked(key: str) -> str:
        asked.append(key)
        return key.partition("\x00")[0]

    reader = module.EnvelopeReader(
        lambda body: body,
        lambda path, msg: events.append((path, msg)),
        lambda path, msg: True,
        CONTROL,
        Special,
        marked,
        set(),
        "\x00a1",
    )
    bodies: list[Any] = [
        ["/user/a\x00a1", 1],
        [[0, "/user/b\x00a1"], 2],
        [0, 3],
        ["/user/c\x00b2", 4],
        ["/user/d\x00x\x00a1", 5],
        ["\x00a1", 6],
    ]
    assert reader.dispatch(bodies) == 6
    assert events == [("/user/a", 1), ("/user/b", 2), ("/user/b", 3), ("/user/c", 4), ("/user/d", 5), ("", 6)]
    assert asked == ["/user/c\x00b2", "/user/d\x00x\x00a1"]
    with pytest.raises(TypeError):
        module.EnvelopeReader(lambda b: b, print, print, CONTROL, Special, marked, None, "a1")


@pytest.mark.parametrize("module", IMPLS)
def test_taken_counts_the_failing_body(module: ModuleType) -> None:
    def decode(body: Any) -> Any:
        if body == "bad":
            raise DeserializationError("bad body")
        return body

    rec = Recorder(module, decode=decode)
    bodies: list[Any] = [["/user/a", 1], "bad", ["/user/a", 2]]
    with pytest.raises(DeserializationError):
        rec.reader.dispatch(bodies)
    assert rec.reader.taken == 2
    assert rec.reader.dispatch(bodies[2:]) == 1
    assert rec.reader.taken == 1
    assert [e[2] for e in rec.events] == [1, 2]


targets = st.one_of(
    st.integers(-2, 6),
    st.sampled_from(["/user/a", "/temp/1", CONTROL]),
    st.lists(st.one_of(st.integers(-1, 4), st.text(max_size=3)), min_size=0, max_size=3),
    st.none(),
    st.booleans(),
)
messages = st.one_of(st.integers(), st.text(max_size=4), st.none(), st.builds(Special, st.booleans()))
envelopes = st.one_of(
    st.lists(st.one_of(targets, messages), min_size=0, max_size=3), st.tuples(targets, messages).map(list)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(envelopes, max_size=6), max_size=4))
def test_twins_agree(batches: list[list[Any]]) -> None:
    results = []
    for module in BOTH:
        rec = Recorder(module, decode=lambda body: body)
        outcomes = [rec.run(batch)[0] for batch in batches]
        results.append((outcomes, rec.events, list(rec.reader.paths)))
    assert all(r == results[0] for r in results), results


# --------------------------------------------------------------------------- envelopes out


class Sink:
    """The writer's outside world: a frame encoder, the written bytes, the refused messages."""

    def __init__(self, module: ModuleType, chunk: int = 1 << 20, pause_after: int = 0) -> None:
        from collections import deque

        from casty._fastpath import FrameEncoder

        self.frames = FrameEncoder(1 << 16)
        self.written: list[bytes] = []
        self.refused: list[tuple[str, Any, str]] = []
        self.pause_after = pause_after
        self.queue: deque[tuple[str, Any]] = deque()
        self.writer = module.EnvelopeWriter(self.encode, self.frames, self.write, self.on_error, chunk)

    @staticmethod
    def encode(envelope: Any) -> bytes:
        from casty.errors import FrameTooLarge, SerializationError

        msg = envelope[1]
        if msg == "unencodable":
            raise SerializationError("cannot serialize")
        if msg == "huge":
            raise FrameTooLarge(1 << 30, 1 << 16)
        data: bytes = msgpack.packb(envelope)
        return data

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.pause_after and len(self.written) >= self.pause_after:
            self.writer.paused = True

    def on_error(self, path: str, msg: Any, exc: Exception) -> None:
        self.refused.append((path, msg, type(exc).__name__))


def decode_frames(written: list[bytes]) -> list[Any]:
    from casty._fastpath import FrameDecoder

    frames = FrameDecoder(1 << 16)
    return [msgpack.unpackb(body) for body in frames.feed(b"".join(written))]


@pytest.mark.parametrize("module", IMPLS)
def test_writer_defines_paths_once_and_batches(module: ModuleType) -> None:
    sink = Sink(module)
    sink.queue.extend(
        [
            ("/user/a", 1),
            ("/user/a", 2),
            ("/temp/9", 3),
            ("/user/b", "unencodable"),
            ("/user/b", 4),
            ("/user/c", "huge"),
        ]
    )
    assert sink.writer.write_queue(sink.queue) == 6
    assert len(sink.written) == 1  # one write for the whole queue
    assert decode_frames(sink.written) == [[[0, "/user/a"], 1], [0, 2], ["/temp/9", 3], [[1, "/user/b"], 4]]
    assert sink.writer.paths == {"/user/a": 0, "/user/b": 1}
    assert sink.refused == [("/user/b", "unencodable", "SerializationError"), ("/user/c", "huge", "FrameTooLarge")]
    assert sink.writer.write_queue(sink.queue) == 0 and len(sink.written) == 1


@pytest.mark.parametrize("module", IMPLS)
def test_writer_stops_when_paused(module: ModuleType) -> None:
    sink = Sink(module, chunk=20, pause_after=1)
    sink.queue.extend(("/user/a", "x" * 30) for _ in range(5))
    assert sink.writer.write_queue(sink.queue) == 1  # the first chunk filled the socket's buffer
    assert len(sink.queue) == 4 and len(sink.written) == 1
    sink.writer.paused = False
    sink.pause_after = 0
    assert sink.writer.write_queue(sink.queue) == 4
    assert len(decode_frames(sink.written)) == 5
    with pytest.raises(ValueError):
        module.EnvelopeWriter(Sink.encode, sink.frames, print, print, 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/user/a", "/user/b", "/temp/1", "/user/c/d"]),
            st.sampled_from([1, "s", None, "unencodable", "huge"]),
        ),
        max_size=20,
    ),
    st.integers(1, 64),
    st.integers(0, 4),
)
def test_writer_twins_agree(items: list[tuple[str, Any]], chunk: int, pause_after: int) -> None:
    results = []
    for module in BOTH:
        sink = Sink(module, chunk, pause_after)
        sink.queue.extend(items)
        taken = sink.writer.write_queue(sink.queue)
        results.append((taken, sink.written, sink.refused, dict(sink.writer.paths), list(sink.queue)))
    assert all(r == results[0] for r in results)
