"""TLS (certificates made at test time) and the cluster-secret handshake, against hostile peers.

Every node runs in the test process so its log records and its transport's state can be
inspected directly. "Nothing was delivered" is always proved the same way: the refusal is
awaited first (a log record on the refusing side), then a legitimate peer sends a marker to
the same probe, and the marker must be the first and only message the probe holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import os
import re
import socket
import ssl
import struct
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest

from casty import (
    AskTimeoutError,
    Behaviors,
    CastyConfig,
    ClusterClient,
    ClusteredActorSystem,
    ClusterUnavailable,
    DeadLetter,
    EventStreamSubscribe,
)
from casty.cluster.members import MemberStatus
from casty.config import TlsConfig
from casty.remote import PROTOCOL_VERSION, RemoteActorSystem
from casty.testkit import TestProbe
from tests.certs import Pki, make_pki, openssl_available
from tests.cluster_app import ECHO_KEY, Ping, fast_cluster_config, service
from tests.remote_app import Echo, echo

pytestmark = pytest.mark.timeout(60)

SYSTEM = "sec"
SECRET = "correct horse battery staple"


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not openssl_available():
        pytest.skip("the openssl command line tool is needed to generate test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secret_file(tmp_path: Path) -> str:
    path = tmp_path / "cluster.secret"
    path.write_text(f"\n  {SECRET}  \n")  # surrounding whitespace is stripped
    path.chmod(0o600)
    return str(path)


def config(
    *,
    secret: str | None = None,
    secret_file: str | None = None,
    tls: dict[str, Any] | None = None,
    **remote: Any,
) -> CastyConfig:
    data: dict[str, Any] = {
        "remote": {"give_up_after": 1.0, "reconnect_backoff_max": 0.2, "handshake_timeout": 2.0, **remote}
    }
    if secret is not None:
        data["security"] = {"cluster_secret": secret}
    if secret_file is not None:
        data["security"] = {"secret_file": secret_file}
    if tls is not None:
        data["tls"] = tls
    return CastyConfig.from_dict(data)


def cluster_config(*, secret: str | None = None, tls: dict[str, Any] | None = None) -> CastyConfig:
    cfg = fast_cluster_config(SYSTEM)
    if secret is not None:
        cfg = dataclasses.replace(cfg, security=dataclasses.replace(cfg.security, cluster_secret=secret))
    if tls is not None:
        cfg = dataclasses.replace(cfg, tls=TlsConfig.from_dict(tls))
    return cfg


class LogWatch(logging.Handler):
    """Collects the records of the ``casty`` loggers; ``await match(pattern)`` waits for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._event: asyncio.Event | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._event is not None:
            self._event.set()

    def messages(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [m for m in (r.getMessage() for r in self.records) if regex.search(m)]

    async def match(self, pattern: str, timeout: float = 10.0) -> str:
        """The first message matching ``pattern`` (a regex), awaiting it for up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._event = asyncio.Event()
        while True:
            found = self.messages(pattern)
            if found:
                return found[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = "\n".join(r.getMessage() for r in self.records[-20:])
                raise AssertionError(f"no log message matching {pattern!r} within {timeout}s; last ones:\n{seen}")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("casty")
    old_level = logger.level
    # debug level too: a refusal repeated within a minute is logged there (the first as a warning)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def mac(secret: str, role: bytes, nonce: bytes, system: str = SYSTEM) -> bytes:
    """The handshake MAC, computed independently of casty: HMAC-SHA256(role|system|nonce)."""
    return hmac.new(secret.encode(), role + b"|" + system.encode() + b"|" + nonce, hashlib.sha256).digest()


def hello(nonce: bytes, *, system: str = SYSTEM, ident: str = "client-raw") -> dict[str, Any]:
    return {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "system": system,
        "host": ident,
        "port": 0,
        "uid": int.from_bytes(os.urandom(7), "big") | 1,
        "kind": "client",
        "nonce": nonce,
    }


async def read_frame(reader: asyncio.StreamReader, timeout: float = 10.0) -> Any:
    header = await asyncio.wait_for(reader.readexactly(4), timeout)
    body = await asyncio.wait_for(reader.readexactly(struct.unpack(">I", header)[0]), timeout)
    return msgpack.unpackb(body, raw=False)


class RawPeer:
    """A hand-made connection from a socket bound first, so its address is known even when the
    TLS handshake fails inside ``open_connection``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str) -> None:
        self.reader = reader
        self.writer = writer
        self.label = label  # "127.0.0.1:<our port>", as the node logs it

    @staticmethod
    async def open(port: int, ssl_ctx: ssl.SSLContext | None = None) -> RawPeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        label = f"127.0.0.1:{sock.getsockname()[1]}"
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=ssl_ctx, server_hostname="127.0.0.1" if ssl_ctx else None),
                10,
            )
        except BaseException:
            sock.close()
            raise
        return RawPeer(reader, writer, label)

    async def closed_by_node(self, timeout: float = 10.0) -> bytes:
        """Read until the node closes the connection; returns what was read (an abort counts as
        closed)."""
        data = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while True:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not chunk:
                    break
                data += chunk
        return data

    def close(self) -> None:
        self.writer.close()


