"""Programs written for casty 0.21: ``ActorAddress(system, path, host, port, node_id)`` with its
URI round trip, and ``ref.address`` of local and remote refs."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import casty
import casty.core.address
from casty import ActorAddress, ActorSystem, Behaviors, RemoteActorSystem, SystemAddress
from casty.testkit import TestProbe

pytestmark = pytest.mark.timeout(60)


def test_the_021_constructor_defaults_and_immutability() -> None:
    local = ActorAddress(system="my-system", path="/user/counter")
    assert (local.host, local.port, local.node_id) == (None, None, None)
    assert local.is_local
    remote = ActorAddress("cluster", "/user/worker", "10.0.0.1", 25520, node_id="n1")
    assert not remote.is_local and remote.node_id == "n1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        remote.path = "/user/other"  # type: ignore[misc]
    assert {local, ActorAddress("my-system", "/user/counter")} == {local}
    assert casty.core.address.ActorAddress is ActorAddress
    assert casty.ActorAddress is ActorAddress


def test_uri_forms_and_round_trip() -> None:
    local = ActorAddress("my-system", "/user/counter")
    assert local.to_uri() == "casty://my-system/user/counter"
    remote = ActorAddress("cluster", "/user/worker", host="10.0.0.1", port=25520)
    assert remote.to_uri() == "casty://cluster@10.0.0.1:25520/user/worker"
    for address in (local, remote, ActorAddress("s", "/user/a/b/c", "example.org", 1)):
        assert ActorAddress.from_uri(address.to_uri()) == address
    parsed = ActorAddress.from_uri("casty://sys@127.0.0.1:8000/user/actor")
    assert (parsed.system, parsed.host, parsed.port, parsed.path) == ("sys", "127.0.0.1", 8000, "/user/actor")
    ipv6 = ActorAddress("s", "/user/a", "::1", 7)
    assert ActorAddress.from_uri(ipv6.to_uri()) == ipv6
    # node_id identifies a member for the caller; the URI does not carry it
    assert ActorAddress.from_uri(ActorAddress("s", "/a", "h", 1, "node-1").to_uri()).node_id is None


@given(
    system=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    path=st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=4),
    host=st.one_of(st.none(), st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True)),
    port=st.integers(min_value=0, max_value=65535),
)
def test_round_trip_property(system: str, path: list[str], host: str | None, port: int) -> None:
    address = ActorAddress(system, "/" + "/".join(path), host, None if host is None else port)
    assert ActorAddress.from_uri(address.to_uri()) == address


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "http://sys/user/a",
        "casty://",
        "casty://sys",
        "casty:///user/a",
        "casty://sys@host/user/a",
        "casty://sys@host:port/user/a",
        "casty://sys@:80/user/a",
        "casty://@host:80/user/a",
    ],
)
def test_malformed_uris_raise_value_error_naming_the_uri(uri: str) -> None:
    with pytest.raises(ValueError, match="URI"):
        ActorAddress.from_uri(uri)


def test_a_uri_that_is_not_a_string_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="str"):
        ActorAddress.from_uri(42)  # type: ignore[arg-type]


async def test_ref_address_of_a_local_actor() -> None:
    async with ActorSystem("plain") as system:
        ref = system.spawn(Behaviors.ignore(), "counter")
        assert ref.address == ActorAddress("plain", "/user/counter")
        assert ref.address.to_uri() == ref.uri
        assert ref.system_address == SystemAddress("plain")
        assert system.address == SystemAddress("plain")


async def test_ref_address_across_real_sockets() -> None:
    async with RemoteActorSystem("net", port=0) as a, RemoteActorSystem("net", port=0) as b:
        probe = TestProbe(b, "probe")
        local = probe.ref.address
        assert (local.system, local.path, local.host, local.port) == ("net", probe.ref.path, "127.0.0.1", b.port)
        # the URI a 0.21 program builds from an address reaches the actor
        remote = a.ref(local.to_uri())
        assert not remote.is_local
        assert remote.address == local and remote.address.path == probe.ref.path
        assert remote.system_address == b.address
        remote.tell("over the wire")
        assert await probe.receive(timeout=10) == "over the wire"
        # an address is a plain value a message can carry
        remote.tell(ActorAddress("net", "/user/elsewhere", "10.0.0.1", 7, node_id="n7"))
        assert await probe.receive(timeout=10) == ActorAddress("net", "/user/elsewhere", "10.0.0.1", 7, "n7")
        # a ref that crossed the wire keeps its address
        echo = TestProbe(a, "echo")
        remote.tell(echo.ref)
        carried = await probe.receive(timeout=10)
        assert carried.address == echo.ref.address
        assert carried.address == ActorAddress("net", echo.ref.path, "127.0.0.1", a.port)
