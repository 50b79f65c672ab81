"""The consuming side of a stream: ``stream_consumer()`` and its local :class:`SourceRef`.

Over 500 lines on purpose: the consumer actor and the ``SourceRef`` share one core object
(same process, same loop) whose window, acknowledgement, resend and timeout rules are one
protocol state machine; splitting it would put one invariant in two files.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from casty._fastpath import ConsumerWindow
from casty.actors.behaviors import Behavior, Behaviors
from casty.actors.context import ActorContext
from casty.actors.events import Terminated
from casty.actors.ref import ActorRef
from casty.errors import ProtocolError, StreamCancelled, StreamFailed, StreamTimeoutError
from casty.observe.stats import RateMeter, StreamStats, register_stream
from casty.streams._drain import registry_of
from casty.streams._messages import (
    GetSource,
    StreamCancel,
    StreamCompleted,
    StreamConsumerMsg,
    StreamDemand,
    StreamElement,
    StreamElements,
    StreamError,
    StreamProducerMsg,
    Subscribe,
    Subscribed,
    SubscriptionRefused,
)

__all__ = ["SourceRef", "stream_consumer"]

T = TypeVar("T")


def _completed() -> None:
    return None


class _ConsumerCore(Generic[T]):
    """State of one consumer actor, shared with its SourceRef (same process, same event loop).

    ``queue`` holds the elements that arrived in order and were not taken by the user yet.
    ``outcome`` is None while the stream runs; then a callable that returns None (completed)
    or the exception the user's iteration raises.
    """

    __slots__ = (
        "__weakref__",
        "acked_total",
        "batch",
        "ctx",
        "demand_at",
        "discarded",
        "heard_mark",
        "last_heard",
        "last_sent",
        "loop",
        "meter",
        "outcome",
        "pending_terminal",
        "producer",
        "queue",
        "resend_asked_at",
        "resend_asked_for",
        "resend_interval",
        "resends",
        "self_ref",
        "source",
        "subscribed",
        "tick_handle",
        "timeout",
        "timeout_handle",
        "waiters",
        "window",
    )

    def __init__(
        self,
        ctx: ActorContext[Any],
        producer: ActorRef[Any],
        timeout: float,
        window: int,
        resend_interval: float,
    ) -> None:
        self.ctx = ctx
        self.self_ref: ActorRef[Any] = ctx.self
        self.producer = producer
        self.loop = ctx.system.loop
        self.timeout = timeout
        self.resend_interval = resend_interval
        self.window = ConsumerWindow(window)
        # elements per StreamElements message we accept: a quarter of the window keeps several
        # runs in flight while amortising the per-message costs
        self.batch = max(1, min(window // 4, 512))
        self.queue: deque[T] = deque()
        self.waiters: list[asyncio.Future[None]] = []
        self.outcome: Callable[[], BaseException | None] | None = None
        self.pending_terminal: StreamCompleted | StreamError | None = None
        self.subscribed = False
        now = self.loop.time()
        self.last_heard = now
        self.last_sent = now
        # when new demand was last granted: the inactivity timeout counts from here (or from the
        # last message heard), never from the consumer's own retries
        self.demand_at = now
        self.acked_total = 0
        self.heard_mark = 0
        self.resend_asked_for = -1
        self.resend_asked_at = 0.0
        self.tick_handle: asyncio.TimerHandle | None = None
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.source: SourceRef[T] = SourceRef(self)
        # statistics: derived from the window and the queue when asked; only resend requests
        # are counted and the rate sampled once per demand update (never per element)
        self.resends = 0
        self.discarded = 0
        cfg = ctx.system.config.streams
        self.meter: RateMeter | None = None
        if cfg.stats:
            self.meter = RateMeter(cfg.stats_window)
            register_stream(ctx.system, self)

    # -- starting --------------------------------------------------------------------------
    def start(self) -> None:
        self.ctx.watch(self.producer)
        self.producer.tell(Subscribe(self.self_ref, self.window.initial(), self.batch, reliable=True))
        self.last_sent = self.demand_at = self.loop.time()
        self.timeout_handle = self.loop.call_at(self.last_sent + self.timeout / 4, self._on_timeout)
        self.tick_handle = self.loop.call_later(self.resend_interval / 2, self._on_tick)

    # -- the SourceRef side ----------------------------------------------------------------
    async def wait(self) -> None:
        fut: asyncio.Future[None] = self.loop.create_future()
        self.waiters.append(fut)
        await fut

    def _wake(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def consumed(self, k: int) -> None:
        """The user took ``k`` elements: top up the demand when a batch was consumed."""
        if self.outcome is not None:
            return
        increment = self.window.consumed(k)
        if increment:
            self.send_demand(increment)

    def send_demand(self, increment: int) -> None:
        window = self.window
        received = window.expected
        self.producer.tell(StreamDemand(increment, window.requested_total, received))
        self.acked_total = received
        now = self.last_sent = self.demand_at = self.loop.time()
        meter = self.meter
        if meter is not None:
            meter.sample(received - len(self.queue), now)

    def cancel(self, reason: str) -> None:
        """The user stopped consuming: cancel upstream and stop the consumer actor."""
        if self.outcome is None:
            self._cancel_upstream(reason)
            self._finish(_completed)
        self.discarded += len(self.queue)
        self.queue.clear()
        self._stop_actor()

    def reached_end(self) -> None:
        """The user's iteration saw the end of the stream: the consumer actor is no longer needed."""
        self._stop_actor()

    def _stop_actor(self) -> None:
        self.ctx.system.stop(self.self_ref)  # idempotent

    # -- statistics ----------------------------------------------------------------------------
    def stats(self) -> StreamStats:
        window = self.window
        accepted = window.expected
        delivered = accepted - len(self.queue) - self.discarded
        meter = self.meter
        address = self.producer.system_address
        peer = f"{address.host}:{address.port}{self.producer.path}" if address.host else self.producer.path
        return StreamStats(
            stream=self.self_ref.path,
            role="consumer",
            peer=peer,
            accepted=accepted,
            delivered=delivered,
            buffered=len(self.queue),
            unacked=0 if self.outcome is not None else accepted - self.acked_total,
            demand=0 if self.outcome is not None else max(0, window.requested_total - accepted),
            resends=self.resends,
            rate=meter.rate(delivered, self.loop.time()) if meter is not None else 0.0,
            done=self.outcome is not None and not self.queue,
        )

    # -- ending ------------------------------------------------------------------------------
    def _finish(self, outcome: Callable[[], BaseException | None]) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.pending_terminal = None
        for handle in (self.tick_handle, self.timeout_handle):
            if handle is not None:
                handle.cancel()
        self.tick_handle = self.timeout_handle = None
        self.ctx.unwatch(self.producer)
        self._wake()

    def _fail(self, make: Callable[[], BaseException], cancel_upstream: str | None) -> None:
        if self.outcome is not None:
            return
        if cancel_upstream is not None:
            self._cancel_upstream(cancel_upstream)
        self._finish(make)

    def _cancel_upstream(self, reason: str) -> None:
        # Only a confirmed subscriber cancels: the producer may stream to another consumer.
        # An unconfirmed subscription the producer did accept ends through its death watch.
        if self.subscribed:
            self.producer.tell(StreamCancel(reason))

    def _deliver_terminal(self, msg: StreamCompleted | StreamError) -> None:
        # acknowledge: the producer may stop now
        self.producer.tell(StreamCancel("stream ended"))
        if isinstance(msg, StreamCompleted):
            self._finish(_completed)
        else:
            producer, cause_type, cause_message = self.producer, msg.cause_type, msg.cause_message

            def make() -> BaseException:
                return StreamFailed(
                    f"stream from {producer} failed: {cause_type}: {cause_message}", cause_type, cause_message
                )

            self._finish(make)

    def on_stop(self, ctx: ActorContext[Any]) -> None:
        registry_of(ctx.system).remove(self)
        if self.outcome is None:
            self._cancel_upstream("consumer stopped")
            ref = self.self_ref

            def make() -> BaseException:
                return StreamCancelled(f"stream consumer {ref} was stopped before the stream ended")

            self._finish(make)

    # -- timers ----------------------------------------------------------------------------
    def _heard(self, now: float) -> float:
        """Time anything was last heard from the producer (elements count when a timer looks)."""
        expected = self.window.expected
        if expected != self.heard_mark:
            self.heard_mark = expected
            self.last_heard = now
        return self.last_heard

    def _waiting(self) -> bool:
        """True while the consumer waits for the producer (no subscription yet, or open demand)."""
        window = self.window
        return not self.subscribed or window.requested_total > window.expected

    def _on_timeout(self) -> None:
        """Fail the stream after ``timeout`` seconds of waiting in vain.

        Elements do not read the clock; this check samples progress instead and, while the
        stream moves, looks again every timeout / 4, so a stall is noticed within 1.25 x timeout.
        """
        self.timeout_handle = None
        if self.outcome is not None:
            return
        now = self.loop.time()
        last = max(self._heard(now), self.demand_at)
        if not self._waiting():
            self.timeout_handle = self.loop.call_at(now + self.timeout, self._on_timeout)
            return
        if now - last >= self.timeout:
            producer, timeout, subscribed = self.producer, self.timeout, self.subscribed

            def make() -> BaseException:
                what = "element" if subscribed else "subscription confirmation"
                return StreamTimeoutError(f"no {what} from {producer} within {timeout}s")

            self._fail(make, "consumer timed out")
            return
        self.timeout_handle = self.loop.call_at(min(last + self.timeout, now + self.timeout / 4), self._on_timeout)

    def _on_tick(self) -> None:
        """Every resend_interval / 2: retry the subscription, acknowledge, re-send lost demand."""
        self.tick_handle = None
        if self.outcome is not None:
            return
        now = self.loop.time()
        self._heard(now)
        interval = self.resend_interval
        if not self.subscribed:
            if now - self.last_sent >= interval:
                self.producer.tell(Subscribe(self.self_ref, self.window.requested_total, self.batch, reliable=True))
                self.last_sent = now
        else:
            window = self.window
            received = window.expected
            idle = (
                (window.requested_total > received or self.pending_terminal is not None)
                and now - self.last_heard >= interval
                and now - self.last_sent >= interval
            )
            if idle or received > self.acked_total:
                if idle:
                    self.resends += 1
                self.producer.tell(StreamDemand(0, window.requested_total, received, resend=idle))
                self.acked_total = received
                self.last_sent = now
        self.tick_handle = self.loop.call_later(interval / 2, self._on_tick)

    def _on_user_demand(self, msg: StreamDemand) -> None:
        """A ``StreamDemand(n)`` told to the consumer: ``n`` more elements from the producer.

        The demand is added to this consumer's window (its own top-ups pause until consumption
        brings the outstanding demand back within the window) and forwarded in the cumulative
        form, which also acknowledges what arrived; before the subscription is confirmed it
        goes out as a repeated subscription carrying the new total. A demand of ``n <= 0`` is
        a protocol error and is refused here without reaching the producer.
        """
        if self.outcome is not None:
            return
        n = msg.n
        if type(n) is not int or n <= 0:
            self.ctx.log.warning("ignoring StreamDemand(%r) told to %s: demand must be positive", n, self.self_ref)
            return
        window = self.window
        increment = window.grant(n)
        if not increment:
            return  # already unbounded
        if self.subscribed:
            self.send_demand(increment)
        else:
            self.producer.tell(Subscribe(self.self_ref, window.requested_total, self.batch, reliable=True))
            self.last_sent = self.demand_at = self.loop.time()

    def _ask_resend(self) -> None:
        window = self.window
        expected = window.expected
        now = self.loop.time()
        if expected != self.resend_asked_for or now - self.resend_asked_at >= self.resend_interval:
            self.resend_asked_for = expected
            self.resend_asked_at = now
            self.resends += 1
            self.producer.tell(StreamDemand(0, window.requested_total, expected, resend=True))
            self.acked_total = expected
            self.last_sent = now

    def _on_run(self, msg: StreamElements[Any]) -> None:
        """A run of consecutive elements: accept the new ones, drop duplicates, report a gap."""
        if self.outcome is not None:
            return
        self.subscribed = True
        window = self.window
        elements = msg.elements
        first = msg.first_seq
        try:
            if type(first) is not int or not isinstance(elements, list):
                raise TypeError("StreamElements needs an int first_seq and a list of elements")
            skip = window.expected - first
            if skip < 0:
                window.receive(first)  # validates; a gap is reported below
                self._ask_resend()
                return
            fresh = elements[skip:] if skip else elements
            if fresh:
                window.receive_many(len(fresh))
        except (ProtocolError, TypeError, ValueError) as exc:
            text = str(exc)

            def make() -> BaseException:
                return StreamFailed(f"stream protocol error: {text}", "ProtocolError", text)

            self.ctx.log.warning("stream protocol error from %s: %s", self.producer, exc)
            self._fail(make, f"protocol error: {text}")
            return
        if fresh:
            self.queue.extend(fresh)
            if self.waiters:
                self._wake()
            pending = self.pending_terminal
            if pending is not None and window.expected >= pending.total:
                self._deliver_terminal(pending)

    # -- the actor -----------------------------------------------------------------------------
    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
        if isinstance(msg, StreamElement):
            if self.outcome is not None:
                return None
            # no clock read per element: the timers compare ``window.expected`` with ``heard_mark``
            self.subscribed = True
            window = self.window
            seq = msg.seq
            try:
                accepted = window.receive(seq if seq >= 0 else window.expected)
            except (ProtocolError, TypeError) as exc:
                text = str(exc)

                def make() -> BaseException:
                    return StreamFailed(f"stream protocol error: {text}", "ProtocolError", text)

                self.ctx.log.warning("stream protocol error from %s: %s", self.producer, exc)
                self._fail(make, f"protocol error: {text}")
                return None
            if accepted == 1:
                self.queue.append(msg.element)
                if self.waiters:
                    self._wake()
                pending = self.pending_terminal
                if pending is not None and window.expected >= pending.total:
                    self._deliver_terminal(pending)
            elif accepted < 0:
                self._ask_resend()
            return None
        if type(msg) is StreamElements:
            self._on_run(msg)
            return None
        if isinstance(msg, (StreamCompleted, StreamError)):
            if self.outcome is not None:
                # a repeated signal: our acknowledgement was lost
                self.producer.tell(StreamCancel("stream ended"))
                return None
            if self.pending_terminal is None:
                # only the first end signal is news; the producer repeats it while it waits for
                # the missing elements, and a repeat must not keep a stalled stream alive
                self.last_heard = self.loop.time()
            self.subscribed = True
            if msg.total < 0 or self.window.expected >= msg.total:
                self._deliver_terminal(msg)
            else:
                self.pending_terminal = msg
                self._ask_resend()
            return None
        if isinstance(msg, Subscribed):
            self.subscribed = True
            self.last_heard = self.loop.time()
            return None
        if isinstance(msg, GetSource):
            msg.reply_to.tell(self.source)
            return None
        if isinstance(msg, StreamCancel):
            # told by the consuming side's code: cancel upstream and end the iteration
            self.cancel(msg.reason)
            return None
        if isinstance(msg, StreamDemand):
            self._on_user_demand(msg)
            return None
        if isinstance(msg, SubscriptionRefused):
            if not self.subscribed:
                producer, reason = self.producer, msg.reason

                def make() -> BaseException:
                    return StreamFailed(f"subscription to {producer} refused: {reason}", "SubscriptionRefused", reason)

                self._fail(make, None)
            return None
        if isinstance(msg, Terminated):
            # "not watchable": a ref without death watch (e.g. a test probe) is not a stopped producer
            if msg.ref == self.producer and self.outcome is None and msg.reason != "not watchable":
                producer, why = self.producer, msg.reason

                def make() -> BaseException:
                    return StreamFailed(
                        f"stream producer {producer} terminated ({why}) before the stream ended", "Terminated", why
                    )

                self._fail(make, None)
            return None
        return Behaviors.unhandled()


