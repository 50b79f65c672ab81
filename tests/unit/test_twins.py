"""Twins agree: every fast path's compiled and pure-Python modules behave identically.

Each property drives both implementations with the same generated operation sequence, in
lockstep, and compares everything observable after every step: return values, raised errors
(type and message), read-only state, and the calls a module makes into its collaborators.
Skipped when the compiled modules are not built (a pure install has nothing to compare).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casty import _fastpath
from casty._fastpath import FAST_PATHS, twins

pytestmark = pytest.mark.timeout(120)
HYP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parent.parent.parent


def _pair(name: str) -> tuple[ModuleType, ModuleType]:
    pure, compiled = twins(name)
    if compiled is None:
        pytest.skip(f"_{name}_c is not compiled")
    return pure, compiled


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """What ``fn(*args)`` did: ("ok", value) or ("raised", "Type: message")."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raised", f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Shape: same public names, same constants
# ---------------------------------------------------------------------------------------------


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


@pytest.mark.parametrize("name", FAST_PATHS)
def test_twins_expose_the_same_api(name: str) -> None:
    pure, compiled = _pair(name)
    assert pure.__all__ == compiled.__all__
    for attr in pure.__all__:
        a, b = getattr(pure, attr), getattr(compiled, attr)
        if isinstance(a, type):
            assert _public(a) == _public(b), attr
        elif isinstance(a, int | str | bytes | tuple | frozenset):
            assert a == b, attr


def test_nothing_outside_the_selector_imports_a_twin() -> None:
    """Code outside casty/_fastpath goes through the selector, never to `_x_py` / `_x_c`."""
    twin = re.compile(rf"_({'|'.join(FAST_PATHS)})_(py|c)$")
    offenders = []
    for path in sorted((ROOT / "casty").rglob("*.py")):
        if path.parent.name == "_fastpath":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if twin.search(n)]
    assert not offenders, offenders


def test_selector_uses_one_implementation_per_fast_path() -> None:
    for name in FAST_PATHS:
        pure, compiled = twins(name)
        assert _fastpath.modules[name] in (pure, compiled)
        if _fastpath.NO_EXTENSIONS:
            assert _fastpath.modules[name] is pure


# ---------------------------------------------------------------------------------------------
# Mailbox: a lockstep run of both runners on a scripted event loop
# ---------------------------------------------------------------------------------------------

SAME = object()
ACTIONS = (
    "none",  # async handler returning None
    "same",  # async handler returning the `same` sentinel
    "become",  # async handler returning a new behaviour
    "raise",  # async handler raising an Exception
    "base",  # async handler raising a BaseException that is not an Exception
    "suspend",  # async handler that really awaits: the runner hands it to the cell
    "sync_none",  # plain function returning None
    "sync_value",  # plain function returning a new behaviour
    "sync_raise",  # plain function raising
    "tell_self",  # handler putting a new message into its own mailbox
    "close_self",  # handler closing its own mailbox (the actor stops itself)
    "suspend_self",  # handler suspending its own mailbox
)


class _Stop(BaseException):
    pass


class _Yield:
    """An awaitable that suspends its coroutine once, yielding ``token``."""

    def __init__(self, token: object) -> None:
        self.token = token

    def __await__(self) -> Generator[object, None, None]:
        yield self.token


class _ScriptedLoop:
    """Stands in for the event loop: ``call_soon`` queues, ``turn`` runs what was queued."""

    def __init__(self) -> None:
        self.ready: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.ready.append(callback)

    def turn(self) -> None:
        ready, self.ready = self.ready, []
        for callback in ready:
            callback()


