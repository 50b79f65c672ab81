"""The producing side of a stream: ``stream_producer()`` and its local :class:`SinkRef`.

Over 500 lines on purpose: the producer actor and the ``SinkRef`` share one core object whose
buffer, unacknowledged store, demand ledger, resend, byte-bounded runs, drain and stats are
one protocol state machine; splitting it would put one invariant in two files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from casty._fastpath import DONE, ProducerLedger, RunStore, SinkBuffer
from casty.actors.behaviors import Behavior, Behaviors
from casty.actors.context import ActorContext
from casty.actors.events import Terminated
from casty.actors.ref import ActorRef
from casty.errors import CastyError, DrainingError, ElementTooLarge, ProtocolError, StreamCancelled
from casty.observe.stats import RateMeter, StreamStats, register_stream
from casty.serde import RecordRun
from casty.streams._drain import registry_of
from casty.streams._messages import (
    CompleteStream,
    FailStream,
    GetSink,
    Push,
    StreamCancel,
    StreamCompleted,
    StreamDemand,
    StreamElement,
    StreamElements,
    StreamError,
    StreamProducerMsg,
    Subscribe,
    Subscribed,
    SubscriptionRefused,
)

__all__ = ["SinkRef", "stream_producer"]

T = TypeVar("T")

_Terminal = StreamCompleted | StreamError
_NOT_WATCHABLE = "not watchable"


class _ProducerCore(Generic[T]):
    """State of one producer actor, shared with its SinkRef (same process, same event loop).

    ``buffer`` holds elements not sent yet (at most ``capacity`` unless unbounded): it is the
    SinkRef itself, whose ``put`` appends to it; ``unacked`` holds the elements sent but not
    acknowledged, i.e. sequence numbers ``ledger.acked .. ledger.next_seq - 1`` in order, kept
    (as the runs they were sent in) for resending.
    """

    __slots__ = (
        "__weakref__",
        "batch",
        "buffer",
        "closed_reason",
        "ctx",
        "cut_at",
        "defer",
        "drain_reason",
        "dropped",
        "end_acked",
        "error",
        "ledger",
        "loop",
        "meter",
        "progress_at",
        "put_waiters",
        "reliable",
        "resend_handle",
        "resend_interval",
        "resends",
        "self_ref",
        "sink",
        "subscriber",
        "tell",
        "terminal",
        "terminal_sent",
        "unacked",
    )

    def __init__(self, ctx: ActorContext[Any], capacity: int, unbounded: bool, resend_interval: float) -> None:
        self.ctx = ctx
        self.self_ref: ActorRef[Any] = ctx.self
        self.loop = ctx.system.loop
        self.sink: SinkRef[T] = SinkRef(self, capacity, unbounded)
        #: the elements not sent yet (the SinkRef is the buffer); a flush is asked for with
        #: ``buffer.schedule()``, which calls ``buffer.defer(self._flush)`` once subscribed
        self.buffer: SinkRef[T] = self.sink
        self.buffer.flush_cb = self._flush
        self.ledger = ProducerLedger()
        self.unacked = RunStore()
        self.subscriber: ActorRef[Any] | None = None
        self.tell: Callable[[Any], None] | None = None
        # insertion-ordered set: a cancelled or timed-out put removes its own waiter in O(1)
        self.put_waiters: dict[asyncio.Future[None], None] = {}
        self.terminal: _Terminal | None = None
        self.terminal_sent: _Terminal | None = None
        self.closed_reason: str | None = None
        self.resend_interval = resend_interval
        self.resend_handle: asyncio.TimerHandle | None = None
        self.progress_at = 0.0
        # statistics: derived from the ledger and the buffers when asked; only resends are
        # counted and the rate sampled once per demand message (never per element)
        self.resends = 0
        self.dropped = 0
        self.end_acked = False
        cfg = ctx.system.config.streams
        self.meter: RateMeter | None = None
        if cfg.stats:
            self.meter = RateMeter(cfg.stats_window)
            register_stream(ctx.system, self)
        self.batch = 0
        # casty's own consumer acknowledges and gets resends; a plain subscriber's demand is
        # its acknowledgement (nothing kept once sent)
        self.reliable = True
        #: why the stream failed on this side (an element too large to send), raised by put()
        self.error: CastyError | None = None
        #: sequence number the stream was cut at (unacked then ends there, not at next_seq)
        self.cut_at = -1
        self.drain_reason: str | None = None

    # -- the SinkRef side ----------------------------------------------------------------
    def has_room(self) -> bool:
        return self.buffer.has_room()

    def refuse(self) -> NoReturn:
        if self.error is not None:
            raise self.error
        if self.drain_reason is not None:
            raise DrainingError(f"stream of {self.self_ref} accepts no new elements: {self.drain_reason}")
        if self.closed_reason is not None:
            raise StreamCancelled(f"stream of {self.self_ref} no longer accepts elements: {self.closed_reason}")
        raise StreamCancelled(f"stream of {self.self_ref} was already ended with complete() or fail()")

    async def wait_for_room(self) -> None:
        fut: asyncio.Future[None] = self.loop.create_future()
        waiters = self.put_waiters
        waiters[fut] = None
        try:
            await fut
        finally:
            # cancelled or timed out: leave nothing behind (woken waiters were already removed),
            # not even the table of a dict that once held many waiters
            waiters = self.put_waiters
            waiters.pop(fut, None)
            if not waiters:
                self.put_waiters = {}

    def _wake_putters(self) -> None:
        waiters = self.put_waiters
        if waiters:
            self.put_waiters = {}
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def end(self, terminal: _Terminal) -> None:
        """Record the end of the stream; it is sent once the buffer drained."""
        if self.terminal is None and self.closed_reason is None:
            self.terminal = terminal
            self.buffer.accepting = False
            self.buffer.schedule()
            self._wake_putters()

    # -- sending -------------------------------------------------------------------------
    def _flush(self) -> None:
        self.buffer.flush_pending = False
        self.send_new()

    def send_new(self) -> None:
        """Send as many buffered elements as demand allows, then the terminal signal if due."""
        tell = self.tell
        if tell is None or self.closed_reason is not None:
            return
        ledger = self.ledger
        buf = self.buffer
        n = ledger.sendable()
        if n > 0 and buf:
            if n > len(buf):
                n = len(buf)
            if not self._pending():
                self.progress_at = self.loop.time()
            batch = self.batch
            if not self.reliable:
                seq = ledger.take_many(n)
                for element in buf.take(n):
                    tell(StreamElement(element, seq))
                    seq += 1
                # demand is the acknowledgement: nothing is kept for resending
                ledger.update(0, ledger.next_seq)
                self._wake_putters()
            elif batch > 1:
                # each run is sent as one message and kept as one run: the store keeps a copy,
                # so a local subscriber that changes the list it was sent changes no resend
                keep_run = self.unacked.add_run
                take_run = buf.take
                take_many = ledger.take_many
                while n > 0:
                    k = n if n < batch else batch
                    run = take_run(k)
                    first = take_many(k)
                    keep_run(run[:])
                    tell(StreamElements(first, run))
                    n -= k
            else:
                # one element a message, kept as one run
                run = buf.take(n)
                seq = ledger.take_many(n)
                self.unacked.add_run(run)
                for element in run:
                    tell(StreamElement(element, seq))
                    seq += 1
            if self.reliable:
                self._arm_resend()
                self._wake_putters()
        if not buf and self.terminal is not None and self.terminal_sent is None:
            if not self._pending():
                self.progress_at = self.loop.time()
            t = self.terminal
            sent: _Terminal
            if isinstance(t, StreamCompleted):
                sent = StreamCompleted(ledger.next_seq)
            else:
                sent = StreamError(t.cause_type, t.cause_message, ledger.next_seq)
            self.terminal_sent = sent
            tell(sent)
            if self.reliable:
                self._arm_resend()
            else:
                # a plain subscriber does not acknowledge the end: the stream is over once sent
                self.close("stream already ended")
                self.ctx.system.stop(self.self_ref)

    def _pending(self) -> bool:
        return self.ledger.unacked() > 0 or self.terminal_sent is not None

    def _resend(self) -> None:
        tell = self.tell
        if tell is None or self.closed_reason is not None:
            return
        seq = self.ledger.acked
        batch = self.batch
        self.resends += 1
        if batch > 1:
            for chunk in self.unacked.chunks(batch):
                tell(StreamElements(seq, RecordRun(chunk)))
                seq += len(chunk)
        else:
            for element in self.unacked.items():
                tell(StreamElement(element, seq))
                seq += 1
        if self.terminal_sent is not None:
            tell(self.terminal_sent)
        self.progress_at = self.loop.time()

    def _arm_resend(self) -> None:
        if self.resend_handle is None:
            self.resend_handle = self.loop.call_at(self.progress_at + self.resend_interval, self._on_resend_timer)

    def _on_resend_timer(self) -> None:
        self.resend_handle = None
        if self.closed_reason is not None or not self._pending():
            return
        if self.loop.time() - self.progress_at >= self.resend_interval:
            self._resend()
        self._arm_resend()

    def _trim(self) -> None:
        """Forget the elements the consumer acknowledged."""
        unacked = self.unacked
        ledger = self.ledger
        end = ledger.next_seq if self.cut_at < 0 else self.cut_at
        drop = len(unacked) - (end - ledger.acked)
        if drop > 0:
            unacked.trim(drop)
            self.progress_at = self.loop.time()

    # -- statistics ----------------------------------------------------------------------
    def stats(self) -> StreamStats:
        ledger = self.ledger
        sent = ledger.next_seq
        # the consumer acknowledges the end (with everything before it) by its StreamCancel
        delivered = sent if (self.end_acked or not self.reliable) else ledger.acked
        meter = self.meter
        subscriber = self.subscriber
        peer = ""
        if subscriber is not None:
            address = subscriber.system_address
            peer = f"{address.host}:{address.port}{subscriber.path}" if address.host else subscriber.path
        return StreamStats(
            stream=self.self_ref.path,
            role="producer",
            peer=peer,
            accepted=sent + len(self.buffer) + self.dropped,
            delivered=delivered,
            buffered=len(self.buffer),
            unacked=sent - delivered,
            demand=0 if self.closed_reason is not None else ledger.sendable(),
            resends=self.resends,
            rate=meter.rate(delivered, self.loop.time()) if meter is not None else 0.0,
            done=self.closed_reason is not None or (self.terminal_sent is not None and sent == delivered),
        )

    # -- closing -------------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """Stop accepting elements, free the buffers, release every waiting ``put``."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self.buffer.accepting = False
            self._unregister()
        self.dropped += self.buffer.clear()
        self.unacked.clear()
        if self.resend_handle is not None:
            self.resend_handle.cancel()
            self.resend_handle = None
        self._wake_putters()

    def _unregister(self) -> None:
        consumer = self.subscriber
        if consumer is None:
            return
        cores = _SENDERS.get(consumer)
        if cores is not None and self in cores:
            cores.remove(self)
            if not cores:
                del _SENDERS[consumer]

    def owns(self, seq: int, element: Any) -> bool:
        """True when ``element`` is the one this producer sent as ``seq`` and still holds."""
        k = seq - self.ledger.acked
        if self.cut_at >= 0:
            return False
        return 0 <= k < len(self.unacked) and self.unacked.get(k) is element

    def fail_too_large(self, seq: int, size: int, limit: int) -> None:
        """Element ``seq`` cannot be sent: fail the stream after the elements before it."""
        if self.closed_reason is not None or self.cut_at >= 0:
            return
        error = ElementTooLarge(size, limit, seq)
        self.error = error
        self.ctx.log.warning("stream of %s fails: %s", self.self_ref, error)
        self.cut_at = seq
        keep = seq - self.ledger.acked
        unacked = self.unacked
        if len(unacked) > keep > -1:
            unacked.truncate(keep)
        self.buffer.clear()
        failed = StreamError(ElementTooLarge.__name__, str(error), seq)
        self.terminal = failed
        self.buffer.accepting = False
        self.terminal_sent = failed
        self._wake_putters()
        if self.tell is not None:
            self.tell(failed)
        if self.reliable:
            self.progress_at = self.loop.time()
            self._arm_resend()
        else:
            self.close(f"stream failed: {error}")
            self.ctx.system.stop(self.self_ref)

    def _protocol_failure(self, exc: Exception) -> Behavior[Any]:
        self.ctx.log.warning("stream protocol error, failing the stream of %s: %s", self.self_ref, exc)
        if self.tell is not None:
            self.tell(StreamError(type(exc).__name__, str(exc), self.ledger.next_seq))
        self.close(f"stream failed: {exc}")
        return Behaviors.stopped()

    def on_stop(self, ctx: ActorContext[Any]) -> None:
        self.close(f"producer {self.self_ref} stopped")
        registry_of(ctx.system).remove(self)

    def drain(self, reason: str) -> None:
        """The system drains: accept nothing new; complete the stream after what was accepted
        (a stream nobody subscribed to cannot deliver its buffer: it is closed, and stopped
        with the system)."""
        if self.drain_reason is not None:
            return
        self.drain_reason = reason
        if self.subscriber is None:
            if self.buffer:
                self.ctx.log.warning(
                    "%s drains with %d elements nobody subscribed to: they are dropped", self.self_ref, len(self.buffer)
                )
            # closed (put and subscriptions refused) but left running to answer GetSink; the
            # drain does not wait for it
            self.close(reason)
            registry_of(self.ctx.system).remove(self)
            return
        self.end(StreamCompleted())
        self._wake_putters()

    # -- the actor -----------------------------------------------------------------------
    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
        if isinstance(msg, StreamDemand):
            return self._on_demand(msg)
        if isinstance(msg, Push):
            if self.terminal is not None or self.closed_reason is not None:
                ctx.system.dead_letter(msg, self.self_ref, "stream already ended")
            elif not self.has_room():
                ctx.system.dead_letter(msg, self.self_ref, "stream buffer full")
            else:
                self.buffer.append(msg.element)
                self.send_new()
            return None
        if isinstance(msg, Subscribe):
            return self._on_subscribe(msg)
        if isinstance(msg, StreamCancel):
            if self.terminal_sent is not None:
                # the consumer's acknowledgement of the end, or a cancel that crossed it
                self.end_acked = msg.reason == "stream ended"
                self.close("stream already ended")
            else:
                self.close(f"stream cancelled by the consumer: {msg.reason}")
            return Behaviors.stopped()
        if isinstance(msg, Terminated):
            # "not watchable": a ref without death watch (e.g. a test probe) is not a stopped consumer
            if msg.ref == self.subscriber and msg.reason != _NOT_WATCHABLE:
                self.close(f"consumer {msg.ref} stopped")
                return Behaviors.stopped()
            return None
        if isinstance(msg, GetSink):
            msg.reply_to.tell(self.sink)
            return None
        if isinstance(msg, CompleteStream):
            self.end(StreamCompleted())
            self.send_new()
            return None
        if isinstance(msg, FailStream):
            self.end(StreamError(msg.cause_type, msg.cause_message))
            self.send_new()
            return None
        return Behaviors.unhandled()

    def _on_demand(self, msg: StreamDemand) -> Behavior[Any] | None:
        ledger = self.ledger
        try:
            if msg.requested_total >= 0 or msg.received_total >= 0:
                ledger.update(max(msg.requested_total, 0), max(msg.received_total, 0))
            else:
                ledger.request(msg.n)
        except (ProtocolError, TypeError) as exc:
            return self._protocol_failure(exc)
        self._trim()
        meter = self.meter
        if meter is not None:
            meter.sample(ledger.acked if self.reliable else ledger.next_seq, self.loop.time())
        if msg.resend:
            self._resend()
        self.send_new()
        return None

    def _on_subscribe(self, msg: Subscribe[Any]) -> Behavior[Any] | None:
        consumer = msg.consumer
        if self.subscriber is not None and consumer != self.subscriber:
            consumer.tell(
                SubscriptionRefused(
                    f"{self.self_ref} already streams to {self.subscriber}; a stream has a single subscriber"
                )
            )
            return None
        if self.closed_reason is not None:
            consumer.tell(SubscriptionRefused(f"{self.self_ref} is closed: {self.closed_reason}"))
            return None
        if self.drain_reason is not None and self.subscriber is None:
            consumer.tell(SubscriptionRefused(f"{self.self_ref} accepts no new subscription: {self.drain_reason}"))
            return None
        first = self.subscriber is None
        reliable = bool(msg.reliable) if first else self.reliable
        try:
            if reliable:
                if msg.demand != 0:
                    self.ledger.update(msg.demand, 0)
            elif first and msg.demand != 0:
                self.ledger.request(msg.demand)
        except (ProtocolError, TypeError) as exc:
            if self.subscriber is None:
                consumer.tell(SubscriptionRefused(f"invalid subscription: {exc}"))
                return None
            return self._protocol_failure(exc)
        if first:
            self.subscriber = consumer
            self.tell = consumer.tell
            # the subscriber's "run this just before your next write" (a remote consumer's
            # transport), so a flush fills the same write() in the same loop turn; else call_soon
            self.buffer.defer = getattr(consumer.target, "flush_with", None) or self.loop.call_soon
            _SENDERS.setdefault(consumer, []).append(self)
            self.reliable = reliable
            self.batch = max(0, min(int(msg.batch), _MAX_BATCH)) if reliable else 0
            self.ctx.watch(consumer)
        consumer.tell(Subscribed(self.self_ref))
        self.send_new()
        return None


