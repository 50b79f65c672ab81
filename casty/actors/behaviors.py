"""Behaviors: immutable values that say how an actor handles its next message."""

from __future__ import annotations

import enum
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from casty.actors.context import ActorContext

__all__ = [
    "Behavior",
    "Behaviors",
    "Directive",
    "Hook",
    "OneForOneStrategy",
    "RestartHook",
    "Signal",
    "SupervisionStrategy",
]

M = TypeVar("M")
N = TypeVar("N")

#: A lifecycle hook: ``(ctx) -> None`` or ``async (ctx) -> None``.
Hook = Callable[["ActorContext[Any]"], Awaitable[None] | None]
#: A pre-restart hook: ``(ctx)`` or ``(ctx, exc)`` (``exc`` is None for ``Behaviors.restart()``),
#: sync or async.
RestartHook = Callable[..., Awaitable[None] | None]


class Signal(enum.Enum):
    """The transitions a handler can answer instead of a new behavior (``Behavior.signal``)."""

    same = "same"
    stopped = "stopped"
    restart = "restart"
    unhandled = "unhandled"


class Behavior(Generic[M]):
    """Base of every behavior. Build them with :class:`Behaviors` (the constructors are also
    available on ``Behavior`` itself: ``Behavior.receive(...)``, ``Behavior.same()``...)."""

    __slots__ = ()

    @property
    def signal(self) -> Signal | None:
        """The transition this behavior stands for (``same``, ``stopped``...), None for a real one."""
        return None

    @staticmethod
    def receive(handler: Callable[[ActorContext[N], N], Awaitable[Behavior[N] | None]]) -> Behavior[N]:
        """Same as :meth:`Behaviors.receive`."""
        return ReceiveBehavior(handler)

    @staticmethod
    def setup(factory: Callable[[ActorContext[N]], Awaitable[Behavior[N]]]) -> Behavior[N]:
        """Same as :meth:`Behaviors.setup`."""
        return SetupBehavior(factory)

    @staticmethod
    def same() -> Behavior[Any]:
        """Same as :meth:`Behaviors.same`."""
        return SAME

    @staticmethod
    def stopped() -> Behavior[Any]:
        """Same as :meth:`Behaviors.stopped`."""
        return STOPPED

    @staticmethod
    def unhandled() -> Behavior[Any]:
        """Same as :meth:`Behaviors.unhandled`."""
        return UNHANDLED

    @staticmethod
    def restart() -> Behavior[Any]:
        """Same as :meth:`Behaviors.restart`."""
        return RESTART

    @staticmethod
    def ignore() -> Behavior[Any]:
        """Same as :meth:`Behaviors.ignore`."""
        return IGNORE


class ReceiveBehavior(Behavior[M]):
    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[ActorContext[M], M], Awaitable[Behavior[M] | None]]) -> None:
        self.handler = handler


class SetupBehavior(Behavior[M]):
    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[ActorContext[M]], Awaitable[Behavior[M]]]) -> None:
        self.factory = factory


class _Marker(Behavior[Any]):
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"Behaviors.{self.kind}()"

    @property
    def signal(self) -> Signal | None:
        return Signal(self.kind)


SAME: Behavior[Any] = _Marker("same")
STOPPED: Behavior[Any] = _Marker("stopped")
UNHANDLED: Behavior[Any] = _Marker("unhandled")
RESTART: Behavior[Any] = _Marker("restart")


class IgnoreBehavior(Behavior[M]):
    __slots__ = ()


IGNORE: Behavior[Any] = IgnoreBehavior()


class LifecycleBehavior(Behavior[M]):
    __slots__ = ("inner", "post_restart", "post_stop", "pre_restart", "pre_restart_takes_exc", "pre_start")

    def __init__(
        self,
        inner: Behavior[M],
        pre_start: Hook | None,
        post_stop: Hook | None,
        pre_restart: RestartHook | None,
        post_restart: Hook | None = None,
    ) -> None:
        self.inner = inner
        self.pre_start = pre_start
        self.post_stop = post_stop
        self.pre_restart = pre_restart
        self.post_restart = post_restart
        self.pre_restart_takes_exc = pre_restart is not None and _takes_two_args(pre_restart)