class SourceRef(Generic[T]):
    """The local handle a stream is consumed from (get it with ``GetSource``).

    ``async for x in source`` yields the elements in order and ends when the stream
    completes; a failed stream raises :class:`~casty.StreamFailed`, a silent producer
    :class:`~casty.StreamTimeoutError`.  Leaving the loop early (``break``) or ``cancel()``
    cancels the stream upstream.  A SourceRef never leaves its process: it cannot be
    pickled or sent in a message.
    """

    __slots__ = ("_core",)

    def __init__(self, core: _ConsumerCore[T]) -> None:
        self._core = core

    def __aiter__(self) -> AsyncIterator[T]:
        return self._elements()

    async def _elements(self) -> AsyncIterator[T]:
        core = self._core
        queue = core.queue
        popleft = queue.popleft
        window = core.window
        finished = False
        try:
            while True:
                if queue:
                    if core.outcome is not None:
                        yield popleft()
                        continue
                    # Hand out a chunk of what already arrived with one window update: the chunk
                    # ends at the element whose taking tops up the demand, so demand goes out
                    # exactly when it did with one update per element.
                    due = window.requested_total - window.consumed_total - window.window + window.batch
                    k = len(queue)
                    if due < k:
                        k = due if due > 1 else 1
                    n = k - 1
                    for i in range(n):
                        if not queue:  # cancelled meanwhile: the queue was cleared
                            n = i
                            break
                        yield popleft()
                    if core.outcome is not None:
                        continue  # ended meanwhile: no demand to account for
                    if n < k - 1 or not queue:
                        if n:
                            window.consumed(n)
                        continue
                    element = popleft()
                    increment = window.consumed(k)
                    if increment:
                        core.send_demand(increment)
                    yield element
                    continue
                outcome = core.outcome
                if outcome is not None:
                    finished = True
                    core.reached_end()
                    error = outcome()
                    if error is not None:
                        raise error
                    return
                await core.wait()
        finally:
            if not finished:
                core.cancel("the consumer stopped iterating")

    async def batches(self, max_size: int) -> AsyncIterator[list[T]]:
        """Iterate lists of up to ``max_size`` elements that already arrived (each holds at least one)."""
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        core = self._core
        queue = core.queue
        popleft = queue.popleft
        finished = False
        try:
            while True:
                if queue:
                    n = min(len(queue), max_size)
                    batch = [popleft() for _ in range(n)]
                    core.consumed(n)
                    yield batch
                    continue
                outcome = core.outcome
                if outcome is not None:
                    finished = True
                    core.reached_end()
                    error = outcome()
                    if error is not None:
                        raise error
                    return
                await core.wait()
        finally:
            if not finished:
                core.cancel("the consumer stopped iterating")

    def cancel(self) -> None:
        """Stop consuming: the producer gets ``StreamCancel`` and iteration ends."""
        self._core.cancel("cancelled by the consumer")

    @property
    def done(self) -> bool:
        """True once the stream ended (completed, failed, timed out or cancelled)."""
        return self._core.outcome is not None

    @property
    def consumer(self) -> ActorRef[Any]:
        """The consumer actor this source reads from."""
        return self._core.self_ref

    def stats(self) -> StreamStats:
        """This stream as its consumer sees it: elements accepted (arrived in order) and
        delivered (handed to the consuming code), buffered (arrived, not taken yet),
        unacknowledged (arrived, not acknowledged to the producer yet), outstanding demand,
        resend requests and the delivery rate over the last ``[streams] stats_window`` seconds
        (0 with ``[streams] stats = false``)."""
        return self._core.stats()

    def __len__(self) -> int:
        """Elements that arrived and were not taken yet."""
        return len(self._core.queue)

    def __repr__(self) -> str:
        return f"SourceRef({self._core.self_ref} <- {self._core.producer})"

    def __reduce__(self) -> Any:
        raise TypeError("a SourceRef is local to its process and cannot be pickled; send the consumer's ActorRef")


