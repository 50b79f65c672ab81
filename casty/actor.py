"""``casty.actor`` of casty 0.21: behaviors and their factory."""

from __future__ import annotations

from casty.actors.behaviors import Behavior, Behaviors

__all__ = ["Behavior", "Behaviors"]