def secret_refusal(node_port: int) -> str:
    """A regex for a secret refusal as logged by the node on ``node_port`` (the address is the
    other side's; the peer's own log names ``node_port``). Whichever side notices first
    refuses: the node when the peer has a wrong MAC, the peer when it cannot verify the node."""
    return rf"connection from 127\.0\.0\.1:(?!{node_port}\b)\d+(?:: | refused by the peer: )cluster secret mismatch"


async def assert_only_marker(probe: TestProbe, sender: RemoteActorSystem) -> None:
    """``sender`` (a legitimate peer) tells the probe a marker: it must be the only message."""
    sender.ref(f"{probe.system.address}{probe.ref.path}").tell("marker")
    assert await probe.receive(10) == "marker", "the probe had received something before the marker"
    assert probe.pending() == 0


def tls_conn_info(system: RemoteActorSystem, peer: RemoteActorSystem) -> tuple[str, dict[str, Any]]:
    """TLS version and peer certificate of ``system``'s connection to ``peer``."""
    assert system.transport is not None
    assoc = system.transport.associations[peer.address]
    assert assoc.conn is not None and assoc.conn.tcp is not None
    ssl_object = assoc.conn.tcp.get_extra_info("ssl_object")
    assert ssl_object is not None, "the connection is not encrypted"
    return ssl_object.version(), assoc.conn.tcp.get_extra_info("peercert") or {}


def common_name(cert: dict[str, Any]) -> str:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


# -- TLS -----------------------------------------------------------------------------------------


async def test_tls_from_config_tell_and_ask(pki: Pki) -> None:
    tls = pki.tls_section("node")
    async with (
        RemoteActorSystem(SYSTEM, config=config(tls=tls)) as a,
        RemoteActorSystem(SYSTEM, config=config(tls=tls)) as b,
    ):
        echo_a = a.spawn(echo(), "echo")
        assert await b.ask(b.ref(echo_a.uri), lambda r: Echo("over tls", r), timeout=10) == "over tls"
        probe = TestProbe(a)
        remote_probe = b.ref(f"{a.address}{probe.ref.path}")
        for i in range(50):
            remote_probe.tell(i)
        assert [await probe.receive(10) for _ in range(50)] == list(range(50))
        version, cert = tls_conn_info(b, a)
        assert version in ("TLSv1.2", "TLSv1.3")
        assert common_name(cert) == "casty node"
        version_a, _ = tls_conn_info(a, b)
        assert version_a == version


