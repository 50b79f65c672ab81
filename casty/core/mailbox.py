"""``casty.core.mailbox`` of casty 0.21."""

from __future__ import annotations

from casty.actors.mailbox import Mailbox, MailboxOverflowStrategy

__all__ = ["Mailbox", "MailboxOverflowStrategy"]
