"""ActorSystem: spawns actors, routes asks, keeps dead letters and the event stream.

Over 500 lines because it is also the declared seam other packages use (the delivery API:
``deliver``, ``run_delivered``, ``dead_letter``, ``local_actor``, ``watch_ended``,
``bind_temp``, ``not_sent``, ``stats``); those methods are small and belong with the tables they read.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, overload

from casty._fastpath import ReplySlot
from casty.actors.behaviors import Behavior
from casty.actors.cell import ActorCell, CellState
from casty.actors.events import (
    DeadLetter,
    EventStreamSubscribe,
    EventStreamUnsubscribe,
    Publish,
    Terminated,
)
from casty.actors.mailbox import Mailbox, MailboxOverflowStrategy
from casty.actors.receptionist import (
    Deregister,
    Find,
    Listing,
    Register,
    Registry,
    ServiceKey,
    Subscribe,
)
from casty.actors.ref import ActorRef, NodeAddress, RefTarget, SystemAddress
from casty.errors import AskTimeoutError, CastyError, MailboxFull
from casty.observe.counters import ASK_BUCKETS, AskLatency, dead_letter_kind

if TYPE_CHECKING:
    from casty.actors.scheduler import SchedulerMsg
    from casty.config import CastyConfig
    from casty.observe.stats import SystemStats

__all__ = ["ActorSystem", "InboundSource", "InvalidActorName", "System"]

log = logging.getLogger("casty.system")

M = TypeVar("M")
R = TypeVar("R")
T = TypeVar("T")


class InboundSource(Protocol):
    """Where a batch handed to :meth:`ActorSystem.deliver` came from (one network connection)."""

    #: messages delivered from this source so far (the delivery API counts them)
    delivered: int
    #: mailbox depth at which ``congested`` is called
    pressure_high: int

    def congested(self, mailbox: Any) -> None:
        """A mailbox this source delivered to is ``pressure_high`` messages deep."""


class InvalidActorName(CastyError, ValueError):
    """An actor name is empty, contains '/', or is taken by a sibling."""


class _DeadTarget:
    """Target of a ref to an actor that does not exist (any more) in this process."""

    __slots__ = ("path", "system")
    is_local = True

    def __init__(self, system: ActorSystem, path: str) -> None:
        self.system = system
        self.path = path

    def tell(self, msg: object) -> None:
        self.system.dead_letter(msg, None, f"no actor at {self.path}")

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        watcher.tell(Terminated(self.system._ref_for(self.path, self), "no such actor"))
        return True

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        return None


class _EventStream:
    """Publishes events to subscribers by type (an event reaches subscribers of its base types too)."""

    __slots__ = ("subscribers", "system")
    is_local = True

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.subscribers: dict[type, set[ActorRef[Any]]] = {}

    def tell(self, msg: object) -> None:
        if isinstance(msg, Publish):
            self.publish(msg.event)
        elif isinstance(msg, EventStreamSubscribe):
            self.subscribers.setdefault(msg.event_type, set()).add(msg.subscriber)
        elif isinstance(msg, EventStreamUnsubscribe):
            subs = self.subscribers.get(msg.event_type)
            if subs is not None:
                subs.discard(msg.subscriber)
                if not subs:
                    del self.subscribers[msg.event_type]
        else:
            self.system.dead_letter(msg, None, "the event stream accepts Publish/EventStreamSubscribe")

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        return False  # a system service: it lives as long as the system

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        return None

    def publish(self, event: object) -> None:
        for cls in type(event).__mro__:
            subs = self.subscribers.get(cls)
            if subs:
                for ref in list(subs):
                    ref.tell(event)

    def remove(self, ref: ActorRef[Any]) -> None:
        for key in [k for k, subs in self.subscribers.items() if ref in subs]:
            subs = self.subscribers[key]
            subs.discard(ref)
            if not subs:
                del self.subscribers[key]


class _ReceptionistTarget:
    """Handles Register/Deregister/Find/Subscribe told to ``system.receptionist``."""

    __slots__ = ("system",)
    is_local = True

    def __init__(self, system: ActorSystem) -> None:
        self.system = system

    def tell(self, msg: object) -> None:
        registry = self.system.registry
        if isinstance(msg, Register):
            self.system._register_service(msg.key, msg.ref)
            if msg.reply_to is not None:
                msg.reply_to.tell(msg.key)
        elif isinstance(msg, Deregister):
            self.system._deregister_service(msg.key, msg.ref)
        elif isinstance(msg, Find):
            msg.reply_to.tell(registry.listing(msg.key))
        elif isinstance(msg, Subscribe):
            registry.subscribe(msg.key, msg.reply_to)
        else:
            self.system.dead_letter(msg, None, "the receptionist accepts Register/Deregister/Find/Subscribe")

    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        return False  # a system service: it lives as long as the system

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        return None


class ActorSystem:
    """A tree of actors in this process.

    Use it as an async context manager (``async with ActorSystem("app") as system``); leaving
    the block stops every actor, children first, running their post-stop hooks.
    """

    def __init__(self, name: str | None = None, config: CastyConfig | None = None) -> None:
        """``name`` defaults to ``config``'s ``[system] name`` when a config is given, else
        ``"casty-system"``."""
        from casty.config import CastyConfig

        if name is None:
            name = config.system.name if config is not None else "casty-system"
        self.config: CastyConfig = config if config is not None else CastyConfig()
        self.name: str = name
        if not self.name or any(c in self.name for c in "/@: "):
            raise ValueError(f"invalid actor system name {self.name!r}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address: SystemAddress = SystemAddress(self.name)
        mb = self.config.defaults.mailbox
        self._default_mailbox: Mailbox[Any] = Mailbox(
            capacity=mb.capacity, strategy=MailboxOverflowStrategy(mb.strategy)
        )
        self._default_throughput: int = mb.throughput
        self._ask_timeout: float = self.config.actors.ask_timeout
        self._dead_letter_log_limit: int = self.config.actors.log_dead_letters
        self._cells: dict[str, ActorCell] = {}
        #: set by a transport around the delivery of one connection's batch (see ``deliver``)
        self.inbound_source: InboundSource | None = None
        #: mailboxes woken by deliveries from an inbound source, run by ``run_delivered`` (a
        #: transport looks at it to skip that call when the batch woke none)
        self.woken: list[Any] = []
        self._top: dict[str, ActorCell] = {}
        self._temp: dict[str, Any] = {}
        self._ask_ids = itertools.count(1)
        #: what a reply slot does with a message that came after its ask ended
        self._late_reply = self._dead_reply
        self._ask_deadlines = _AskDeadlines()
        #: id(message) -> (message, reply future) of asks sent to actors in other processes
        self._remote_asks: dict[int, tuple[object, asyncio.Future[Any]]] = {}
        self.dead_letters: int = 0
        #: dead letters counted by the kind of their reason (see ``casty.observe``)
        self.dead_letter_reasons: dict[str, int] = {}
        self.ask_latency = AskLatency()
        self._events = _EventStream(self)
        self.registry = Registry(self._self_node)
        self._shutdown_started = False
        self._terminated: asyncio.Future[None] | None = None
        self._termination_started: asyncio.Future[None] | None = None
        self._scheduler: ActorRef[Any] | None = None
        self.event_stream: ActorRef[EventStreamSubscribe[Any] | EventStreamUnsubscribe[Any] | Publish] = (
            ActorRef(self.address, "/system/eventStream", self._events.tell, self._events)
        )
        receptionist = _ReceptionistTarget(self)
        self.receptionist: ActorRef[Register[Any] | Deregister[Any] | Find[Any] | Subscribe[Any]] = ActorRef(
            self.address, "/system/receptionist", receptionist.tell, receptionist
        )

    # -- event loop ------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _self_node(self) -> NodeAddress | None:
        return None

    def _rebind_address(self, address: SystemAddress) -> None:
        """Give the system its network address (before any actor is spawned)."""
        if self._cells:
            raise RuntimeError("the system address must be set before actors are spawned")
        self.address = address
        self.event_stream = ActorRef(address, "/system/eventStream", self._events.tell, self._events)
        target = self.receptionist._target
        self.receptionist = ActorRef(address, "/system/receptionist", target.tell, target)

    async def __aenter__(self) -> Self:
        self.loop  # noqa: B018 - binds the running loop
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Start the system's services (nothing to do for a local system)."""
        self.loop  # noqa: B018

    # -- spawning --------------------------------------------------------------------------
    def spawn(self, behavior: Behavior[M], name: str, *, mailbox: Mailbox[Any] | None = None) -> ActorRef[M]:
        """Start a top-level actor at ``/user/<name>`` and return its ref."""
        return self._spawn_cell(behavior, name, None, mailbox)

    def _spawn_cell(
        self, behavior: Behavior[M], name: str, parent: ActorCell | None, mailbox: Mailbox[Any] | None
    ) -> ActorRef[M]:
        if self._shutdown_started:
            raise RuntimeError(f"actor system {self.name!r} is shutting down")
        if not isinstance(behavior, Behavior):
            raise TypeError(f"spawn needs a Behavior, got {type(behavior).__name__}")
        if not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
            raise InvalidActorName(f"invalid actor name {name!r}")
        siblings = parent.children if parent is not None else self._top
        existing = siblings.get(name)
        if existing is not None and existing.state is not CellState.STOPPED:
            raise InvalidActorName(f"actor name {name!r} is already taken under {parent.path if parent else '/user'}")
        if parent is not None and parent.state >= CellState.STOPPING:
            raise RuntimeError(f"{parent.path} is stopping; it cannot spawn children")
        path = f"{parent.path}/{name}" if parent is not None else f"/user/{name}"
        cell = ActorCell(self, parent, behavior, name, path, mailbox or self._default_mailbox)
        siblings[name] = cell
        self._cells[path] = cell
        if mailbox is not None:
            mailbox._attach(cell.mailbox)
        cell.start()
        return cell.ref

    @property
    def scheduler(self) -> ActorRef[SchedulerMsg]:
        """A scheduler actor (``ScheduleOnce``/``ScheduleTick``/``CancelSchedule``), started on
        first use at ``/user/_scheduler``."""
        ref = self._scheduler
        if ref is None or self._cells.get(ref.path) is None:
            from casty.actors.scheduler import scheduler

            ref = self._scheduler = self.spawn(scheduler(), "_scheduler")
        return ref

    def _stop_ref(self, ref: ActorRef[Any], requester: ActorCell | None = None) -> None:
        target = ref._target
        if isinstance(target, ActorCell) and target.system is self:
            target.stop()
        else:
            raise ValueError(f"{ref} is not an actor of this system; only local actors can be stopped")

    def stop(self, ref: ActorRef[Any]) -> asyncio.Future[None]:
        """Stop a local actor; the returned future completes once it (and its children) stopped."""
        target = ref._target
        if not isinstance(target, ActorCell) or target.system is not self:
            raise ValueError(f"{ref} is not an actor of this system")
        return target.stop()

    async def wait_terminated(self, ref: ActorRef[Any], timeout: float | None = None) -> None:
        """Wait until the local actor ``ref`` has stopped (``TimeoutError`` after ``timeout``)."""
        target = ref._target
        if not isinstance(target, ActorCell) or target.system is not self:
            raise ValueError(f"{ref} is not an actor of this system")
        async with asyncio.timeout(timeout):
            await asyncio.shield(target.stopped)

    def _on_cell_stopped(self, cell: ActorCell) -> None:
        if self._cells.get(cell.path) is cell:
            del self._cells[cell.path]
        siblings = cell.parent.children if cell.parent is not None else self._top
        if siblings.get(cell.name) is cell:
            del siblings[cell.name]
        self._events.remove(cell.ref)
        self.registry.unsubscribe_ref(cell.ref)
        self.registry.remove_ref(cell.ref)

    # -- lookup and addressing -----------------------------------------------------------------
    @overload
    def lookup(self, target: str) -> ActorRef[Any] | None: ...

    @overload
    def lookup(self, target: ServiceKey[M]) -> Awaitable[Listing[M]]: ...

    def lookup(self, target: str | ServiceKey[Any]) -> ActorRef[Any] | Awaitable[Listing[Any]] | None:
        """``lookup(path)`` gives the ref of the local actor at ``path``, or None (synchronous);
        ``await lookup(key)`` gives the current ``Listing`` of a service key.

        A path is absolute (``"/user/a/b"``) or relative to the user actors: ``"a"``, ``"/a"``
        and ``"a/b"`` name the top-level actor ``a`` and its child ``b``.
        """
        if isinstance(target, ServiceKey):
            return _ready(self.registry.listing(target))
        if not isinstance(target, str):
            raise TypeError(f"lookup takes an actor path or a ServiceKey, not {type(target).__name__}")
        return self._lookup_path(target)

    def _lookup_path(self, path: str) -> ActorRef[Any] | None:
        cell = self._cells.get(path)
        if cell is None:
            relative = path.strip("/")
            if not relative:
                return None
            cell = self._cells.get(f"/user/{relative}")
        return cell.ref if cell is not None else None

    def resolve_local(self, path: str) -> ActorRef[Any]:
        """The ref of a local path: an actor, a pending ask, a system service, or a dead ref."""
        cell = self._cells.get(path)
        if cell is not None:
            return cell.ref
        promise = self._temp.get(path)
        if promise is not None:
            return ActorRef(self.address, path, promise.tell, promise)
        if path == "/system/eventStream":
            return self.event_stream
        if path == "/system/receptionist":
            return self.receptionist
        dead = _DeadTarget(self, path)
        return self._ref_for(path, dead)

    def _ref_for(self, path: str, target: RefTarget) -> ActorRef[Any]:
        return ActorRef(self.address, path, target.tell, target)

    # -- delivery for transports and other layers -------------------------------------------------
    def local_actor(self, path: str) -> ActorRef[Any] | None:
        """The ref of the live actor at ``path`` in this system, or None (asks, system services
        and paths without an actor give None; ``resolve_local`` answers for those)."""
        cell = self._cells.get(path)
        return cell.ref if cell is not None else None

    def deliver(self, path: str, msg: object) -> None:
        """Deliver ``msg`` to whatever lives at the local ``path``: an actor's mailbox (a full
        mailbox that rejects makes it a dead letter), a pending ask, a system service, or, for
        a path with no actor, the dead letters.

        A transport delivering a batch read from one connection sets ``inbound_source`` to an
        :class:`InboundSource` for the batch: it counts the messages, and is told when an
        actor's mailbox is ``pressure_high`` deep so it can stop reading. The actors the batch
        woke up wait for :meth:`run_delivered`, which the transport calls when the batch is
        done."""
        cell = self._cells.get(path)
        source = self.inbound_source
        if cell is not None:
            mailbox = cell.mailbox
            if source is None:
                try:
                    mailbox.put(msg)
                except MailboxFull:
                    self.dead_letter(msg, cell.ref, "mailbox full (reject)")
                return
            source.delivered += 1
            try:
                if mailbox.offer(msg):
                    self.woken.append(mailbox)
            except MailboxFull:
                self.dead_letter(msg, cell.ref, "mailbox full (reject)")
                return
            if mailbox.size >= source.pressure_high:
                source.congested(mailbox)
            return
        if source is not None:
            source.delivered += 1
        promise = self._temp.get(path)
        if promise is not None:
            promise.tell(msg)  # an ask's reply: straight to its future
        else:
            self.resolve_local(path).tell(msg)

    def run_delivered(self) -> None:
        """Run the actors that messages delivered while ``inbound_source`` was set woke up, in
        the order they woke: a transport calls it at the end of each batch it read (never
        from inside an actor's turn), so they handle their messages in the same event-loop
        turn instead of the next one."""
        woken = self.woken
        if not woken:
            return
        self.woken = []
        for mailbox in woken:
            try:
                mailbox.run()
            except Exception:
                log.exception("running the mailbox of an actor failed")

    def bind_temp(self, path: str, target: RefTarget) -> ActorRef[Any]:
        """Make ``target`` reachable at the short-lived local ``path`` (under ``/temp/``), from
        this process and, like an ask's reply ref, from others; returns its ref."""
        if not path.startswith("/temp/"):
            raise ValueError(f"a temporary target's path starts with /temp/, got {path!r}")
        self._temp[path] = target
        return ActorRef(self.address, path, target.tell, target)

    def watch_ended(self, watcher_path: str, ref: ActorRef[Any]) -> None:
        """``ref``, watched by the local actor at ``watcher_path``, has terminated: the watcher
        no longer watches it (a transport calls this when the Terminated arrives from afar)."""
        cell = self._cells.get(watcher_path)
        if cell is not None:
            cell.watching.discard(ref)

    # -- ask -------------------------------------------------------------------------------
    async def ask(
        self, ref: ActorRef[Any], msg_factory: Callable[[ActorRef[R]], Any], timeout: float | None = None
    ) -> R:
        """Tell ``msg_factory(reply_to)`` to ``ref`` and await the first message sent to ``reply_to``.

        Raises :class:`~casty.AskTimeoutError` (a ``TimeoutError``) when no reply arrives in time
        (``timeout`` None: ``[actors] ask_timeout``).
        """
        loop = self._loop
        if loop is None:
            loop = self.loop
        if timeout is None:
            timeout = self._ask_timeout
        future: asyncio.Future[Any] = loop.create_future()
        ask_id = next(self._ask_ids)
        path = f"/temp/ask-{ask_id}"
        promise = ReplySlot(future, self._late_reply, ref)
        self._temp[path] = promise
        reply_to: ActorRef[R] = ActorRef(self.address, path, promise.tell, promise)
        started = loop.time()
        deadline = started + timeout
        deadlines = self._ask_deadlines
        pending: Any = deadlines.buckets.get(timeout)
        if pending is not None and deadlines.timer is not None and deadlines.timer_at <= deadline:
            pending[ask_id] = (deadline, future, ref)  # the usual case, without a call: see add()
        else:
            pending = deadlines.add(loop, ask_id, deadline, timeout, future, ref)
        message = None
        try:
            message = msg_factory(reply_to)
            # ref.is_local, without the property's call for a plain ActorRef
            if not (ref._target.is_local if type(ref) is ActorRef else ref.is_local):
                # a transport that cannot encode the message fails the ask at once (not_sent)
                self._remote_asks[id(message)] = (message, future)
            ref.tell(message)
            result = await future
        except AskTimeoutError:
            self.ask_latency.timeouts += 1
            raise
        finally:
            if type(pending) is dict:
                # an emptied dict stays for the next ask with this timeout (a sequence of asks
                # would make and drop one each): the timer's sweep drops the empty ones
                pending.pop(ask_id, None)
            else:
                pending.cancel()
            del self._temp[path]
            entry = self._remote_asks.get(id(message))
            if entry is not None and entry[0] is message:
                del self._remote_asks[id(message)]
        # AskLatency.observe, inline: one call less on every ask
        took = loop.time() - started
        latency = self.ask_latency
        latency.buckets[bisect_left(ASK_BUCKETS, took)] += 1
        latency.count += 1
        latency.sum += took
        return result  # type: ignore[no-any-return]

    async def ask_or_none(
        self, ref: ActorRef[Any], msg_factory: Callable[[ActorRef[R]], Any], timeout: float | None = None
    ) -> R | None:
        """Like :meth:`ask`, but None instead of :class:`~casty.AskTimeoutError` when no reply
        arrives in time."""
        try:
            return await self.ask(ref, msg_factory, timeout=timeout)
        except AskTimeoutError:
            return None

    def fail_reply(self, path: str, error: BaseException, sent_to: SystemAddress | None = None) -> bool:
        """The request an ask's reply slot at ``path`` waits on cannot be answered (a peer
        refused it): that ask raises ``error`` now. With ``sent_to``, only an ask whose request
        went to an actor of that system (a peer can fail only the asks it was sent). False when
        no such ask waits there."""
        slot = self._temp.get(path)
        if type(slot) is not ReplySlot or slot.future.done():
            return False
        if sent_to is not None:
            target = slot.target
            if not isinstance(target, ActorRef) or target.system_address != sent_to:
                return False
        slot.future.set_exception(error)
        return True

    def _dead_reply(self, msg: object) -> None:
        self.dead_letter(msg, None, "ask already completed or timed out")

    def not_sent(self, msg: object, error: Exception) -> None:
        """A transport could not send ``msg`` (it cannot be encoded, or is too large for a
        frame): an ``ask`` waiting for the reply to it raises ``error`` now instead of timing
        out. The transport also makes ``msg`` a dead letter."""
        entry = self._remote_asks.get(id(msg))
        if entry is not None and entry[0] is msg and not entry[1].done():
            entry[1].set_exception(error)

    # -- dead letters and events ---------------------------------------------------------------
    def dead_letter(self, msg: object, recipient: ActorRef[Any] | None, reason: str) -> None:
        """Count ``msg`` as undeliverable to ``recipient`` (None when unknown) for ``reason``:
        logged up to ``actors.log_dead_letters`` times and published as a ``DeadLetter`` event."""
        self.dead_letters += 1
        kind = dead_letter_kind(reason)
        self.dead_letter_reasons[kind] = self.dead_letter_reasons.get(kind, 0) + 1
        if self.dead_letters <= self._dead_letter_log_limit:
            log.debug("dead letter to %s (%s): %r", recipient, reason, msg)
            if self.dead_letters == self._dead_letter_log_limit:
                log.debug("further dead letters are counted, not logged")
        if self._events.subscribers:
            self._events.publish(DeadLetter(msg, recipient, reason))

    def stats(self) -> SystemStats:
        """A snapshot of this system's figures: actors, dead letters by reason, the busiest
        mailboxes, connections and bytes per peer, gossip traffic and members by status (the
        last three for remote and cluster systems), and the live streams."""
        from casty.observe.stats import system_stats

        def busiest() -> list[tuple[str, int]]:
            depths = ((cell.mailbox.size, path) for path, cell in self._cells.items())
            return [(path, depth) for depth, path in heapq.nlargest(10, depths) if depth > 0]

        return system_stats(self, actors=len(self._cells), busiest=busiest)

    @property
    def is_shutting_down(self) -> bool:
        """True once ``shutdown`` has started (the system may still be stopping its actors)."""
        return self._shutdown_started

    def _publish_event(self, event: object) -> None:
        if self._events.subscribers:
            self._events.publish(event)

    # -- receptionist ----------------------------------------------------------------------
    def _register_service(self, key: ServiceKey[Any], ref: ActorRef[Any]) -> None:
        self.registry.register(key, ref)

    def _deregister_service(self, key: ServiceKey[Any], ref: ActorRef[Any]) -> None:
        self.registry.deregister(key, ref)

    # -- shutdown --------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop every actor (children before parents, post-stop hooks run); idempotent."""
        if self._terminated is not None:
            await asyncio.shield(self._terminated)
            return
        self._terminated = self.loop.create_future()
        self._shutdown_started = True
        if self._termination_started is not None and not self._termination_started.done():
            self._termination_started.set_result(None)
        try:
            await self.stop_actors()
            await self._shutdown_services()
        finally:
            for path, promise in list(self._temp.items()):
                if type(promise) is ReplySlot and not promise.future.done():
                    promise.future.set_exception(AskTimeoutError(f"actor system stopped before {path} got a reply"))
            self._ask_deadlines.close()
            self._terminated.set_result(None)

    async def stop_actors(self) -> None:
        """Stop every actor (children before parents, post-stop hooks run) and wait for them,
        leaving the system itself running; ``shutdown`` does this first."""
        cells = list(self._top.values())
        for cell in cells:
            cell.stop()
        for cell in cells:
            await asyncio.shield(cell.stopped)

    async def _shutdown_services(self) -> None:
        """Hook for subclasses: close transports after the actors stopped."""

    async def wait_for_termination(self) -> None:
        """Wait until the system has shut down (by ``shutdown()``, or by itself: a cluster node
        that was downed or ended up on the minority side of a partition shuts down)."""
        while self._terminated is None:
            if self._termination_started is None:
                self._termination_started = self.loop.create_future()
            await asyncio.shield(self._termination_started)
        await asyncio.shield(self._terminated)

    @property
    def is_terminated(self) -> bool:
        return self._terminated is not None and self._terminated.done()