@pytest.mark.parametrize("presented", ["no certificate", "certificate from another CA"])
async def test_mutual_tls_refuses_peer_without_a_valid_client_certificate(
    pki: Pki, logs: LogWatch, presented: str
) -> None:
    cert = None if presented == "no certificate" else "rogue"
    intruder_ctx = pki.client_context(cert=cert, trust="ca")  # trusts the node, fails its check
    mutual = pki.tls_section("node", require_client_cert=True)
    async with (
        RemoteActorSystem(SYSTEM, config=config(tls=mutual)) as node,
        RemoteActorSystem(SYSTEM, config=config(), ssl_client=intruder_ctx) as intruder,
        RemoteActorSystem(SYSTEM, config=config(tls=pki.tls_section("client"))) as friend,
    ):
        node.spawn(echo(), "echo")
        probe = TestProbe(node)
        dead = TestProbe(intruder)
        intruder.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))

        # a raw TLS connection whose address we know: refused, and the node says who it was
        raw = await RawPeer.open(node.port, intruder_ctx)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            raw.writer.write(frame(msgpack.packb(hello(os.urandom(16)))))
        assert await raw.closed_by_node() == b""  # no welcome, not a single byte of casty
        raw.close()
        line = await logs.match(rf"refused connection from {re.escape(raw.label)}: TLS")
        assert "certificate" in line.lower()

        # a whole system: its tell becomes a dead letter, its ask times out, the probe gets nothing
        intruder.ref(f"{node.address}{probe.ref.path}").tell("intruder")
        with pytest.raises(AskTimeoutError):
            await intruder.ask(intruder.ref(f"{node.address}/user/echo"), lambda r: Echo("no", r), timeout=1.0)
        letter = await dead.expect(DeadLetter, timeout=15)
        assert letter.message == "intruder"
        assert len(logs.messages(r"refused connection from 127\.0\.0\.1:\d+: TLS")) >= 2
        await assert_only_marker(probe, friend)


async def test_ssl_contexts_passed_directly(pki: Pki, logs: LogWatch) -> None:
    server = pki.server_context(require_client_cert=True)
    async with (
        RemoteActorSystem(SYSTEM, ssl_server=server, ssl_client=pki.client_context(cert="node")) as a,
        RemoteActorSystem(SYSTEM, ssl_server=server, ssl_client=pki.client_context(cert="node")) as b,
        RemoteActorSystem(SYSTEM, config=config(), ssl_client=pki.client_context(cert="rogue", trust="rogue")) as c,
    ):
        echo_b = b.spawn(echo(), "echo")
        assert await a.ask(a.ref(echo_b.uri), lambda r: Echo("direct", r), timeout=10) == "direct"
        assert tls_conn_info(a, b)[0] in ("TLSv1.2", "TLSv1.3")
        # c trusts only the rogue CA: the dialer itself rejects the node's certificate
        with pytest.raises(AskTimeoutError):
            await c.ask(c.ref(echo_b.uri), lambda r: Echo("no", r), timeout=1.0)
        await logs.match(rf"cannot reach {re.escape(str(b.address))} .*certificate verify failed")


async def test_plaintext_peer_and_tls_node_refuse_each_other(pki: Pki, logs: LogWatch) -> None:
    tls = pki.tls_section("node")
    async with (
        RemoteActorSystem(SYSTEM, config=config(tls=tls)) as node,
        RemoteActorSystem(SYSTEM, config=config()) as plain,
        RemoteActorSystem(SYSTEM, config=config(tls=tls)) as friend,
    ):
        node.spawn(echo(), "echo")
        probe = TestProbe(node)
        # raw plaintext handshake bytes: the node closes the connection and names the peer
        raw = await RawPeer.open(node.port)
        raw.writer.write(frame(msgpack.packb(hello(os.urandom(16)))))
        assert await raw.closed_by_node() == b""
        raw.close()
        await logs.match(rf"refused connection from {re.escape(raw.label)}: TLS")
        # a plaintext system cannot reach the TLS node
        plain.ref(f"{node.address}{probe.ref.path}").tell("plaintext")
        with pytest.raises(AskTimeoutError):
            await plain.ask(plain.ref(f"{node.address}/user/echo"), lambda r: Echo("no", r), timeout=1.0)
        # nor can a TLS dialer talk to the plaintext node (its ClientHello is not a valid frame)
        plain_echo = plain.spawn(echo(), "echo")
        with pytest.raises(AskTimeoutError):
            await friend.ask(friend.ref(plain_echo.uri), lambda r: Echo("no", r), timeout=1.0)
        await logs.match(r"closing connection 127\.0\.0\.1:\d+: .* a TLS handshake, and this node does not use TLS")
        # the TLS node is unharmed
        await assert_only_marker(probe, friend)
        assert await friend.ask(friend.ref(f"{node.address}/user/echo"), lambda r: Echo("ok", r), timeout=10) == "ok"


