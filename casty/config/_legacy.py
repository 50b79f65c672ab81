"""``casty.toml`` files written for casty 0.21, read into this schema.

:func:`load_config` passes every file through :func:`upgrade_021` before validating it, so a
file written for 0.21 loads unchanged. Files written for this schema pass through untouched.
Each key 0.21 accepted and this schema does not is treated in one of three ways:

Mapped (the key has a real equivalent here; logged at info level)
    - ``cluster.failure_detector.acceptable_heartbeat_pause_ms`` and ``min_std_deviation_ms``:
      the same knobs without ``_ms``, in seconds.
    - ``[cluster.tls]`` (``certfile``, ``cafile``, ``keyfile``): ``[tls]`` with ``enabled = true``
      and ``require_client_cert = true``, as 0.21 always used mutual TLS; ``keyfile`` defaults to
      ``certfile`` (a PEM file holding both).
    - ``serialization.serializer``: ``"pickle"`` and ``"cloudpickle"`` set
      ``remote.allow_pickle = true`` (msgpack first, pickle for what msgpack cannot carry),
      ``"msgpack"`` sets it false.

    ``cluster.node_id`` and every other key both releases share are read as they are.

Accepted and ignored (no meaning here; named together in one warning per file)
    ``system.suppress_dead_letters_on_shutdown`` (dead letters are only logged at debug level,
    and only the first ``actors.log_dead_letters`` of them), ``[transport]`` (outbound queues
    are bounded per peer by ``remote.outbound_queue_size``), ``serialization.serializer =
    "json"`` and ``[serialization.compression]`` (the wire format is msgpack, uncompressed),
    ``[defaults.supervision]`` (supervision is given per actor with ``Behaviors.supervise``),
    ``[defaults.sharding]`` and ``[defaults.replication]`` (no sharding here),
    ``cluster.gossip.fanout`` (each round gossips to one member, preferring members that have
    not seen the latest state), ``cluster.failure_detector.first_heartbeat_estimate_ms`` (the
    first estimate is the heartbeat interval) and per-actor tables ``[actors."pattern"]``
    (mailboxes are given per actor at spawn; a table under ``[actors]`` is such a pattern,
    the scalar keys of ``[actors]`` are this schema's).

Refused (the file contradicts itself; a :class:`~casty.errors.ConfigError` names the key)
    A ``*_ms`` key next to its seconds twin with another value, ``[cluster.tls]`` next to a
    ``[tls]`` that says otherwise, a serializer next to a ``remote.allow_pickle`` that says
    otherwise; and, as in 0.21, a ``[cluster.tls]`` without ``certfile`` or ``cafile``, a
    serializer 0.21 did not know, values of the wrong type.

``CastyConfig(...)`` built in Python with 0.21's arguments goes the same way
(:func:`casty_config_021`): ``system_name``, ``gossip``, ``heartbeat``, ``failure_detector``,
``defaults_mailbox``, ``serialization``, ``transport``, ``defaults_*``,
``suppress_dead_letters_on_shutdown``, ``actors`` (0.21's per-actor patterns) and a 0.21
``cluster`` object are laid out as the file 0.21 would have read and passed through
:func:`upgrade_021`; ``GossipConfig(fanout=)`` and ``FailureDetectorConfig(*_ms=)`` pass their
own table through it (:func:`section_021`). 0.21's tables without an equivalent here
(``SerializationConfig``, ``CompressionConfig``, ``TransportConfig``, ``SupervisionConfig``,
``ShardingConfig``) are defined below so that such a program imports them from
``casty.config``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any

from ._validation import Section, fail
from .schema import (
    ActorsConfig,
    ClusterConfig,
    DefaultsConfig,
    FailureDetectorConfig,
    RemoteConfig,
    SystemConfig,
    TlsConfig,
)

__all__ = ["CompressionConfig", "SerializationConfig", "ShardingConfig", "SupervisionConfig", "TransportConfig",
           "casty_config_021", "section_021", "upgrade_021"]

log = logging.getLogger("casty.config")

_MS_KEYS = {
    "min_std_deviation_ms": "min_std_deviation",
    "acceptable_heartbeat_pause_ms": "acceptable_heartbeat_pause",
}
_SERIALIZERS = {"pickle": True, "cloudpickle": True, "msgpack": False, "json": None}
_TLS_FILES = ("certfile", "cafile", "keyfile")


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Upgrade:
    """One file's upgrade: the data being rewritten and what was done to it."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: dict[str, Any] = copy.deepcopy(dict(data))
        self.ignored: list[str] = []
        self.mapped: list[str] = []

    def table(self, parent: dict[str, Any], key: str) -> dict[str, Any] | None:
        """``parent[key]`` when it is a table; None otherwise (a wrong type is left for the
        schema to report)."""
        value = parent.get(key)
        return value if isinstance(value, dict) else None

    def ignore(self, parent: dict[str, Any], key: str, path: str) -> None:
        if key in parent:
            del parent[key]
            self.ignored.append(path)

    def run(self) -> dict[str, Any]:
        data = self.data
        system = self.table(data, "system")
        if system is not None:
            self.ignore(system, "suppress_dead_letters_on_shutdown", "system.suppress_dead_letters_on_shutdown")
        self.ignore(data, "transport", "[transport]")
        self.serialization()
        defaults = self.table(data, "defaults")
        if defaults is not None:
            for key in ("supervision", "sharding", "replication"):
                self.ignore(defaults, key, f"[defaults.{key}]")
        actors = self.table(data, "actors")
        if actors is not None:
            known = {f.name for f in dataclasses.fields(ActorsConfig)}
            for key in [k for k, v in actors.items() if isinstance(v, dict) and k not in known]:
                self.ignore(actors, key, f'[actors."{key}"]')
        cluster = self.table(data, "cluster")
        if cluster is not None:
            gossip = self.table(cluster, "gossip")
            if gossip is not None:
                self.ignore(gossip, "fanout", "cluster.gossip.fanout")
            detector = self.table(cluster, "failure_detector")
            if detector is not None:
                self.failure_detector(detector)
            self.cluster_tls(cluster)
        return data

    def serialization(self) -> None:
        section = self.data.pop("serialization", None)
        if section is None:
            return
        if not isinstance(section, dict):
            raise fail("serialization", f"expected table, got {_kind(section)}")
        for key, value in section.items():
            path = f"serialization.{key}"
            if key == "compression":
                self.ignored.append("[serialization.compression]")
            elif key == "serializer":
                if not isinstance(value, str):
                    raise fail(path, f"expected str, got {_kind(value)}")
                if value not in _SERIALIZERS:
                    raise fail(path, f"must be one of {', '.join(_SERIALIZERS)}, got {value!r}")
                allow_pickle = _SERIALIZERS[value]
                if allow_pickle is None:
                    self.ignored.append(f'serialization.serializer = "{value}"')
                    continue
                remote = self.data.setdefault("remote", {})
                if not isinstance(remote, dict):
                    continue
                if "allow_pickle" in remote and remote["allow_pickle"] != allow_pickle:
                    raise fail(path, f"{value!r} contradicts remote.allow_pickle = {remote['allow_pickle']!r}")
                remote["allow_pickle"] = allow_pickle
                self.mapped.append(f"{path} = {value!r} -> remote.allow_pickle = {str(allow_pickle).lower()}")
            else:
                raise fail(path, "not a key of casty 0.21's [serialization] (serializer, compression)")

    def failure_detector(self, detector: dict[str, Any]) -> None:
        checks = {f.name: f.metadata.get("checks", ()) for f in dataclasses.fields(FailureDetectorConfig)}
        for ms_key, key in _MS_KEYS.items():
            if ms_key not in detector:
                continue
            ms_path = f"cluster.failure_detector.{ms_key}"
            path = f"cluster.failure_detector.{key}"
            value = detector.pop(ms_key)
            if not _is_number(value) or math.isnan(value):
                raise fail(ms_path, f"expected a number of milliseconds, got {_kind(value)}")
            for check in checks[key]:
                problem = check(value)
                if problem is not None:
                    raise fail(ms_path, problem)
            seconds = value / 1000.0
            if key in detector:
                given = detector[key]
                if _is_number(given) and not math.isclose(given, seconds, rel_tol=1e-9, abs_tol=1e-12):
                    raise fail(ms_path, f"{value!r} ms contradicts {path} = {given!r} s")
            else:
                detector[key] = seconds
            self.mapped.append(f"{ms_path} = {value!r} -> {path} = {seconds!r}")
        self.ignore(detector, "first_heartbeat_estimate_ms", "cluster.failure_detector.first_heartbeat_estimate_ms")

    def cluster_tls(self, cluster: dict[str, Any]) -> None:
        section = cluster.pop("tls", None)
        if section is None:
            return
        if not isinstance(section, dict):
            raise fail("cluster.tls", f"expected table, got {_kind(section)}")
        for key, value in section.items():
            if key not in _TLS_FILES:
                raise fail(f"cluster.tls.{key}", "not a key of casty 0.21's [cluster.tls] (certfile, cafile, keyfile)")
            if not isinstance(value, str):
                raise fail(f"cluster.tls.{key}", f"expected str, got {_kind(value)}")
        for key in ("certfile", "cafile"):
            if not section.get(key):
                raise fail(f"cluster.tls.{key}", "must be set (casty 0.21 TLS is mutual: certfile and cafile)")
        wanted = {
            "enabled": True,
            "certfile": section["certfile"],
            "keyfile": section.get("keyfile") or section["certfile"],
            "cafile": section["cafile"],
            "require_client_cert": True,
        }
        tls = self.data.setdefault("tls", {})
        if not isinstance(tls, dict):
            return
        for key, value in wanted.items():
            if key in tls and tls[key] != value:
                source = f"cluster.tls.{key}" if key in section else "cluster.tls"
                raise fail(source, f"{value!r} contradicts tls.{key} = {tls[key]!r}")
        tls.update(wanted)
        self.mapped.append("[cluster.tls] -> [tls] (enabled, mutual TLS)")