def _takes_two_args(hook: Callable[..., Any]) -> bool:
    """True when ``hook`` accepts a second positional argument (the exception)."""
    try:
        params = list(inspect.signature(hook).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


class SupervisedBehavior(Behavior[M]):
    __slots__ = ("inner", "strategy")

    def __init__(self, inner: Behavior[M], strategy: SupervisionStrategy) -> None:
        self.inner = inner
        self.strategy = strategy


class DiscoverableBehavior(Behavior[M]):
    """Registers the actor with the cluster receptionist under ``key`` while it lives."""

    __slots__ = ("inner", "key")

    def __init__(self, inner: Behavior[M], key: Any) -> None:
        self.inner = inner
        self.key = key


class Directive(enum.Enum):
    """What a supervisor does with a failed actor."""

    restart = "restart"
    """Throw the actor's state away and start it again from its initial behavior."""
    stop = "stop"
    """Stop the actor (its watchers get ``Terminated``)."""
    resume = "resume"
    """Drop the message that failed and keep the current behavior and state."""
    escalate = "escalate"
    """Fail the parent with the same error (a top-level actor is stopped)."""

    # upper-case aliases of the same members
    RESTART = "restart"
    STOP = "stop"
    RESUME = "resume"
    ESCALATE = "escalate"


class SupervisionStrategy:
    """Decides what happens when an actor's message handler raises.

    A strategy implements ``decide(exception, *, child_id, **kw)``; ``child_id`` names the failed
    actor (its path). A ``restart`` answer is final: a strategy that limits restarts answers
    ``stop`` once the budget is spent (as :class:`OneForOneStrategy` does). Any object with such a
    ``decide`` method works as a strategy; subclassing this class is optional.
    """

    def decide(self, exception: BaseException, *, child_id: str = "", **kwargs: object) -> Directive:
        raise NotImplementedError(f"{type(self).__name__} does not implement decide()")


def _always_restart(exc: BaseException) -> Directive:
    return Directive.restart


class OneForOneStrategy(SupervisionStrategy):
    """Applies the decider's directive to the failed actor alone.

    ``decider(exc)`` picks the directive (``None``: always restart). A restart is allowed at most
    ``max_restarts`` times within ``within`` seconds per actor (each ``child_id`` has its own
    budget); past that the actor is stopped. ``max_restarts=-1`` allows unlimited restarts.
    """

    __slots__ = ("_restarts", "decider", "max_restarts", "within")

    def __init__(
        self,
        max_restarts: int = 3,
        within: float = 60.0,
        decider: Callable[[BaseException], Directive] | None = None,
    ) -> None:
        if within <= 0:
            raise ValueError("within must be > 0 seconds")
        self.max_restarts = max_restarts
        self.within = within
        self.decider: Callable[[BaseException], Directive] = decider if decider is not None else _always_restart
        self._restarts: dict[str, list[float]] = {}

    def __repr__(self) -> str:
        return f"OneForOneStrategy(max_restarts={self.max_restarts}, within={self.within})"

    def decide(self, exception: BaseException, *, child_id: str = "", **kwargs: object) -> Directive:
        directive = self.decider(exception)
        if directive is not Directive.restart or self.max_restarts < 0:
            return directive
        now = time.monotonic()
        horizon = now - self.within
        stamps = [t for t in self._restarts.get(child_id, ()) if t > horizon]
        if len(stamps) >= self.max_restarts:
            self._restarts[child_id] = stamps
            return Directive.stop
        stamps.append(now)
        self._restarts[child_id] = stamps
        return Directive.restart

    def forget(self, child_id: str) -> None:
        """Drop the restart history of ``child_id`` (called when that actor stops)."""
        self._restarts.pop(child_id, None)


class Behaviors:
    """Factory of behaviors (the only way user code builds them)."""

    @staticmethod
    def receive(handler: Callable[[ActorContext[M], M], Awaitable[Behavior[M] | None]]) -> Behavior[M]:
        """Handle each message with ``async handler(ctx, msg)``; its return value is the next behavior
        (``Behaviors.same()`` or ``None`` keeps the current one)."""
        return ReceiveBehavior(handler)

    @staticmethod
    def setup(factory: Callable[[ActorContext[M]], Awaitable[Behavior[M]]]) -> Behavior[M]:
        """Run ``async factory(ctx)`` when the actor starts (and on every restart); it returns the
        behavior that handles messages."""
        return SetupBehavior(factory)

    @staticmethod
    def same() -> Behavior[Any]:
        """Keep the current behavior."""
        return SAME

    @staticmethod
    def stopped() -> Behavior[Any]:
        """Stop this actor once the current message is handled."""
        return STOPPED

    @staticmethod
    def unhandled() -> Behavior[Any]:
        """Say the message was not understood (published as ``UnhandledMessage``); keep the behavior."""
        return UNHANDLED

    @staticmethod
    def ignore() -> Behavior[Any]:
        """A behavior that drops every message."""
        return IGNORE

    @staticmethod
    def restart() -> Behavior[Any]:
        """Restart this actor from its initial behavior (as a supervisor's restart would)."""
        return RESTART

    @staticmethod
    def with_lifecycle(
        behavior: Behavior[M],
        *,
        pre_start: Hook | None = None,
        post_stop: Hook | None = None,
        pre_restart: RestartHook | None = None,
        post_restart: Hook | None = None,
    ) -> Behavior[M]:
        """Attach lifecycle hooks (sync or async callables taking the context).

        ``pre_start`` runs when the actor starts and on every restart; ``post_stop`` once it
        stopped; ``pre_restart`` before a restart, as ``(ctx)`` or ``(ctx, exc)`` with the
        exception that caused it (None for ``Behaviors.restart()``); ``post_restart`` once the
        restarted actor is running again.
        """
        return LifecycleBehavior(behavior, pre_start, post_stop, pre_restart, post_restart)

    @staticmethod
    def supervise(behavior: Behavior[M], strategy: SupervisionStrategy) -> Behavior[M]:
        """Decide with ``strategy`` what happens when the handler raises."""
        return SupervisedBehavior(behavior, strategy)

    @staticmethod
    def discoverable(behavior: Behavior[M], *, key: Any) -> Behavior[M]:
        """Register the actor with the cluster's receptionist under ``key`` while it lives."""
        return DiscoverableBehavior(behavior, key)