@pytest.mark.parametrize("stage", ["before the TLS handshake", "after the TLS handshake"])
async def test_silent_peer_on_tls_node_is_dropped_after_handshake_timeout(pki: Pki, logs: LogWatch, stage: str) -> None:
    timeout = 0.5
    async with RemoteActorSystem(SYSTEM, config=config(tls=pki.tls_section("node"), handshake_timeout=timeout)) as node:
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        if stage == "before the TLS handshake":
            raw = await RawPeer.open(node.port)  # TCP only: never sends a ClientHello
        else:
            raw = await RawPeer.open(node.port, pki.client_context(cert="node"))  # never sends hello
        assert await raw.closed_by_node(timeout=10) == b""
        elapsed = loop.time() - started_at
        raw.close()
        assert timeout * 0.8 <= elapsed < timeout + 3.0, elapsed
        await logs.match(rf"{re.escape(raw.label)}.*timed out")
        assert node.transport is not None and not node.transport._inbound and not node.transport._established


async def test_cluster_forms_over_tls(pki: Pki) -> None:
    tls = pki.tls_section("node", require_client_cert=True)
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=cluster_config(tls=tls))
        )
        other = await stack.enter_async_context(
            ClusteredActorSystem(
                SYSTEM, "127.0.0.1", 0, seed_nodes=[("127.0.0.1", seed.port)], config=cluster_config(tls=tls)
            )
        )
        await seed.wait_for(2, timeout=20)
        await other.wait_for(2, timeout=20)
        state = await seed.get_cluster_state()
        assert {m.node.port for m in state.up_members} == {seed.port, other.port}
        echo_other = other.spawn(echo(), "echo")
        assert await seed.ask(seed.ref(echo_other.uri), lambda r: Echo("cluster", r), timeout=10) == "cluster"
        assert tls_conn_info(seed, other)[0] in ("TLSv1.2", "TLSv1.3")


async def test_cluster_client_over_tls(pki: Pki) -> None:
    tls = pki.tls_section("node", require_client_cert=True)
    client_cfg = config(tls=pki.tls_section("client"), connect_timeout=1.0)
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=cluster_config(tls=tls))
        )
        seed.spawn(Behaviors.discoverable(service("seed"), key=ECHO_KEY), "svc")
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", seed.port)], SYSTEM, config=client_cfg, connect_timeout=10)
        )
        listing = await client.wait_for_service(ECHO_KEY, timeout=10)
        (instance,) = listing.instances
        assert await client.ask(instance.ref, Ping, timeout=10) == "seed"
        transport = client.system.transport
        assert transport is not None
        assoc = transport.associations[seed.address]
        assert assoc.conn is not None and assoc.conn.tcp is not None
        assert assoc.conn.tcp.get_extra_info("ssl_object") is not None
        # a client without TLS gets nowhere
        with pytest.raises(ClusterUnavailable):
            async with ClusterClient(
                [("127.0.0.1", seed.port)], SYSTEM, config=config(connect_timeout=0.5), connect_timeout=1.5
            ):
                pass


# -- cluster secret ------------------------------------------------------------------------------


@pytest.mark.parametrize("intruder_secret", [None, "wrong secret"], ids=["no-secret", "wrong-secret"])
async def test_peer_without_the_secret_delivers_nothing(
    logs: LogWatch, secret_file: str, intruder_secret: str | None
) -> None:
    async with (
        RemoteActorSystem(SYSTEM, config=config(secret=SECRET)) as node,
        RemoteActorSystem(SYSTEM, config=config(secret=intruder_secret)) as intruder,
        RemoteActorSystem(SYSTEM, config=config(secret_file=secret_file)) as friend,
    ):
        node.spawn(echo(), "echo")
        probe = TestProbe(node)
        dead = TestProbe(intruder)
        intruder.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        intruder.ref(f"{node.address}{probe.ref.path}").tell("intruder")
        with pytest.raises(AskTimeoutError):
            await intruder.ask(intruder.ref(f"{node.address}/user/echo"), lambda r: Echo("no", r), timeout=1.0)
        letter = await dead.expect(DeadLetter, timeout=15)
        assert letter.message == "intruder"
        await logs.match(secret_refusal(node.port))
        await assert_only_marker(probe, friend)
        # the secret read from the file is the right one: asks work both ways
        echo_friend = friend.spawn(echo(), "echo")
        assert await node.ask(node.ref(echo_friend.uri), lambda r: Echo("file", r), timeout=10) == "file"
        assert await friend.ask(friend.ref(f"{node.address}/user/echo"), lambda r: Echo("ok", r), timeout=10) == "ok"


