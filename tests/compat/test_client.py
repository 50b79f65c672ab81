"""Programs written for casty 0.21: a ClusterClient built with that release's arguments, and
``address_map`` reaching a node that advertises an address the client cannot reach."""

from __future__ import annotations

import dataclasses
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from casty import ActorContext, ActorRef, Behavior, Behaviors, ClusteredActorSystem, NodeAddress, ServiceKey
from casty.client.client import ClusterClient, ClusterUnavailable
from casty.config import TlsConfig
from casty.errors import AskTimeoutError
from tests.certs import Pki, make_pki, openssl_available
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)

KEY: ServiceKey[Any] = ServiceKey("where")
UNREACHABLE = "casty-node.invalid"  # .invalid never resolves


@dataclass(frozen=True)
class Where:
    reply_to: ActorRef[str]


def where() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, Where):
            msg.reply_to.tell(str(ctx.self))
        return Behaviors.same()

    return Behaviors.receive(receive)


async def natted_node(stack: AsyncExitStack) -> ClusteredActorSystem:
    """A node bound on 127.0.0.1 that advertises a host nobody can resolve (as a node inside a
    container network advertises its internal name)."""
    node = await stack.enter_async_context(
        ClusteredActorSystem(
            name="nat", host=UNREACHABLE, port=0, bind_host="127.0.0.1", config=fast_cluster_config("nat")
        )
    )
    node.spawn(Behaviors.discoverable(where(), key=KEY), "svc")
    await node.wait_for(1, timeout=10)
    return node


async def test_address_map_reaches_a_node_that_advertises_an_unreachable_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AsyncExitStack() as stack:
        node = await natted_node(stack)
        advertised = (UNREACHABLE, node.port)
        reachable = ("127.0.0.1", node.port)
        dialed: list[tuple[str, int]] = []

        def address_map(addr: tuple[str, int]) -> tuple[str, int]:
            dialed.append(addr)
            return reachable if addr == advertised else addr

        caplog.set_level(logging.DEBUG, logger="casty.client")
        client = await stack.enter_async_context(
            ClusterClient(
                contact_points=[advertised],
                system_name="nat",
                client_host="0.0.0.0",
                client_port=0,
                advertised_host="client.example",
                advertised_port=9999,
                address_map=address_map,
            )
        )
        assert sum("have no effect" in r.getMessage() for r in caplog.records) == 1
        await eventually(lambda: bool(client.lookup(KEY).instances), timeout=10, what="service visible")
        instance = next(iter(client.lookup(KEY).instances))
        assert instance.node == NodeAddress(*advertised)
        assert instance.ref.address.host == UNREACHABLE  # refs keep the advertised address
        answer = await client.ask(instance.ref, lambda r: Where(reply_to=r), timeout=5.0)
        assert answer == str(instance.ref)
        assert advertised in dialed


async def test_without_address_map_the_advertised_address_is_unreachable() -> None:
    async with AsyncExitStack() as stack:
        node = await natted_node(stack)
        with pytest.raises(ClusterUnavailable):
            async with ClusterClient(
                contact_points=[(UNREACHABLE, node.port)], system_name="nat", connect_timeout=1.5
            ):
                pass
        # through the reachable address the client connects, but the refs it discovers carry the
        # advertised address: without a map, nothing reaches them
        client = await stack.enter_async_context(
            ClusterClient(contact_points=[("127.0.0.1", node.port)], system_name="nat", client_host="127.0.0.1")
        )
        await eventually(lambda: bool(client.lookup(KEY).instances), timeout=10, what="service visible")
        ref = next(iter(client.lookup(KEY).instances)).ref
        with pytest.raises(AskTimeoutError):
            await client.ask(ref, lambda r: Where(reply_to=r), timeout=1.0)


async def test_address_map_with_a_reachable_contact_point() -> None:
    async with AsyncExitStack() as stack:
        node = await natted_node(stack)
        reachable = ("127.0.0.1", node.port)
        client = await stack.enter_async_context(
            ClusterClient(
                contact_points=[reachable],
                system_name="nat",
                address_map=lambda addr: reachable if addr[0] == UNREACHABLE else addr,
            )
        )
        await eventually(lambda: bool(client.lookup(KEY).instances), timeout=10, what="service visible")
        ref = next(iter(client.lookup(KEY).instances)).ref
        for _ in range(3):
            assert await client.ask(ref, lambda r: Where(reply_to=r), timeout=5.0) == str(ref)


def test_client_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        ClusterClient(contact_points=[("127.0.0.1", 1)], system_name="x", address_map={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ClusterClient(contact_points=[("127.0.0.1", 1)], system_name="x", tls="yes")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not openssl_available():
        pytest.skip("the openssl command line tool is needed to generate test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_client_tls_argument_is_honoured(pki: Pki) -> None:
    node_cfg = fast_cluster_config("secure")
    node_cfg = dataclasses.replace(node_cfg, tls=TlsConfig.from_dict(pki.tls_section("node", require_client_cert=True)))
    async with AsyncExitStack() as stack:
        node = await stack.enter_async_context(
            ClusteredActorSystem(name="secure", host="127.0.0.1", port=0, config=node_cfg)
        )
        node.spawn(Behaviors.discoverable(where(), key=KEY), "svc")
        await node.wait_for(1, timeout=10)
        contact = [("127.0.0.1", node.port)]
        with pytest.raises(ClusterUnavailable):  # plaintext client against a TLS node
            async with ClusterClient(contact_points=contact, system_name="secure", connect_timeout=1.5):
                pass
        for tls in (pki.client_context(cert="client"), TlsConfig.from_dict(pki.tls_section("client"))):
            async with ClusterClient(contact_points=contact, system_name="secure", tls=tls) as client:
                await eventually(lambda: bool(client.lookup(KEY).instances), timeout=10, what="service visible")
                ref = next(iter(client.lookup(KEY).instances)).ref
                assert await client.ask(ref, lambda r: Where(reply_to=r), timeout=5.0) == str(ref)