def upgrade_021(data: Mapping[str, Any], *, source: str = "casty.toml") -> dict[str, Any]:
    """``data`` (a parsed ``casty.toml``) with the keys of casty 0.21 read into this schema.

    Returns a new dict (``data`` is not modified). Mapped keys are logged at info level and
    the ignored ones named in a single warning, both prefixed with ``source``. Raises
    :class:`~casty.errors.ConfigError` naming the key when the file contradicts itself.
    """
    upgrade = _Upgrade(data)
    result = upgrade.run()
    if upgrade.mapped:
        log.info("%s: casty 0.21 keys read as: %s", source, "; ".join(upgrade.mapped))
    if upgrade.ignored:
        log.warning("%s: casty 0.21 keys with no meaning here are ignored: %s", source, ", ".join(upgrade.ignored))
    return result


# -- CastyConfig(...) built in Python with casty 0.21's arguments ---------------------------------
# 0.21 had these tables as classes of its own; here they carry the values a 0.21 program gives,
# which go through the same mapping as a file's (upgrade_021): serialization maps to
# remote.allow_pickle, the rest is accepted and named in the warning.


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
    """casty 0.21's ``[serialization.compression]``: accepted and ignored (the wire format is
    msgpack, uncompressed)."""

    algorithm: str = "zlib"
    level: int = 6


