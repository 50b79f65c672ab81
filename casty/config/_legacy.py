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
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any

from ._validation import fail
from .schema import ActorsConfig, FailureDetectorConfig

__all__ = ["upgrade_021"]

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
