"""The configuration schema: every section of ``casty.toml`` and every knob in it.

This module is the reference. Each knob is written once: its type, its default, its value
constraints (``metadata=limits(...)``) and the docstring under it, which is its description
(``_knobs.describe_knobs`` reads it from here; the README's configuration reference is
generated from it by ``_reference``). Every section is a frozen dataclass and every knob has
a default, so ``CastyConfig()`` is a complete configuration and a file only needs the keys
it changes.

Over 500 lines because it is the whole reference: one section class per table, every knob
with its description, and nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

from casty.errors import ConfigError, ConfigFileNotFoundError

from ._environment import apply_environment
from ._knobs import at_least_one, describe_knobs, limits, non_negative, port_number, positive
from ._validation import HostPort, Section, fail

__all__ = [
    "ActorsConfig",
    "CastyConfig",
    "ClientConfig",
    "ClusterConfig",
    "DefaultsConfig",
    "FailureDetectorConfig",
    "GossipConfig",
    "HeartbeatConfig",
    "LoggingConfig",
    "LogFormat",
    "MailboxConfig",
    "MailboxStrategy",
    "MetricsConfig",
    "RemoteConfig",
    "SecurityConfig",
    "ShutdownConfig",
    "StreamsConfig",
    "SystemConfig",
    "TlsConfig",
    "discover_config",
    "load_config",
]

log = logging.getLogger("casty.config")

MailboxStrategy = Literal["drop_new", "drop_oldest", "reject"]
"""What a bounded mailbox does with a message that arrives while it is full."""

LogFormat = Literal["text", "json"]
"""How log records are written: plain text, or one JSON object per line."""

Discovery = Literal["static", "dns"]
"""How a node finds the contacts it joins through."""


@dataclasses.dataclass(frozen=True, slots=True)
class SystemConfig(Section):
    """``[system]``: identity of the actor system."""

    _path: ClassVar[str] = "system"

    name: str = "casty"
    """Actor system name; must be the same on every cluster member."""

    def _check_relations(self) -> None:
        if not self.name:
            raise fail("system.name", "must not be empty")


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class MailboxConfig(Section):
    """``[defaults.mailbox]``: mailbox settings used when an actor does not give its own.

    ``capacity=None`` (casty 0.21's unbounded) is read as 0."""

    _path: ClassVar[str] = "defaults.mailbox"

    capacity: int = field(default=0, metadata=limits(non_negative))
    """Maximum queued messages per actor; 0 means unbounded."""
    strategy: MailboxStrategy = "drop_new"
    """What a full bounded mailbox does with a new message: drop_new, drop_oldest or reject."""
    throughput: int = field(default=64, metadata=limits(at_least_one))
    """Messages one actor processes per turn before yielding to others."""

    def __init__(self, capacity: int | None = 0, strategy: MailboxStrategy = "drop_new", throughput: int = 64) -> None:
        object.__setattr__(self, "capacity", 0 if capacity is None else capacity)
        object.__setattr__(self, "strategy", strategy)
        object.__setattr__(self, "throughput", throughput)
        self.__post_init__()


@dataclasses.dataclass(frozen=True, slots=True)
class DefaultsConfig(Section):
    """``[defaults]``: defaults applied to every actor."""

    _path: ClassVar[str] = "defaults"

    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    """Default mailbox settings."""


@dataclasses.dataclass(frozen=True, slots=True)
class ActorsConfig(Section):
    """``[actors]``: behaviour of the actor runtime."""

    _path: ClassVar[str] = "actors"

    ask_timeout: float = field(default=5.0, metadata=limits(positive))
    """Seconds an ask waits for its reply when no timeout is given."""
    log_dead_letters: int = field(default=10, metadata=limits(non_negative))
    """How many dead letters are logged at debug level before going quiet; counting continues."""


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteConfig(Section):
    """``[remote]``: the network transport between nodes."""

    _path: ClassVar[str] = "remote"

    max_frame_size: int = field(default=4194304, metadata=limits(at_least_one))
    """Largest accepted frame, in bytes."""
    outbound_buffer_size: int = field(default=4194304, metadata=limits(at_least_one))
    """Bytes of encoded frames a peer connection may hold unsent before casty stops encoding
    more for it (the socket's high-water mark)."""
    outbound_queue_size: int = field(default=262144, metadata=limits(at_least_one))
    """Messages queued per peer while it is unreachable or slow; further messages become
    dead letters."""
    handshake_timeout: float = field(default=5.0, metadata=limits(positive))
    """Seconds allowed to complete a connection handshake."""
    connect_timeout: float = field(default=5.0, metadata=limits(positive))
    """Seconds allowed to open a TCP connection."""
    reconnect_backoff_min: float = field(default=0.05, metadata=limits(positive))
    """First delay, in seconds, before reconnecting."""
    reconnect_backoff_max: float = field(default=5.0, metadata=limits(positive))
    """Largest delay, in seconds, between reconnects."""
    give_up_after: float = field(default=30.0, metadata=limits(positive))
    """Seconds of failed reconnects after which a non-cluster peer is considered gone
    (its watchers get Terminated); a connection silent this long is dropped (it is
    pinged after a quarter of it)."""
    tcp_nodelay: bool = True
    """Set TCP_NODELAY on connections (disable Nagle's algorithm)."""
    strict_serialization: bool = False
    """Refuse to send messages whose types are not registered for serialization."""
    allow_pickle: bool = False
    """Allow pickle as a fallback serializer (unsafe with untrusted peers)."""
    max_connections: int = field(default=256, metadata=limits(at_least_one))
    """Maximum number of established inbound connections (handshake complete); when they are
    all taken, a newly authenticated peer replaces the least recently active one that carries
    nothing. As many again may be open and not yet authenticated, in a pool of their own."""
    listen_backlog: int = field(default=4096, metadata=limits(at_least_one))
    """Connections the kernel queues for this node to accept (capped by the system's
    ``somaxconn``); a full queue drops connection attempts, which their senders retry only
    after a second or more."""
    max_unauthenticated_per_address: int = field(default=64, metadata=limits(at_least_one))
    """Inbound connections one source address may hold before they complete the handshake
    (waiting or handshaking); beyond it, new ones from that address are closed at once."""
    max_handshakes: int = field(default=64, metadata=limits(at_least_one))
    """Inbound handshakes run at once; further connections wait, unread, and are admitted in
    arrival order, taking turns across source addresses (each waits at most
    ``handshake_timeout``)."""
    max_handshakes_per_address: int = field(default=8, metadata=limits(at_least_one))
    """Of ``max_handshakes``, how many one source address may run at once."""
    accept_rate_per_address: float = field(default=500.0, metadata=limits(positive))
    """New inbound connections per second accepted from one source address, beyond a burst of
    as many; the excess is closed at once, unread."""
    idle_timeout: float = field(default=300.0, metadata=limits(positive))
    """Seconds after which an established inbound connection that carries nothing (no message
    to or from an actor, no watch, nothing queued, not a cluster member) is closed."""
    max_partial_frame_bytes: int = field(default=16777216, metadata=limits(at_least_one))
    """Bytes of incomplete frames all connections together may hold; a connection whose frame
    would go beyond stops reading (TCP holds the rest) until others complete theirs."""
    max_type_definitions: int = field(default=10000, metadata=limits(at_least_one))
    """Message types a peer may define on one connection; a message defining more is refused."""
    max_ref_definitions: int = field(default=200000, metadata=limits(at_least_one))
    """Actor refs a peer may define on one connection; a message defining more is refused."""
    inbound_high_watermark: int = field(default=4096, metadata=limits(at_least_one))
    """Depth of an actor's mailbox at which a connection delivering to it stops reading, so
    TCP pushes back on the sender; it reads again at ``inbound_low_watermark``."""
    inbound_low_watermark: int = field(default=1024, metadata=limits(non_negative))
    """Mailbox depth at which a connection stopped by ``inbound_high_watermark`` reads again."""

    def _check_relations(self) -> None:
        if self.inbound_low_watermark >= self.inbound_high_watermark:
            raise fail(
                "remote.inbound_low_watermark",
                f"must be below remote.inbound_high_watermark ({self.inbound_high_watermark!r}), "
                f"got {self.inbound_low_watermark!r}",
            )
        if self.reconnect_backoff_min > self.reconnect_backoff_max:
            raise fail(
                "remote.reconnect_backoff_min",
                f"must not exceed remote.reconnect_backoff_max ({self.reconnect_backoff_max!r}), "
                f"got {self.reconnect_backoff_min!r}",
            )


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class GossipConfig(Section):
    """``[cluster.gossip]``: membership gossip.

    casty 0.21's ``fanout`` (keyword or second positional argument, as there) is accepted and
    ignored with a warning, as in a file."""

    _path: ClassVar[str] = "cluster.gossip"

    interval: float = field(default=0.5, metadata=limits(positive))
    """Seconds between gossip rounds."""

    def __init__(self, interval: float = 0.5, fanout: int | None = None) -> None:
        if fanout is not None:
            from ._legacy import section_021

            section_021("cluster.gossip", {"interval": interval, "fanout": fanout}, source="GossipConfig(...)")
        object.__setattr__(self, "interval", interval)
        self.__post_init__()


@dataclasses.dataclass(frozen=True, slots=True)
class HeartbeatConfig(Section):
    """``[cluster.heartbeat]``: heartbeats between cluster members."""

    _path: ClassVar[str] = "cluster.heartbeat"

    interval: float = field(default=0.5, metadata=limits(positive))
    """Seconds between heartbeats sent to each monitored member."""
    availability_check_interval: float = field(default=0.5, metadata=limits(positive))
    """Seconds between checks of the failure detector for unreachable members."""


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class FailureDetectorConfig(Section):
    """``[cluster.failure_detector]``: the phi accrual failure detector.

    casty 0.21's ``min_std_deviation_ms`` and ``acceptable_heartbeat_pause_ms`` are read as
    the same knobs in seconds, and ``first_heartbeat_estimate_ms`` is accepted and ignored,
    as in a file. Positional arguments are 0.21's, in its order (``threshold, max_sample_size,
    min_std_deviation_ms, acceptable_heartbeat_pause_ms, first_heartbeat_estimate_ms``), so a
    0.21 program means what it meant there; the knobs in seconds are keyword-only."""

    _path: ClassVar[str] = "cluster.failure_detector"

    threshold: float = field(default=8.0, metadata=limits(positive))
    """Phi value above which a member is considered unreachable."""
    acceptable_heartbeat_pause: float = field(default=2.0, metadata=limits(non_negative))
    """Seconds of missing heartbeats tolerated before phi starts to rise."""
    min_std_deviation: float = field(default=0.1, metadata=limits(positive))
    """Lower bound, in seconds, of the heartbeat interval standard deviation."""
    max_sample_size: int = field(default=200, metadata=limits(at_least_one))
    """Number of heartbeat intervals kept for the estimate."""

    def __init__(
        self,
        threshold: float = 8.0,
        max_sample_size: int = 200,
        min_std_deviation_ms: float | None = None,
        acceptable_heartbeat_pause_ms: float | None = None,
        first_heartbeat_estimate_ms: float | None = None,
        *,
        acceptable_heartbeat_pause: float | None = None,
        min_std_deviation: float | None = None,
    ) -> None:
        legacy = {
            "min_std_deviation_ms": min_std_deviation_ms,
            "acceptable_heartbeat_pause_ms": acceptable_heartbeat_pause_ms,
            "first_heartbeat_estimate_ms": first_heartbeat_estimate_ms,
        }
        if any(v is not None for v in legacy.values()):
            from ._legacy import section_021

            given = {k: v for k, v in legacy.items() if v is not None}
            if acceptable_heartbeat_pause is not None:
                given["acceptable_heartbeat_pause"] = acceptable_heartbeat_pause
            if min_std_deviation is not None:
                given["min_std_deviation"] = min_std_deviation
            table = section_021("cluster.failure_detector", given, source="FailureDetectorConfig(...)")
            acceptable_heartbeat_pause = table.get("acceptable_heartbeat_pause", acceptable_heartbeat_pause)
            min_std_deviation = table.get("min_std_deviation", min_std_deviation)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(
            self, "acceptable_heartbeat_pause", 2.0 if acceptable_heartbeat_pause is None else acceptable_heartbeat_pause
        )
        object.__setattr__(self, "min_std_deviation", 0.1 if min_std_deviation is None else min_std_deviation)
        object.__setattr__(self, "max_sample_size", max_sample_size)
        self.__post_init__()


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterConfig(Section):
    """``[cluster]``: cluster membership of this node.

    The first five knobs come in casty 0.21's positional order: ``ClusterConfig(host, port,
    node_id, seed_nodes, roles)``."""

    _path: ClassVar[str] = "cluster"

    host: str = "127.0.0.1"
    """Host name or address other members use to reach this node."""
    port: int = field(default=25520, metadata=limits(port_number))
    """TCP port of this node (0 picks a free port)."""
    node_id: str = ""
    """Label of this node in its logs and as ``system.node_id``; empty means "host:port".
    Members are identified by address, so ``Member.id`` is always "host:port"."""
    seed_nodes: tuple[HostPort, ...] = ()
    """Members contacted to join the cluster, as "host:port" strings or [host, port] pairs."""
    roles: tuple[str, ...] = ()
    """Roles this node advertises to the cluster."""
    bind_host: str = ""
    """Address to listen on; empty means the same as host."""
    down_after: float = field(default=10.0, metadata=limits(positive))
    """Seconds a member stays unreachable before it is downed."""
    retry_join_interval: float = field(default=0.5, metadata=limits(positive))
    """Seconds between attempts to join via the seed nodes."""
    discovery: Discovery = "static"
    """How this node finds its contacts: "static" (the seed_nodes) or "dns" (the address
    records of service_name, each at this node's port)."""
    service_name: str = ""
    """With discovery = "dns": the DNS name whose A/AAAA records are the cluster's nodes
    (a headless Service in Kubernetes, the service name in Docker Compose)."""
    min_members: int = field(default=1, metadata=limits(at_least_one))
    """Members the cluster is started with: this node reports itself ready (`/ready`) only once
    this many members are up, and with discovery = "dns" a new cluster is formed only once this
    many contacts are found (the lowest of them forms it); set it to the number of nodes
    started together."""
    stable_after: float = field(default=3.0, metadata=limits(non_negative))
    """With discovery = "dns": seconds the set of records must stay unchanged before a new
    cluster is formed."""
    resolve_interval: float = field(default=1.0, metadata=limits(positive))
    """With discovery = "dns": seconds between resolutions of service_name while joining."""
    refresh_interval: float = field(default=10.0, metadata=limits(positive))
    """With discovery = "dns": seconds between resolutions of service_name once a member."""
    gossip: GossipConfig = field(default_factory=GossipConfig)
    """Membership gossip."""
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    """Heartbeats between members."""
    failure_detector: FailureDetectorConfig = field(default_factory=FailureDetectorConfig)
    """Phi accrual failure detector."""

    def _check_relations(self) -> None:
        if not self.host:
            raise fail("cluster.host", "must not be empty")
        for i, role in enumerate(self.roles):
            if not role:
                raise fail(f"cluster.roles[{i}]", "must not be empty")
        if self.discovery == "dns":
            if not self.service_name:
                raise fail("cluster.service_name", 'must be set when cluster.discovery = "dns"')
            if self.seed_nodes:
                raise fail("cluster.seed_nodes", 'are not used with cluster.discovery = "dns": remove them')
        elif self.service_name:
            raise fail("cluster.service_name", 'needs cluster.discovery = "dns"')

    @property
    def effective_bind_host(self) -> str:
        """The address to listen on: ``bind_host``, or ``host`` when that is empty."""
        return self.bind_host or self.host


@dataclasses.dataclass(frozen=True, slots=True)
class StreamsConfig(Section):
    """``[streams]``: backpressured streams."""

    _path: ClassVar[str] = "streams"

    buffer_size: int = field(default=1024, metadata=limits(at_least_one))
    """Producer buffer: elements accepted from the producing code before it waits for demand."""
    initial_demand: int = field(default=1024, metadata=limits(at_least_one))
    """Consumer window: elements requested ahead of consumption."""
    timeout: float = field(default=30.0, metadata=limits(positive))
    """Seconds of consumer inactivity, or waiting for a subscription, before failing."""
    resend_interval: float = field(default=1.0, metadata=limits(positive))
    """Seconds a producer waits for acknowledgement before resending its unacknowledged window."""
    stats: bool = True
    """Keep per-stream counters for `SinkRef.stats()`, `SourceRef.stats()` and the metrics
    (updated once per batch, not per element)."""
    stats_window: float = field(default=5.0, metadata=limits(positive))
    """Seconds over which a stream's rate is measured."""


@dataclasses.dataclass(frozen=True, slots=True)
class TlsConfig(Section):
    """``[tls]``: TLS for node-to-node and client connections.

    casty 0.21's ``TlsConfig(server_context=..., client_context=...)`` gives a
    :class:`~casty.remote.tls.TlsContexts` holding those two contexts."""

    _path: ClassVar[str] = "tls"

    enabled: bool = False
    """Encrypt connections with TLS."""
    certfile: str = ""
    """PEM certificate chain of this node."""
    keyfile: str = ""
    """PEM private key of this node."""
    cafile: str = ""
    """PEM CA bundle used to verify peers; empty uses the system store."""
    require_client_cert: bool = False
    """Require peers to present a certificate (mutual TLS)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # casty 0.21 built its TlsConfig from two ready SSLContexts: such a call gives a
        # TlsContexts, which ClusteredActorSystem(tls=) and ClusterClient(tls=) take as well
        if "server_context" in kwargs or "client_context" in kwargs:
            from casty.remote.tls import TlsContexts

            if args or set(kwargs) - {"server_context", "client_context"}:
                raise TypeError("TlsConfig(server_context=..., client_context=...) takes those two arguments only")
            return TlsContexts(**kwargs)
        return object.__new__(cls)

    @classmethod
    def from_paths(cls, *, certfile: str, cafile: str, keyfile: str | None = None) -> TlsConfig:
        """Mutual TLS from certificate files: this node presents ``certfile`` (its private key
        read from ``keyfile``, or from ``certfile`` itself when ``keyfile`` is None) and every
        peer must present a certificate signed by ``cafile``."""
        return cls(
            enabled=True,
            certfile=certfile,
            keyfile=keyfile if keyfile is not None else certfile,
            cafile=cafile,
            require_client_cert=True,
        )

    def _check_relations(self) -> None:
        if self.enabled:
            for key in ("certfile", "keyfile"):
                if not getattr(self, key):
                    raise fail(f"tls.{key}", "must be set when tls.enabled is true")
        if self.require_client_cert and not self.enabled:
            raise fail("tls.require_client_cert", "needs tls.enabled = true")


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityConfig(Section):
    """``[security]``: authentication of cluster members."""

    _path: ClassVar[str] = "security"

    cluster_secret: str = ""
    """Shared secret for the HMAC challenge at handshake; empty disables the challenge."""
    secret_file: str = ""
    """Read the shared secret from this file instead of cluster_secret."""

    def _check_relations(self) -> None:
        if self.cluster_secret and self.secret_file:
            raise fail("security.secret_file", "set either security.cluster_secret or security.secret_file, not both")

    def resolve_secret(self) -> bytes:
        """The shared secret as bytes (empty when none is configured).

        With ``secret_file`` the file is read now and surrounding whitespace stripped."""
        if self.secret_file:
            try:
                with open(self.secret_file, "rb") as fh:
                    secret = fh.read().strip()
            except OSError as exc:
                raise fail("security.secret_file", f"cannot read {self.secret_file!r}: {exc}") from exc
            if not secret:
                raise fail("security.secret_file", f"{self.secret_file!r} is empty")
            return secret
        return self.cluster_secret.encode()


@dataclasses.dataclass(frozen=True, slots=True)
class ClientConfig(Section):
    """``[client]``: the cluster client used from outside the cluster."""

    _path: ClassVar[str] = "client"

    reconnect_backoff_min: float = field(default=0.1, metadata=limits(positive))
    """First delay, in seconds, before reconnecting."""
    reconnect_backoff_max: float = field(default=5.0, metadata=limits(positive))
    """Largest delay, in seconds, between reconnects."""
    service_wait_timeout: float = field(default=30.0, metadata=limits(positive))
    """Seconds to wait for a requested service to become available."""

    def _check_relations(self) -> None:
        if self.reconnect_backoff_min > self.reconnect_backoff_max:
            raise fail(
                "client.reconnect_backoff_min",
                f"must not exceed client.reconnect_backoff_max ({self.reconnect_backoff_max!r}), "
                f"got {self.reconnect_backoff_min!r}",
            )


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsConfig(Section):
    """`[metrics]`: the HTTP endpoint serving Prometheus metrics and health checks."""

    _path: ClassVar[str] = "metrics"

    port: int = field(default=0, metadata=limits(port_number))
    """TCP port serving `/metrics`, `/alive` and `/ready`; 0 serves nothing."""
    host: str = "127.0.0.1"
    """Address the metrics endpoint listens on."""
    max_streams: int = field(default=50, metadata=limits(at_least_one))
    """Streams given their own metric labels; the rest are summed under `stream="other"`."""
    max_peers: int = field(default=64, metadata=limits(at_least_one))
    """Peers given their own metric labels; the rest are summed under `peer="other"`."""
    max_connections: int = field(default=16, metadata=limits(at_least_one))
    """Concurrent HTTP connections the endpoint accepts; further ones are closed at once."""
    max_request_size: int = field(default=8192, metadata=limits(at_least_one))
    """Largest HTTP request head accepted, in bytes."""
    request_timeout: float = field(default=5.0, metadata=limits(positive))
    """Seconds a client has to send its request and read the answer."""
    alive_timeout: float = field(default=2.0, metadata=limits(positive))
    """`/alive` fails while the event loop has lagged this many seconds behind its timers."""

    def _check_relations(self) -> None:
        if not self.host:
            raise fail("metrics.host", "must not be empty")


@dataclasses.dataclass(frozen=True, slots=True)
class LoggingConfig(Section):
    """`[logging]`: how casty's log records are written."""

    _path: ClassVar[str] = "logging"

    format: LogFormat = "text"
    """`text` leaves logging as the application set it up; `json` writes one JSON object per
    line (time, level, logger, message, node, actor path and stream id where they apply). The
    environment variable `CASTY_LOG_FORMAT` overrides it."""
    level: str = ""
    """Level of the `casty` loggers (DEBUG, INFO, WARNING, ERROR); empty leaves it unchanged."""

    def _check_relations(self) -> None:
        if self.level and self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise fail("logging.level", f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.level!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class ShutdownConfig(Section):
    """``[shutdown]``: how a node stops when it is told to (SIGTERM, ``system.drain()``)."""

    _path: ClassVar[str] = "shutdown"

    drain_timeout: float = field(default=30.0, metadata=limits(positive))
    """Seconds a drain may take: streams deliver what they accepted and complete, consumers
    finish, the node leaves the cluster and stops; what still runs then is stopped."""


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class CastyConfig(Section):
    """The whole configuration; ``CastyConfig()`` is every default.

    casty 0.21's arguments are accepted too (``system_name``, ``gossip``, ``heartbeat``,
    ``failure_detector``, ``defaults_mailbox``, ``serialization``, ``transport``,
    ``defaults_supervision``, ``defaults_sharding``, ``defaults_replication``,
    ``suppress_dead_letters_on_shutdown``, ``actors`` as a tuple of per-actor patterns and a
    0.21 ``cluster``): they are laid out as the ``casty.toml`` 0.21 would have read and go
    through the same mapping as a file (:mod:`casty.config._legacy`), so they map, are
    accepted and named in one warning, or are refused when they contradict this schema's
    arguments given beside them."""

    _path: ClassVar[str] = ""

    system: SystemConfig = field(default_factory=SystemConfig)
    """Identity of the actor system."""
    defaults: DefaultsConfig = field(default_factory=DefaultsConfig)
    """Defaults applied to every actor."""
    actors: ActorsConfig = field(default_factory=ActorsConfig)
    """Actor runtime behaviour."""
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    """Network transport between nodes."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """Cluster membership."""
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    """Backpressured streams."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    """TLS settings."""
    security: SecurityConfig = field(default_factory=SecurityConfig)
    """Authentication of cluster members."""
    client: ClientConfig = field(default_factory=ClientConfig)
    """Cluster client settings."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Metrics and health endpoint."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Log output."""
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)
    """Draining and stopping a node."""

    def __init__(
        self,
        system: SystemConfig | str | None = None,
        defaults: DefaultsConfig | None = None,
        actors: ActorsConfig | tuple[Any, ...] | None = None,
        remote: RemoteConfig | None = None,
        cluster: ClusterConfig | Any = None,
        streams: StreamsConfig | None = None,
        tls: TlsConfig | None = None,
        security: SecurityConfig | None = None,
        client: ClientConfig | None = None,
        metrics: MetricsConfig | None = None,
        logging: LoggingConfig | None = None,
        shutdown: ShutdownConfig | None = None,
        *,
        system_name: str | None = None,
        transport: Any = None,
        serialization: Any = None,
        gossip: GossipConfig | None = None,
        heartbeat: HeartbeatConfig | None = None,
        failure_detector: FailureDetectorConfig | None = None,
        defaults_mailbox: MailboxConfig | None = None,
        defaults_supervision: Any = None,
        defaults_sharding: Any = None,
        defaults_replication: Any = None,
        suppress_dead_letters_on_shutdown: bool | None = None,
    ) -> None:
        legacy: dict[str, Any] = {
            name: value
            for name, value in (
                ("system_name", system_name),
                ("transport", transport),
                ("serialization", serialization),
                ("gossip", gossip),
                ("heartbeat", heartbeat),
                ("failure_detector", failure_detector),
                ("defaults_mailbox", defaults_mailbox),
                ("defaults_supervision", defaults_supervision),
                ("defaults_sharding", defaults_sharding),
                ("defaults_replication", defaults_replication),
                ("suppress_dead_letters_on_shutdown", suppress_dead_letters_on_shutdown),
            )
            if value is not None
        }
        if isinstance(system, str):  # 0.21's first positional argument is the system name
            if system_name is not None and system_name != system:
                raise fail("system.name", f"given twice: {system!r} and system_name={system_name!r}")
            legacy["system_name"] = system
            system = None
        if actors is not None and not isinstance(actors, ActorsConfig):
            legacy["actors"] = actors
            actors = None
        if cluster is not None and not isinstance(cluster, ClusterConfig):
            legacy["cluster"] = cluster
            cluster = None
        if legacy:
            from ._legacy import casty_config_021

            given: dict[str, Section | None] = {
                "system": system,
                "defaults": defaults,
                "remote": remote,
                "cluster": cluster,
                "tls": tls,
            }
            mapped = casty_config_021(legacy, given)
            system = cast("SystemConfig | None", mapped.get("system", system))
            defaults = cast("DefaultsConfig | None", mapped.get("defaults", defaults))
            remote = cast("RemoteConfig | None", mapped.get("remote", remote))
            cluster = mapped.get("cluster", cluster)
            tls = cast("TlsConfig | None", mapped.get("tls", tls))
        sections: tuple[tuple[str, Section | None, type[Section]], ...] = (
            ("system", system, SystemConfig),
            ("defaults", defaults, DefaultsConfig),
            ("actors", actors, ActorsConfig),
            ("remote", remote, RemoteConfig),
            ("cluster", cluster, ClusterConfig),
            ("streams", streams, StreamsConfig),
            ("tls", tls, TlsConfig),
            ("security", security, SecurityConfig),
            ("client", client, ClientConfig),
            ("metrics", metrics, MetricsConfig),
            ("logging", logging, LoggingConfig),
            ("shutdown", shutdown, ShutdownConfig),
        )
        for name, value, cls in sections:
            object.__setattr__(self, name, cls() if value is None else value)
        self.__post_init__()

    # -- casty 0.21's attribute names ----------------------------------------------------------
    @property
    def system_name(self) -> str:
        """``system.name`` (casty 0.21's name for it)."""
        return self.system.name

    @property
    def gossip(self) -> GossipConfig:
        """``cluster.gossip`` (casty 0.21's name for it)."""
        return self.cluster.gossip

    @property
    def heartbeat(self) -> HeartbeatConfig:
        """``cluster.heartbeat`` (casty 0.21's name for it)."""
        return self.cluster.heartbeat

    @property
    def failure_detector(self) -> FailureDetectorConfig:
        """``cluster.failure_detector`` (casty 0.21's name for it)."""
        return self.cluster.failure_detector

    @property
    def defaults_mailbox(self) -> MailboxConfig:
        """``defaults.mailbox`` (casty 0.21's name for it)."""
        return self.defaults.mailbox


CONFIG_FILE_NAME = "casty.toml"
"""The file name :func:`discover_config` and :func:`load_config` look for."""


def discover_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``casty.toml``: in ``start`` (default: the working directory; a file stands
    for its directory) or the closest of its parent directories that has one; None when there
    is none."""
    current = Path(start if start is not None else Path.cwd()).resolve()
    if current.is_file():
        current = current.parent
    for directory in (current, *current.parents):
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> CastyConfig:
    """Read and validate a ``casty.toml`` file, overlaid with the environment.

    Every ``CASTY_<SECTION>__<KEY>`` variable of ``env`` (default: ``os.environ``; pass ``{}``
    to read the file alone) overrides that key of the file, typed and validated like it; nested
    tables take one ``__`` per level (``CASTY_CLUSTER__FAILURE_DETECTOR__THRESHOLD``). An error
    about a value a variable set names the variable (see :mod:`casty.config._environment`).
    Only ``load_config`` reads the environment: ``CastyConfig()`` is the defaults and a
    configuration passed to a system is used as it is.

    Without ``path`` the file is found by :func:`discover_config` (from the working directory
    upwards), and the defaults are returned when there is none. An explicit ``path`` that does
    not exist raises :class:`~casty.errors.ConfigFileNotFoundError` (a ``FileNotFoundError``
    and a ``ConfigError``).

    Files written for casty 0.21 load too: their keys are mapped to this schema, the ones
    without a meaning here are accepted and named in one warning, and contradictory ones are
    refused (see :mod:`casty.config._legacy`).
    """
    if path is None:
        found = discover_config()
        if found is None:
            log.debug("no %s found from %s upwards: using the defaults", CONFIG_FILE_NAME, Path.cwd())
            return apply_environment(CastyConfig, {}, env)  # type: ignore[no-any-return]
        log.debug("configuration read from %s", found)
        path = found
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: invalid TOML: {exc}") from exc
    except FileNotFoundError as exc:
        raise ConfigFileNotFoundError(
            f"{os.fspath(path)}: cannot read configuration: no such file", os.fspath(path)
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read configuration: {exc}") from exc
    from ._legacy import upgrade_021

    return apply_environment(CastyConfig, upgrade_021(data, source=os.fspath(path)), env)  # type: ignore[no-any-return]


describe_knobs(CastyConfig)
