"""``casty.core.supervision`` of casty 0.21."""

from __future__ import annotations

from casty.actors.behaviors import Directive, OneForOneStrategy, SupervisionStrategy

__all__ = ["Directive", "OneForOneStrategy", "SupervisionStrategy"]
