"""Programs written for casty 0.21: ``CastyConfig(...)`` built in Python with that release's flat
arguments and its table classes, read through the same mapping as a 0.21 ``casty.toml``."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field

import pytest

from casty import ActorSystem, ClusteredActorSystem, ConfigError
from casty.config import (
    CastyConfig,
    ClusterConfig,
    CompressionConfig,
    FailureDetectorConfig,
    GossipConfig,
    HeartbeatConfig,
    MailboxConfig,
    RemoteConfig,
    SerializationConfig,
    ShardingConfig,
    StreamsConfig,
    SupervisionConfig,
    SystemConfig,
    TransportConfig,
)

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class ActorConfig:
    """The shape of 0.21's per-actor override (a name pattern and its tables)."""

    pattern: re.Pattern[str]
    mailbox_overrides: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig021:
    """The shape of 0.21's ``casty.cluster.cluster.ClusterConfig``."""

    host: str
    port: int
    node_id: str
    seed_nodes: tuple[tuple[str, int], ...] = ()
    roles: frozenset[str] = frozenset()


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "casty.config" and r.levelno == level]


def test_every_021_argument_maps_or_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="casty.config")
    config = CastyConfig(
        system_name="my-app",
        gossip=GossipConfig(interval=0.25, fanout=5),
        heartbeat=HeartbeatConfig(interval=0.2, availability_check_interval=1.0),
        failure_detector=FailureDetectorConfig(
            threshold=12.0,
            max_sample_size=500,
            min_std_deviation_ms=50.0,
            acceptable_heartbeat_pause_ms=1500.0,
            first_heartbeat_estimate_ms=1000.0,
        ),
        defaults_mailbox=MailboxConfig(capacity=None, strategy="drop_oldest"),
        defaults_supervision=SupervisionConfig(strategy="stop"),
        defaults_sharding=ShardingConfig(num_shards=512),
        serialization=SerializationConfig(serializer="msgpack", compression=CompressionConfig(level=9)),
        transport=TransportConfig(max_pending_per_path=128),
        suppress_dead_letters_on_shutdown=True,
        actors=(ActorConfig(re.compile("worker-.*"), {"capacity": 10}),),
    )
    assert config.system.name == config.system_name == "my-app"
    assert config.cluster.gossip == config.gossip == GossipConfig(interval=0.25)
    assert config.cluster.heartbeat == HeartbeatConfig(interval=0.2, availability_check_interval=1.0)
    assert config.cluster.failure_detector == FailureDetectorConfig(
        threshold=12.0, acceptable_heartbeat_pause=1.5, min_std_deviation=0.05, max_sample_size=500
    )
    assert config.failure_detector is config.cluster.failure_detector
    assert config.defaults.mailbox == config.defaults_mailbox == MailboxConfig(capacity=0, strategy="drop_oldest")
    assert config.remote.allow_pickle is False
    # what has no meaning here is named: once per constructor that was given it
    warnings = messages(caplog, logging.WARNING)
    assert any("cluster.gossip.fanout" in w for w in warnings)
    assert any("first_heartbeat_estimate_ms" in w for w in warnings)
    (casty_config,) = [w for w in warnings if w.startswith("CastyConfig(...)")]
    for name in (
        "system.suppress_dead_letters_on_shutdown",
        "[transport]",
        "[serialization.compression]",
        "[defaults.supervision]",
        "[defaults.sharding]",
        '[actors."worker-.*"]',
    ):
        assert name in casty_config, name
    mapped = " ".join(messages(caplog, logging.INFO))
    assert "min_std_deviation_ms = 50.0 -> cluster.failure_detector.min_std_deviation = 0.05" in mapped
    assert "remote.allow_pickle = false" in mapped


def test_the_021_system_name_positionally_and_pickle_serializers() -> None:
    assert CastyConfig("positional").system.name == "positional"
    assert CastyConfig(serialization=SerializationConfig()).remote.allow_pickle is True  # 0.21's default: pickle
    assert CastyConfig(serialization=SerializationConfig(serializer="cloudpickle")).remote.allow_pickle is True
    assert CastyConfig(serialization={"serializer": "json"}).remote.allow_pickle is False


