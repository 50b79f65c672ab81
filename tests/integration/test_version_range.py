"""Protocol version ranges at the handshake: the highest common version, or a refusal naming both ranges."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from typing import Any

import msgpack
import pytest

from casty import RemoteActorSystem
from casty.errors import HandshakeError
from casty.remote.handshake import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, negotiate_version
from casty.testkit import TestProbe
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)


def test_negotiation_picks_the_highest_common_version() -> None:
    assert negotiate_version((1, 2), (2, 3)) == 2
    assert negotiate_version((1, 3), (1, 3)) == 3
    assert negotiate_version((2, 2), (1, 5)) == 2
    with pytest.raises(HandshakeError, match=r"peer speaks 3\.\.4, this node speaks 1\.\.2"):
        negotiate_version((1, 2), (3, 4))
    with pytest.raises(HandshakeError, match=r"peer speaks 1, this node speaks 2\.\.3"):
        negotiate_version((2, 3), (1, 1))


def test_this_release_keeps_the_previous_version() -> None:
    assert MIN_PROTOCOL_VERSION <= PROTOCOL_VERSION - 1
    # 3 names record fields in type definitions; 1 and 2 (releases before it) still connect
    assert (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION) == (1, 3)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def handshake(port: int, **versions: Any) -> dict[str, Any]:
    """Send a hello announcing ``versions`` (``v`` alone: a release before ranges) and return
    the answer (welcome or refused)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        hello = {
            "t": "hello",
            "system": "test",
            "host": "127.0.0.1",
            "port": 9,
            "uid": 4242,
            "kind": "node",
            "nonce": os.urandom(16),
            **versions,
        }
        writer.write(frame(msgpack.packb(hello)))
        size = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 10))[0]
        answer: dict[str, Any] = msgpack.unpackb(await reader.readexactly(size))
        return answer
    finally:
        writer.close()


async def test_two_ranges_meet_at_their_highest_common_version() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        assert a.transport is not None and b.transport is not None
        a.transport.protocol_versions = (1, 2)
        b.transport.protocol_versions = (2, 3)
        probe = TestProbe(b, "probe")
        a.ref(f"{b.address}{probe.ref.path}").tell("hello")
        assert await probe.receive() == "hello"
        conn_a = a.transport.associations[b.address].conn
        conn_b = b.transport.associations[a.address].conn
        assert conn_a is not None and conn_b is not None
        assert conn_a.handshake.version == conn_b.handshake.version == 2
        # the negotiated version reaches the codec of both sides of the connection
        for conn in (conn_a, conn_b):
            assert getattr(conn.encoder, "protocol_version", None) == 2
            assert getattr(conn.decoder, "protocol_version", None) == 2


async def test_this_release_connects_at_its_newest_version() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        assert a.transport is not None and b.transport is not None
        assert a.transport.protocol_versions == (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
        probe = TestProbe(b, "probe")
        a.ref(f"{b.address}{probe.ref.path}").tell("hello")
        assert await probe.receive() == "hello"
        conn = a.transport.associations[b.address].conn
        assert conn is not None and conn.handshake.version == PROTOCOL_VERSION
        assert getattr(conn.encoder, "protocol_version", None) == PROTOCOL_VERSION


async def test_a_peer_without_a_range_speaks_its_one_version() -> None:
    async with RemoteActorSystem("test") as node:
        assert node.transport is not None
        node.transport.protocol_versions = (1, 2)
        welcome = await handshake(node.port, v=1)
        assert welcome["t"] == "welcome" and welcome["v"] == 1
        assert (welcome["vmin"], welcome["vmax"]) == (1, 2)
        welcome = await handshake(node.port, v=1, vmin=1, vmax=5)
        assert welcome["v"] == 2
        node.transport.protocol_versions = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
        for versions, chosen in (({"v": 1}, 1), ({"v": 2}, 2), ({"v": 1, "vmin": 1, "vmax": 2}, 2)):
            welcome = await handshake(node.port, **versions)
            assert welcome["t"] == "welcome" and welcome["v"] == chosen
            assert (welcome["vmin"], welcome["vmax"]) == (1, 3)
        welcome = await handshake(node.port, v=2, vmin=2, vmax=7)
        assert welcome["v"] == 3


async def test_no_common_version_is_refused_with_both_ranges() -> None:
    async with RemoteActorSystem("test") as node:
        assert node.transport is not None
        node.transport.protocol_versions = (2, 3)
        refused = await handshake(node.port, v=3, vmin=4, vmax=6)
        assert refused == {
            "t": "refused",
            "reason": "protocol version mismatch: peer speaks 4..6, this node speaks 2..3",
        }
        refused = await handshake(node.port, v=1)
        assert refused["reason"] == "protocol version mismatch: peer speaks 1, this node speaks 2..3"
        refused = await handshake(node.port, v=1, vmin=3, vmax=2)
        assert refused["t"] == "refused" and "malformed protocol version range" in refused["reason"]


async def test_systems_without_a_common_version_do_not_connect(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="casty.remote")
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        assert a.transport is not None and b.transport is not None
        a.transport.protocol_versions = (1, 2)
        b.transport.protocol_versions = (3, 4)
        probe = TestProbe(b, "probe")
        a.ref(f"{b.address}{probe.ref.path}").tell("hello")
        reason = "protocol version mismatch: peer speaks 1..2, this node speaks 3..4"

        def dialer_told() -> bool:
            return any(
                f"cannot reach {b.address}" in r.getMessage() and reason in r.getMessage() for r in caplog.records
            )

        await eventually(dialer_told, timeout=10, what="the dialer to log the refusal")
        assert a.transport.associations[b.address].conn is None
        assert any(
            "refused connection from 127.0.0.1:" in r.getMessage() and reason in r.getMessage() for r in caplog.records
        )
