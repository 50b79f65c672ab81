"""TLS contexts for node-to-node and client-to-cluster connections, from ``[tls]``."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casty.config import TlsConfig

__all__ = ["client_context", "server_context"]


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
