"""``casty.toml`` files and ``load_config`` calls written for casty 0.21."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from casty import ConfigError, load_config
from casty.config import CastyConfig, TlsConfig, discover_config

# The configuration the sensor-pipeline example of 0.21 ships with, verbatim.
PIPELINE_TOML = """
[system]
name = "sensors"

[cluster]
host = "127.0.0.1"
port = 25520
seed_nodes = ["127.0.0.1:25520"]

[cluster.gossip]
interval = 1.0

[cluster.heartbeat]
interval = 0.5
availability_check_interval = 2.0

[cluster.failure_detector]
threshold = 8.0

[defaults.mailbox]
capacity = 5000
strategy = "drop_new"
"""

# Every key 0.21 accepted.
EVERY_021_KEY = """
[system]
name = "shop"
suppress_dead_letters_on_shutdown = true

[transport]
max_pending_per_path = 128

[serialization]
serializer = "pickle"

[serialization.compression]
algorithm = "zlib"
level = 6

[defaults.mailbox]
capacity = 500
strategy = "drop_oldest"

[defaults.supervision]
strategy = "restart"
max_restarts = 3
within_seconds = 60.0

[defaults.sharding]
num_shards = 50

[defaults.replication]
replicas = 2

[cluster]
host = "10.0.0.5"
port = 2552
seed_nodes = ["10.0.0.1:2552", "10.0.0.2:2552"]
roles = ["frontend"]
node_id = "worker-1"

[cluster.gossip]
interval = 0.5
fanout = 5

[cluster.heartbeat]
interval = 0.25
availability_check_interval = 1.0

[cluster.failure_detector]
threshold = 12.0
max_sample_size = 500
min_std_deviation_ms = 150.0
acceptable_heartbeat_pause_ms = 3000.0
first_heartbeat_estimate_ms = 1000.0

[cluster.tls]
certfile = "certs/node.pem"
keyfile = "certs/node.key"
cafile = "certs/ca.pem"

[actors."worker-.*"]
mailbox = { capacity = 5000 }
supervision = { max_restarts = 10 }

[actors.special]
mailbox = { strategy = "drop_new" }
"""

IGNORED_021_KEYS = [
    "system.suppress_dead_letters_on_shutdown",
    "[transport]",
    "[serialization.compression]",
    "[defaults.supervision]",
    "[defaults.sharding]",
    "[defaults.replication]",
    '[actors."worker-.*"]',
    '[actors."special"]',
    "cluster.gossip.fanout",
    "cluster.failure_detector.first_heartbeat_estimate_ms",
]


def write(directory: Path, text: str) -> Path:
    path = directory / "casty.toml"
    path.write_text(textwrap.dedent(text))
    return path


def config_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "casty.config" and r.levelno >= logging.WARNING]


def test_the_pipeline_example_configuration_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(write(tmp_path, PIPELINE_TOML))
    assert config.system.name == "sensors"
    assert (config.cluster.host, config.cluster.port) == ("127.0.0.1", 25520)
    assert config.cluster.seed_nodes == (("127.0.0.1", 25520),)
    assert config.cluster.gossip.interval == 1.0
    assert config.cluster.heartbeat.availability_check_interval == 2.0
    assert config.cluster.failure_detector.threshold == 8.0
    assert (config.defaults.mailbox.capacity, config.defaults.mailbox.strategy) == (5000, "drop_new")
    assert config_warnings(caplog) == []


def test_every_021_key_loads_and_the_ignored_ones_are_named_in_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="casty.config")
    config = load_config(write(tmp_path, EVERY_021_KEY))
    assert config.system.name == "shop"
    assert config.defaults.mailbox.capacity == 500
    assert config.defaults.mailbox.strategy == "drop_oldest"
    assert config.cluster.node_id == "worker-1"
    assert config.cluster.roles == ("frontend",)
    assert config.cluster.seed_nodes == (("10.0.0.1", 2552), ("10.0.0.2", 2552))
    assert config.cluster.gossip.interval == 0.5
    assert config.cluster.heartbeat.interval == 0.25
    detector = config.cluster.failure_detector
    assert (detector.threshold, detector.max_sample_size) == (12.0, 500)
    # milliseconds become seconds
    assert detector.min_std_deviation == pytest.approx(0.15)
    assert detector.acceptable_heartbeat_pause == pytest.approx(3.0)
    # [cluster.tls] is mutual TLS in [tls]
    assert config.tls == TlsConfig(
        enabled=True,
        certfile="certs/node.pem",
        keyfile="certs/node.key",
        cafile="certs/ca.pem",
        require_client_cert=True,
    )
    # choosing pickle lets pickle carry what msgpack cannot
    assert config.remote.allow_pickle is True
    warnings = config_warnings(caplog)
    assert len(warnings) == 1, warnings
    for key in IGNORED_021_KEYS:
        assert key in warnings[0]
    # loading again warns again, once
    caplog.clear()
    load_config(tmp_path / "casty.toml")
    assert len(config_warnings(caplog)) == 1


def test_our_own_actors_keys_sit_beside_021_actor_patterns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [actors]
        ask_timeout = 2.5

        [actors."worker-.*"]
        mailbox = { capacity = 10 }
        """,
    )
    assert load_config(path).actors.ask_timeout == 2.5