class _MailboxHarness:
    """One runner with its loop and cell; ``log`` records every call the runner makes out."""

    def __init__(self, module: ModuleType, capacity: int, strategy: int, throughput: int) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.loop = _ScriptedLoop()
        self.runner = module.MailboxRunner(
            self, self.loop, capacity, strategy, throughput, lambda m, r: self.log.append(("dead", m, r)), SAME
        )
        self.runner.ctx = "ctx"
        self.runner.receive = self.receive
        #: runs owed after ``offer`` returned True (a transport runs them at its batch's end)
        self.owed: list[Callable[[], None]] = []

    # the cell's side
    def _on_result(self, result: object, msg: object) -> None:
        self.log.append(("result", result, msg))

    def _on_failure(self, exc: BaseException, msg: object) -> None:
        self.log.append(("failure", type(exc).__name__, str(exc), msg))

    def _on_suspend(self, coro: Any, yielded: object, msg: object) -> None:
        self.log.append(("suspended", yielded, msg))
        coro.close()

    # the behaviour
    def receive(self, ctx: object, msg: tuple[int, str]) -> Any:
        self.log.append(("handle", ctx, msg))
        ident, action = msg
        if action == "sync_none":
            return None
        if action == "sync_value":
            return ("behaviour", ident)
        if action == "sync_raise":
            raise KeyError(ident)
        if action == "suspend_self":
            self.runner.suspend()
            return None
        return self._handle(ident, action)

    async def _handle(self, ident: int, action: str) -> object:
        if action == "same":
            return SAME
        if action == "become":
            return ("behaviour", ident)
        if action == "raise":
            raise ValueError(f"boom {ident}")
        if action == "base":
            raise _Stop(ident)
        if action == "suspend":
            await _Yield(("token", ident))
        if action == "tell_self":
            self.runner.put((ident + 1000, "none"))
        if action == "close_self":
            self.log.append(("closed by handler", self.runner.close()))
        return None

    def apply(self, op: tuple[Any, ...]) -> tuple[Any, ...]:
        runner = self.runner
        kind = op[0]
        if kind == "put":
            outcome = _outcome(runner.put, op[1])
        elif kind == "offer":
            outcome = _outcome(runner.offer, op[1])
            if outcome == ("ok", True):
                self.owed.append(runner.run)
        elif kind == "run_owed":
            owed, self.owed = self.owed, []
            outcome = _outcome(lambda: [run() for run in owed])
        elif kind == "turn":
            outcome = _outcome(self.loop.turn)
        else:
            outcome = _outcome(getattr(runner, kind))
        return (
            outcome,
            runner.size,
            runner.suspended,
            runner.closed,
            len(self.loop.ready),
            len(self.owed),
            list(self.log),
        )


_messages = st.tuples(st.integers(0, 999), st.sampled_from(ACTIONS))
_mailbox_ops = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["put", "offer"]), _messages),
        st.tuples(st.sampled_from(["turn", "run_owed", "resume", "suspend", "close"])),
    ),
    max_size=60,
)


@HYP
@given(
    capacity=st.integers(0, 4),
    strategy=st.integers(-1, 3),
    throughput=st.integers(0, 5),
    ops=_mailbox_ops,
)
def test_mailbox_twins_agree(capacity: int, strategy: int, throughput: int, ops: list[tuple[Any, ...]]) -> None:
    pure, compiled = _pair("mailbox")
    built = [_outcome(_MailboxHarness, m, capacity, strategy, throughput) for m in (pure, compiled)]
    if built[0][0] == "raised" or built[1][0] == "raised":
        assert built[0] == built[1]
        return
    harnesses: list[_MailboxHarness] = [b[1] for b in built]
    for step, op in enumerate([*ops, ("resume",), ("run_owed",), ("turn",), ("turn",), ("close",)]):
        seen = [h.apply(op) for h in harnesses]
        assert seen[0] == seen[1], f"step {step}: {op}"


def test_mailbox_constants_agree() -> None:
    pure, compiled = _pair("mailbox")
    assert (pure.DROP_NEW, pure.DROP_OLDEST, pure.REJECT) == (compiled.DROP_NEW, compiled.DROP_OLDEST, compiled.REJECT)
    assert (_fastpath.DROP_NEW, _fastpath.DROP_OLDEST, _fastpath.REJECT) == (
        pure.DROP_NEW,
        pure.DROP_OLDEST,
        pure.REJECT,
    )


# ---------------------------------------------------------------------------------------------
# Frame: encoder and decoder fed the same bodies and chunks, of every buffer type
# ---------------------------------------------------------------------------------------------


def _as_buffer(data: bytes, kind: str) -> object:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "memoryview_slice":
        return memoryview(b"xx" + data + b"yy")[2 : 2 + len(data)]
    if kind == "memoryview_words" and len(data) % 2 == 0:
        return memoryview(data).cast("H")  # a multi-byte format: its bytes count, not its items
    return data


_buffer_kinds = st.sampled_from(["bytes", "bytearray", "memoryview", "memoryview_slice", "memoryview_words"])
_limits = st.integers(0, 80) | st.sampled_from([-1, 0xFFFFFFFF, 0xFFFFFFFF + 1])


