"""``casty.toml`` into a typed, validated configuration.

Every section of the file is a frozen dataclass; every knob has a default, so
``CastyConfig()`` is a complete configuration and a file only needs the keys it
changes.  Validation is generic: it walks the dataclass fields, driven by their
type hints plus a few declarative constraints kept in the field metadata, so a new
knob is one new field.  Validation runs in ``__post_init__``, which means values
built with ``dataclasses.replace`` are checked (and normalised) exactly like values
read from a file.  Every error is a :class:`~casty.errors.ConfigError` naming the
dotted key, for example ``cluster.port: expected int, got str``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, ClassVar, Literal, TypeVar

from casty.errors import ConfigError

__all__ = [
    "ActorsConfig",
    "CastyConfig",
    "ClientConfig",
    "ClusterConfig",
    "DefaultsConfig",
    "FailureDetectorConfig",
    "GossipConfig",
    "HeartbeatConfig",
    "MailboxConfig",
    "MailboxStrategy",
    "RemoteConfig",
    "SecurityConfig",
    "StreamsConfig",
    "SystemConfig",
    "TlsConfig",
    "config_reference",
    "load_config",
]

MailboxStrategy = Literal["drop_new", "drop_oldest", "reject"]
"""What a bounded mailbox does with a message that arrives while it is full."""

HostPort = tuple[str, int]

# ---------------------------------------------------------------------------
# Constraints: each returns an error text for a bad value, or None.
# ---------------------------------------------------------------------------

Check = Callable[[Any], "str | None"]


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be positive, got {value!r}"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value!r}"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else f"must be a port in 0..65535, got {value!r}"


def _at_least_one(value: Any) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value!r}"


def _doc(doc: str, *checks: Check) -> dict[str, Any]:
    """Field metadata: the knob's description and its value constraints."""
    return {"doc": doc, "checks": checks}


_S = TypeVar("_S", bound="_Section")


# ---------------------------------------------------------------------------
# Generic field walking
# ---------------------------------------------------------------------------

_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _hints_cache[cls] = hints
    return hints


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return "table"
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "str"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    return str(tp)


