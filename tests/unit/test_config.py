from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from pathlib import Path
from typing import Any

import pytest

from casty.config import (
    CastyConfig,
    ClusterConfig,
    MailboxConfig,
    RemoteConfig,
    SecurityConfig,
    config_reference,
    load_config,
)
from casty.config import schema as config_module
from casty.errors import ConfigError

FULL_TOML = """
[system]
name = "shop"

[defaults.mailbox]
capacity = 1000
strategy = "drop_oldest"
throughput = 32

[actors]
ask_timeout = 2
log_dead_letters = 0

[remote]
max_frame_size = 1048576
outbound_buffer_size = 8388608
handshake_timeout = 3.0
connect_timeout = 2.5
reconnect_backoff_min = 0.1
reconnect_backoff_max = 2.0
give_up_after = 12.0
tcp_nodelay = false
strict_serialization = true
allow_pickle = false
max_connections = 64

[cluster]
host = "10.0.0.5"
port = 2552
bind_host = "0.0.0.0"
seed_nodes = ["10.0.0.1:2552", ["10.0.0.2", 2553], "[::1]:2554"]
roles = ["frontend", "api"]
down_after = 20.0
retry_join_interval = 1.0

[cluster.gossip]
interval = 0.25

[cluster.heartbeat]
interval = 0.3
availability_check_interval = 0.4

[cluster.failure_detector]
threshold = 10.0
acceptable_heartbeat_pause = 3.0
min_std_deviation = 0.2
max_sample_size = 100

[streams]
buffer_size = 256
initial_demand = 128
timeout = 10.0
resend_interval = 0.5

[tls]
enabled = true
certfile = "node.pem"
keyfile = "node.key"
cafile = "ca.pem"
require_client_cert = true

[security]
cluster_secret = "s3cret"

[client]
reconnect_backoff_min = 0.2
reconnect_backoff_max = 4.0
service_wait_timeout = 15.0
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "casty.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        CastyConfig.from_dict(data)
    return str(info.value)


# ---------------------------------------------------------------------------
# Defaults and loading
# ---------------------------------------------------------------------------


def test_defaults() -> None:
    c = CastyConfig()
    assert c.system.name == "casty"
    assert c.defaults.mailbox == MailboxConfig(capacity=0, strategy="drop_new", throughput=64)
    assert c.actors.ask_timeout == 5.0
    assert c.actors.log_dead_letters == 10
    r = c.remote
    assert (r.max_frame_size, r.outbound_buffer_size) == (4194304, 4194304)
    assert (r.handshake_timeout, r.connect_timeout) == (5.0, 5.0)
    assert (r.reconnect_backoff_min, r.reconnect_backoff_max, r.give_up_after) == (0.05, 5.0, 30.0)
    assert (r.tcp_nodelay, r.strict_serialization, r.allow_pickle) == (True, False, False)
    assert r.max_connections == 256
    cl = c.cluster
    assert (cl.host, cl.port, cl.bind_host, cl.seed_nodes, cl.roles) == ("127.0.0.1", 25520, "", (), ())
    assert (cl.down_after, cl.retry_join_interval) == (10.0, 0.5)
    assert cl.effective_bind_host == "127.0.0.1"
    assert cl.gossip.interval == 0.5
    assert (cl.heartbeat.interval, cl.heartbeat.availability_check_interval) == (0.5, 0.5)
    fd = cl.failure_detector
    assert (fd.threshold, fd.acceptable_heartbeat_pause, fd.min_std_deviation, fd.max_sample_size) == (
        8.0,
        2.0,
        0.1,
        200,
    )
    s = c.streams
    assert (s.buffer_size, s.initial_demand, s.timeout, s.resend_interval) == (1024, 1024, 30.0, 1.0)
    assert c.tls.enabled is False
    assert (c.tls.certfile, c.tls.keyfile, c.tls.cafile, c.tls.require_client_cert) == ("", "", "", False)
    assert (c.security.cluster_secret, c.security.secret_file) == ("", "")
    assert (c.client.reconnect_backoff_min, c.client.reconnect_backoff_max) == (0.1, 5.0)
    assert c.client.service_wait_timeout == 30.0


def test_empty_dict_and_empty_file_are_defaults(tmp_path: Path) -> None:
    assert CastyConfig.from_dict({}) == CastyConfig()
    assert load_config(_write(tmp_path, "")) == CastyConfig()


def test_load_full_example(tmp_path: Path) -> None:
    c = load_config(_write(tmp_path, FULL_TOML))
    assert c.system.name == "shop"
    assert c.defaults.mailbox == MailboxConfig(capacity=1000, strategy="drop_oldest", throughput=32)
    assert c.actors.ask_timeout == 2.0
    assert isinstance(c.actors.ask_timeout, float)
    assert c.actors.log_dead_letters == 0
    assert c.remote.max_frame_size == 1048576
    assert c.remote.tcp_nodelay is False
    assert c.remote.strict_serialization is True
    assert c.cluster.host == "10.0.0.5"
    assert c.cluster.port == 2552
    assert c.cluster.effective_bind_host == "0.0.0.0"
    assert c.cluster.seed_nodes == (("10.0.0.1", 2552), ("10.0.0.2", 2553), ("::1", 2554))
    assert c.cluster.roles == ("frontend", "api")
    assert c.cluster.gossip.interval == 0.25
    assert c.cluster.heartbeat.availability_check_interval == 0.4
    assert c.cluster.failure_detector.max_sample_size == 100
    assert c.streams.initial_demand == 128
    assert c.streams.resend_interval == 0.5
    assert c.tls.enabled and c.tls.require_client_cert
    assert c.tls.certfile == "node.pem"
    assert c.security.resolve_secret() == b"s3cret"
    assert c.client.service_wait_timeout == 15.0


def test_load_accepts_pathlike_and_str(tmp_path: Path) -> None:
    path = _write(tmp_path, '[system]\nname = "x"\n')
    assert load_config(path).system.name == "x"
    assert load_config(str(path)).system.name == "x"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(_write(tmp_path, "[cluster\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_to_dict_round_trip(tmp_path: Path) -> None:
    c = load_config(_write(tmp_path, FULL_TOML))
    d = c.to_dict()
    assert d["cluster"]["seed_nodes"] == [["10.0.0.1", 2552], ["10.0.0.2", 2553], ["::1", 2554]]
    assert d["cluster"]["gossip"] == {"interval": 0.25}
    assert CastyConfig.from_dict(d) == c
    assert CastyConfig.from_dict(CastyConfig().to_dict()) == CastyConfig()


def test_config_is_frozen_and_hashable() -> None:
    c = CastyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.cluster.port = 1  # type: ignore[misc]
    assert hash(c) == hash(CastyConfig())
    assert not hasattr(c.cluster, "__dict__")


# ---------------------------------------------------------------------------
# dataclasses.replace
# ---------------------------------------------------------------------------


def test_replace_normalises_and_validates() -> None:
    c = CastyConfig()
    # untyped inputs (as from a file) are normalised: lists become tuples, "host:port" is split
    loose: dict[str, Any] = {"seed_nodes": ["a:1", ("b", 2)], "roles": ["x"]}
    cluster = dataclasses.replace(c.cluster, port=0, **loose)
    assert cluster.seed_nodes == (("a", 1), ("b", 2))
    assert cluster.roles == ("x",)
    c2 = dataclasses.replace(c, cluster=cluster)
    assert c2.cluster.port == 0
    assert dataclasses.replace(c.actors, ask_timeout=1).ask_timeout == 1.0
    with pytest.raises(ConfigError, match=r"^cluster\.port: must be a port in 0\.\.65535, got 70000$"):
        dataclasses.replace(c.cluster, port=70000)
    with pytest.raises(ConfigError, match=r"^cluster: expected ClusterConfig, got str$"):
        dataclasses.replace(c, cluster="nope")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_unknown_key_with_suggestion() -> None:
    msg = _error({"cluster": {"gosip": {"interval": 1.0}}})
    assert msg == "unknown key 'cluster.gosip' (did you mean 'cluster.gossip'?)"
    msg = _error({"remote": {"max_frame_sise": 10}})
    assert msg == "unknown key 'remote.max_frame_sise' (did you mean 'remote.max_frame_size'?)"
    assert _error({"clustr": {}}) == "unknown key 'clustr' (did you mean 'cluster'?)"
    assert _error({"cluster": {"failure_detector": {"zzzzzz": 1}}}) == (
        "unknown key 'cluster.failure_detector.zzzzzz'"
    )


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[cluster]\ngosip = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'cluster\.gosip'"):
        load_config(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cluster": {"port": "25520"}}, "cluster.port: expected int, got str"),
        ({"cluster": {"port": True}}, "cluster.port: expected int, got bool"),
        ({"cluster": {"port": 1.5}}, "cluster.port: expected int, got float"),
        ({"actors": {"ask_timeout": True}}, "actors.ask_timeout: expected float, got bool"),
        ({"actors": {"ask_timeout": "5"}}, "actors.ask_timeout: expected float, got str"),
        ({"remote": {"tcp_nodelay": 1}}, "remote.tcp_nodelay: expected bool, got int"),
        ({"system": {"name": 3}}, "system.name: expected str, got int"),
        ({"cluster": {"roles": "frontend"}}, "cluster.roles: expected list of str, got str"),
        ({"cluster": {"roles": ["a", 2]}}, "cluster.roles[1]: expected str, got int"),
        ({"cluster": "x"}, "cluster: expected table, got str"),
        ({"cluster": {"gossip": 1}}, "cluster.gossip: expected table, got int"),
        ({"defaults": {"mailbox": {"strategy": 1}}}, "defaults.mailbox.strategy: expected str, got int"),
    ],
)
def test_type_errors(data: dict[str, Any], message: str) -> None:
    assert _error(data) == message


def test_strategy_choices() -> None:
    msg = _error({"defaults": {"mailbox": {"strategy": "drop_everything"}}})
    assert msg.startswith("defaults.mailbox.strategy: must be one of drop_new, drop_oldest, reject")
    for strategy in ("drop_new", "drop_oldest", "reject"):
        c = CastyConfig.from_dict({"defaults": {"mailbox": {"strategy": strategy}}})
        assert c.defaults.mailbox.strategy == strategy


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"actors": {"ask_timeout": 0}}, "actors.ask_timeout: must be positive, got 0.0"),
        ({"actors": {"ask_timeout": -1.5}}, "actors.ask_timeout: must be positive, got -1.5"),
        ({"cluster": {"down_after": -1}}, "cluster.down_after: must be positive, got -1.0"),
        ({"cluster": {"gossip": {"interval": 0}}}, "cluster.gossip.interval: must be positive, got 0.0"),
        ({"streams": {"timeout": 0.0}}, "streams.timeout: must be positive, got 0.0"),
        ({"remote": {"give_up_after": -3}}, "remote.give_up_after: must be positive, got -3.0"),
        (
            {"cluster": {"failure_detector": {"acceptable_heartbeat_pause": -0.1}}},
            "cluster.failure_detector.acceptable_heartbeat_pause: must not be negative, got -0.1",
        ),
        (
            {"defaults": {"mailbox": {"capacity": -1}}},
            "defaults.mailbox.capacity: must not be negative, got -1",
        ),
        (
            {"defaults": {"mailbox": {"throughput": 0}}},
            "defaults.mailbox.throughput: must be at least 1, got 0",
        ),
        ({"streams": {"initial_demand": 0}}, "streams.initial_demand: must be at least 1, got 0"),
        ({"actors": {"ask_timeout": float("nan")}}, "actors.ask_timeout: must be a number, got nan"),
    ],
)
def test_value_errors(data: dict[str, Any], message: str) -> None:
    assert _error(data) == message


@pytest.mark.parametrize("port", [-1, 65536, 100000])
def test_port_out_of_range(port: int) -> None:
    assert _error({"cluster": {"port": port}}) == f"cluster.port: must be a port in 0..65535, got {port}"


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_port_in_range(port: int) -> None:
    assert CastyConfig.from_dict({"cluster": {"port": port}}).cluster.port == port


def test_relations() -> None:
    assert _error({"remote": {"reconnect_backoff_min": 10, "reconnect_backoff_max": 1}}).startswith(
        "remote.reconnect_backoff_min: must not exceed remote.reconnect_backoff_max"
    )
    assert _error({"client": {"reconnect_backoff_min": 10}}).startswith(
        "client.reconnect_backoff_min: must not exceed"
    )
    assert _error({"tls": {"enabled": True, "keyfile": "k"}}) == (
        "tls.certfile: must be set when tls.enabled is true"
    )
    msg = _error({"tls": {"require_client_cert": True}})
    assert msg == "tls.require_client_cert: needs tls.enabled = true"
    assert _error({"security": {"cluster_secret": "a", "secret_file": "b"}}).startswith(
        "security.secret_file: set either"
    )
    assert _error({"system": {"name": ""}}) == "system.name: must not be empty"


def test_config_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        CastyConfig.from_dict({"cluster": {"port": "x"}})


# ---------------------------------------------------------------------------
# seed_nodes
# ---------------------------------------------------------------------------


def test_seed_nodes_normalisation() -> None:
    c = CastyConfig.from_dict(
        {"cluster": {"seed_nodes": ["h1:1", ["h2", 2], ("h3", 3), "[fe80::1]:4", "node-4.example:25520"]}}
    )
    expected = (("h1", 1), ("h2", 2), ("h3", 3), ("fe80::1", 4), ("node-4.example", 25520))
    assert c.cluster.seed_nodes == expected
    assert all(isinstance(s, tuple) for s in c.cluster.seed_nodes)


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("nohost", "cluster.seed_nodes[0]: expected 'host:port' or [host, port], got 'nohost'"),
        ("h:port", "cluster.seed_nodes[0]: expected 'host:port' or [host, port], got 'h:port'"),
        (":25520", "cluster.seed_nodes[0]: expected 'host:port' or [host, port], got ':25520'"),
        ("h:70000", "cluster.seed_nodes[0][1]: must be a port in 1..65535, got 70000"),
        (["h"], "cluster.seed_nodes[0]: expected [str, int], got a list of 1 items"),
        (["h", "1"], "cluster.seed_nodes[0][1]: expected int, got str"),
        ([1, 1], "cluster.seed_nodes[0][0]: expected str, got int"),
        (5, "cluster.seed_nodes[0]: expected [str, int], got int"),
    ],
)
def test_seed_nodes_errors(seed: Any, message: str) -> None:
    assert _error({"cluster": {"seed_nodes": [seed]}}) == message


def test_seed_nodes_must_be_a_list() -> None:
    assert _error({"cluster": {"seed_nodes": "a:1"}}) == (
        "cluster.seed_nodes: expected list of [str, int], got str"
    )


# ---------------------------------------------------------------------------
# security secret file
# ---------------------------------------------------------------------------


def test_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("hunter2\n")
    assert SecurityConfig(secret_file=str(secret)).resolve_secret() == b"hunter2"
    assert SecurityConfig().resolve_secret() == b""
    with pytest.raises(ConfigError, match=r"security\.secret_file: cannot read"):
        SecurityConfig(secret_file=str(tmp_path / "absent")).resolve_secret()
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        SecurityConfig(secret_file=str(empty)).resolve_secret()


# ---------------------------------------------------------------------------
# Reference and documentation
# ---------------------------------------------------------------------------


def _leaf_keys(cls: type, prefix: str) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_leaf_keys(type(value), f"{prefix}.{f.name}" if prefix else f.name))
        else:
            out.append((prefix, f.name, f.metadata["doc"]))
    return out


def test_config_reference_lists_every_key() -> None:
    ref = config_reference()
    keys = _leaf_keys(CastyConfig, "")
    assert len(keys) >= 46
    sections = ref.split("### ")
    for section, key, doc in keys:
        block = next(s for s in sections if s.startswith(f"`[{section}]`"))
        row = next(line for line in block.splitlines() if line.startswith(f"| `{key}` |"))
        assert " ".join(doc.split()) in row
    assert '| `name` | str | `"casty"` |' in ref
    assert "| `seed_nodes` | list of [str, int] | `[]` |" in ref
    assert "| `tcp_nodelay` | bool | `true` |" in ref
    assert "| `max_frame_size` | int | `4194304` |" in ref
    assert "### `[cluster.failure_detector]`" in ref


def test_every_field_has_matching_docstring() -> None:
    """The attribute docstring under each field and the description in its metadata agree."""
    tree = ast.parse(inspect.getsource(config_module))
    docstrings: dict[tuple[str, str], str] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, following in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docstrings[(node.name, stmt.target.id)] = following.value.value
    for cls in (CastyConfig, ClusterConfig, RemoteConfig, *_all_sections()):
        for f in dataclasses.fields(cls):
            doc = docstrings.get((cls.__name__, f.name))
            assert doc is not None, f"{cls.__name__}.{f.name} has no docstring"
            assert " ".join(doc.split()) == " ".join(f.metadata["doc"].split())


def _all_sections() -> list[type]:
    found: list[type] = []

    def walk(cls: type) -> None:
        found.append(cls)
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            if dataclasses.is_dataclass(default):
                walk(type(default))

    walk(CastyConfig)
    return found