def _error_kind(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """TypeErrors from a non-buffer argument are worded by the interpreter: compare the type only."""
    if outcome[0] == "raised" and outcome[1].startswith("TypeError"):
        return ("raised", "TypeError")
    return outcome


@HYP
@given(
    limit=_limits,
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.binary(max_size=90), _buffer_kinds),
            st.tuples(st.just("add_wrong_type"), st.sampled_from(["text", 7, None])),
            st.tuples(st.just("take")),
            st.tuples(st.just("encode_frame"), st.binary(max_size=40), _buffer_kinds),
        ),
        max_size=30,
    ),
)
def test_frame_encoder_twins_agree(limit: int, ops: list[tuple[Any, ...]]) -> None:
    modules = _pair("frame")
    built = [_outcome(m.FrameEncoder, limit) for m in modules]
    if built[0][0] == "raised" or built[1][0] == "raised":
        assert built[0] == built[1]
        return
    for step, op in enumerate(ops):
        seen = []
        for module, (_, encoder) in zip(modules, built, strict=True):
            if op[0] == "add":
                outcome = _outcome(encoder.add, _as_buffer(op[1], op[2]))
            elif op[0] == "add_wrong_type":
                outcome = _error_kind(_outcome(encoder.add, op[1]))
            elif op[0] == "take":
                outcome = _outcome(encoder.take)
            else:
                outcome = _outcome(module.encode_frame, _as_buffer(op[1], op[2]))
            seen.append((outcome, encoder.pending_bytes, encoder.pending_frames))
        assert seen[0] == seen[1], f"step {step}: {op}"


@HYP
@given(
    limit=st.integers(0, 64),
    chunks=st.lists(st.tuples(st.binary(max_size=40), _buffer_kinds), max_size=15),
    prefix_sizes=st.lists(st.integers(0, 0xFFFFFFFF), max_size=3),
)
def test_frame_decoder_twins_agree(limit: int, chunks: list[tuple[bytes, str]], prefix_sizes: list[int]) -> None:
    modules = _pair("frame")
    # length prefixes of every size, some over the limit, mixed into the raw chunks
    chunks = chunks + [(n.to_bytes(4, "big") + b"body", "bytes") for n in prefix_sizes]
    decoders = [m.FrameDecoder(limit) for m in modules]
    for step, (data, kind) in enumerate(chunks):
        seen = [(_outcome(d.feed, _as_buffer(data, kind)), d.buffered, d.failure) for d in decoders]
        assert seen[0] == seen[1], f"step {step}: {data!r} as {kind}"
    wrong = [(_error_kind(_outcome(d.feed, "text")), d.buffered, d.failure) for d in decoders]
    assert wrong[0] == wrong[1]


# ---------------------------------------------------------------------------------------------
# Demand: ledger and window under the same calls, including bad and extreme arguments
# ---------------------------------------------------------------------------------------------

_counts = (
    st.integers(-3, 40)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**62 - 1, 2**62, 2**62 + 1, 2**63, -(2**63)])
    | st.sampled_from([True, 2.0, "3", None])
)


def _ledger_state(ledger: Any) -> tuple[Any, ...]:
    return (ledger.next_seq, ledger.acked, ledger.limit, ledger.sendable(), ledger.unacked(), repr(ledger))


@HYP
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("request"), _counts),
            st.tuples(st.just("take")),
            st.tuples(st.just("take_many"), _counts),
            st.tuples(st.just("update"), _counts, _counts),
        ),
        max_size=50,
    )
)
def test_producer_ledger_twins_agree(ops: list[tuple[Any, ...]]) -> None:
    ledgers = [m.ProducerLedger() for m in _pair("demand")]
    for step, op in enumerate(ops):
        seen = [(_outcome(getattr(p, op[0]), *op[1:]), _ledger_state(p)) for p in ledgers]
        assert seen[0] == seen[1], f"step {step}: {op}"


def _window_state(window: Any) -> tuple[Any, ...]:
    return (window.window, window.batch, window.expected, window.requested_total, window.consumed_total, repr(window))


@HYP
@given(
    size=_counts,
    batch=st.none() | _counts,
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("initial")),
            st.tuples(st.just("receive"), _counts),
            st.tuples(st.just("receive_many"), _counts),
            st.tuples(st.just("consumed"), _counts),
            st.tuples(st.just("consumed")),
            st.tuples(st.just("grant"), _counts),
        ),
        max_size=50,
    ),
)
def test_consumer_window_twins_agree(size: Any, batch: Any, ops: list[tuple[Any, ...]]) -> None:
    modules = _pair("demand")
    built = [_outcome(m.ConsumerWindow, size, batch) for m in modules]
    if built[0][0] == "raised" or built[1][0] == "raised":
        assert built[0] == built[1]
        return
    windows = [b[1] for b in built]
    for step, op in enumerate(ops):
        seen = [(_outcome(getattr(w, op[0]), *op[1:]), _window_state(w)) for w in windows]
        assert seen[0] == seen[1], f"step {step}: {op}"


