"""``casty.toml`` into a typed, validated configuration.

Every section of the file is a frozen dataclass; every knob has a default, so
``CastyConfig()`` is a complete configuration and a file only needs the keys it changes.
Values built with ``dataclasses.replace`` are checked (and normalised) exactly like values
read from a file, and every error is a :class:`~casty.errors.ConfigError` naming the dotted
key, for example ``cluster.port: expected int, got str``.

The package has one module per job: :mod:`casty.config.schema` is the reference (every
section and knob, each described once), ``_validation`` the generic engine that checks them,
``_knobs`` how a knob declares its constraints and description, ``_environment`` how
environment variables override the file, and ``_reference`` the
markdown reference generated from the schema (``python -m casty.config README.md``), and
``_legacy`` how files written for casty 0.21 are read (:func:`load_config` applies it) and
how a ``CastyConfig(...)`` built with 0.21's arguments is (its 0.21 tables, such as
``SerializationConfig`` and ``TransportConfig``, are exported here).

:func:`load_config` without a path uses :func:`discover_config`: the nearest ``casty.toml``
from the working directory upwards, or the defaults when there is none. It then applies the
``CASTY_<SECTION>__<KEY>`` environment variables over the file (``_environment``); only
:func:`load_config` reads the environment, ``CastyConfig()`` is always the defaults.
"""

from __future__ import annotations

from ._legacy import CompressionConfig, SerializationConfig, ShardingConfig, SupervisionConfig, TransportConfig
from ._reference import config_reference
from ._reference import update_readme as update_readme
from .schema import (
    ActorsConfig,
    CastyConfig,
    ClientConfig,
    ClusterConfig,
    DefaultsConfig,
    FailureDetectorConfig,
    GossipConfig,
    HeartbeatConfig,
    LogFormat,
    LoggingConfig,
    MailboxConfig,
    MailboxStrategy,
    MetricsConfig,
    RemoteConfig,
    SecurityConfig,
    ShutdownConfig,
    StreamsConfig,
    SystemConfig,
    TlsConfig,
    discover_config,
    load_config,
)

__all__ = [
    "ActorsConfig",
    "CastyConfig",
    "ClientConfig",
    "ClusterConfig",
    "CompressionConfig",
    "DefaultsConfig",
    "FailureDetectorConfig",
    "GossipConfig",
    "HeartbeatConfig",
    "LogFormat",
    "LoggingConfig",
    "MailboxConfig",
    "MailboxStrategy",
    "MetricsConfig",
    "RemoteConfig",
    "SecurityConfig",
    "SerializationConfig",
    "ShardingConfig",
    "ShutdownConfig",
    "StreamsConfig",
    "SupervisionConfig",
    "SystemConfig",
    "TlsConfig",
    "TransportConfig",
    "config_reference",
    "discover_config",
    "load_config",
]
