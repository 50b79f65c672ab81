"""``casty.core.context`` of casty 0.21: ``ActorContext``, ``System`` and ``Interceptor``."""

from __future__ import annotations

from casty.actors.context import ActorContext, Interceptor
from casty.actors.system import System

__all__ = ["ActorContext", "Interceptor", "System"]
