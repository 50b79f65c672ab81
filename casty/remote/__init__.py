"""Remoting: actors in different processes talk over TCP with msgpack frames."""

from casty.remote.association import Association as Association
from casty.remote.connection import Connection as Connection
from casty.remote.system import RemoteActorSystem as RemoteActorSystem
from casty.remote.transport import PROTOCOL_VERSION as PROTOCOL_VERSION
from casty.remote.transport import RemoteTransport as RemoteTransport

__all__ = ["PROTOCOL_VERSION", "Association", "Connection", "RemoteActorSystem", "RemoteTransport"]
