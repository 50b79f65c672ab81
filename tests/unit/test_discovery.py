"""DNS discovery pieces that need no cluster: the default resolver, contact order, the knobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from casty.actors.ref import NodeAddress
from casty.cluster.discovery import GetaddrinfoResolver, Resolver, node_order
from casty.config import CastyConfig, load_config
from casty.errors import ConfigError


async def test_the_default_resolver_reads_the_system_resolver() -> None:
    resolver = GetaddrinfoResolver()
    assert isinstance(resolver, Resolver)
    assert "127.0.0.1" in await resolver.resolve("localhost")
    assert await resolver.resolve("no-such-name.invalid") == ()  # no records (yet): none


def test_contacts_are_ordered_by_address_value() -> None:
    nodes = [
        NodeAddress("10.0.0.10", 25520),
        NodeAddress("::1", 25520),
        NodeAddress("10.0.0.9", 25520),
        NodeAddress("node-a", 25520),
        NodeAddress("10.0.0.9", 25519),
    ]
    assert sorted(nodes, key=node_order) == [
        NodeAddress("10.0.0.9", 25519),
        NodeAddress("10.0.0.9", 25520),  # 10.0.0.9 < 10.0.0.10 by value, not as text
        NodeAddress("10.0.0.10", 25520),
        NodeAddress("::1", 25520),
        NodeAddress("node-a", 25520),
    ]


def test_discovery_knobs_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no casty.toml found upwards
    cfg = CastyConfig.from_dict({"cluster": {"discovery": "dns", "service_name": "nodes", "min_members": 3}})
    assert (cfg.cluster.discovery, cfg.cluster.service_name, cfg.cluster.min_members) == ("dns", "nodes", 3)
    with pytest.raises(ConfigError, match=r"cluster\.service_name: must be set"):
        CastyConfig.from_dict({"cluster": {"discovery": "dns"}})
    with pytest.raises(ConfigError, match=r"cluster\.seed_nodes: are not used"):
        CastyConfig.from_dict({"cluster": {"discovery": "dns", "service_name": "n", "seed_nodes": ["a:1"]}})
    with pytest.raises(ConfigError, match=r"cluster\.service_name: needs cluster\.discovery"):
        CastyConfig.from_dict({"cluster": {"service_name": "n"}})
    with pytest.raises(ConfigError, match="must be one of static, dns"):
        CastyConfig.from_dict({"cluster": {"discovery": "consul"}})
    with pytest.raises(ConfigError, match=r"CASTY_CLUSTER__MIN_MEMBERS \(cluster\.min_members\): must be at least 1"):
        load_config(env={"CASTY_CLUSTER__MIN_MEMBERS": "0"})
