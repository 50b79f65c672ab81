"""TLS contexts for node-to-node and client-to-cluster connections, from ``[tls]`` or given
ready-made (:class:`TlsContexts`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casty.config import TlsConfig

__all__ = ["Config", "TlsContexts", "client_context", "contexts_of", "server_context"]


@dataclass(frozen=True)
class TlsContexts:
    """TLS as two ready ``ssl.SSLContext``s, used as they are: ``server_context`` for the
    connections a node accepts, ``client_context`` for the ones it dials. This is how casty
    0.21 took TLS (``casty.remote.tls.Config``, also reached as ``TlsConfig(server_context=...,
    client_context=...)``); ``ClusteredActorSystem(tls=...)`` and ``ClusterClient(tls=...)``
    take it beside a ``[tls]`` :class:`~casty.config.TlsConfig`."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext

    def __post_init__(self) -> None:
        for name in ("server_context", "client_context"):
            value = getattr(self, name)
            if not isinstance(value, ssl.SSLContext):
                raise TypeError(f"{name} must be an ssl.SSLContext, not {type(value).__name__}")

    @classmethod
    def from_paths(cls, *, certfile: str, cafile: str, keyfile: str | None = None) -> TlsContexts:
        """Mutual TLS from certificate files, as :meth:`casty.config.TlsConfig.from_paths`."""
        from casty.config import TlsConfig

        tls = TlsConfig.from_paths(certfile=certfile, cafile=cafile, keyfile=keyfile)
        return cls(server_context=server_context(tls), client_context=client_context(tls))


Config = TlsContexts
"""casty 0.21's name for :class:`TlsContexts` in this module."""


def contexts_of(tls: Any) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """``(server, client)`` contexts of a :class:`TlsContexts` or of any object with both as
    attributes; None for anything else (a ``[tls]`` TlsConfig among others)."""
    server = getattr(tls, "server_context", None)
    client = getattr(tls, "client_context", None)
    if isinstance(server, ssl.SSLContext) and isinstance(client, ssl.SSLContext):
        return server, client
    return None


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """The listening side: our certificate; with ``require_client_cert``, peers must present one
    signed by ``cafile`` (mutual TLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.certfile, tls.keyfile)
    if tls.cafile:
        ctx.load_verify_locations(tls.cafile)
    ctx.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_NONE
    return ctx


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """The dialing side: verifies the peer against ``cafile`` and presents our certificate (used
    by peers that require client certificates)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cafile:
        ctx.load_verify_locations(tls.cafile)
    else:
        ctx.load_default_certs()
    # cluster members are addressed by IP or container name; trust comes from the private CA
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if tls.certfile and tls.keyfile:
        ctx.load_cert_chain(tls.certfile, tls.keyfile)
    return ctx
