"""``casty.core.messages`` of casty 0.21."""

from __future__ import annotations

from casty.actors.events import Terminated

__all__ = ["Terminated"]