def test_a_021_cluster_object_and_021_cluster_arguments() -> None:
    config = CastyConfig(
        system_name="c",
        cluster=ClusterConfig021("10.0.0.1", 2551, "node-1", (("10.0.0.2", 2552),), frozenset({"b", "a"})),
    )
    assert config.cluster == ClusterConfig(
        host="10.0.0.1", port=2551, node_id="node-1", seed_nodes=(("10.0.0.2", 2552),), roles=("a", "b")
    )
    # our own ClusterConfig takes 0.21's keyword arguments, roles as a frozenset among them
    ours = ClusterConfig(host="h", port=1, node_id="n", seed_nodes=(("s", 2),), roles=frozenset({"x"}))
    assert ours.roles == ("x",) and ours.seed_nodes == (("s", 2),)
    merged = CastyConfig(cluster=ours, gossip=GossipConfig(interval=2.0))
    assert merged.cluster.node_id == "n" and merged.cluster.gossip.interval == 2.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: CastyConfig(system_name="a", system=SystemConfig(name="b")),
            r"^system\.name: 'a' from casty 0\.21's arguments contradicts system\.name = 'b'",
        ),
        (lambda: CastyConfig("a", system_name="b"), r"^system\.name: given twice"),
        (
            lambda: CastyConfig(
                serialization=SerializationConfig(serializer="msgpack"), remote=RemoteConfig(allow_pickle=True)
            ),
            r"^remote\.allow_pickle: False from casty 0\.21's arguments contradicts remote\.allow_pickle = True",
        ),
        (
            lambda: FailureDetectorConfig(min_std_deviation=0.5, min_std_deviation_ms=200),
            r"^cluster\.failure_detector\.min_std_deviation_ms: 200 ms contradicts",
        ),
        (
            lambda: FailureDetectorConfig(acceptable_heartbeat_pause_ms=-1),
            r"^cluster\.failure_detector\.acceptable_heartbeat_pause_ms: must not be negative",
        ),
        (
            lambda: CastyConfig(serialization=SerializationConfig(serializer="yaml")),
            r"^serialization\.serializer: must be one of",
        ),
        (lambda: CastyConfig(transport=42), r"^transport: expected a table"),
        (lambda: CastyConfig(cluster=object()), r"^cluster: expected ClusterConfig"),
        (lambda: MailboxConfig(capacity=-1), r"^defaults\.mailbox\.capacity: must not be negative"),
    ],
)
def test_contradictions_and_bad_values_name_the_key(build: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()  # type: ignore[operator]


def test_agreeing_arguments_of_both_forms() -> None:
    config = CastyConfig(system_name="same", system=SystemConfig(name="same"), serialization=SerializationConfig())
    assert config.system.name == "same" and config.remote.allow_pickle is True
    assert FailureDetectorConfig(acceptable_heartbeat_pause=2.5, acceptable_heartbeat_pause_ms=2500).acceptable_heartbeat_pause == 2.5


def test_our_own_construction_is_unchanged() -> None:
    assert CastyConfig() == CastyConfig(system=SystemConfig(), cluster=ClusterConfig())
    config = CastyConfig(streams=StreamsConfig(resend_interval=0.05), remote=RemoteConfig(max_frame_size=4096))
    assert config.streams.resend_interval == 0.05 and config.remote.max_frame_size == 4096
    replaced = dataclasses.replace(config, system=SystemConfig(name="other"))
    assert replaced.system.name == "other" and replaced.remote == config.remote
    assert FailureDetectorConfig() == FailureDetectorConfig(8.0, 200, acceptable_heartbeat_pause=2.0, min_std_deviation=0.1)
    assert MailboxConfig(5, "reject") == MailboxConfig(capacity=5, strategy="reject", throughput=64)
    with pytest.raises(TypeError):
        CastyConfig(no_such_argument=1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"^cluster\.gossip\.interval: expected float"):
        GossipConfig(interval="fast")  # type: ignore[arg-type]


async def test_a_021_config_runs_a_system() -> None:
    config = CastyConfig(system_name="from-021", defaults_mailbox=MailboxConfig(capacity=None))
    async with ActorSystem(config=config) as system:
        assert system.name == "from-021"


async def test_a_021_config_runs_a_cluster_node_over_real_sockets() -> None:
    config = CastyConfig(
        system_name="c021",
        cluster=ClusterConfig021("127.0.0.1", 0, "node-a"),
        gossip=GossipConfig(interval=0.1, fanout=3),
        heartbeat=HeartbeatConfig(interval=0.1, availability_check_interval=0.1),
        failure_detector=FailureDetectorConfig(acceptable_heartbeat_pause_ms=500.0, min_std_deviation_ms=50.0),
    )
    async with ClusteredActorSystem.from_config(config) as node:
        assert node.name == "c021" and node.node_id == "node-a"
        assert node.config.cluster.failure_detector.acceptable_heartbeat_pause == 0.5
        state = await node.wait_for(1, timeout=10)
        assert [m.node for m in state.up_members] == [node.self_node]


def test_the_021_positional_orders_mean_what_they_meant_there(caplog: pytest.LogCaptureFixture) -> None:
    """0.21's positional arguments of its config sections, in 0.21's order: a program that
    passed them positionally gets the values it meant, not other knobs."""
    caplog.set_level(logging.INFO, logger="casty.config")
    # threshold, max_sample_size, min_std_deviation_ms, acceptable_heartbeat_pause_ms, first_heartbeat_estimate_ms
    detector = FailureDetectorConfig(12.0, 500, 50.0, 3000.0, 500.0)
    assert detector == FailureDetectorConfig(
        threshold=12.0, max_sample_size=500, min_std_deviation=0.05, acceptable_heartbeat_pause=3.0
    )
    assert FailureDetectorConfig(12.0, 500).max_sample_size == 500
    assert GossipConfig(0.25, 5) == GossipConfig(interval=0.25)  # fanout: named in the warning
    assert "cluster.gossip.fanout" in " ".join(messages(caplog, logging.WARNING))
    # host, port, node_id, seed_nodes, roles
    cluster = ClusterConfig("10.0.0.1", 2551, "node-1", (("10.0.0.2", 2552),), frozenset({"b", "a"}))
    assert cluster == ClusterConfig(
        host="10.0.0.1", port=2551, node_id="node-1", seed_nodes=(("10.0.0.2", 2552),), roles=("a", "b")
    )
    assert cluster.bind_host == ""
    # what our own positional order used to mean (seconds after the threshold) fails loudly
    with pytest.raises(ConfigError, match=r"^cluster\.failure_detector\.max_sample_size: expected int, got float"):
        FailureDetectorConfig(8.0, 2.0)