def _got(value: Any) -> str:
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def _parse_host_port(value: Any, path: str) -> Any:
    """Accept ``"host:port"`` (``"[v6]:port"`` for IPv6) as well as ``[host, port]``."""
    if not isinstance(value, str):
        return value
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise _fail(path, f"expected 'host:port' or [host, port], got {value!r}")
    return (host, int(port_text))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it normalised (lists to tuples,
    ints to floats).  Raises ConfigError naming ``path`` on mismatch."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, f"expected bool, got {_got(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(path, f"expected int, got {_got(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                result = float(value)
            except OverflowError:
                raise _fail(path, f"number out of range: {value!r}") from None
            if math.isnan(result):
                raise _fail(path, "must be a number, got nan")
            return result
        raise _fail(path, f"expected float, got {_got(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, f"expected str, got {_got(value)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        raise _fail(path, f"expected {tp.__name__}, got {_got(value)}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if not isinstance(value, str):
            raise _fail(path, f"expected str, got {_got(value)}")
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise _fail(path, f"must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if tp == HostPort:
            value = _parse_host_port(value, path)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _fail(path, f"expected {_type_name(tp)}, got {_got(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise _fail(path, f"expected {_type_name(tp)}, got a list of {len(value)} items")
        items = tuple(
            _coerce(item, a, f"{path}[{i}]") for i, (item, a) in enumerate(zip(value, args, strict=True))
        )
        if tp == HostPort and not 1 <= items[1] <= 65535:
            raise _fail(f"{path}[1]", f"must be a port in 1..65535, got {items[1]!r}")
        return items
    raise TypeError(f"unsupported config type {tp!r} at {path}")


class _Section:
    """Base of every section: validates and normalises its fields after construction."""

    __slots__ = ()
    _path: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            path = _join(self._path, f.name)
            value = getattr(self, f.name)
            normalised = _coerce(value, hints[f.name], path)
            for check in f.metadata.get("checks", ()):
                problem = check(normalised)
                if problem is not None:
                    raise _fail(path, problem)
            if normalised is not value:
                object.__setattr__(self, f.name, normalised)
        self._check_relations()

    def _check_relations(self) -> None:
        """Constraints between several fields of one section (none by default)."""

    @classmethod
    def from_dict(cls: type[_S], data: Mapping[str, Any]) -> _S:
        """Build the section from a parsed TOML table; unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise _fail(cls._path or "config", f"expected table, got {_got(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            path = _join(cls._path, str(key))
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean '{_join(cls._path, close[0])}'?)" if close else ""
                raise ConfigError(f"unknown key '{path}'{hint}")
            tp = hints[key]
            if isinstance(tp, type) and issubclass(tp, _Section):
                kwargs[key] = tp.from_dict(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain TOML-compatible data (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, _Section):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SystemConfig(_Section):
    """``[system]``: identity of the actor system."""

    _path: ClassVar[str] = "system"

    name: str = field(
        default="casty", metadata=_doc("Actor system name; must be the same on every cluster member.")
    )
    """Actor system name; must be the same on every cluster member."""

    def _check_relations(self) -> None:
        if not self.name:
            raise _fail("system.name", "must not be empty")


@dataclasses.dataclass(frozen=True, slots=True)
class MailboxConfig(_Section):
    """``[defaults.mailbox]``: mailbox settings used when an actor does not give its own."""

    _path: ClassVar[str] = "defaults.mailbox"

    capacity: int = field(
        default=0, metadata=_doc("Maximum queued messages per actor; 0 means unbounded.", _non_negative)
    )
    """Maximum queued messages per actor; 0 means unbounded."""
    strategy: MailboxStrategy = field(
        default="drop_new",
        metadata=_doc(
            "What a full bounded mailbox does with a new message: drop_new, drop_oldest or reject.",
        ),
    )
    """What a full bounded mailbox does with a new message: drop_new, drop_oldest or reject."""
    throughput: int = field(
        default=64,
        metadata=_doc("Messages one actor processes per turn before yielding to others.", _at_least_one),
    )
    """Messages one actor processes per turn before yielding to others."""


@dataclasses.dataclass(frozen=True, slots=True)
class DefaultsConfig(_Section):
    """``[defaults]``: defaults applied to every actor."""

    _path: ClassVar[str] = "defaults"

    mailbox: MailboxConfig = field(default_factory=MailboxConfig, metadata=_doc("Default mailbox settings."))
    """Default mailbox settings."""


@dataclasses.dataclass(frozen=True, slots=True)
class ActorsConfig(_Section):
    """``[actors]``: behaviour of the actor runtime."""

    _path: ClassVar[str] = "actors"

    ask_timeout: float = field(
        default=5.0, metadata=_doc("Seconds an ask waits for its reply when no timeout is given.", _positive)
    )
    """Seconds an ask waits for its reply when no timeout is given."""
    log_dead_letters: int = field(
        default=10,
        metadata=_doc(
            "How many dead letters are logged at debug level before going quiet; counting continues.",
            _non_negative,
        ),
    )
    """How many dead letters are logged at debug level before going quiet; counting continues."""


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteConfig(_Section):
    """``[remote]``: the network transport between nodes."""

    _path: ClassVar[str] = "remote"

    max_frame_size: int = field(
        default=4194304, metadata=_doc("Largest accepted frame, in bytes.", _at_least_one)
    )
    """Largest accepted frame, in bytes."""
    outbound_buffer_size: int = field(
        default=4194304,
        metadata=_doc(
            "Bytes of encoded frames a peer connection may hold unsent before casty stops encoding "
            "more for it (the socket's high-water mark).",
            _at_least_one,
        ),
    )
    """Bytes of encoded frames a peer connection may hold unsent before casty stops encoding
    more for it (the socket's high-water mark)."""
    outbound_queue_size: int = field(
        default=262144,
        metadata=_doc(
            "Messages queued per peer while it is unreachable or slow; further messages become "
            "dead letters.",
            _at_least_one,
        ),
    )
    """Messages queued per peer while it is unreachable or slow; further messages become
    dead letters."""
    handshake_timeout: float = field(
        default=5.0, metadata=_doc("Seconds allowed to complete a connection handshake.", _positive)
    )
    """Seconds allowed to complete a connection handshake."""
    connect_timeout: float = field(
        default=5.0, metadata=_doc("Seconds allowed to open a TCP connection.", _positive)
    )
    """Seconds allowed to open a TCP connection."""
    reconnect_backoff_min: float = field(
        default=0.05, metadata=_doc("First delay, in seconds, before reconnecting.", _positive)
    )
    """First delay, in seconds, before reconnecting."""
    reconnect_backoff_max: float = field(
        default=5.0, metadata=_doc("Largest delay, in seconds, between reconnects.", _positive)
    )
    """Largest delay, in seconds, between reconnects."""
    give_up_after: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds of failed reconnects after which a non-cluster peer is considered gone "
            "(its watchers get Terminated); a connection silent this long is dropped (it is "
            "pinged after a quarter of it).",
            _positive,
        ),
    )
    """Seconds of failed reconnects after which a non-cluster peer is considered gone
    (its watchers get Terminated); a connection silent this long is dropped (it is
    pinged after a quarter of it)."""
    tcp_nodelay: bool = field(
        default=True, metadata=_doc("Set TCP_NODELAY on connections (disable Nagle's algorithm).")
    )
    """Set TCP_NODELAY on connections (disable Nagle's algorithm)."""
    strict_serialization: bool = field(
        default=False,
        metadata=_doc("Refuse to send messages whose types are not registered for serialization."),
    )
    """Refuse to send messages whose types are not registered for serialization."""
    allow_pickle: bool = field(
        default=False, metadata=_doc("Allow pickle as a fallback serializer (unsafe with untrusted peers).")
    )
    """Allow pickle as a fallback serializer (unsafe with untrusted peers)."""
    max_connections: int = field(
        default=256, metadata=_doc("Maximum number of inbound connections.", _at_least_one)
    )
    """Maximum number of inbound connections."""

    def _check_relations(self) -> None:
        if self.reconnect_backoff_min > self.reconnect_backoff_max:
            raise _fail(
                "remote.reconnect_backoff_min",
                f"must not exceed remote.reconnect_backoff_max ({self.reconnect_backoff_max!r}), "
                f"got {self.reconnect_backoff_min!r}",
            )


@dataclasses.dataclass(frozen=True, slots=True)
class GossipConfig(_Section):
    """``[cluster.gossip]``: membership gossip."""

    _path: ClassVar[str] = "cluster.gossip"

    interval: float = field(default=0.5, metadata=_doc("Seconds between gossip rounds.", _positive))
    """Seconds between gossip rounds."""


@dataclasses.dataclass(frozen=True, slots=True)
class HeartbeatConfig(_Section):
    """``[cluster.heartbeat]``: heartbeats between cluster members."""

    _path: ClassVar[str] = "cluster.heartbeat"

    interval: float = field(
        default=0.5, metadata=_doc("Seconds between heartbeats sent to each monitored member.", _positive)
    )
    """Seconds between heartbeats sent to each monitored member."""
    availability_check_interval: float = field(
        default=0.5,
        metadata=_doc("Seconds between checks of the failure detector for unreachable members.", _positive),
    )
    """Seconds between checks of the failure detector for unreachable members."""


@dataclasses.dataclass(frozen=True, slots=True)
class FailureDetectorConfig(_Section):
    """``[cluster.failure_detector]``: the phi accrual failure detector."""

    _path: ClassVar[str] = "cluster.failure_detector"

    threshold: float = field(
        default=8.0, metadata=_doc("Phi value above which a member is considered unreachable.", _positive)
    )
    """Phi value above which a member is considered unreachable."""
    acceptable_heartbeat_pause: float = field(
        default=2.0,
        metadata=_doc("Seconds of missing heartbeats tolerated before phi starts to rise.", _non_negative),
    )
    """Seconds of missing heartbeats tolerated before phi starts to rise."""
    min_std_deviation: float = field(
        default=0.1,
        metadata=_doc("Lower bound, in seconds, of the heartbeat interval standard deviation.", _positive),
    )
    """Lower bound, in seconds, of the heartbeat interval standard deviation."""
    max_sample_size: int = field(
        default=200, metadata=_doc("Number of heartbeat intervals kept for the estimate.", _at_least_one)
    )
    """Number of heartbeat intervals kept for the estimate."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterConfig(_Section):
    """``[cluster]``: cluster membership of this node."""

    _path: ClassVar[str] = "cluster"

    host: str = field(
        default="127.0.0.1", metadata=_doc("Host name or address other members use to reach this node.")
    )
    """Host name or address other members use to reach this node."""
    port: int = field(default=25520, metadata=_doc("TCP port of this node (0 picks a free port).", _port))
    """TCP port of this node (0 picks a free port)."""
    bind_host: str = field(default="", metadata=_doc("Address to listen on; empty means the same as host."))
    """Address to listen on; empty means the same as host."""
    seed_nodes: tuple[HostPort, ...] = field(
        default=(),
        metadata=_doc('Members contacted to join the cluster, as "host:port" strings or [host, port] pairs.'),
    )
    """Members contacted to join the cluster, as "host:port" strings or [host, port] pairs."""
    roles: tuple[str, ...] = field(default=(), metadata=_doc("Roles this node advertises to the cluster."))
    """Roles this node advertises to the cluster."""
    down_after: float = field(
        default=10.0, metadata=_doc("Seconds a member stays unreachable before it is downed.", _positive)
    )
    """Seconds a member stays unreachable before it is downed."""
    retry_join_interval: float = field(
        default=0.5, metadata=_doc("Seconds between attempts to join via the seed nodes.", _positive)
    )
    """Seconds between attempts to join via the seed nodes."""
    gossip: GossipConfig = field(default_factory=GossipConfig, metadata=_doc("Membership gossip."))
    """Membership gossip."""
    heartbeat: HeartbeatConfig = field(
        default_factory=HeartbeatConfig, metadata=_doc("Heartbeats between members.")
    )
    """Heartbeats between members."""
    failure_detector: FailureDetectorConfig = field(
        default_factory=FailureDetectorConfig, metadata=_doc("Phi accrual failure detector.")
    )
    """Phi accrual failure detector."""

    def _check_relations(self) -> None:
        if not self.host:
            raise _fail("cluster.host", "must not be empty")
        for i, role in enumerate(self.roles):
            if not role:
                raise _fail(f"cluster.roles[{i}]", "must not be empty")

    @property
    def effective_bind_host(self) -> str:
        """The address to listen on: ``bind_host``, or ``host`` when that is empty."""
        return self.bind_host or self.host


@dataclasses.dataclass(frozen=True, slots=True)
class StreamsConfig(_Section):
    """``[streams]``: backpressured streams."""

    _path: ClassVar[str] = "streams"

    buffer_size: int = field(
        default=1024,
        metadata=_doc(
            "Producer buffer: elements accepted from the producing code before it waits for demand.",
            _at_least_one,
        ),
    )
    """Producer buffer: elements accepted from the producing code before it waits for demand."""
    initial_demand: int = field(
        default=1024,
        metadata=_doc("Consumer window: elements requested ahead of consumption.", _at_least_one),
    )
    """Consumer window: elements requested ahead of consumption."""
    timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds of consumer inactivity, or waiting for a subscription, before failing.", _positive
        ),
    )
    """Seconds of consumer inactivity, or waiting for a subscription, before failing."""
    resend_interval: float = field(
        default=1.0,
        metadata=_doc(
            "Seconds a producer waits for acknowledgement before resending its unacknowledged window.",
            _positive,
        ),
    )
    """Seconds a producer waits for acknowledgement before resending its unacknowledged window."""


@dataclasses.dataclass(frozen=True, slots=True)
class TlsConfig(_Section):
    """``[tls]``: TLS for node-to-node and client connections."""

    _path: ClassVar[str] = "tls"

    enabled: bool = field(default=False, metadata=_doc("Encrypt connections with TLS."))
    """Encrypt connections with TLS."""
    certfile: str = field(default="", metadata=_doc("PEM certificate chain of this node."))
    """PEM certificate chain of this node."""
    keyfile: str = field(default="", metadata=_doc("PEM private key of this node."))
    """PEM private key of this node."""
    cafile: str = field(
        default="", metadata=_doc("PEM CA bundle used to verify peers; empty uses the system store.")
    )
    """PEM CA bundle used to verify peers; empty uses the system store."""
    require_client_cert: bool = field(
        default=False, metadata=_doc("Require peers to present a certificate (mutual TLS).")
    )
    """Require peers to present a certificate (mutual TLS)."""

    def _check_relations(self) -> None:
        if self.enabled:
            for key in ("certfile", "keyfile"):
                if not getattr(self, key):
                    raise _fail(f"tls.{key}", "must be set when tls.enabled is true")
        if self.require_client_cert and not self.enabled:
            raise _fail("tls.require_client_cert", "needs tls.enabled = true")


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityConfig(_Section):
    """``[security]``: authentication of cluster members."""

    _path: ClassVar[str] = "security"

    cluster_secret: str = field(
        default="",
        metadata=_doc("Shared secret for the HMAC challenge at handshake; empty disables the challenge."),
    )
    """Shared secret for the HMAC challenge at handshake; empty disables the challenge."""
    secret_file: str = field(
        default="", metadata=_doc("Read the shared secret from this file instead of cluster_secret.")
    )
    """Read the shared secret from this file instead of cluster_secret."""

    def _check_relations(self) -> None:
        if self.cluster_secret and self.secret_file:
            raise _fail(
                "security.secret_file", "set either security.cluster_secret or security.secret_file, not both"
            )

    def resolve_secret(self) -> bytes:
        """The shared secret as bytes (empty when none is configured).

        With ``secret_file`` the file is read now and surrounding whitespace stripped."""
        if self.secret_file:
            try:
                with open(self.secret_file, "rb") as fh:
                    secret = fh.read().strip()
            except OSError as exc:
                raise _fail("security.secret_file", f"cannot read {self.secret_file!r}: {exc}") from exc
            if not secret:
                raise _fail("security.secret_file", f"{self.secret_file!r} is empty")
            return secret
        return self.cluster_secret.encode()


@dataclasses.dataclass(frozen=True, slots=True)
class ClientConfig(_Section):
    """``[client]``: the cluster client used from outside the cluster."""

    _path: ClassVar[str] = "client"

    reconnect_backoff_min: float = field(
        default=0.1, metadata=_doc("First delay, in seconds, before reconnecting.", _positive)
    )
    """First delay, in seconds, before reconnecting."""
    reconnect_backoff_max: float = field(
        default=5.0, metadata=_doc("Largest delay, in seconds, between reconnects.", _positive)
    )
    """Largest delay, in seconds, between reconnects."""
    service_wait_timeout: float = field(
        default=30.0, metadata=_doc("Seconds to wait for a requested service to become available.", _positive)
    )
    """Seconds to wait for a requested service to become available."""

    def _check_relations(self) -> None:
        if self.reconnect_backoff_min > self.reconnect_backoff_max:
            raise _fail(
                "client.reconnect_backoff_min",
                f"must not exceed client.reconnect_backoff_max ({self.reconnect_backoff_max!r}), "
                f"got {self.reconnect_backoff_min!r}",
            )


@dataclasses.dataclass(frozen=True, slots=True)
class CastyConfig(_Section):
    """The whole configuration; ``CastyConfig()`` is every default."""

    _path: ClassVar[str] = ""

    system: SystemConfig = field(default_factory=SystemConfig, metadata=_doc("Identity of the actor system."))
    """Identity of the actor system."""
    defaults: DefaultsConfig = field(
        default_factory=DefaultsConfig, metadata=_doc("Defaults applied to every actor.")
    )
    """Defaults applied to every actor."""
    actors: ActorsConfig = field(default_factory=ActorsConfig, metadata=_doc("Actor runtime behaviour."))
    """Actor runtime behaviour."""
    remote: RemoteConfig = field(
        default_factory=RemoteConfig, metadata=_doc("Network transport between nodes.")
    )
    """Network transport between nodes."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig, metadata=_doc("Cluster membership."))
    """Cluster membership."""
    streams: StreamsConfig = field(default_factory=StreamsConfig, metadata=_doc("Backpressured streams."))
    """Backpressured streams."""
    tls: TlsConfig = field(default_factory=TlsConfig, metadata=_doc("TLS settings."))
    """TLS settings."""
    security: SecurityConfig = field(
        default_factory=SecurityConfig, metadata=_doc("Authentication of cluster members.")
    )
    """Authentication of cluster members."""
    client: ClientConfig = field(default_factory=ClientConfig, metadata=_doc("Cluster client settings."))
    """Cluster client settings."""


def load_config(path: str | os.PathLike[str]) -> CastyConfig:
    """Read and validate a ``casty.toml`` file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read configuration: {exc}") from exc
    return CastyConfig.from_dict(data)


# ---------------------------------------------------------------------------
# Reference documentation
# ---------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _walk_sections(cls: type[_Section]) -> list[type[_Section]]:
    found: list[type[_Section]] = []
    hints = _hints(cls)
    scalars = [f for f in dataclasses.fields(cls) if not _is_section(hints[f.name])]  # type: ignore[arg-type]
    if scalars:
        found.append(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if _is_section(tp):
            found.extend(_walk_sections(tp))
    return found


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, _Section)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def config_reference() -> str:
    """Every section, key, type, default and description of ``casty.toml`` as markdown."""
    lines: list[str] = []
    for cls in _walk_sections(CastyConfig):
        hints = _hints(cls)
        defaults = cls()
        if lines:
            lines.append("")
        lines.append(f"### `[{cls._path}]`")
        lines.append("")
        lines.append("| Key | Type | Default | Description |")
        lines.append("| --- | --- | --- | --- |")
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            tp = hints[f.name]
            if _is_section(tp):
                continue
            default = _toml_value(_plain(getattr(defaults, f.name)))
            lines.append(
                f"| `{f.name}` | {_cell(_type_name(tp))} | `{default}` | {_cell(f.metadata['doc'])} |"
            )
    return "\n".join(lines) + "\n"


_REF_START = "<!-- config-reference:start -->"
_REF_END = "<!-- config-reference:end -->"


def update_readme(path: str | os.PathLike[str]) -> bool:
    """Rewrite the configuration reference between the README's markers; True if it changed."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    start, end = text.index(_REF_START) + len(_REF_START), text.index(_REF_END)
    new = text[:start] + "\n" + config_reference().strip() + "\n" + text[end:]
    if new == text:
        return False
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new)
    return True


if __name__ == "__main__":  # python -m casty.config [README.md]: refresh the README's reference
    import sys

    if len(sys.argv) > 1:
        print("updated" if update_readme(sys.argv[1]) else "unchanged")
    else:
        print(config_reference())
