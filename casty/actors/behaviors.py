"""Behaviors: immutable values that say how an actor handles its next message."""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from casty.actors.context import ActorContext

__all__ = [
    "Behavior",
    "Behaviors",
    "Directive",
    "Hook",
    "OneForOneStrategy",
    "SupervisionStrategy",
]

M = TypeVar("M")
N = TypeVar("N")

#: A lifecycle hook: ``(ctx) -> None`` or ``async (ctx) -> None``.
Hook = Callable[["ActorContext[Any]"], Awaitable[None] | None]


class Behavior(Generic[M]):
    """Base of every behavior. Build them with :class:`Behaviors`, never directly."""

    __slots__ = ()


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


SAME: Behavior[Any] = _Marker("same")
STOPPED: Behavior[Any] = _Marker("stopped")
UNHANDLED: Behavior[Any] = _Marker("unhandled")
RESTART: Behavior[Any] = _Marker("restart")


class IgnoreBehavior(Behavior[M]):
    __slots__ = ()


IGNORE: Behavior[Any] = IgnoreBehavior()


class LifecycleBehavior(Behavior[M]):
    __slots__ = ("inner", "post_stop", "pre_restart", "pre_start")

    def __init__(
        self, inner: Behavior[M], pre_start: Hook | None, post_stop: Hook | None, pre_restart: Hook | None
    ) -> None:
        self.inner = inner
        self.pre_start = pre_start
        self.post_stop = post_stop
        self.pre_restart = pre_restart


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

    RESTART = "restart"
    """Throw the actor's state away and start it again from its initial behavior."""
    STOP = "stop"
    """Stop the actor (its watchers get ``Terminated``)."""
    RESUME = "resume"
    """Drop the message that failed and keep the current behavior and state."""
    ESCALATE = "escalate"
    """Fail the parent with the same error (a top-level actor is stopped)."""

    # lower-case aliases read naturally in deciders: Directive.restart
    restart = "restart"
    stop = "stop"
    resume = "resume"
    escalate = "escalate"


class SupervisionStrategy:
    """Decides what happens when an actor's message handler raises."""

    def decide(self, exc: BaseException) -> Directive:
        raise NotImplementedError

    def allow_restart(self) -> bool:
        """Record a restart; False when the restart budget is spent (the actor is stopped)."""
        raise NotImplementedError


def _always_restart(exc: BaseException) -> Directive:
    return Directive.RESTART


@dataclass
class OneForOneStrategy(SupervisionStrategy):
    """Applies the decider's directive to the failed actor alone.

    More than ``max_restarts`` restarts within ``within`` seconds stops the actor instead.
    ``max_restarts=-1`` allows unlimited restarts.
    """

    max_restarts: int = 10
    within: float = 60.0
    decider: Callable[[BaseException], Directive] = _always_restart
    _restarts: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def decide(self, exc: BaseException) -> Directive:
        return self.decider(exc)

    def allow_restart(self) -> bool:
        if self.max_restarts < 0:
            return True
        now = time.monotonic()
        horizon = now - self.within
        self._restarts = [t for t in self._restarts if t > horizon]
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True


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
        pre_restart: Hook | None = None,
    ) -> Behavior[M]:
        """Attach lifecycle hooks (sync or async callables taking the context)."""
        return LifecycleBehavior(behavior, pre_start, post_stop, pre_restart)

    @staticmethod
    def supervise(behavior: Behavior[M], strategy: SupervisionStrategy) -> Behavior[M]:
        """Decide with ``strategy`` what happens when the handler raises."""
        return SupervisedBehavior(behavior, strategy)

    @staticmethod
    def discoverable(behavior: Behavior[M], *, key: Any) -> Behavior[M]:
        """Register the actor with the cluster's receptionist under ``key`` while it lives."""
        return DiscoverableBehavior(behavior, key)