async def _ready(value: T) -> T:
    return value


System = ActorSystem
"""What ``ctx.system`` is: the actor system (an ``ActorSystem`` or one of its subclasses)."""


def _expire(future: asyncio.Future[Any], ref: ActorRef[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(AskTimeoutError(f"no reply from {ref} within {timeout}s"))


class _AskDeadlines:
    """The deadlines of pending asks, kept by one timer for all of them.

    A timer per ask costs an event-loop handle that is created and closed with every ask, and
    on uvloop a closed handle makes the loop poll once more before it sleeps: one system call
    and one loop turn on every request/response. Here asks sit in one insertion-ordered dict
    per timeout value (so each dict is in deadline order), a finished ask removes itself in
    O(1) (an emptied dict stays, for the next ask with that timeout, until the timer's sweep
    drops it), and a single timer is armed for the earliest
    deadline: it is moved only when a new ask's deadline comes earlier, and when it fires it
    fails the overdue asks and re-arms for the earliest one still pending (nothing when none
    is). Asks with more distinct timeouts pending than ``BUCKETS`` get a timer each, as before,
    so a caller passing a different timeout to every ask cannot make the sweep long.
    """

    __slots__ = ("buckets", "timer", "timer_at")

    #: asks due within this much of the timer's firing time expire with it (an event loop may
    #: run a timer up to its clock resolution early)
    SLACK = 0.001
    #: distinct timeout values kept in dicts at once; an ask with another one gets its own timer
    BUCKETS = 16

    def __init__(self) -> None:
        self.buckets: dict[float, dict[int, tuple[float, asyncio.Future[Any], ActorRef[Any]]]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def add(
        self,
        loop: asyncio.AbstractEventLoop,
        key: int,
        deadline: float,
        timeout: float,
        future: asyncio.Future[Any],
        ref: ActorRef[Any],
    ) -> dict[int, tuple[float, asyncio.Future[Any], ActorRef[Any]]] | asyncio.TimerHandle:
        """Fail ``future`` with an ``AskTimeoutError`` at ``deadline`` unless the caller first
        removes ``key`` from the returned dict or
        cancels the returned timer."""
        bucket = self.buckets.get(timeout)
        if bucket is None:
            if len(self.buckets) >= self.BUCKETS:
                return loop.call_at(deadline, _expire, future, ref, timeout)
            bucket = self.buckets[timeout] = {}
        bucket[key] = (deadline, future, ref)
        if self.timer is None or deadline < self.timer_at:
            self._arm(loop, deadline)
        return bucket

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = at
        self.timer = loop.call_at(at, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        due = loop.time() + self.SLACK
        earliest: float | None = None
        buckets = self.buckets
        for timeout in list(buckets):
            bucket = buckets[timeout]
            overdue: list[int] = []
            for key, entry in bucket.items():
                if entry[0] > due:
                    if earliest is None or entry[0] < earliest:
                        earliest = entry[0]
                    break
                overdue.append(key)
            for key in overdue:
                _, future, ref = bucket.pop(key)
                _expire(future, ref, timeout)
            if not bucket:
                del buckets[timeout]
        if earliest is not None:
            self._arm(loop, earliest)

    def close(self) -> None:
        """Stop the timer (the system is stopping; its asks have been failed)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.buckets.clear()