# ---------------------------------------------------------------------------------------------
# Run codec: mapped record builders (a sender's fields mapped by name) under the same calls
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Frozen:
    a: Any
    b: Any = "b-default"
    c: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Slots:
    a: Any
    b: Any = 0
    c: Any = 1


class _Tuple(NamedTuple):
    a: Any
    b: Any = "x"
    c: Any = "y"


@dataclasses.dataclass
class _Called:
    a: Any
    b: list[Any] = dataclasses.field(default_factory=list)
    c: Any = dataclasses.field(default=3, kw_only=True)


def _refusing_factory() -> Any:
    raise LookupError("no value here")


#: class, kind name, positional fields
_MAPPED_CLASSES = [(_Frozen, "KIND_DICT", 3), (_Slots, "KIND_SLOTS", 3), (_Tuple, "KIND_TUPLE", 3), (_Called, "KIND_CALL", 2)]
_small = st.none() | st.integers(-5, 5) | st.text(max_size=3) | st.lists(st.integers(), max_size=2)
_factories = st.sampled_from([None, None, None, None, list, _refusing_factory, "not callable"])
_indices = st.integers(-2, 6) | st.sampled_from([True, 1.0, 2**70])


@st.composite
def _mappings(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A wire arity and sources: mostly a valid mapping (each field sent at a distinct index,
    or not sent), sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.integers(0, 5) | st.sampled_from([-1, 1.0])), draw(st.lists(_indices, max_size=4))
    wire_arity = draw(st.integers(0, 5))
    order = draw(st.permutations(range(wire_arity)))
    sent = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    sources = [order[k] if sent[k] and k < wire_arity else -1 for k in range(3)]
    return wire_arity, sources


@HYP
@given(
    case=st.sampled_from(_MAPPED_CLASSES),
    mapping=_mappings(),
    defaults=st.lists(_small, min_size=3, max_size=3),
    factories=st.lists(_factories, min_size=3, max_size=3),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("build"), st.lists(_small, max_size=7)),
            st.tuples(st.just("build_fit"), st.lists(_small, min_size=7, max_size=7), st.sampled_from([0, 0, 0, -1, 1])),
            st.tuples(st.just("make_fit"), st.lists(_small, min_size=7, max_size=7), st.sampled_from([0, 0, 0, -1, 1])),
            st.tuples(st.just("run"), st.lists(_small, min_size=12, max_size=12), st.integers(0, 2), st.integers(0, 2)),
            st.tuples(st.just("make"), st.lists(_small, max_size=6) | st.tuples(_small)),
            st.tuples(st.just("run"), st.lists(_small, max_size=14), st.integers(-1, 4), st.integers(-1, 4)),
        ),
        max_size=12,
    ),
)
def test_mapped_record_builder_twins_agree(
    case: tuple[type, str, int],
    mapping: tuple[Any, list[Any]],
    defaults: list[Any],
    factories: list[Any],
    ops: list[tuple[Any, ...]],
) -> None:
    cls, kind, npos = case
    wire_arity, sources = mapping
    names = ("a", "b", "c")
    modules = _pair("runcodec")
    built = [
        _outcome(
            m.MappedRecordBuilder,
            cls,
            names,
            npos,
            getattr(m, kind),
            wire_arity,
            tuple(sources),
            tuple(defaults),
            tuple(factories),
        )
        for m in modules
    ]
    assert built[0][0] == built[1][0] and (built[0][0] == "ok" or built[0] == built[1]), built
    if built[0][0] == "raised":
        return
    builders = [b[1] for b in built]
    assert [(b.arity, b.sources, b.kind, b.record_class) for b in builders] == [
        (wire_arity, tuple(sources), getattr(m, kind), cls) for m in modules
    ]
    for step, op in enumerate(ops):
        if op[0].endswith("_fit"):  # values as many as the sender's fields (give or take one)
            head = 1 if op[0] == "build_fit" else 0
            op = (op[0][:-4], op[1][: max(0, head + wire_arity + op[2])])
        seen = [_outcome(getattr(b, op[0]), *[list(a) if isinstance(a, list) else a for a in op[1:]]) for b in builders]
        assert seen[0] == seen[1], f"step {step}: {op}"
        if seen[0][0] == "ok":
            ok = seen[0][1]
            for value in ok if op[0] == "run" else [ok]:
                assert type(value) is cls


