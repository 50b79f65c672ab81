"""Ports for processes that bind them later, kept from everyone else in the meantime.

A test that must know a port before the process using it starts (a seed address, the port
every DNS record names, a metrics port) cannot bind port 0. Asking the kernel for a free port
and closing it leaves a gap in which any other socket on the machine (a parallel test's
outgoing connection, a listener on port 0) may take it. Here the port stays bound, with
``SO_REUSEADDR`` and never listening, until the test session ends: the kernel hands it to no
one else, while the process it is meant for binds it (casty's listeners set ``SO_REUSEADDR``)
and listens on it as often as it restarts.
"""

from __future__ import annotations

import socket

__all__ = ["common_free_port", "free_port", "free_ports"]

#: the reserving sockets, open until the test process exits
_held: list[socket.socket] = []


def _reserving(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def common_free_port(hosts: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """A port free on every one of ``hosts``, held for this test session."""
    for _ in range(50):
        socks: list[socket.socket] = []
        try:
            socks.append(_reserving(hosts[0], 0))
            port = int(socks[0].getsockname()[1])
            for host in hosts[1:]:
                socks.append(_reserving(host, port))
        except OSError:
            for s in socks:
                s.close()
            continue
        _held.extend(socks)
        return port
    raise AssertionError(f"no port free on every one of {hosts}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host``, held for this test session."""
    return common_free_port((host,))


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host``, held for this test session."""
    return [free_port(host) for _ in range(n)]
