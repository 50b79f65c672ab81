"""ActorCell: one actor's state, lifecycle and supervision (the slow paths around the mailbox).

Over 500 lines on purpose: a cell's states (starting, running, suspended, restarting,
stopping) and their transitions are one state machine, easier to check read in one place.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from casty._fastpath import MailboxRunner
from casty.actors.behaviors import (
    IGNORE,
    RESTART,
    SAME,
    STOPPED,
    UNHANDLED,
    Behavior,
    Directive,
    DiscoverableBehavior,
    Hook,
    IgnoreBehavior,
    LifecycleBehavior,
    ReceiveBehavior,
    RestartHook,
    SetupBehavior,
    SupervisedBehavior,
    SupervisionStrategy,
)
from casty.actors.context import ActorContext
from casty.actors.events import ActorRestarted, ActorStarted, ActorStopped, Terminated, UnhandledMessage
from casty.actors.ref import ActorRef

if TYPE_CHECKING:
    from casty.actors.mailbox import Mailbox
    from casty.actors.system import ActorSystem

__all__ = ["ActorCell", "CellState"]

log = logging.getLogger("casty.actor")


class CellState(enum.IntEnum):
    STARTING = 0
    RUNNING = 1
    STOPPING = 2
    STOPPED = 3


async def _ignore(ctx: Any, msg: Any) -> None:
    return None


class _Continue:
    """Finishes, inside a Task, a handler coroutine that the mailbox started and that suspended.

    It re-yields what the coroutine yielded first (the future it waits on), then relays every
    send/throw, so the Task drives the coroutine exactly as if it had started it.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value = self.first
        self.first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(cont: _Continue) -> Any:
    return await cont


async def _call_hook(hook: Callable[..., Any], *args: Any) -> None:
    result = hook(*args)
    if inspect.isawaitable(result):
        await result


def _decide(strategy: SupervisionStrategy, exc: BaseException, child_id: str) -> Directive:
    """Ask ``strategy`` (any object with a ``decide`` method) for a directive."""
    decide: Callable[..., Directive] = strategy.decide
    try:
        params = inspect.signature(decide).parameters
    except (TypeError, ValueError):
        return decide(exc, child_id=child_id)
    if "child_id" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return decide(exc, child_id=child_id)
    return decide(exc)  # a strategy written as decide(exc)