def test_load_config_without_a_path_walks_up_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[system]\nname = "found-upwards"\n')
    deep = tmp_path / "app" / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert discover_config() == (tmp_path / "casty.toml").resolve()
    assert discover_config(deep) == (tmp_path / "casty.toml").resolve()
    assert load_config().system.name == "found-upwards"
    # the nearest file wins
    write(deep, '[system]\nname = "nearest"\n')
    assert load_config().system.name == "nearest"


def test_load_config_without_a_path_and_without_a_file_is_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if discover_config(tmp_path) is not None:
        pytest.skip("a casty.toml exists above the temporary directory")
    monkeypatch.chdir(tmp_path)
    assert discover_config() is None
    assert load_config() == CastyConfig()
    assert load_config(None) == CastyConfig()


def test_an_explicit_path_that_does_not_exist_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "casty.toml"
    with pytest.raises(FileNotFoundError) as info:
        load_config(missing)
    assert str(missing) in str(info.value)
    assert info.value.filename == str(missing)
    assert isinstance(info.value, ConfigError)


def test_a_key_in_milliseconds_next_to_its_twin_in_seconds(tmp_path: Path) -> None:
    same = """
    [cluster.failure_detector]
    acceptable_heartbeat_pause_ms = 2500
    acceptable_heartbeat_pause = 2.5
    """
    assert load_config(write(tmp_path, same)).cluster.failure_detector.acceptable_heartbeat_pause == 2.5
    different = """
    [cluster.failure_detector]
    min_std_deviation_ms = 200
    min_std_deviation = 0.5
    """
    with pytest.raises(ConfigError, match=r"^cluster\.failure_detector\.min_std_deviation_ms: 200 ms contradicts"):
        load_config(write(tmp_path, different))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[cluster.failure_detector]\nmin_std_deviation_ms = "100"\n',
            r"^cluster\.failure_detector\.min_std_deviation_ms: expected a number of milliseconds, got str",
        ),
        (
            "[cluster.failure_detector]\nmin_std_deviation_ms = 0\n",
            r"^cluster\.failure_detector\.min_std_deviation_ms: must be positive",
        ),
        (
            "[cluster.failure_detector]\nacceptable_heartbeat_pause_ms = -1\n",
            r"^cluster\.failure_detector\.acceptable_heartbeat_pause_ms: must not be negative",
        ),
        ('[cluster.tls]\ncertfile = "node.pem"\n', r"^cluster\.tls\.cafile: must be set"),
        ('[cluster.tls]\ncertfile = "a"\ncafile = "b"\nverify = true\n', r"^cluster\.tls\.verify: not a key"),
        ('[serialization]\nserializer = "yaml"\n', r"^serialization\.serializer: must be one of"),
        (
            '[serialization]\nserializer = "pickle"\n[remote]\nallow_pickle = false\n',
            r"contradicts remote\.allow_pickle",
        ),
        (
            '[serialization]\nserializer = "msgpack"\n[remote]\nallow_pickle = true\n',
            r"contradicts remote\.allow_pickle",
        ),
        (
            '[cluster.tls]\ncertfile = "a.pem"\ncafile = "ca.pem"\n[tls]\nenabled = true\ncertfile = "b.pem"\nkeyfile = "b.key"\n',
            r"^cluster\.tls\.certfile: 'a\.pem' contradicts tls\.certfile = 'b\.pem'",
        ),
        (
            '[cluster.tls]\ncertfile = "a.pem"\ncafile = "ca.pem"\n[tls]\nrequire_client_cert = false\n',
            r"^cluster\.tls: True contradicts tls\.require_client_cert = False",
        ),
    ],
)
def test_contradictions_and_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_cluster_tls_agreeing_with_tls_and_a_key_inside_the_certificate_file(tmp_path: Path) -> None:
    text = """
    [cluster.tls]
    certfile = "node.pem"
    cafile = "ca.pem"

    [tls]
    enabled = true
    certfile = "node.pem"
    """
    tls = load_config(write(tmp_path, text)).tls
    assert (tls.enabled, tls.certfile, tls.keyfile, tls.cafile, tls.require_client_cert) == (
        True,
        "node.pem",
        "node.pem",
        "ca.pem",
        True,
    )
    assert TlsConfig.from_paths(certfile="node.pem", cafile="ca.pem") == tls


def test_json_serializer_is_accepted_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(write(tmp_path, '[serialization]\nserializer = "json"\n'))
    assert config.remote.allow_pickle is False
    assert 'serialization.serializer = "json"' in config_warnings(caplog)[0]
