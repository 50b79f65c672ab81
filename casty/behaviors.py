"""``casty.behaviors`` of casty 0.21: the behavior factory."""

from __future__ import annotations

from casty.actors.behaviors import Behaviors

__all__ = ["Behaviors"]
