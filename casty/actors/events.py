"""System messages and events delivered to actors and event-stream subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from casty.actors.ref import ActorRef

__all__ = [
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
    """A message that could not be delivered, with the reason."""

    message: Any
    recipient: ActorRef[Any] | None
    reason: str


@dataclass(frozen=True)
class UnhandledMessage:
    """An actor answered ``Behaviors.unhandled()`` to this message."""

    message: Any
    recipient: ActorRef[Any]


@dataclass(frozen=True)
class ActorStarted:
    ref: ActorRef[Any]


@dataclass(frozen=True)
class ActorStopped:
    ref: ActorRef[Any]


@dataclass(frozen=True)
class EventStreamSubscribe(Generic[E]):
    """Deliver every published event that is an instance of ``event_type`` to ``subscriber``."""

    event_type: type[E]
    subscriber: ActorRef[E]


@dataclass(frozen=True)
class EventStreamUnsubscribe(Generic[E]):
    event_type: type[E]
    subscriber: ActorRef[E]


@dataclass(frozen=True)
class Publish:
    """Publish ``event`` to the subscribers of its type (and of its base types)."""

    event: Any
