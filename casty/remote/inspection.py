"""The inspection protocol: a peer asks a node for its local view, the node answers it.

Both messages travel on the control path of an ordinary connection, so inspection is
authenticated exactly like every other message: a peer that fails the handshake (wrong
cluster secret, wrong TLS identity) never gets to ask. The answer is the node's own view
(:func:`casty.observe.view.local_view`): members and reachability, services per key, streams
with their stats, connections. ``casty status`` and ``casty top`` are its clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casty.remote.control import CONTROL_PATH

if TYPE_CHECKING:
    from casty.remote.connection import Connection
    from casty.remote.transport import RemoteTransport

__all__ = ["Inspect", "InspectReply", "install_inspection"]

log = logging.getLogger("casty.remote")


@dataclass(frozen=True)
class Inspect:
    """Control message: answer with an :class:`InspectReply` carrying ``token``."""

    token: int


@dataclass(frozen=True)
class InspectReply:
    """Control message: the node's local view (plain values), for the ``Inspect`` with ``token``."""

    token: int
    view: dict[str, Any]


def install_inspection(transport: RemoteTransport) -> None:
    """Answer ``Inspect`` on ``transport`` with the local view of its system."""

    def on_inspect(conn: Connection, msg: Inspect) -> None:
        from casty.observe.view import local_view

        assoc = conn.assoc
        if assoc is None or not isinstance(msg.token, int):
            return
        try:
            view = local_view(transport.system)
        except Exception:
            log.exception("building the inspection view failed")
            view = {"error": "the node could not build its view"}
        assoc.send(CONTROL_PATH, InspectReply(msg.token, view))

    transport.add_control_handler(Inspect, on_inspect)