_MAX_BATCH = 4096

#: the producers of this process by subscriber: the transport reports an element it cannot
#: send (too large for a frame) by recipient, and the producer that sent it fails its stream
_SENDERS: dict[ActorRef[Any], list[_ProducerCore[Any]]] = {}


def element_too_large(recipient: ActorRef[Any], seq: int, element: Any, size: int, limit: int) -> bool:
    """The transport could not send element ``seq`` to ``recipient`` (``size`` bytes encoded,
    over ``limit``): the producer that sent it fails its stream. False when none is known."""
    cores = _SENDERS.get(recipient)
    if not cores:
        return False
    core = next((c for c in cores if c.owns(seq, element)), None)
    if core is None:
        # a plain subscriber's elements are not kept: the only plain producer streaming to it
        plain = [c for c in cores if not c.reliable and seq < c.ledger.next_seq]
        if len(plain) != 1:
            return False
        core = plain[0]
    core.fail_too_large(seq, size, limit)
    return True


def limit_run_length(recipient: ActorRef[Any], k: int) -> None:
    """A run to ``recipient`` was too large for a frame: later runs hold at most ``k`` elements."""
    for core in _SENDERS.get(recipient, ()):
        if core.reliable and core.batch > k:
            core.batch = max(1, k)


class SinkRef(SinkBuffer, Generic[T]):
    """The local handle that feeds a stream producer (get it with ``GetSink``).

    ``await put(x)`` appends to the producer's bounded buffer and waits only while it is
    full (with room, ``x`` is appended by the call itself and the awaitable it returns is
    already done; asyncio also takes it as a coroutine, for ``create_task`` or ``wait_for``); ``complete()`` / ``fail(exc)`` end the stream after the buffered elements.  Once
    the consumer went away, ``put`` raises :class:`~casty.StreamCancelled`.  A SinkRef never
    leaves its process: it cannot be pickled or sent in a message.
    """

    __slots__ = ("_core",)

    def __init__(self, core: _ProducerCore[T], capacity: int, unbounded: bool) -> None:
        SinkBuffer.__init__(self, capacity, unbounded, RecordRun)
        self._core = core

    # put(element) -> Awaitable[None] and offer(element) -> bool come from SinkBuffer (compiled
    # with the fast paths): an element that fits is appended at once and ``put`` returns an
    # awaitable that is already done; otherwise ``put`` returns ``_put_waiting(element)``.
    if TYPE_CHECKING:

        def put(self, element: T) -> Awaitable[None]:
            """Append ``element``; wait while the buffer is full."""
            ...

        def offer(self, element: T) -> bool:
            """Append ``element`` if the buffer has room (True) or refuse it (False) without waiting."""
            ...

    async def _put_waiting(self, element: T) -> None:
        """``put`` when the buffer is full or the stream no longer accepts elements."""
        core = self._core
        while True:
            if core.terminal is not None or core.closed_reason is not None:
                core.refuse()
            if self.has_room():
                self.append(element)
                self.schedule()
                return
            await core.wait_for_room()

    def _refuse(self) -> NoReturn:
        self._core.refuse()

    def complete(self) -> Awaitable[None]:
        """End the stream normally once the buffered elements were sent (no-op once ended).

        The end is recorded at once; the returned awaitable is already done, so
        ``sink.complete()`` and ``await sink.complete()`` are the same.
        """
        core = self._core
        if core.error is not None:
            raise core.error
        core.end(StreamCompleted())
        return DONE

    def fail(self, exc: BaseException) -> Awaitable[None]:
        """Fail the stream with ``exc`` (its type name and message reach the consumer).

        Like :meth:`complete`, it takes effect at once and may be awaited or not.
        """
        self._core.end(StreamError(type(exc).__name__, str(exc)))
        return DONE

    @property
    def closed(self) -> bool:
        """True once the stream no longer accepts elements (ended, cancelled or stopped)."""
        return self._core.terminal is not None or self._core.closed_reason is not None

    @property
    def producer(self) -> ActorRef[Any]:
        """The producer actor this sink feeds."""
        return self._core.self_ref

    def stats(self) -> StreamStats:
        """This stream as its producer sees it: elements accepted (put, offered or pushed) and
        delivered (acknowledged by the consumer), buffered (not sent yet), unacknowledged (sent,
        kept for resending), outstanding demand, resends and the delivery rate over the last
        ``[streams] stats_window`` seconds (0 with ``[streams] stats = false``)."""
        return self._core.stats()

    def __repr__(self) -> str:
        return f"SinkRef({self._core.self_ref})"

    def __reduce__(self) -> Any:
        raise TypeError("a SinkRef is local to its process and cannot be pickled; send the producer's ActorRef")


