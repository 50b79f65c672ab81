"""Snapshots of a running system's figures: :class:`SystemStats`, :class:`PeerStats` and
:class:`StreamStats`.

Nothing here is computed on the message path. The runtime keeps plain counters (per batch on
the element path) and a snapshot reads them when asked: ``system.stats()``,
``SinkRef.stats()``, ``SourceRef.stats()``, the Prometheus endpoint and the inspection
protocol all read the same figures.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem

__all__ = [
    "PeerStats",
    "RateMeter",
    "StreamStats",
    "SystemStats",
    "register_stream",
    "stream_stats",
    "system_stats",
]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One end of a stream as this process sees it.

    ``role`` is ``"producer"`` (a :class:`~casty.SinkRef`'s side) or ``"consumer"`` (a
    :class:`~casty.SourceRef`'s side). A producer *accepts* elements from the producing code
    (``put``, ``offer``, ``Push``) and *delivers* them when the consumer acknowledges them; a
    consumer *accepts* the elements that arrive and *delivers* those handed to the consuming
    code. ``buffered`` are held and not sent (producer) or arrived and not consumed
    (consumer); ``unacked`` sent and not acknowledged (producer only); ``demand`` what the
    consumer asked for and did not get yet; ``resends`` windows sent again (producer) or asked
    again (consumer); ``rate`` delivered elements per second over ``[streams] stats_window``.
    """

    stream: str
    role: str
    peer: str = ""
    accepted: int = 0
    delivered: int = 0
    buffered: int = 0
    unacked: int = 0
    demand: int = 0
    resends: int = 0
    rate: float = 0.0
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class PeerStats:
    """One peer process: its address, what it is (``node`` or ``client``), the connection
    state (``open``, ``connecting`` or ``idle``), bytes both ways over every connection to it,
    and the messages queued for it."""

    address: str
    kind: str
    state: str
    bytes_sent: int
    bytes_received: int
    queued: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class SystemStats:
    """What ``system.stats()`` returns: a snapshot, cheap to take, safe to keep."""

    name: str
    address: str
    actors: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    #: ``(actor path, queued messages)`` of the fullest mailboxes, fullest first
    busiest_mailboxes: tuple[tuple[str, int], ...] = ()
    peers: tuple[PeerStats, ...] = ()
    bytes_sent: int = 0
    bytes_received: int = 0
    gossip_sent: int = 0
    gossip_received: int = 0
    #: member status name -> members in that status, as this node sees the cluster
    members_by_status: dict[str, int] = field(default_factory=dict)
    streams: tuple[StreamStats, ...] = ()
    asks: int = 0
    ask_timeouts: int = 0
    taken_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-able values."""
        out = dataclasses.asdict(self)
        out["busiest_mailboxes"] = [list(p) for p in self.busiest_mailboxes]
        return out


class RateMeter:
    """Elements per second over the last ``window`` seconds, from samples of a running total.

    ``sample(total, now)`` is called once per batch; it keeps at most about 16 samples per
    window, so its cost does not grow with the rate."""

    __slots__ = ("_last", "_samples", "_step", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._step = window / 16
        self._samples: deque[tuple[float, int]] = deque()
        self._last = 0.0

    def sample(self, total: int, now: float) -> None:
        self._last = now
        samples = self._samples
        if samples and now - samples[-1][0] < self._step:
            return
        samples.append((now, total))
        horizon = now - self.window
        while len(samples) > 2 and samples[1][0] <= horizon:
            samples.popleft()

    def rate(self, total: int, now: float) -> float:
        samples = self._samples
        horizon = now - self.window
        if self._last <= horizon:
            return 0.0  # nothing moved for a whole window
        while len(samples) > 1 and samples[1][0] <= horizon:
            samples.popleft()
        if not samples:
            return 0.0
        t0, n0 = samples[0]
        elapsed = now - t0
        return (total - n0) / elapsed if elapsed > 0 else 0.0


# -- the live streams of each system ------------------------------------------------------------
_streams: weakref.WeakKeyDictionary[Any, weakref.WeakSet[Any]] = weakref.WeakKeyDictionary()


def register_stream(system: ActorSystem, end: Any) -> None:
    """Make ``end`` (anything with a ``stats() -> StreamStats`` method) part of ``system``'s
    statistics while it lives; it drops out once collected."""
    found = _streams.get(system)
    if found is None:
        found = _streams[system] = weakref.WeakSet()
    found.add(end)


def stream_stats(system: ActorSystem) -> list[StreamStats]:
    """Stats of every stream end registered with ``system``: open ones first, then by rate."""
    ends = _streams.get(system)
    if not ends:
        return []
    found = [end.stats() for end in list(ends)]
    found.sort(key=lambda s: (s.done, -s.rate, s.stream, s.role))
    return found


# -- the system snapshot -------------------------------------------------------------------------
def _peer_state(assoc: Any) -> str:
    if assoc.conn is not None:
        return "open"
    if assoc.dialing is not None or assoc.retry_handle is not None:
        return "connecting"
    return "idle"


def _peers(transport: Any) -> Iterable[PeerStats]:
    for assoc in list(transport.associations.values()):
        conn = assoc.conn
        yield PeerStats(
            address=f"{assoc.address.host}:{assoc.address.port or 0}",
            kind=assoc.peer_kind or ("node" if assoc.dialable else "client"),
            state=_peer_state(assoc),
            bytes_sent=assoc.closed_bytes_out + (conn.bytes_out if conn is not None else 0),
            bytes_received=assoc.closed_bytes_in + (conn.bytes_in if conn is not None else 0),
            queued=len(assoc.queue),
        )


def system_stats(
    system: ActorSystem,
    *,
    actors: int,
    busiest: Callable[[], list[tuple[str, int]]],
) -> SystemStats:
    """The snapshot behind ``system.stats()``; remote and cluster figures are read from the
    system's transport and membership when it has them."""
    transport = getattr(system, "transport", None)
    peers: tuple[PeerStats, ...] = ()
    sent = received = 0
    if transport is not None:
        peers = tuple(sorted(_peers(transport), key=lambda p: p.address))
        sent, received = transport.bytes_sent, transport.bytes_received
    by_status: dict[str, int] = {}
    membership = getattr(system, "membership", None)
    if membership is not None:
        for member in membership.gossip.members:
            by_status[member.status.value] = by_status.get(member.status.value, 0) + 1
    address = system.address
    latency = system.ask_latency
    return SystemStats(
        name=system.name,
        address=f"{address.host}:{address.port}" if address.host else "",
        actors=actors,
        dead_letters=system.dead_letters,
        dead_letters_by_reason=dict(system.dead_letter_reasons),
        busiest_mailboxes=tuple(busiest()),
        peers=peers,
        bytes_sent=sent,
        bytes_received=received,
        gossip_sent=getattr(system, "gossip_sent", 0),
        gossip_received=getattr(system, "gossip_received", 0),
        members_by_status=by_status,
        streams=tuple(stream_stats(system)),
        asks=latency.count,
        ask_timeouts=latency.timeouts,
        taken_at=time.time(),
    )
