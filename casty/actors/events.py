"""System messages and events delivered to actors and event-stream subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from casty.actors.ref import ActorRef

__all__ = [
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "DeadLetter",
    "EventStreamSubscribe",
    "EventStreamUnsubscribe",
    "Publish",
    "Terminated",
    "UnhandledMessage",
]

E = TypeVar("E")


@dataclass(frozen=True)
class Terminated:
    """Sent to a watcher when the actor it watches has stopped (or its node is gone)."""

    ref: ActorRef[Any]
    reason: str = "stopped"


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be delivered to ``intended_ref`` (None when unknown), with the
    reason."""

    message: Any
    intended_ref: ActorRef[Any] | None
    reason: str = ""

    @property
    def recipient(self) -> ActorRef[Any] | None:
        """Another name of ``intended_ref``."""
        return self.intended_ref


@dataclass(frozen=True)
class UnhandledMessage:
    """The actor ``ref`` answered ``Behaviors.unhandled()`` to this message."""

    message: Any
    ref: ActorRef[Any]

    @property
    def recipient(self) -> ActorRef[Any]:
        """Another name of ``ref``."""
        return self.ref


@dataclass(frozen=True)
class ActorStarted:
    ref: ActorRef[Any]


@dataclass(frozen=True)
class ActorStopped:
    ref: ActorRef[Any]


@dataclass(frozen=True)
class ActorRestarted:
    """``ref`` was restarted; ``exception`` caused it (None for ``Behaviors.restart()``)."""

    ref: ActorRef[Any]
    exception: BaseException | None


def _subscriber(kind: str, handler: ActorRef[Any] | None, subscriber: ActorRef[Any] | None) -> ActorRef[Any]:
    if handler is None and subscriber is None:
        raise TypeError(f"{kind} needs the subscribing actor: handler=ref (or subscriber=ref)")
    if handler is not None and subscriber is not None and handler != subscriber:
        raise TypeError(f"{kind} got two different actors as handler and subscriber")
    ref = handler if handler is not None else subscriber
    assert ref is not None
    return ref


@dataclass(frozen=True, init=False)
class EventStreamSubscribe(Generic[E]):
    """Deliver every published event that is an instance of ``event_type`` to ``handler`` (an
    actor; ``subscriber=`` is accepted as another name of it)."""

    event_type: type[E]
    handler: ActorRef[E]

    def __init__(
        self, event_type: type[E], handler: ActorRef[E] | None = None, *, subscriber: ActorRef[E] | None = None
    ) -> None:
        object.__setattr__(self, "event_type", event_type)
        object.__setattr__(self, "handler", _subscriber("EventStreamSubscribe", handler, subscriber))

    @property
    def subscriber(self) -> ActorRef[E]:
        return self.handler


@dataclass(frozen=True, init=False)
class EventStreamUnsubscribe(Generic[E]):
    """Stop delivering ``event_type`` events to ``handler`` (``subscriber=`` is another name)."""

    event_type: type[E]
    handler: ActorRef[E]

    def __init__(
        self, event_type: type[E], handler: ActorRef[E] | None = None, *, subscriber: ActorRef[E] | None = None
    ) -> None:
        object.__setattr__(self, "event_type", event_type)
        object.__setattr__(self, "handler", _subscriber("EventStreamUnsubscribe", handler, subscriber))

    @property
    def subscriber(self) -> ActorRef[E]:
        return self.handler


@dataclass(frozen=True)
class Publish:
    """Publish ``event`` to the subscribers of its type (and of its base types)."""

    event: Any
