"""``casty.core.behavior`` of casty 0.21: ``Behavior`` (with its constructors) and ``Signal``."""

from __future__ import annotations

from casty.actors.behaviors import Behavior, Behaviors, Signal

__all__ = ["Behavior", "Behaviors", "Signal"]
