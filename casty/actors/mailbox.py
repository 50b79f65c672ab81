"""User-facing mailbox settings (the run loop itself lives in ``casty._fastpath``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from casty._fastpath import DROP_NEW, DROP_OLDEST, REJECT

__all__ = ["Mailbox", "MailboxOverflowStrategy"]


class MailboxOverflowStrategy(enum.Enum):
    """What a bounded mailbox does with a message that does not fit."""

    DROP_NEW = "drop_new"
    """The new message becomes a dead letter."""
    DROP_OLDEST = "drop_oldest"
    """The oldest queued message becomes a dead letter; the new one is queued."""
    REJECT = "reject"
    """``tell`` raises :class:`~casty.MailboxFull` to a local sender (a remote one gets a dead letter)."""

    drop_new = "drop_new"
    drop_oldest = "drop_oldest"
    reject = "reject"

    @property
    def code(self) -> int:
        return _CODES[self.value]


_CODES = {
    "drop_new": DROP_NEW,
    "drop_oldest": DROP_OLDEST,
    "reject": REJECT,
}


@dataclass(frozen=True)
class Mailbox:
    """Mailbox settings for one actor. ``capacity=0`` means unbounded.

    ``throughput`` is how many messages the actor handles per event-loop turn before it lets
    other actors run (``None``: the system default).
    """

    capacity: int = 0
    strategy: MailboxOverflowStrategy = MailboxOverflowStrategy.DROP_NEW
    throughput: int | None = None

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError("mailbox capacity must be >= 0 (0 means unbounded)")
        if self.throughput is not None and self.throughput < 1:
            raise ValueError("mailbox throughput must be >= 1")
        if isinstance(self.strategy, str):
            object.__setattr__(self, "strategy", MailboxOverflowStrategy(self.strategy))
