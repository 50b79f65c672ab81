"""``casty.context`` of casty 0.21: ``ActorContext`` and ``Interceptor``."""

from __future__ import annotations

from casty.actors.context import ActorContext, Interceptor

__all__ = ["ActorContext", "Interceptor"]