# ---------------------------------------------------------------------------------------------
# Demand: the producer's buffer (SinkBuffer) and unacknowledged store (RunStore)
# ---------------------------------------------------------------------------------------------

_small = st.integers(-2, 12) | st.sampled_from([2**62, 2**62 + 1, 2**70, True, 2.0, "3", None])


def _sink_buffer(module: ModuleType, capacity: Any, unbounded: bool, calls: list[Any]) -> Any:
    """A SinkBuffer of ``module`` whose waiting put and refusal are recorded, not awaited."""

    def _put_waiting(self: Any, element: Any) -> Any:
        return ("waiting", element)

    def _refuse(self: Any) -> Any:
        raise RuntimeError("refused")

    cls = type("Sink", (module.SinkBuffer,), {"_put_waiting": _put_waiting, "_refuse": _refuse})
    buf = cls(capacity, unbounded)
    buf.flush_cb = "flush"
    buf.defer = calls.append
    return buf


def _sink_state(buf: Any, module: ModuleType) -> tuple[Any, ...]:
    return (len(buf), bool(buf), buf.has_room(), buf.accepting, buf.flush_pending, buf.capacity, buf.unbounded)


def _normal(value: Any, module: ModuleType) -> Any:
    """DONE of either twin as one marker, so returned values compare across twins."""
    return "DONE" if value is module.DONE else value


@HYP
@given(
    capacity=_small,
    unbounded=st.booleans(),
    ops=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["put", "offer", "append"]), st.integers(0, 99)),
            st.tuples(st.sampled_from(["clear", "schedule", "flushed", "close", "has_room"])),
            st.tuples(st.just("take"), _small),
        ),
        max_size=60,
    ),
)
def test_sink_buffer_twins_agree(capacity: Any, unbounded: bool, ops: list[tuple[Any, ...]]) -> None:
    modules = _pair("demand")
    built = [_outcome(m.SinkBuffer, capacity, unbounded) for m in modules]
    assert [b[0] for b in built] == [built[0][0]] * 2
    if built[0][0] == "raised":
        assert built[0] == built[1]
        return
    calls: list[list[Any]] = [[], []]
    bufs = [_sink_buffer(m, capacity, unbounded, c) for m, c in zip(modules, calls, strict=True)]
    for step, op in enumerate(ops):
        seen = []
        for m, buf in zip(modules, bufs, strict=True):
            name = op[0]
            if name == "flushed":
                buf.flush_pending = False
                result: tuple[str, Any] = ("ok", None)
            elif name == "close":
                buf.accepting = False
                result = ("ok", None)
            else:
                result = _outcome(getattr(buf, name), *op[1:])
            if result[0] == "ok":
                value = result[1]
                result = ("ok", [list(value), type(value) is list] if isinstance(value, list) else _normal(value, m))
            seen.append((result, _sink_state(buf, m)))
        assert seen[0] == seen[1], f"step {step}: {op}"
        assert calls[0] == calls[1], f"step {step}: {op}"


@HYP
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 999)),
            st.tuples(st.just("add_run"), st.lists(st.integers(0, 999), max_size=7)),
            st.tuples(st.just("add_run"), st.sampled_from([(1, 2), "ab", None])),
            st.tuples(st.sampled_from(["trim", "truncate", "get", "chunks"]), _small),
            st.tuples(st.sampled_from(["items", "clear"])),
        ),
        max_size=80,
    )
)
def test_run_store_twins_agree(ops: list[tuple[Any, ...]]) -> None:
    stores = [m.RunStore() for m in _pair("demand")]
    for step, op in enumerate(ops):
        seen = [(_outcome(getattr(s, op[0]), *op[1:]), len(s), s.items(), repr(s)) for s in stores]
        assert seen[0] == seen[1], f"step {step}: {op}"


def test_done_twins_agree() -> None:
    for module in _pair("demand"):
        done = module.DONE
        assert type(done) is module.Done
        assert list(done.__await__()) == []
        assert _outcome(done.send, None) == ("raised", "StopIteration: ")
        assert _outcome(done.throw, ValueError("x")) == ("raised", "ValueError: x")
        assert done.close() is None
