"""Cluster programs written for casty 0.21: the ``ClusteredActorSystem`` constructor and
``from_config`` with that release's keywords, ``required_quorum``, ``wait_for`` returning the
``ClusterState``, ``get_cluster_state(timeout=)``, ``Member.id``, lower-case ``MemberStatus``,
unreachable members as addresses and the membership events exported at top level."""

from __future__ import annotations

import asyncio
import textwrap
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from casty import (
    Behaviors,
    ClusterClient,
    ClusteredActorSystem,
    ClusterState,
    ClusterUnavailable,
    ConfigError,
    EventStreamSubscribe,
    MemberLeft,
    MemberStatus,
    MemberUp,
    NodeAddress,
    ReachableMember,
    UnreachableMember,
    load_config,
)
from casty.config import CastyConfig, TlsConfig
from casty.remote.tls import Config, TlsContexts
from casty.testkit import TestProbe
from tests.certs import Pki, make_pki, openssl_available
from tests.cluster_app import ECHO_KEY, fast_cluster_config
from tests.conftest import eventually
from tests.ports import free_port
from tests.procs import NodeProcess
from tests.remote_app import Echo, echo

pytestmark = pytest.mark.timeout(90)

FAST_021_TOML = """
[system]
name = "compat"

[cluster]
host = "127.0.0.1"
port = 0
node_id = "from-the-file"
roles = ["backend"]

[cluster.gossip]
interval = 0.2

[cluster.heartbeat]
interval = 0.2
availability_check_interval = 0.2

[cluster.failure_detector]
threshold = 8.0
acceptable_heartbeat_pause_ms = 600
"""


def fast() -> CastyConfig:
    return fast_cluster_config("compat")


def test_member_status_is_spelled_in_lower_case_and_keeps_the_upper_case_aliases() -> None:
    assert [s.name for s in MemberStatus] == ["joining", "up", "leaving", "exiting", "down", "removed"]
    assert MemberStatus.up is MemberStatus.UP and MemberStatus.joining is MemberStatus.JOINING
    assert MemberStatus.leaving is MemberStatus.LEAVING and MemberStatus.down is MemberStatus.DOWN
    assert MemberStatus.removed is MemberStatus.REMOVED and MemberStatus.exiting is MemberStatus.EXITING
    assert MemberStatus("up") is MemberStatus.up
    assert MemberStatus.up.rank < MemberStatus.leaving.rank < MemberStatus.removed.rank


def test_member_status_travels_as_before() -> None:
    from casty.serde import MsgpackSerializer

    serializer = MsgpackSerializer()
    for status in MemberStatus:
        encoded = serializer.new_encoder(lambda ref: ref.path).encode(status)
        # the value, under the wire name the status always had
        assert b"casty.cluster._membership:MemberStatus" in encoded
        assert status.value.encode() in encoded
        upper = getattr(MemberStatus, status.name.upper())
        assert serializer.new_encoder(lambda ref: ref.path).encode(upper) == encoded
        assert serializer.new_decoder(lambda uri: None).decode(encoded) is status


async def test_constructor_with_the_021_keywords() -> None:
    async with ClusteredActorSystem(
        name="compat",
        host="127.0.0.1",
        port=0,
        node_id="node-1",
        seed_nodes=None,
        roles=frozenset({"worker", "api"}),
        bind_host=None,
        config=fast(),
        tls=None,
        required_quorum=1,
        serializer=None,
    ) as system:
        assert system.node_id == "node-1"
        state = await system.wait_for(1, timeout=10.0)
        assert isinstance(state, ClusterState)
        (member,) = state.members
        assert member.id == f"127.0.0.1:{system.port}"
        assert member.status is MemberStatus.up
        assert member.roles == ("api", "worker")
        assert state.leader == NodeAddress("127.0.0.1", system.port)
        assert state.unreachable == frozenset()
        again = await system.get_cluster_state(timeout=5.0)
        assert again.members == state.members