async def test_dialer_with_the_secret_refuses_an_impostor_node(logs: LogWatch) -> None:
    async with (
        RemoteActorSystem(SYSTEM, config=config()) as impostor,
        RemoteActorSystem(SYSTEM, config=config(secret=SECRET)) as member,
    ):
        probe = TestProbe(impostor)
        member.ref(f"{impostor.address}{probe.ref.path}").tell("for members only")
        await logs.match(rf"{re.escape(f'127.0.0.1:{impostor.port}')}.*the peer does not know the secret")
        # the impostor never got the message; nothing else reached it either
        assert probe.pending() == 0
        impostor.ref(f"{impostor.address}{probe.ref.path}").tell("marker")
        assert await probe.receive(10) == "marker" and probe.pending() == 0


def _envelope_to(path: str, message: Any) -> bytes:
    return frame(msgpack.packb([[0, path], message], use_bin_type=True))


async def _attack(port: int, kind: str, probe_path: str) -> tuple[RawPeer, bytes]:
    """One hand-made handshake attack; returns the connection and every byte the node sent."""
    nonce = os.urandom(16)
    peer = await RawPeer.open(port)
    w = peer.writer
    if kind == "envelope instead of hello":
        w.write(_envelope_to(probe_path, "intruder"))
        return peer, await peer.closed_by_node()
    if kind == "confirm before hello":
        w.write(frame(msgpack.packb({"t": "confirm", "mac": mac(SECRET, b"dialer", nonce)})))
        w.write(_envelope_to(probe_path, "intruder"))
        return peer, await peer.closed_by_node()
    w.write(frame(msgpack.packb(hello(nonce))))
    welcome = await read_frame(peer.reader)
    assert welcome["t"] == "welcome"
    # the node proves it knows the secret before we do anything
    assert hmac.compare_digest(welcome["mac"], mac(SECRET, b"acceptor", nonce))
    if kind == "empty mac":
        confirm = b""
    elif kind == "mac over another nonce (replay)":
        confirm = mac(SECRET, b"dialer", os.urandom(16))
    elif kind == "acceptor mac reflected":
        # ask the node itself, on a second connection, for a MAC over its own nonce
        mirror = await RawPeer.open(port)
        mirror.writer.write(frame(msgpack.packb(hello(welcome["nonce"], ident="client-mirror"))))
        reflected = await read_frame(mirror.reader)
        mirror.close()
        confirm = reflected["mac"]
    elif kind == "no confirm, envelope at once":
        w.write(_envelope_to(probe_path, "intruder"))
        return peer, await peer.closed_by_node()
    else:
        raise AssertionError(kind)
    # the confirm and an envelope in the same write: the envelope must never be dispatched
    w.write(frame(msgpack.packb({"t": "confirm", "mac": confirm})) + _envelope_to(probe_path, "intruder"))
    return peer, await peer.closed_by_node()


ATTACKS = [
    "envelope instead of hello",
    "confirm before hello",
    "empty mac",
    "mac over another nonce (replay)",
    "acceptor mac reflected",
    "no confirm, envelope at once",
]