@dataclasses.dataclass(frozen=True)
class SerializationConfig:
    """casty 0.21's ``[serialization]``: ``"pickle"`` and ``"cloudpickle"`` set
    ``remote.allow_pickle = true``, ``"msgpack"`` sets it false, ``"json"`` is ignored."""

    serializer: str = "pickle"
    compression: CompressionConfig | None = None


@dataclasses.dataclass(frozen=True)
class TransportConfig:
    """casty 0.21's ``[transport]``: accepted and ignored (outbound queues are bounded per peer
    by ``remote.outbound_queue_size``)."""

    max_pending_per_path: int = 64


@dataclasses.dataclass(frozen=True)
class SupervisionConfig:
    """casty 0.21's ``[defaults.supervision]``: accepted and ignored (supervision is given per
    actor with ``Behaviors.supervise``)."""

    strategy: str = "restart"
    max_restarts: int = 3
    within_seconds: float = 60.0


@dataclasses.dataclass(frozen=True)
class ShardingConfig:
    """casty 0.21's ``[defaults.sharding]``: accepted and ignored (no sharding here)."""

    num_shards: int = 256


def _table(value: Any, path: str) -> dict[str, Any]:
    """A 0.21 argument as the table a file would hold."""
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Section):
            return value.to_dict()
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise fail(path, f"expected a table (a dataclass or a mapping), got {type(value).__name__}")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _table(value, "")
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return value