async def test_required_quorum_holds_async_with_until_that_many_members_are_up() -> None:
    seed_port = free_port()
    seeds = [("127.0.0.1", seed_port)]
    first = ClusteredActorSystem(
        name="compat",
        host="127.0.0.1",
        port=seed_port,
        node_id="node-1",
        seed_nodes=seeds,
        config=fast(),
        required_quorum=3,
    )
    others = [
        ClusteredActorSystem(
            name="compat",
            host="127.0.0.1",
            port=0,
            node_id=f"node-{i}",
            seed_nodes=seeds,
            config=fast(),
            required_quorum=3,
        )
        for i in (2, 3)
    ]
    async with AsyncExitStack() as stack:
        entering = asyncio.ensure_future(first.__aenter__())
        stack.push_async_callback(first.shutdown)
        await eventually(lambda: first.membership is not None and first.membership.is_member, 10.0, what="first member")
        probe = TestProbe(first)
        first.event_stream.tell(EventStreamSubscribe(MemberUp, probe.ref))
        first.event_stream.tell(EventStreamSubscribe(MemberLeft, probe.ref))
        # the first node comes out of `async with` only with three members up in its view
        up_when_entered: list[int] = []
        membership = first.membership
        assert membership is not None
        entering.add_done_callback(lambda _: up_when_entered.append(len(membership.cluster_state().up_members)))
        assert not entering.done()
        await asyncio.gather(*(stack.enter_async_context(o) for o in others))
        assert await asyncio.wait_for(entering, 20.0) is first
        assert up_when_entered == [3]
        for system in (first, *others):
            state = await system.get_cluster_state()
            assert len(state.up_members) == 3
            assert sorted(m.id for m in state.members) == sorted(f"127.0.0.1:{s.port}" for s in (first, *others))
        joined = {f"127.0.0.1:{o.port}" for o in others}
        ups: set[str] = set()
        while not joined <= ups:
            event = await probe.expect(MemberUp, timeout=10.0)
            assert event.member.status is MemberStatus.up
            ups.add(event.member.id)
        assert ups - joined <= {f"127.0.0.1:{first.port}"}
        # a member that leaves is heard of as MemberLeft
        leaver = others[1]
        await leaver.shutdown()
        while True:
            event = await probe.receive(10.0)
            if isinstance(event, MemberLeft):
                assert event.member.id == f"127.0.0.1:{leaver.port}"
                break


async def test_required_quorum_not_reached_raises_timeout_and_stops_the_node() -> None:
    system = ClusteredActorSystem(
        name="compat", host="127.0.0.1", port=0, node_id="lonely", config=fast(), required_quorum=2
    )
    system.QUORUM_TIMEOUT = 1.0
    with pytest.raises(TimeoutError, match="1 of 2 members up"):
        async with system:
            raise AssertionError("async with must not return without the quorum")
    await asyncio.wait_for(system.wait_for_termination(), 10.0)


@pytest.mark.parametrize("quorum", [0, -1, 1.5, True, "3"])
def test_required_quorum_must_be_a_number_of_members(quorum: object) -> None:
    with pytest.raises(ConfigError, match="required_quorum"):
        ClusteredActorSystem(name="compat", host="127.0.0.1", port=0, node_id="n", required_quorum=quorum)  # type: ignore[arg-type]


