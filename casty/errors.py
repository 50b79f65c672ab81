"""Every error casty raises on purpose derives from :class:`CastyError`."""

from __future__ import annotations

import asyncio
import errno
import os

__all__ = [
    "AskTimeoutError",
    "CastyError",
    "ConfigError",
    "ConfigFileNotFoundError",
    "DeserializationError",
    "DrainingError",
    "ElementTooLarge",
    "FrameError",
    "FrameTooLarge",
    "HandshakeError",
    "MailboxFull",
    "MessageRefused",
    "ProtocolError",
    "SerializationError",
    "StreamCancelled",
    "StreamFailed",
    "StreamTimeoutError",
]


class CastyError(Exception):
    """Base class of casty's own errors."""


class AskTimeoutError(CastyError, TimeoutError):
    """An ``ask`` got no reply within its timeout."""


class ConfigError(CastyError, ValueError):
    """A configuration file or value is invalid (unknown key, wrong type, bad value)."""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A configuration file named explicitly does not exist; ``filename`` is its path."""

    def __init__(self, message: str, filename: str) -> None:
        ValueError.__init__(self, message)
        self.filename = filename
        self.errno = errno.ENOENT
        self.strerror = os.strerror(errno.ENOENT)

    def __str__(self) -> str:
        return str(self.args[0])


class SerializationError(CastyError):
    """A message could not be encoded for the wire."""


class DeserializationError(CastyError):
    """Bytes from the wire were refused: malformed, unknown or forbidden type."""

    def __init__(self, message: str, type_name: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name


class MessageRefused(DeserializationError):
    """A message parsed correctly but could not be built in this process (a type it has not
    loaded or may not build, a constructor that failed, a ref that cannot be resolved).

    The connection's tables stayed in step with the sender's, so the stream can go on; only
    this message is lost. ``value`` is what was decoded, with None in place of each part that
    was refused; ``replies`` the URIs of the short-lived refs (an ask's reply slot) it carried,
    whose asks would otherwise wait for a reply that cannot come.

    An ``ask`` whose request the peer refused this way raises it too, naming the peer."""

    def __init__(
        self, message: str, type_name: str | None = None, value: object = None, replies: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, type_name)
        self.value = value
        self.replies = replies


class FrameError(CastyError):
    """A byte stream does not follow the framing rules."""


class FrameTooLarge(FrameError):
    """A frame is larger than the configured maximum frame size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the maximum frame size of {limit} bytes")
        self.size = size
        self.limit = limit


class ElementTooLarge(CastyError):
    """A stream element does not fit in one frame on its way to a consumer in another process.

    ``size`` is the encoded size of the element alone (with its envelope), ``limit`` the
    ``[remote] max_frame_size`` it exceeds and ``seq`` its sequence number in the stream. The
    stream fails: the consumer's iteration raises :class:`StreamFailed` (``cause_type``
    ``"ElementTooLarge"``) after the elements before it, and the producer's next ``put`` or
    ``complete()`` raises this error. Other traffic on the connection is not affected.
    """

    def __init__(self, size: int, limit: int, seq: int = -1) -> None:
        where = f"stream element {seq}" if seq >= 0 else "a stream element"
        super().__init__(
            f"{where} encodes to {size} bytes, over the maximum frame size of {limit} bytes "
            "([remote] max_frame_size); it cannot be sent to another process"
        )
        self.size = size
        self.limit = limit
        self.seq = seq


class HandshakeError(CastyError):
    """A peer was refused during the connection handshake."""


class ProtocolError(CastyError):
    """A peer broke a protocol rule (for example a stream demand of n <= 0)."""


class StreamFailed(CastyError):
    """A stream ended with a failure; ``cause_type`` and ``cause_message`` describe it."""

    def __init__(self, message: str, cause_type: str = "", cause_message: str = "") -> None:
        super().__init__(message)
        self.cause_type = cause_type
        self.cause_message = cause_message


class StreamCancelled(CastyError):
    """The stream's consumer went away; the producer no longer accepts elements."""


class DrainingError(StreamCancelled):
    """The node is draining (``system.drain()``, or SIGTERM under ``casty.run``): it accepts no
    new stream elements or subscriptions; what it accepted before is still delivered."""


class StreamTimeoutError(CastyError, TimeoutError):
    """A stream saw no element or subscription within its timeout."""


class MailboxFull(CastyError, asyncio.QueueFull):
    """A bounded mailbox with the ``reject`` strategy refused a message (an ``asyncio.QueueFull``)."""