class ActorCell:
    """The runtime side of one actor. User code never sees it; it holds an ``ActorRef``."""

    is_local = True

    def __init__(
        self,
        system: ActorSystem,
        parent: ActorCell | None,
        behavior: Behavior[Any],
        name: str,
        path: str,
        mailbox: Mailbox[Any],
    ) -> None:
        self.system = system
        self.parent = parent
        self.name = name
        self.path = path
        self.initial = behavior
        self.children: dict[str, ActorCell] = {}
        self.watchers: set[ActorRef[Any]] = set()
        self.watching: set[ActorRef[Any]] = set()
        self.state = CellState.STARTING
        self.strategy: SupervisionStrategy | None = None
        self.post_stop: Hook | None = None
        self.pre_restart: RestartHook | None = None
        self.pre_restart_takes_exc = False
        self.post_restart: Hook | None = None
        self.stop_callbacks: list[Callable[[], Any]] = []
        self.interceptors: list[Callable[[object], bool]] = []
        self._handler: Any = None
        self.service_keys: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._continuation: asyncio.Task[Any] | None = None
        self._resolving = False
        loop = system.loop
        self.stopped: asyncio.Future[None] = loop.create_future()
        throughput = mailbox.throughput or system._default_throughput
        self.mailbox = MailboxRunner(
            self, loop, mailbox.capacity, mailbox.strategy.code, throughput, self._dead_letter, SAME
        )
        self.ref: ActorRef[Any] = ActorRef(system.address, path, self.mailbox.put, self)
        self.ctx: ActorContext[Any] = ActorContext(self)
        self.mailbox.ctx = self.ctx

    def __repr__(self) -> str:
        return f"<ActorCell {self.path} {self.state.name}>"

    # -- helpers ---------------------------------------------------------------------------
    def _dead_letter(self, msg: object, reason: str) -> None:
        self.system.dead_letter(msg, self.ref, reason)

    def _spawn_task(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self.system.loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- starting and becoming ---------------------------------------------------------------
    def start(self) -> None:
        self._resolving = True
        self._spawn_task(self._start())

    async def _start(self) -> None:
        try:
            await self._resolve(self.initial, initial=True)
        except asyncio.CancelledError:
            self._resolving = False
            return
        except BaseException as exc:
            self._resolving = False
            self.on_failure(exc, None)
            return
        self._resolving = False
        if self.state is CellState.STARTING:
            self.state = CellState.RUNNING
            self.system._publish_event(ActorStarted(self.ref))
            self.mailbox.resume()

    async def _resolve(self, behavior: Behavior[Any], initial: bool = False) -> None:
        """Unwrap setup/lifecycle/supervision/discovery layers until a message handler remains."""
        if initial:
            self.strategy = None
            self.post_stop = None
            self.pre_restart = None
            self.pre_restart_takes_exc = False
            self.post_restart = None
        strategy_set = False
        while True:
            if isinstance(behavior, ReceiveBehavior):
                self._install(behavior.handler)
                return
            if isinstance(behavior, SetupBehavior):
                behavior = await behavior.factory(self.ctx)
            elif isinstance(behavior, LifecycleBehavior):
                if behavior.post_stop is not None:
                    self.post_stop = behavior.post_stop
                if behavior.pre_restart is not None:
                    self.pre_restart = behavior.pre_restart
                    self.pre_restart_takes_exc = behavior.pre_restart_takes_exc
                if behavior.post_restart is not None:
                    self.post_restart = behavior.post_restart
                if behavior.pre_start is not None:
                    await _call_hook(behavior.pre_start, self.ctx)
                behavior = behavior.inner
            elif isinstance(behavior, SupervisedBehavior):
                if not strategy_set:
                    self.strategy = behavior.strategy
                    strategy_set = True
                behavior = behavior.inner
            elif isinstance(behavior, DiscoverableBehavior):
                if behavior.key not in self.service_keys:
                    self.service_keys.append(behavior.key)
                    self.system._register_service(behavior.key, self.ref)
                behavior = behavior.inner
            elif isinstance(behavior, IgnoreBehavior):
                self._install(_ignore)
                return
            elif behavior is SAME and not initial:
                return
            elif behavior is STOPPED:
                self.stop()
                return
            elif behavior is RESTART and not initial:
                self.restart(None)
                return
            else:
                raise TypeError(f"{behavior!r} is not a behavior an actor can start with")

    def on_result(self, result: object, msg: object) -> None:
        """Called by the mailbox when a handler returned something other than same/None."""
        if isinstance(result, ReceiveBehavior):
            self._install(result.handler)
        elif result is UNHANDLED:
            self.system._publish_event(UnhandledMessage(msg, self.ref))
        elif result is STOPPED:
            self.stop()
        elif result is RESTART:
            self.restart(None)
        elif result is IGNORE or isinstance(result, IgnoreBehavior):
            self._install(_ignore)
        elif isinstance(result, Behavior):
            self.mailbox.suspend()
            self._resolving = True
            self._spawn_task(self._become(result, msg))
        else:
            self.on_failure(
                TypeError(f"handler of {self.path} returned {type(result).__name__}, not a Behavior"), msg
            )

    # -- the current handler and the interceptors in front of it -------------------------------
    def _install(self, handler: Any) -> None:
        self._handler = handler
        self.mailbox.receive = self._intercepting if self.interceptors else handler

    def add_interceptor(self, interceptor: Callable[[object], bool]) -> None:
        self.interceptors.append(interceptor)
        if self._handler is not None:
            self.mailbox.receive = self._intercepting

    def _intercepting(self, ctx: ActorContext[Any], msg: object) -> Any:
        for interceptor in self.interceptors:
            if interceptor(msg):
                return None  # consumed: the handler does not see it
        return self._handler(ctx, msg)

    async def _become(self, behavior: Behavior[Any], msg: object) -> None:
        try:
            await self._resolve(behavior)
        except asyncio.CancelledError:
            return
        except BaseException as exc:
            self._resolving = False
            self.on_failure(exc, msg)
            return
        self._resolving = False
        if self.state is CellState.RUNNING:
            self.mailbox.resume()

    # -- suspension: a handler that really awaits ------------------------------------------
    def on_suspend(self, coro: Any, yielded: Any, msg: object) -> None:
        task = self._spawn_task(_finish(_Continue(coro, yielded)))
        self._continuation = task
        task.add_done_callback(lambda t: self._on_continuation_done(t, msg))

    def _on_continuation_done(self, task: asyncio.Task[Any], msg: object) -> None:
        self._continuation = None
        if self.state >= CellState.STOPPING:
            if not task.cancelled():
                task.exception()  # retrieved: a failure while stopping is not reported twice
            return
        if task.cancelled():
            self.on_failure(asyncio.CancelledError(), msg)
        else:
            exc = task.exception()
            if exc is not None:
                self.on_failure(exc, msg)
            else:
                result = task.result()
                if result is not None and result is not SAME:
                    self.on_result(result, msg)
        if self.state is CellState.RUNNING and not self._resolving:
            self.mailbox.resume()

    # -- failure and supervision -----------------------------------------------------------
    def on_failure(self, exc: BaseException, msg: object) -> None:
        if self.state >= CellState.STOPPING:
            return
        strategy = self.strategy
        if strategy is None:
            directive = Directive.stop
        else:
            try:
                directive = _decide(strategy, exc, self.path)
            except Exception:
                log.exception("supervision strategy of %s failed; stopping it", self.path)
                directive = Directive.stop
        if directive is Directive.resume:
            log.warning("%s failed on %r and resumes: %r", self.path, msg, exc)
            return
        if directive is Directive.restart:
            # a strategy written with a separate restart budget (allow_restart) is still honoured
            allow = getattr(strategy, "allow_restart", None)
            if allow is None or allow():
                log.warning("%s failed on %r and restarts: %r", self.path, msg, exc)
                self.restart(exc)
                return
            log.error("%s failed on %r; restart limit reached, stopping it", self.path, msg, exc_info=exc)
            self.stop()
            return
        if directive is Directive.escalate and self.parent is not None:
            log.error("%s failed on %r; escalating to %s", self.path, msg, self.parent.path, exc_info=exc)
            self.stop()
            self.parent.on_failure(exc, None)
            return
        log.error("%s failed on %r and stops", self.path, msg, exc_info=exc)
        self.stop()

    def restart(self, exc: BaseException | None) -> None:
        if self.state >= CellState.STOPPING:
            return
        self.mailbox.suspend()
        self._resolving = True
        self._spawn_task(self._restart(exc))

    async def _restart(self, exc: BaseException | None) -> None:
        current = asyncio.current_task()
        cont = self._continuation
        if cont is not None and cont is not current and not cont.done():
            cont.cancel()
        self.ctx.timers.cancel_all()
        if self.pre_restart is not None:
            try:
                if self.pre_restart_takes_exc:
                    await _call_hook(self.pre_restart, self.ctx, exc)
                else:
                    await _call_hook(self.pre_restart, self.ctx)
            except Exception:
                log.exception("pre_restart hook of %s failed", self.path)
        await self._run_stop_callbacks()
        self.interceptors.clear()
        children = list(self.children.values())
        for child in children:
            child.stop()
        for child in children:
            await asyncio.shield(child.stopped)
        try:
            await self._resolve(self.initial, initial=True)
        except asyncio.CancelledError:
            return
        except BaseException as failure:
            self._resolving = False
            self.on_failure(failure, None)
            return
        self._resolving = False
        if self.state is CellState.STARTING:
            self.state = CellState.RUNNING
            self.system._publish_event(ActorStarted(self.ref))
        if self.state is CellState.RUNNING:
            self.system._publish_event(ActorRestarted(self.ref, exc))
            if self.post_restart is not None:
                try:
                    await _call_hook(self.post_restart, self.ctx)
                except Exception:
                    log.exception("post_restart hook of %s failed", self.path)
        if self.state is CellState.RUNNING:
            self.mailbox.resume()

    async def _run_stop_callbacks(self) -> None:
        callbacks = self.stop_callbacks[:]
        self.stop_callbacks.clear()
        for callback in callbacks:
            try:
                await _call_hook(callback)
            except Exception:
                log.exception("on_stop callback of %s failed", self.path)

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> asyncio.Future[None]:
        if self.state >= CellState.STOPPING:
            return self.stopped
        self.state = CellState.STOPPING
        self.mailbox.suspend()
        self.system.loop.create_task(self._stop())
        return self.stopped

    async def _stop(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and not task.done():
                task.cancel()
        self.ctx.timers.cancel_all()
        children = list(self.children.values())
        for child in children:
            child.stop()
        for child in children:
            await asyncio.shield(child.stopped)
        if self._tasks:
            await asyncio.gather(*[t for t in self._tasks if t is not current], return_exceptions=True)
        if self.post_stop is not None:
            try:
                await _call_hook(self.post_stop, self.ctx)
            except Exception:
                log.exception("post_stop hook of %s failed", self.path)
        await self._run_stop_callbacks()
        forget = getattr(self.strategy, "forget", None)
        if forget is not None:
            forget(self.path)
        for msg in self.mailbox.close():
            self._dead_letter(msg, "actor stopped")
        for key in self.service_keys:
            self.system._deregister_service(key, self.ref)
        self.service_keys.clear()
        for ref in list(self.watching):
            self.unwatch(ref)
        self.state = CellState.STOPPED
        self.system._on_cell_stopped(self)
        watchers = list(self.watchers)
        self.watchers.clear()
        terminated = Terminated(self.ref)
        for watcher in watchers:
            target = watcher._target
            if isinstance(target, ActorCell):
                target.watching.discard(self.ref)
            watcher.tell(terminated)
        self.system._publish_event(ActorStopped(self.ref))
        if not self.stopped.done():
            self.stopped.set_result(None)

    # -- the RefTarget contract (a local ref's tell goes straight to the mailbox) ----------------
    def tell(self, msg: object) -> None:
        self.mailbox.put(msg)

    # -- death watch (this cell as the watched target) ----------------------------------------
    def add_watcher(self, watcher: ActorRef[Any]) -> bool:
        if self.state is CellState.STOPPED:
            watcher.tell(Terminated(self.ref))
        else:
            self.watchers.add(watcher)
        return True

    def remove_watcher(self, watcher: ActorRef[Any]) -> None:
        self.watchers.discard(watcher)

    # -- death watch (this cell as the watcher) ---------------------------------------------
    def watch(self, ref: ActorRef[Any]) -> None:
        if ref == self.ref or ref in self.watching:
            return
        self.watching.add(ref)
        if not ref.target.add_watcher(self.ref):
            self.ref.tell(Terminated(ref, "not watchable"))

    def unwatch(self, ref: ActorRef[Any]) -> None:
        if ref not in self.watching:
            return
        self.watching.discard(ref)
        ref.target.remove_watcher(self.ref)

    # -- pipe_to_self ----------------------------------------------------------------------
    def pipe_to_self(
        self,
        awaitable: Awaitable[Any],
        mapper: Callable[[Any], Any] | None,
        on_failure: Callable[[BaseException], Any] | None,
    ) -> None:
        async def run() -> None:
            try:
                value = await awaitable
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if on_failure is not None:
                    self.ref.tell(on_failure(exc))
                else:
                    self.on_failure(exc, None)
                return
            self.ref.tell(value if mapper is None else mapper(value))

        self._spawn_task(run())