async def test_from_config_with_a_021_file_and_the_021_extras(tmp_path: Path) -> None:
    path = tmp_path / "casty.toml"
    path.write_text(textwrap.dedent(FAST_021_TOML))
    config = load_config(path)
    async with ClusteredActorSystem.from_config(config, required_quorum=1) as from_file:
        assert from_file.name == "compat"
        assert from_file.node_id == "from-the-file"
        assert from_file.roles == ("backend",)
        seeds = [("127.0.0.1", from_file.port)]
        async with ClusteredActorSystem.from_config(
            config,
            host="127.0.0.1",
            port=0,
            node_id="override",
            seed_nodes=seeds,
            bind_host="127.0.0.1",
            tls=None,
            required_quorum=2,
            serializer=None,
        ) as second:
            assert second.node_id == "override"
            state = await second.wait_for(2, timeout=10.0)
            assert {m.id for m in state.up_members} == {f"127.0.0.1:{from_file.port}", f"127.0.0.1:{second.port}"}
            assert all(m.roles == ("backend",) for m in state.members)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not openssl_available():
        pytest.skip("the openssl command line tool is needed to generate test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_tls_given_as_from_paths_forms_a_mutual_tls_cluster(pki: Pki) -> None:
    tls = TlsConfig.from_paths(certfile=str(pki.node_cert), keyfile=str(pki.node_key), cafile=str(pki.ca))
    async with ClusteredActorSystem(
        name="compat", host="127.0.0.1", port=0, node_id="tls-1", config=fast(), tls=tls
    ) as seed:
        assert seed.config.tls == tls and seed.config.tls.require_client_cert
        await _join_encrypted(seed, "tls-2", tls)


async def _join_encrypted(seed: ClusteredActorSystem, node_id: str, tls: TlsConfig | TlsContexts) -> None:
    """A second node joins ``seed`` with ``tls``: the connection between them is encrypted."""
    async with ClusteredActorSystem(
        name="compat",
        host="127.0.0.1",
        port=0,
        node_id=node_id,
        seed_nodes=[("127.0.0.1", seed.port)],
        config=fast(),
        tls=tls,
        required_quorum=2,
    ) as other:
        await seed.wait_for(2, timeout=20.0)
        assert other.transport is not None
        conn = other.transport.associations[seed.address].conn
        assert conn is not None and conn.tcp is not None
        assert conn.tcp.get_extra_info("ssl_object") is not None, "the connection is not encrypted"


async def test_tls_given_as_two_ssl_contexts_forms_a_mutual_tls_cluster_a_client_can_reach(pki: Pki) -> None:
    """0.21's other way to give TLS: ``TlsConfig(server_context=..., client_context=...)``
    (and ``casty.remote.tls.Config`` with ``from_paths``); the contexts are used as they are."""
    tls = TlsConfig(
        server_context=pki.server_context(require_client_cert=True), client_context=pki.client_context(cert="node")
    )
    assert isinstance(tls, TlsContexts)
    joiner_tls = Config.from_paths(certfile=str(pki.node_cert), keyfile=str(pki.node_key), cafile=str(pki.ca))
    async with ClusteredActorSystem(
        name="compat", host="127.0.0.1", port=0, node_id="ctx-1", config=fast(), tls=tls
    ) as seed:
        seed.spawn(Behaviors.discoverable(echo(), key=ECHO_KEY), "echo")
        await _join_encrypted(seed, "ctx-2", joiner_tls)
        # a client with the same kind of TLS finds and asks the service; one without a
        # certificate is refused (the seed requires client certificates)
        async with ClusterClient(
            contact_points=[("127.0.0.1", seed.port)], system_name="compat", tls=tls
        ) as client:
            listing = await client.wait_for_service(ECHO_KEY, timeout=20, count=1)
            (instance,) = listing.instances
            assert await client.ask(instance.ref, lambda r: Echo("over tls", r), timeout=10) == "over tls"
        with pytest.raises(ClusterUnavailable):
            async with ClusterClient(
                contact_points=[("127.0.0.1", seed.port)],
                system_name="compat",
                tls=pki.client_context(cert=None),
                connect_timeout=2.0,
            ):
                pass
    with pytest.raises(TypeError, match="takes those two arguments only"):
        TlsConfig(enabled=True, server_context=pki.server_context(require_client_cert=False))
    with pytest.raises(TypeError, match="tls must be a"):
        ClusteredActorSystem(name="compat", host="127.0.0.1", port=0, tls="tls")  # type: ignore[arg-type]


@pytest.mark.slow
async def test_unreachable_members_are_addresses_and_events_are_published() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(
            ClusteredActorSystem(
                name="cluster",
                host="127.0.0.1",
                port=0,
                node_id="seed",
                config=fast_cluster_config(down_after=60.0),
            )
        )
        probe = TestProbe(seed)
        for event in (UnreachableMember, ReachableMember):
            seed.event_stream.tell(EventStreamSubscribe(event, probe.ref))
        node = await stack.enter_async_context(NodeProcess("tests.cluster_node", "--seed", f"127.0.0.1:{seed.port}"))
        state = await seed.wait_for(2, timeout=30.0)
        assert state.unreachable == frozenset()
        await node.kill()
        lost = NodeAddress("127.0.0.1", node.port)
        event = await probe.expect(UnreachableMember, timeout=20.0)
        assert event.member.node == lost and event.member.id == f"127.0.0.1:{node.port}"
        state = await seed.get_cluster_state()
        assert state.unreachable == frozenset({lost})
        assert all(type(a) is NodeAddress for a in state.unreachable)
        assert [m.id for m in state.unreachable_members] == [f"127.0.0.1:{node.port}"]
