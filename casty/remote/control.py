"""Control messages the transports exchange on the control path, next to actor traffic.

They travel as envelopes to ``CONTROL_PATH`` on the peer. Their wire names were fixed when
they lived in ``casty.remote.transport`` (a record's wire name is ``module:qualname``), so
each class keeps that module name: peers of any version decode them alike, and the facade
module re-exports them under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casty.actors.ref import ActorRef

__all__ = ["CONTROL_PATH", "DeserializationFailed", "Ping", "Pong", "RepliesRefused", "Unwatch", "Watch"]

CONTROL_PATH = "/system/remote"
_WIRE_MODULE = "casty.remote.transport"


@dataclass(frozen=True)
class Watch:
    """Control message: ``watcher`` (on the sender's node) watches the actor at ``path``."""

    path: str
    watcher: ActorRef[Any]


@dataclass(frozen=True)
class Unwatch:
    path: str
    watcher: ActorRef[Any]


@dataclass(frozen=True)
class Ping:
    """Control message: sent on a connection that has been silent; any answer proves it alive."""


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class DeserializationFailed:
    """A peer could not decode a message this process sent it (for instance a class it has not
    loaded): the message became a dead letter there, and the connection stayed up.

    The peer sends it back on the control path; this process logs it once per type and
    publishes it on its event stream. ``path`` is the recipient's path on the peer, ``type_name``
    the refused type (empty when unknown), ``reason`` the peer's explanation."""

    path: str
    type_name: str
    reason: str


@dataclass(frozen=True)
class RepliesRefused:
    """Control message: the peer refused a message (as in :class:`DeserializationFailed`) that
    carried the reply slots of asks in this process (``paths``, under ``/temp/``): those asks
    raise :class:`~casty.MessageRefused` now instead of waiting out their timeout. Sent from
    protocol version 3 on, beside the DeserializationFailed notice."""

    paths: tuple[str, ...]
    type_name: str
    reason: str


for _cls in (Watch, Unwatch, Ping, Pong, DeserializationFailed, RepliesRefused):
    _cls.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