def section_021(path: str, given: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The keys given to one section's constructor, 0.21's among them, read into this schema
    as the same table of a file would be (``path`` is the table, e.g. ``cluster.gossip``)."""
    *parents, leaf = path.split(".")
    data: dict[str, Any] = {leaf: dict(given)}
    for parent in reversed(parents):
        data = {parent: data}
    result: Any = upgrade_021(data, source=source)
    for key in path.split("."):
        result = result.get(key, {})
    return dict(result)


def _cluster_021(cluster: Any) -> dict[str, Any]:
    """0.21's ``ClusterConfig(host, port, node_id, seed_nodes, roles)`` (or ours) as a table."""
    if isinstance(cluster, ClusterConfig):
        return cluster.to_dict()
    keys = ("host", "port", "node_id", "seed_nodes", "roles")
    if isinstance(cluster, Mapping):
        table = dict(cluster)
    elif all(hasattr(cluster, k) for k in ("host", "port")):
        table = {k: _plain(getattr(cluster, k)) for k in keys if getattr(cluster, k, None) is not None}
    else:
        raise fail("cluster", f"expected ClusterConfig, got {type(cluster).__name__}")
    if "seed_nodes" in table:
        table["seed_nodes"] = [list(s) if isinstance(s, (tuple, list)) else s for s in table["seed_nodes"]]
    return table


_OURS: dict[str, type[Section]] = {
    "system": SystemConfig,
    "defaults": DefaultsConfig,
    "remote": RemoteConfig,
    "cluster": ClusterConfig,
    "tls": TlsConfig,
}


def _merge(ours: dict[str, Any], theirs: dict[str, Any], defaults: dict[str, Any], path: str) -> None:
    """Overlay the table read from 0.21's arguments on the one given in this schema's form; a
    key both set to different values is a contradiction. A section given in this schema's form
    is a frozen value that does not record which keys were passed, so only its values away from
    their defaults count as set."""
    for key, value in theirs.items():
        where = f"{path}.{key}"
        mine = ours.get(key)
        if isinstance(value, dict) and isinstance(mine, dict):
            _merge(mine, value, defaults.get(key, {}), where)
            continue
        if key in ours and mine != value and mine != defaults.get(key):
            raise fail(where, f"{value!r} from casty 0.21's arguments contradicts {where} = {mine!r}")
        ours[key] = value


def casty_config_021(legacy: Mapping[str, Any], given: Mapping[str, Section | None]) -> dict[str, Section]:
    """The sections of a ``CastyConfig`` built with casty 0.21's arguments (``legacy``: only those
    given) beside this schema's (``given``: a section or None per name).

    The arguments are laid out as the file 0.21 would have read them and go through
    :func:`upgrade_021`, so they map, are ignored with a warning, or are refused exactly as in a
    ``casty.toml``. Returns the sections that changed."""
    data: dict[str, Any] = {}

    def table(*path: str) -> dict[str, Any]:
        node = data
        for key in path:
            node = node.setdefault(key, {})
        return node

    for name, value in legacy.items():
        if name == "system_name":
            table("system")["name"] = value
        elif name == "suppress_dead_letters_on_shutdown":
            table("system")["suppress_dead_letters_on_shutdown"] = value
        elif name == "transport":
            data["transport"] = _table(value, "transport")
        elif name == "serialization":
            serialization = _table(value, "serialization")
            if serialization.get("compression") is None:
                serialization.pop("compression", None)
            data["serialization"] = serialization
        elif name in ("gossip", "heartbeat", "failure_detector"):
            table("cluster")[name] = _table(value, f"cluster.{name}")
        elif name == "defaults_mailbox":
            table("defaults")["mailbox"] = _table(value, "defaults.mailbox")
        elif name in ("defaults_supervision", "defaults_sharding", "defaults_replication"):
            table("defaults")[name.removeprefix("defaults_")] = _table(value, f"defaults.{name}")
        elif name == "actors":
            for actor in value:
                pattern = getattr(actor, "pattern", actor)
                table("actors")[str(getattr(pattern, "pattern", pattern))] = {}
        elif name == "cluster":
            table("cluster").update(_cluster_021(value))
        else:
            raise TypeError(f"CastyConfig() got an unexpected keyword argument {name!r}")
    upgraded = upgrade_021(data, source="CastyConfig(...)")
    upgraded.pop("actors", None)  # only 0.21's patterns were there, and they are ignored
    sections: dict[str, Section] = {}
    for name, theirs in upgraded.items():
        cls = _OURS[name]
        mine = given.get(name)
        ours = mine.to_dict() if mine is not None else {}
        _merge(ours, theirs, cls().to_dict(), name)
        sections[name] = cls.from_dict(ours)
    return sections