async def test_hand_made_handshakes_without_the_secret_are_refused(logs: LogWatch) -> None:
    async with (
        RemoteActorSystem(SYSTEM, config=config(secret=SECRET)) as node,
        RemoteActorSystem(SYSTEM, config=config(secret=SECRET)) as friend,
    ):
        probe = TestProbe(node)
        for kind in ATTACKS:
            peer, received = await _attack(node.port, kind, probe.ref.path)
            peer.close()
            if kind in ("envelope instead of hello", "confirm before hello", "no confirm, envelope at once"):
                assert received == b"" or b"refused" in received, (kind, received)
            else:
                # after the welcome: at most a "refused" frame, never anything else
                assert received == b"" or msgpack.unpackb(received[4:])["t"] == "refused", (kind, received)
            await logs.match(rf"{re.escape(peer.label)}: ", timeout=10)
        assert len(logs.messages(r"cluster secret mismatch")) == 3
        await assert_only_marker(probe, friend)
        assert node.transport is not None
        assert not [
            a for a in node.transport.associations.values() if a.conn is not None and a.address != friend.address
        ]


async def test_unauthenticated_hellos_leave_no_state_behind(logs: LogWatch) -> None:
    """Hellos under many forged identities, each failing the secret: the node keeps no
    association, no connection and no cached ref for any of them."""
    async with RemoteActorSystem(SYSTEM, config=config(secret=SECRET)) as node:
        transport = node.transport
        assert transport is not None
        before = set(transport.associations)
        for i in range(120):
            peer = await RawPeer.open(node.port)
            forged = hello(os.urandom(16), ident=f"client-forged-{i}")
            if i % 2:
                forged.update(kind="node", host=f"10.66.{i // 250}.{i % 250}", port=20000 + i)
            peer.writer.write(frame(msgpack.packb(forged)))
            assert (await read_frame(peer.reader))["t"] == "welcome"
            peer.writer.write(frame(msgpack.packb({"t": "confirm", "mac": os.urandom(32)})))
            await peer.closed_by_node()
            peer.close()
        assert len(logs.messages(r"refused connection from 127\.0\.0\.1:\d+: cluster secret mismatch")) == 120
        assert set(transport.associations) == before
        assert not transport._inbound and not transport._established


@pytest.mark.parametrize("intruder_secret", [None, "wrong"], ids=["no-secret", "wrong-secret"])
async def test_cluster_join_needs_the_secret(logs: LogWatch, secret_file: str, intruder_secret: str | None) -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=cluster_config(secret=SECRET))
        )
        await seed.wait_for(1, timeout=10)
        seeds = [("127.0.0.1", seed.port)]
        intruder = await stack.enter_async_context(
            ClusteredActorSystem(
                SYSTEM, "127.0.0.1", 0, seed_nodes=seeds, config=cluster_config(secret=intruder_secret)
            )
        )
        await logs.match(secret_refusal(seed.port))
        good_cfg = dataclasses.replace(
            cluster_config(), security=dataclasses.replace(cluster_config().security, secret_file=secret_file)
        )
        member = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, seed_nodes=seeds, config=good_cfg)
        )
        await seed.wait_for(2, timeout=20)
        await member.wait_for(2, timeout=20)
        state = await seed.get_cluster_state()
        assert {m.node.port for m in state.members} == {seed.port, member.port}
        assert intruder.port not in {m.node.port for m in state.members}
        assert intruder.self_member.status is not MemberStatus.UP
        intruder_state = await intruder.get_cluster_state()
        assert {m.node.port for m in intruder_state.up_members} <= {intruder.port}


async def test_cluster_client_needs_the_secret(logs: LogWatch, secret_file: str) -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=cluster_config(secret=SECRET))
        )
        seed.spawn(Behaviors.discoverable(service("seed"), key=ECHO_KEY), "svc")
        for bad in (None, "wrong"):
            with pytest.raises(ClusterUnavailable):
                async with ClusterClient(
                    [("127.0.0.1", seed.port)],
                    SYSTEM,
                    config=config(secret=bad, connect_timeout=0.5),
                    connect_timeout=1.5,
                ):
                    pass
        assert len(logs.messages(secret_refusal(seed.port))) >= 2
        client = await stack.enter_async_context(
            ClusterClient(
                [("127.0.0.1", seed.port)], SYSTEM, config=config(secret_file=secret_file), connect_timeout=10
            )
        )
        (instance,) = (await client.wait_for_service(ECHO_KEY, timeout=10)).instances
        assert await client.ask(instance.ref, Ping, timeout=10) == "seed"