def stream_producer(buffer_size: int | None = None, *, unbounded: bool = False) -> Behavior[StreamProducerMsg[Any]]:
    """A stream producer actor: fed through its ``SinkRef`` (``GetSink``) or with ``Push``.

    It buffers up to ``buffer_size`` elements (default ``[streams] buffer_size``; no limit
    with ``buffer_size=0`` or ``unbounded=True``) before anyone subscribed or while demand
    is exhausted, streams
    to a single subscriber and stops when the stream ended or the subscriber went away.
    The element type is not fixed here: annotate the ``SinkRef[T]`` that ``GetSink`` returns.
    """
    if buffer_size is not None and (
        not isinstance(buffer_size, int) or isinstance(buffer_size, bool) or buffer_size < 0
    ):
        raise ValueError(f"buffer_size must be a non-negative integer (0: unbounded), got {buffer_size!r}")
    if buffer_size == 0:
        unbounded = True

    async def setup(ctx: ActorContext[StreamProducerMsg[Any]]) -> Behavior[StreamProducerMsg[Any]]:
        cfg = ctx.system.config.streams
        core: _ProducerCore[Any] = _ProducerCore(
            ctx, buffer_size if buffer_size is not None else cfg.buffer_size, unbounded, cfg.resend_interval
        )
        registry_of(ctx.system).add_producer(core)
        # a restart starts a new stream: the old SinkRef is closed rather than left hanging
        return Behaviors.with_lifecycle(
            Behaviors.receive(core.receive), post_stop=core.on_stop, pre_restart=core.on_stop
        )

    return Behaviors.setup(setup)