def stream_consumer(
    producer: ActorRef[StreamProducerMsg[T]],
    *,
    timeout: float | None = None,
    initial_demand: int | None = None,
) -> Behavior[StreamConsumerMsg[T]]:
    """A stream consumer actor: subscribes to ``producer`` and hands its elements to a ``SourceRef``.

    ``initial_demand`` (default ``[streams] initial_demand``) is the window of elements
    requested ahead of consumption; demand is topped up once half of it was consumed.
    ``timeout`` (default ``[streams] timeout``) bounds the wait for the subscription and,
    while demand is open, for each next element.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    if initial_demand is not None and (not isinstance(initial_demand, int) or initial_demand < 1):
        raise ValueError(f"initial_demand must be a positive integer, got {initial_demand!r}")

    async def setup(ctx: ActorContext[StreamConsumerMsg[T]]) -> Behavior[StreamConsumerMsg[T]]:
        cfg = ctx.system.config.streams
        core: _ConsumerCore[T] = _ConsumerCore(
            ctx,
            producer,
            timeout if timeout is not None else cfg.timeout,
            initial_demand if initial_demand is not None else cfg.initial_demand,
            cfg.resend_interval,
        )
        core.start()
        registry_of(ctx.system).add_consumer(core)
        return Behaviors.with_lifecycle(
            Behaviors.receive(core.receive), post_stop=core.on_stop, pre_restart=core.on_stop
        )

    return Behaviors.setup(setup)
