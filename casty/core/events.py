"""``casty.core.events`` of casty 0.21: the events the system publishes."""

from __future__ import annotations

from casty.actors.events import ActorRestarted, ActorStarted, ActorStopped, DeadLetter, UnhandledMessage

__all__ = ["ActorRestarted", "ActorStarted", "ActorStopped", "DeadLetter", "UnhandledMessage"]
