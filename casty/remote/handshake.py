"""The handshake that opens every connection, read top to bottom.

    dialer                                     acceptor
    ------                                     --------
                      (TLS, when configured: the acceptor wraps the socket first)
    hello    {v, vmin, vmax, system, host, port, uid, kind, to, nonce}  ->
                                               checks versions, system, identity, quarantine,
                                               simultaneous connect
             <-  welcome {v, vmin, vmax, system, host, port, uid, kind, nonce, mac}
                                               (or refused {reason})
    checks identity and the acceptor's mac
    confirm  {mac}  ->
                                               checks the dialer's mac
    both sides attach the connection to the peer's association and switch to envelopes

Handshake frames are plain msgpack maps in the connection's length-prefixed frames, at most
``HANDSHAKE_LIMIT`` bytes. With a cluster secret each side proves it knows the secret by an
HMAC-SHA256 over ``role|system|nonce`` of the other side's fresh nonce, so a recorded
handshake cannot be replayed. ``kind`` says what the peer is: a ``node`` that listens and can
be dialed back, or a ``client`` that never listens and is reached only over the connections
it opened. The whole handshake, TLS included, runs under ``remote.handshake_timeout``.

Protocol versions: each side announces the range of versions it speaks (``vmin``..``vmax``,
:data:`MIN_PROTOCOL_VERSION`..:data:`PROTOCOL_VERSION` unless the transport says otherwise) and
the connection uses the highest version both speak: the acceptor picks it and names it in the
welcome's ``v``. Without a common version the acceptor refuses the connection with a reason
naming both ranges. A peer that announces no range (a release before ranges) speaks exactly its
``v``, which is why a hello's ``v`` is the lowest version of the dialer's range. A release keeps
the previous version (N-1) in its range, so a cluster is upgraded one node at a time. The
version reaches the connection's encoder and decoder (their ``protocol_version``), which write
and read that version's messages.

Versions: 1, a release before ranges; 2, ranges (messages as in 1); 3, record definitions name
the sender's fields, which the receiver maps by name (see ``casty.serde._wire``). Versions 1
and 2 define records positionally: both sides need the same shape of every record class.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import hashlib
import hmac
import logging
import os
import ssl
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from casty._fastpath import FrameEncoder
from casty.actors.ref import SystemAddress
from casty.errors import HandshakeError

if TYPE_CHECKING:
    from casty.remote.connection import Connection
    from casty.remote.transport import RemoteTransport

__all__ = [
    "HANDSHAKE_LIMIT",
    "MIN_PROTOCOL_VERSION",
    "PEER_KINDS",
    "PROTOCOL_VERSION",
    "Handshake",
    "negotiate_version",
]

log = logging.getLogger("casty.remote")

PROTOCOL_VERSION = 3
"""The newest protocol version this release speaks."""
MIN_PROTOCOL_VERSION = 1
"""The oldest protocol version this release still speaks (the previous ones, for rolling upgrades)."""
HANDSHAKE_LIMIT = 64 * 1024
#: what a peer can say it is in the handshake's ``kind``
PEER_KINDS = ("node", "client")


def _range_text(versions: tuple[int, int]) -> str:
    low, high = versions
    return str(low) if low == high else f"{low}..{high}"


def negotiate_version(mine: tuple[int, int], theirs: tuple[int, int]) -> int:
    """The highest version in both ranges (inclusive ``(low, high)`` pairs); a
    :class:`~casty.errors.HandshakeError` naming both ranges when they do not overlap."""
    low, high = max(mine[0], theirs[0]), min(mine[1], theirs[1])
    if low > high:
        raise HandshakeError(
            f"protocol version mismatch: peer speaks {_range_text(theirs)}, this node speaks {_range_text(mine)}"
        )
    return high


def _peer_versions(msg: dict[str, Any]) -> tuple[int, int]:
    """The range a hello or welcome announces (a lone ``v`` from a release before ranges)."""
    vmin, vmax = msg.get("vmin"), msg.get("vmax")
    if vmin is None and vmax is None:
        v = msg.get("v")
        if not isinstance(v, int) or isinstance(v, bool):
            raise HandshakeError(f"protocol version mismatch: peer speaks {v!r}")
        return (v, v)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (vmin, vmax)) or vmin > vmax:  # type: ignore[operator]
        raise HandshakeError(f"malformed protocol version range {vmin!r}..{vmax!r}")
    return (vmin, vmax)  # type: ignore[return-value]


def _mac(secret: bytes, role: bytes, nonce: bytes, system: str) -> bytes:
    return hmac.new(secret, role + b"|" + system.encode() + b"|" + nonce, hashlib.sha256).digest()


class Handshake:
    """The handshake of one connection, from the TCP connect to the first envelope."""

    __slots__ = ("conn", "nonce", "peer_nonce", "pending_peer", "timer", "tls_raw", "transport", "version")

    def __init__(self, conn: Connection, transport: RemoteTransport) -> None:
        self.conn = conn
        self.transport = transport
        self.nonce = b""  # drawn when the handshake begins (a refused connection needs none)
        self.peer_nonce = b""
        #: the acceptor's record of the dialer between hello and confirm: address, uid, kind
        self.pending_peer: tuple[SystemAddress, int, str] | None = None
        self.timer: asyncio.TimerHandle | None = None
        #: inbound TLS: the accepted TCP transport while its TLS handshake runs
        self.tls_raw: asyncio.Transport | None = None
        #: the protocol version of the connection, once both sides agreed on it (0 before)
        self.version = 0

    # -- 1. the connection is made: start the clock, then TLS (acceptor) or hello (dialer) ------
    def begin(self, tcp: asyncio.Transport) -> None:
        transport = self.transport
        self.nonce = os.urandom(16)
        # the timer also bounds an inbound TLS handshake: it starts before it
        self.timer = transport.loop.call_later(transport.config.handshake_timeout, self._timed_out)
        if self.conn.inbound:
            if transport.ssl_server is not None:
                self._start_tls(tcp, transport.ssl_server)
            return
        assoc = self.conn.assoc
        assert assoc is not None
        versions = transport.protocol_versions
        self.send(
            {
                "t": "hello",
                "v": versions[0],
                "vmin": versions[0],
                "vmax": versions[1],
                "system": transport.system_name,
                "host": transport.address.host,
                "port": transport.address.port,
                "uid": transport.uid,
                "kind": transport.kind,
                "to": [assoc.address.host, assoc.address.port],
                "nonce": self.nonce,
            }
        )

    def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Wrap an accepted connection in TLS here rather than in the server, so that a failed
        TLS handshake is logged with the peer's address and counts toward ``max_connections``.
        The TLS layer calls ``connection_made`` again once its handshake is done."""
        loop = self.transport.loop
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(self._tls_done)
        # no timeout of its own: the handshake timer started in begin() covers it
        layer = asyncio.sslproto.SSLProtocol(loop, self.conn, context, done, server_side=True)
        self.tls_raw = raw
        raw.set_protocol(layer)
        layer.connection_made(raw)

    def tls_established(self) -> bool:
        """Called on each ``connection_made``: True (and TLS is up) for the TLS layer's call."""
        if self.tls_raw is None:
            return False
        self.tls_raw = None
        return True

    def _tls_done(self, done: asyncio.Future[None]) -> None:
        raw = self.tls_raw
        if raw is None:
            return  # the handshake succeeded: connection_made has run again
        conn = self.conn
        exc = None if done.cancelled() else done.exception()
        if not conn.close_reason and not self.transport.closing:
            reason = f"{exc}" if exc is not None else "connection closed"
            self.transport.log_refusal(conn.peer_label, f"TLS handshake failed: {reason}")
            conn.close_reason = f"TLS handshake failed: {reason}"
        self.tls_raw = None
        raw.abort()
        conn.connection_lost(None)

    # -- 2. each handshake frame -------------------------------------------------------------
    def on_frame(self, body: bytes) -> None:
        conn = self.conn
        if len(body) > HANDSHAKE_LIMIT:
            conn.abort(f"handshake frame of {len(body)} bytes from {conn.peer_label}")
            return
        try:
            msg = msgpack.unpackb(body, raw=False, max_bin_len=1024, max_str_len=4096, max_array_len=16, max_map_len=32)
            if not isinstance(msg, dict):
                raise ValueError("handshake frame is not a map")
            step = msg.get("t")
            if conn.inbound and step == "hello":
                self._on_hello(msg)
            elif not conn.inbound and step == "welcome":
                self._on_welcome(msg)
            elif conn.inbound and step == "confirm":
                self._on_confirm(msg)
            elif step == "refused":
                self._on_refused(msg)
            else:
                raise ValueError(f"unexpected handshake message {step!r}")
        except HandshakeError as exc:
            self.refuse(str(exc))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            conn.abort(f"bad handshake from {conn.peer_label}: {exc}")

    # -- 3. acceptor: hello -> welcome ---------------------------------------------------------
    def _on_hello(self, msg: dict[str, Any]) -> None:
        transport = self.transport
        if transport.closing:
            raise HandshakeError("shutting down")
        address, uid, kind = self._peer_identity(msg)
        nonce = msg.get("nonce")
        if not isinstance(nonce, bytes) or len(nonce) < 16:
            raise HandshakeError("handshake without a valid nonce")
        if address == transport.address and uid == transport.uid:
            raise HandshakeError("connected to itself")
        # no association is made before the peer is authenticated (in _on_confirm)
        assoc = transport.associations.get(address)
        # one connection per pair: when both sides dial at once, the lower address's dial wins
        if assoc is not None and assoc.dialing is not None and kind == "node":
            mine = (transport.address.host or "", transport.address.port or 0, transport.uid)
            theirs = (address.host, address.port, uid)
            if mine < theirs:
                raise HandshakeError("simultaneous connect: using the connection dialed by the lower address")
            assoc.dialing.cancel()
            assoc.dialing = None
        self.peer_nonce = nonce
        self.pending_peer = (address, uid, kind)
        secret = transport.secret
        versions = transport.protocol_versions
        self.send(
            {
                "t": "welcome",
                "v": self.version,
                "vmin": versions[0],
                "vmax": versions[1],
                "system": transport.system_name,
                "host": transport.address.host,
                "port": transport.address.port,
                "uid": transport.uid,
                "kind": transport.kind,
                "nonce": self.nonce,
                "mac": _mac(secret, b"acceptor", nonce, transport.system_name) if secret else b"",
            }
        )

    # -- 4. dialer: welcome -> confirm, open -----------------------------------------------------
    def _on_welcome(self, msg: dict[str, Any]) -> None:
        transport = self.transport
        assoc = self.conn.assoc
        assert assoc is not None
        address, uid, kind = self._peer_identity(msg)
        if (address.host, address.port) != (assoc.address.host, assoc.address.port):
            log.info("%s answers as %s:%s", assoc.address, address.host, address.port)
        nonce = msg.get("nonce")
        if not isinstance(nonce, bytes) or len(nonce) < 16:
            raise HandshakeError("welcome without a valid nonce")
        secret = transport.secret
        if secret:
            mac = msg.get("mac")
            expected = _mac(secret, b"acceptor", self.nonce, transport.system_name)
            if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
                raise HandshakeError("cluster secret mismatch (the peer does not know the secret)")
        elif msg.get("mac"):
            # it would refuse our confirm after we had started sending: refuse first
            raise HandshakeError("cluster secret mismatch (the peer requires a secret, this node has none)")
        mac_out = _mac(secret, b"dialer", nonce, transport.system_name) if secret else b""
        self.send({"t": "confirm", "mac": mac_out})
        assoc.attach(self.conn, uid, kind)

    # -- 5. acceptor: confirm, open ----------------------------------------------------------------
    def _on_confirm(self, msg: dict[str, Any]) -> None:
        transport = self.transport
        pending = self.pending_peer
        if pending is None:
            raise HandshakeError("confirm before hello")
        address, uid, kind = pending
        if transport.secret:
            mac = msg.get("mac")
            expected = _mac(transport.secret, b"dialer", self.nonce, transport.system_name)
            if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
                raise HandshakeError("cluster secret mismatch")
        if not transport.guard.make_room(self.conn):
            raise HandshakeError("too many connections")
        assoc = transport.association(address)  # a peer we had given up on gets a fresh one
        assoc.attach(self.conn, uid, kind)

    # -- either side: the peer refused -------------------------------------------------------------
    def _on_refused(self, msg: dict[str, Any]) -> None:
        conn = self.conn
        reason = str(msg.get("reason", "no reason given"))
        conn.close_reason = f"refused by {conn.peer_label}: {reason}"
        if conn.inbound:
            log.warning("connection from %s refused by the peer: %s", conn.peer_label, reason[:200])
        elif reason.startswith("simultaneous"):
            conn.close_reason = "simultaneous"
        conn.close()

    # -- checks and helpers ----------------------------------------------------------------------
    def _peer_identity(self, msg: dict[str, Any]) -> tuple[SystemAddress, int, str]:
        transport = self.transport
        version = negotiate_version(transport.protocol_versions, _peer_versions(msg))
        if msg.get("t") == "welcome" and msg.get("v") != version:
            raise HandshakeError(f"the peer chose protocol version {msg.get('v')!r}, the highest common one is {version}")
        self.version = version
        system = msg.get("system")
        if system != transport.system_name:
            raise HandshakeError(f"system name mismatch: peer is {system!r}, this is {transport.system_name!r}")
        host, port, uid, kind = msg.get("host"), msg.get("port"), msg.get("uid"), msg.get("kind", "node")
        if not isinstance(host, str) or not isinstance(port, int) or not isinstance(uid, int) or kind not in PEER_KINDS:
            raise HandshakeError("malformed identity in handshake")
        if uid in transport.quarantined:
            raise HandshakeError(f"incarnation {uid:x} of {host}:{port} was removed from the cluster; restart it")
        return SystemAddress(system, host, port), uid, kind

    def refuse(self, reason: str) -> None:
        """Tell the peer why (when the socket still takes it) and close."""
        conn = self.conn
        if reason.startswith("simultaneous"):
            # a simultaneous connect is resolved, not a fault: not worth a warning
            log.debug("refused connection from %s: %s", conn.peer_label, reason)
        else:
            self.transport.log_refusal(conn.peer_label, reason)
        if conn.tcp is not None and not conn.tcp.is_closing():
            self.send({"t": "refused", "reason": reason})
        conn.close_reason = reason
        conn.close()

    def send(self, payload: dict[str, Any]) -> None:
        tcp = self.conn.tcp
        assert tcp is not None
        frames = FrameEncoder(HANDSHAKE_LIMIT)
        frames.add(msgpack.packb(payload, use_bin_type=True))
        tcp.write(frames.take())

    def _timed_out(self) -> None:
        conn = self.conn
        if conn.state == "handshake":
            conn.abort(f"handshake with {conn.peer_label} timed out")

    def finish(self) -> None:
        """The handshake is over (the connection opened or closed): stop its clock."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
