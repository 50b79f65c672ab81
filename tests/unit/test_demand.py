"""Stream demand accounting: the pure-Python and the compiled implementation behave identically."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty._fastpath import _demand_py
from casty.errors import ProtocolError


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._demand_c")
    except ImportError:
        return None


_C = _compiled()
IMPLEMENTATIONS = [
    pytest.param(_demand_py, id="py"),
    pytest.param(_C, id="c", marks=pytest.mark.skipif(_C is None, reason="_demand_c is not compiled")),
]

MAX = 2**62


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Any:
    return request.param


def test_max_demand(impl: Any) -> None:
    assert impl.MAX_DEMAND == MAX
    assert _demand_py.MAX_DEMAND == MAX


# ---------------------------------------------------------------------------
# ProducerLedger
# ---------------------------------------------------------------------------


def test_ledger_starts_empty(impl: Any) -> None:
    p = impl.ProducerLedger()
    assert (p.next_seq, p.acked, p.limit) == (0, 0, 0)
    assert p.sendable() == 0
    assert p.unacked() == 0


def test_ledger_fields_are_read_only(impl: Any) -> None:
    p = impl.ProducerLedger()
    for name in ("next_seq", "acked", "limit"):
        with pytest.raises(AttributeError):
            setattr(p, name, 5)


def test_request_take_and_update(impl: Any) -> None:
    p = impl.ProducerLedger()
    p.request(3)
    assert p.limit == 3
    assert p.sendable() == 3
    assert [p.take(), p.take()] == [0, 1]
    assert p.sendable() == 1
    assert p.unacked() == 2
    p.update(10, 2)
    assert (p.limit, p.acked, p.unacked(), p.sendable()) == (10, 2, 0, 8)
    # cumulative updates never move backwards
    p.update(5, 1)
    assert (p.limit, p.acked) == (10, 2)


def test_take_without_demand_is_a_protocol_error(impl: Any) -> None:
    p = impl.ProducerLedger()
    with pytest.raises(ProtocolError, match="no demand for element 0"):
        p.take()
    p.request(1)
    p.take()
    with pytest.raises(ProtocolError):
        p.take()
    assert p.next_seq == 1


@pytest.mark.parametrize("n", [0, -1, -(2**70)])
def test_request_must_be_positive(impl: Any, n: int) -> None:
    p = impl.ProducerLedger()
    with pytest.raises(ProtocolError) as info:
        p.request(n)
    assert str(info.value) == f"demand must be positive, got {n}"
    assert p.limit == 0


def test_request_saturates(impl: Any) -> None:
    p = impl.ProducerLedger()
    p.request(2**80)
    assert p.limit == MAX
    p.request(MAX)
    p.request(1)
    assert p.limit == MAX
    q = impl.ProducerLedger()
    q.request(MAX - 1)
    q.request(1)
    assert q.limit == MAX
    q.request(2**63 + 5)
    assert q.limit == MAX
    assert q.sendable() == MAX


def test_update_saturates(impl: Any) -> None:
    p = impl.ProducerLedger()
    p.update(2**100, 0)
    assert p.limit == MAX
    p.update(2**63, 0)
    assert p.limit == MAX


@pytest.mark.parametrize(
    ("requested", "received", "message"),
    [
        (-1, 0, "requested_total must not be negative, got -1"),
        (-(2**90), 0, f"requested_total must not be negative, got {-(2**90)}"),
        (5, -1, "received_total must not be negative, got -1"),
        (5, 1, "consumer acknowledged 1 elements but only 0 were sent"),
        (5, 2**70, f"consumer acknowledged {2**70} elements but only 0 were sent"),
    ],
)
def test_update_protocol_errors(impl: Any, requested: int, received: int, message: str) -> None:
    p = impl.ProducerLedger()
    with pytest.raises(ProtocolError) as info:
        p.update(requested, received)
    assert str(info.value) == message
    assert (p.limit, p.acked) == (0, 0)


def test_update_acknowledges_up_to_next_seq(impl: Any) -> None:
    p = impl.ProducerLedger()
    p.request(4)
    for _ in range(4):
        p.take()
    p.update(4, 4)
    assert p.unacked() == 0
    with pytest.raises(ProtocolError):
        p.update(4, 5)


def test_resend_after_connection_loss(impl: Any) -> None:
    """The producer resends seqs acked..next_seq-1; the consumer drops what it already has."""
    p = impl.ProducerLedger()
    c = impl.ConsumerWindow(8, 4)
    p.request(c.initial())
    sent = [p.take() for _ in range(p.sendable())]
    assert sent == list(range(8))
    # only the first 5 arrive; the connection drops
    for seq in sent[:5]:
        assert c.receive(seq) == 1
    # consumer reconnects and reports its cumulative state
    p.update(c.requested_total, c.expected)
    assert p.acked == 5
    resend = list(range(p.acked, p.next_seq))
    assert resend == [5, 6, 7]
    assert [c.receive(s) for s in [3, 4, *resend]] == [0, 0, 1, 1, 1]
    assert c.expected == 8


def test_non_integer_arguments(impl: Any) -> None:
    p = impl.ProducerLedger()
    with pytest.raises(TypeError, match="demand must be an integer, got float"):
        p.request(1.5)
    with pytest.raises(TypeError, match="received_total must be an integer, got str"):
        p.update(1, "1")
    c = impl.ConsumerWindow(4)
    with pytest.raises(TypeError, match="seq must be an integer, got NoneType"):
        c.receive(None)


def test_repr(impl: Any) -> None:
    p = impl.ProducerLedger()
    p.request(2)
    assert repr(p) == "ProducerLedger(next_seq=0, acked=0, limit=2)"
    c = impl.ConsumerWindow(4)
    assert repr(c) == ("ConsumerWindow(window=4, batch=2, expected=0, requested_total=0, consumed_total=0)")


# ---------------------------------------------------------------------------
# ConsumerWindow
# ---------------------------------------------------------------------------


def test_window_defaults(impl: Any) -> None:
    assert impl.ConsumerWindow(10).batch == 5
    assert impl.ConsumerWindow(1).batch == 1
    assert impl.ConsumerWindow(3).batch == 1
    c = impl.ConsumerWindow(10, 3)
    assert (c.window, c.batch, c.expected, c.requested_total, c.consumed_total) == (10, 3, 0, 0, 0)


@pytest.mark.parametrize(
    ("window", "batch"),
    [(0, None), (-5, None), (2**63, None), (10, 0), (10, 11), (10, -1)],
)
def test_window_validation(impl: Any, window: int, batch: int | None) -> None:
    with pytest.raises(ValueError):
        impl.ConsumerWindow(window, batch)


def test_window_of_max_demand(impl: Any) -> None:
    c = impl.ConsumerWindow(MAX)
    assert c.initial() == MAX
    assert c.receive(0) == 1
    assert c.consumed() == 0
    assert c.requested_total == MAX


def test_initial(impl: Any) -> None:
    c = impl.ConsumerWindow(16, 4)
    assert c.initial() == 16
    assert c.requested_total == 16
    with pytest.raises(ProtocolError, match="already sent"):
        c.initial()


def test_grant_adds_demand_beyond_the_window_and_pauses_the_top_ups(impl: Any) -> None:
    c = impl.ConsumerWindow(4, 2)
    c.initial()
    assert c.grant(3) == 3
    assert c.requested_total == 7
    for seq in range(7):
        assert c.receive(seq) == 1
    with pytest.raises(ProtocolError, match="exceeds"):
        c.receive(7)
    # consumption tops up only once the outstanding demand is back within the window
    assert c.consumed(4) == 0
    assert c.consumed(1) == 2  # consumed 5, outstanding 2 <= window - batch: top up to 5 + 4
    assert c.requested_total == 9


@pytest.mark.parametrize("n", [0, -1, -(2**70)])
def test_grant_must_be_positive(impl: Any, n: int) -> None:
    c = impl.ConsumerWindow(4)
    with pytest.raises(ProtocolError, match="positive"):
        c.grant(n)
    with pytest.raises(TypeError, match="integer"):
        c.grant(1.5)
    assert c.requested_total == 0


def test_grant_saturates(impl: Any) -> None:
    c = impl.ConsumerWindow(4)
    c.initial()
    assert c.grant(2**70) == MAX - 4
    assert c.grant(1) == 0
    assert c.requested_total == MAX


def test_receive_classification(impl: Any) -> None:
    c = impl.ConsumerWindow(8)
    c.initial()
    assert c.receive(0) == 1
    assert c.receive(1) == 1
    assert c.expected == 2
    assert c.receive(0) == 0
    assert c.receive(1) == 0
    assert c.receive(5) == -1
    assert c.expected == 2
    assert c.receive(2) == 1


@pytest.mark.parametrize("seq", [8, 9, 2**70])
def test_receive_beyond_demand_is_a_protocol_error(impl: Any, seq: int) -> None:
    c = impl.ConsumerWindow(8)
    c.initial()
    with pytest.raises(ProtocolError) as info:
        c.receive(seq)
    assert str(info.value) == f"element {seq} exceeds the granted demand of 8 elements"


def test_receive_before_initial_is_a_protocol_error(impl: Any) -> None:
    c = impl.ConsumerWindow(8)
    with pytest.raises(ProtocolError):
        c.receive(0)


@pytest.mark.parametrize("seq", [-1, -(2**70)])
def test_negative_seq(impl: Any, seq: int) -> None:
    c = impl.ConsumerWindow(8)
    c.initial()
    with pytest.raises(ProtocolError) as info:
        c.receive(seq)
    assert str(info.value) == f"sequence number must not be negative, got {seq}"


def test_consumed_tops_up_per_batch(impl: Any) -> None:
    c = impl.ConsumerWindow(10, 4)
    assert c.initial() == 10
    for seq in range(10):
        assert c.receive(seq) == 1
    assert [c.consumed() for _ in range(3)] == [0, 0, 0]
    assert c.consumed() == 4
    assert c.requested_total == 14
    assert c.consumed(4) == 4
    assert c.requested_total == 18
    assert c.consumed(2) == 0
    assert c.consumed_total == 10


def test_consumed_errors(impl: Any) -> None:
    c = impl.ConsumerWindow(4)
    c.initial()
    c.receive(0)
    with pytest.raises(ProtocolError, match="consumed 2 elements but only 1 are pending"):
        c.consumed(2)
    with pytest.raises(ProtocolError, match="must not be negative"):
        c.consumed(-1)
    with pytest.raises(ProtocolError):
        c.consumed(2**80)
    assert c.consumed(0) == 0
    assert c.consumed_total == 0


# ---------------------------------------------------------------------------
# Property-based: invariants and identical behaviour
# ---------------------------------------------------------------------------

_ledger_ops = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.integers(min_value=-3, max_value=50) | st.integers(-(2**70), 2**70)),
        st.tuples(st.just("take"), st.integers(0, 20)),
        st.tuples(st.just("update"), st.integers(-2, 200) | st.integers(0, 2**66), st.integers(-2, 200)),
    ),
    max_size=60,
)


def _apply_ledger(p: Any, op: tuple[Any, ...]) -> str:
    """Apply one operation; return a trace of what happened (used to compare implementations)."""
    try:
        if op[0] == "request":
            p.request(op[1])
            return "ok"
        if op[0] == "take":
            return ",".join(str(p.take()) for _ in range(op[1]))
        p.update(op[1], op[2])
        return "ok"
    except ProtocolError as exc:
        return f"error: {exc}"


@settings(max_examples=300, deadline=None)
@given(_ledger_ops)
def test_ledger_invariants(ops: list[tuple[Any, ...]]) -> None:
    impls = [m for m in (_demand_py, _C) if m is not None]
    ledgers = [m.ProducerLedger() for m in impls]
    for op in ops:
        traces = []
        for p in ledgers:
            before = (p.next_seq, p.acked, p.limit)
            traces.append(_apply_ledger(p, op))
            assert 0 <= p.acked <= p.next_seq <= p.limit <= MAX
            assert p.sendable() == p.limit - p.next_seq >= 0
            assert p.unacked() == p.next_seq - p.acked
            assert p.limit >= before[2] and p.acked >= before[1] and p.next_seq >= before[0]
        assert len(set(traces)) == 1, traces
        assert len({(p.next_seq, p.acked, p.limit) for p in ledgers}) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 2**64), min_size=1, max_size=20))
def test_ledger_request_saturation(demands: list[int]) -> None:
    for m in (_demand_py, _C):
        if m is None:
            continue
        p = m.ProducerLedger()
        for n in demands:
            p.request(n)
        assert p.limit == min(sum(demands), MAX)


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 64),
    batch_fraction=st.floats(0.0, 1.0),
    total=st.integers(0, 2000),
    chunks=st.lists(st.integers(1, 70), min_size=1, max_size=10),
)
def test_flow_invariants_and_message_count(
    window: int, batch_fraction: float, total: int, chunks: list[int]
) -> None:
    """A producer and a consumer exchanging ``total`` elements over a reliable link."""
    batch = max(1, min(window, round(window * batch_fraction)))
    for m in (_demand_py, _C):
        if m is None:
            continue
        p = m.ProducerLedger()
        c = m.ConsumerWindow(window, batch)
        p.request(c.initial())
        messages = 1
        received = 0
        i = 0
        while c.consumed_total < total:
            # producer sends what it may, never beyond total
            while p.sendable() and p.next_seq < total:
                assert c.receive(p.take()) == 1
                received += 1
                assert c.requested_total - c.expected <= window
                assert c.expected - c.consumed_total <= window
                assert p.next_seq <= p.limit
            # the user consumes a chunk of what is pending
            pending = c.expected - c.consumed_total
            k = min(pending, chunks[i % len(chunks)])
            i += 1
            assert k > 0, "flow stalled"
            more = c.consumed(k)
            if more:
                messages += 1
                p.request(more)
                assert c.requested_total == c.consumed_total + window
            assert c.consumed_total <= c.expected <= c.requested_total <= c.consumed_total + window
        assert received == total
        # a top-up restores `window` outstanding and the next one needs `batch` more
        # consumed, so there is at most one demand message per batch (plus the initial)
        assert messages <= 1 + total // batch
        # requested_total grows by at most `window` per message and must cover `total`
        assert messages * window >= total
        if all(ch == 1 for ch in chunks):
            assert messages == 1 + total // batch


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(1, 16),
    events=st.lists(
        st.one_of(
            st.tuples(st.just("recv"), st.integers(-2, 40)),
            st.tuples(st.just("consume"), st.integers(-1, 6)),
        ),
        max_size=80,
    ),
)
def test_window_identical_and_bounded(window: int, events: list[tuple[str, int]]) -> None:
    impls = [m for m in (_demand_py, _C) if m is not None]
    windows = [m.ConsumerWindow(window) for m in impls]
    for w in windows:
        w.initial()
    for kind, value in events:
        traces = []
        for w in windows:
            try:
                if kind == "recv":
                    traces.append(str(w.receive(value)))
                else:
                    traces.append(str(w.consumed(value)))
            except ProtocolError as exc:
                traces.append(f"error: {exc}")
            assert w.consumed_total <= w.expected <= w.requested_total <= w.consumed_total + w.window
        assert len(set(traces)) == 1, traces
        if kind == "recv" and traces[0] not in ("1", "0", "-1"):
            assert traces[0].startswith("error")


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**62))
def test_window_saturates_near_max(window: int) -> None:
    for m in (_demand_py, _C):
        if m is None:
            continue
        c = m.ConsumerWindow(window, 1)
        c.initial()
        c.receive(0)
        c.consumed()
        assert c.requested_total <= MAX
        assert c.requested_total == min(1 + window, MAX)


def test_runs_take_and_receive_many(impl: Any) -> None:
    ledger = impl.ProducerLedger()
    ledger.request(10)
    assert ledger.take_many(4) == 0
    assert ledger.take_many(6) == 4
    with pytest.raises(ProtocolError):
        ledger.take_many(1)
    with pytest.raises(ProtocolError):
        ledger.take_many(0)
    window = impl.ConsumerWindow(8)
    window.initial()
    assert window.receive_many(5) == 5
    with pytest.raises(ProtocolError):
        window.receive_many(4)  # beyond the 8 granted
    assert window.receive(5) == 1 and window.expected == 6


# --------------------------------------------------------------------------- producer buffers


def test_done_is_an_awaitable_and_a_coroutine_to_asyncio(impl: Any) -> None:
    async def main() -> list[Any]:
        results = [await impl.DONE]
        results.append(await asyncio.create_task(impl.DONE))  # type: ignore[arg-type]
        results.append(await asyncio.wait_for(impl.DONE, 1))
        return results

    assert asyncio.run(main()) == [None, None, None]
    assert asyncio.iscoroutine(impl.DONE)


def _sink(impl: Any, capacity: int, unbounded: bool = False) -> tuple[Any, list[Any]]:
    class Sink(impl.SinkBuffer):  # type: ignore[misc, name-defined]
        def _put_waiting(self, element: Any) -> Any:
            return ("waiting", element)

        def _refuse(self) -> Any:
            raise RuntimeError("refused")

    calls: list[Any] = []
    buf = Sink(capacity, unbounded, list)
    buf.flush_cb = "flush"
    return buf, calls


def test_sink_buffer_accepts_up_to_capacity_and_asks_for_one_flush(impl: Any) -> None:
    buf, calls = _sink(impl, 3)
    assert buf.put(1) is impl.DONE  # nobody subscribed: no flush asked for
    assert calls == [] and not buf.flush_pending
    buf.defer = calls.append
    assert buf.put(2) is impl.DONE and buf.offer(3)
    assert calls == ["flush"] and buf.flush_pending  # one flush for both
    assert not buf.has_room() and len(buf) == 3
    assert buf.put(4) == ("waiting", 4)  # full: the subclass's waiting put
    assert not buf.offer(4)
    assert buf.take(1) == [1] and buf.take(2) == [2, 3] and len(buf) == 0
    buf.flush_pending = False
    buf.accepting = False
    assert buf.put(5) == ("waiting", 5)
    with pytest.raises(RuntimeError, match="refused"):
        buf.offer(5)


def test_sink_buffer_unbounded_and_runs(impl: Any) -> None:
    class Run(list):  # type: ignore[type-arg]
        pass

    buf = impl.SinkBuffer(0, True, Run)
    for i in range(300):
        buf.append(i)
    assert buf.has_room() and len(buf) == 300
    assert buf.take(100) == list(range(100))
    part = buf.take(50)
    assert type(part) is Run and part == list(range(100, 150))
    rest = buf.take(150)
    assert type(rest) is Run and rest == list(range(150, 300))
    assert len(buf) == 0 and buf.clear() == 0
    with pytest.raises(ValueError, match="cannot take 1 of 0"):
        buf.take(1)
    with pytest.raises(TypeError, match="run_type"):
        impl.SinkBuffer(1, False, tuple)
    with pytest.raises(ValueError, match="capacity"):
        impl.SinkBuffer(-1, False)


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers()),
            st.tuples(st.just("add_run"), st.lists(st.integers(), max_size=300)),
            st.tuples(st.just("trim"), st.integers(0, 400)),
            st.tuples(st.just("truncate"), st.integers(0, 400)),
        ),
        max_size=60,
    )
)
def test_run_store_holds_what_a_list_would(ops: list[tuple[str, Any]]) -> None:
    for module in [m for m in (_demand_py, _C) if m is not None]:
        store = module.RunStore()
        model: list[Any] = []
        for name, arg in ops:
            if name == "add":
                store.add(arg)
                model.append(arg)
            elif name == "add_run":
                store.add_run(arg)
                model.extend(arg)
            elif arg <= len(model):
                getattr(store, name)(arg)
                model = model[arg:] if name == "trim" else model[:arg]
            else:
                with pytest.raises(ValueError):
                    getattr(store, name)(arg)
            assert len(store) == len(model) and store.items() == model
            if model:
                assert store.get(len(model) - 1) == model[-1] and store.get(0) == model[0]
            assert [x for chunk in store.chunks(7) for x in chunk] == model
