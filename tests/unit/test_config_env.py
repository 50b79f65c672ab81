"""Environment variables overriding casty.toml: typed, validated like the file, errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from casty.config import CastyConfig, load_config
from casty.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "casty.toml"
    path.write_text(text)
    return path


def test_overrides_reach_every_kind_of_knob(tmp_path: Path) -> None:
    path = write(tmp_path, '[cluster]\nhost = "10.0.0.5"\nport = 2552\nroles = ["a"]\n[system]\nname = "file"\n')
    cfg = load_config(
        path,
        env={
            "CASTY_CLUSTER__SEED_NODES": "a:25520, b:25520,[::1]:25521",
            "CASTY_CLUSTER__PORT": "0",
            "CASTY_CLUSTER__ROLES": "ingest,api",
            "CASTY_CLUSTER__FAILURE_DETECTOR__THRESHOLD": "12",
            "CASTY_CLUSTER__GOSSIP__INTERVAL": "1",
            "CASTY_REMOTE__TCP_NODELAY": "False",
            "CASTY_DEFAULTS__MAILBOX__STRATEGY": "reject",
            "CASTY_SYSTEM__NAME": "env",
        },
    )
    assert cfg.cluster.host == "10.0.0.5"  # from the file, not overridden
    assert cfg.cluster.port == 0
    assert cfg.cluster.seed_nodes == (("a", 25520), ("b", 25520), ("::1", 25521))
    assert cfg.cluster.roles == ("ingest", "api")
    assert cfg.cluster.failure_detector.threshold == 12.0
    assert isinstance(cfg.cluster.gossip.interval, float) and cfg.cluster.gossip.interval == 1.0
    assert cfg.remote.tcp_nodelay is False
    assert cfg.defaults.mailbox.strategy == "reject"
    assert cfg.system.name == "env"


def test_empty_list_and_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASTY_CLUSTER__SEED_NODES", "")
    monkeypatch.setenv("CASTY_CLUSTER__NODE_ID", "node-7")
    monkeypatch.setenv("CASTY_NO_EXTENSIONS_LIKE", "not configuration: no double underscore")
    cfg = load_config()  # no casty.toml anywhere up from tmp_path: defaults + the environment
    assert cfg.cluster.seed_nodes == ()
    assert cfg.cluster.node_id == "node-7"
    # the environment applies only where configuration is loaded
    assert CastyConfig().cluster.node_id == ""
    assert load_config(env={}).cluster.node_id == ""


def test_file_only_with_an_empty_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTY_CLUSTER__PORT", "1234")
    path = write(tmp_path, "[cluster]\nport = 2552\n")
    assert load_config(path).cluster.port == 1234
    assert load_config(path, env={}).cluster.port == 2552


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CASTY_CLUSTER__PORT": "abc"}, "CASTY_CLUSTER__PORT (cluster.port): expected int, got 'abc'"),
        ({"CASTY_CLUSTER__PORT": "70000"}, "CASTY_CLUSTER__PORT (cluster.port): must be a port in 0..65535"),
        ({"CASTY_CLUSTER__DOWN_AFTER": "-1"}, "CASTY_CLUSTER__DOWN_AFTER (cluster.down_after): must be positive"),
        ({"CASTY_CLUSTER__DOWN_AFTER": "soon"}, "CASTY_CLUSTER__DOWN_AFTER (cluster.down_after): expected float"),
        ({"CASTY_REMOTE__TCP_NODELAY": "maybe"}, "CASTY_REMOTE__TCP_NODELAY (remote.tcp_nodelay): expected bool"),
        (
            {"CASTY_CLUSTER__SEED_NODES": "a:1,b"},
            "CASTY_CLUSTER__SEED_NODES (cluster.seed_nodes[1]): expected 'host:port'",
        ),
        ({"CASTY_CLUSTER__SEED_NODES": "a:1,,b:2"}, "CASTY_CLUSTER__SEED_NODES (cluster.seed_nodes): empty item 1"),
        (
            {"CASTY_DEFAULTS__MAILBOX__STRATEGY": "x"},
            "CASTY_DEFAULTS__MAILBOX__STRATEGY (defaults.mailbox.strategy): must be one of",
        ),
        (
            {"CASTY_CLUSTER__PROT": "1"},
            "CASTY_CLUSTER__PROT: no configuration key 'cluster.prot' (did you mean CASTY_CLUSTER__PORT?)",
        ),
        (
            {"CASTY_CLUSTR__PORT": "1"},
            "CASTY_CLUSTR__PORT: no configuration key 'clustr' (did you mean CASTY_CLUSTER__<KEY>?)",
        ),
        (
            {"CASTY_REMOTE__PORT": "0"},
            "CASTY_REMOTE__PORT: no configuration key 'remote.port' (did you mean CASTY_CLUSTER__PORT?)",
        ),
        ({"CASTY_CLUSTER__GOSSIP": "1"}, "CASTY_CLUSTER__GOSSIP: 'cluster.gossip' is a table"),
        ({"CASTY_CLUSTER__PORT__X": "1"}, "CASTY_CLUSTER__PORT__X: 'cluster.port' is not a table"),
        ({"CASTY_CLUSTER____PORT": "1"}, "CASTY_CLUSTER____PORT: malformed name"),
        ({"CASTY_CLUSTER__HOST": ""}, "CASTY_CLUSTER__HOST (cluster.host): must not be empty"),
        (
            {"CASTY_REMOTE__RECONNECT_BACKOFF_MAX": "0.01"},
            "remote.reconnect_backoff_min: must not exceed remote.reconnect_backoff_max (0.01), got 0.05 "
            "(set by CASTY_REMOTE__RECONNECT_BACKOFF_MAX)",
        ),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert expected in str(info.value)


def test_overrides_apply_after_a_021_file_is_mapped(tmp_path: Path) -> None:
    path = write(tmp_path, "[cluster.failure_detector]\nmin_std_deviation_ms = 200\n")
    cfg = load_config(path, env={"CASTY_CLUSTER__FAILURE_DETECTOR__MIN_STD_DEVIATION": "0.5"})
    assert cfg.cluster.failure_detector.min_std_deviation == 0.5
