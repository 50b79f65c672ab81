"""The Prometheus exposition of a system's figures (needs ``pip install casty[metrics]``).

Every scrape reads one :class:`~casty.observe.stats.SystemStats` snapshot; nothing is
recorded for Prometheus between scrapes. Label values are bounded: the first
``[metrics] max_streams`` streams (and ``max_peers`` peers) seen keep their own label for as
long as they live, later ones are summed under ``other``; dead-letter reasons are a fixed set
of kinds; mailbox depths are given for the ten fullest mailboxes only.

Metric names::

    casty_actors                                 live actors
    casty_members{status}                        members by status, as this node sees them
    casty_ready                                  1 when /ready answers 200
    casty_dead_letters_total{reason}             undeliverable messages by kind of reason
    casty_mailbox_depth{actor}                   queued messages of the fullest mailboxes
    casty_remote_bytes_total{peer,direction}     bytes sent / received per peer
    casty_remote_connections{state}              peers by connection state
    casty_gossip_messages_total{direction}       membership gossip sent / received
    casty_ask_latency_seconds                    histogram of answered asks
    casty_ask_timeouts_total                     asks that timed out
    casty_stream_elements_total{stream,role,direction}   elements in (accepted) / out (delivered)
    casty_stream_buffered{stream,role}           elements held, not sent or not consumed yet
    casty_stream_unacked{stream}                 elements sent and not acknowledged (producers)
    casty_stream_demand{stream,role}             elements asked for and not received yet
    casty_stream_resends_total{stream,role}      windows resent (producers) or asked again (consumers)
    casty_stream_rate{stream,role}               delivered elements per second, recent window
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from casty.observe.stats import StreamStats, SystemStats
from casty.observe.view import readiness

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem

__all__ = ["CONTENT_TYPE", "Labeller", "MetricsUnavailable", "metrics_available", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OTHER = "other"


class MetricsUnavailable(RuntimeError):
    """``prometheus-client`` is not installed (``pip install casty[metrics]``)."""


def metrics_available() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class Labeller:
    """Gives at most ``limit`` distinct values their own label; the rest are ``other``.

    A value keeps its label while it is still present at the next scrape, so a counter does
    not move between series as long as its stream or peer lives."""

    __slots__ = ("assigned", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.assigned: set[str] = set()

    def relabel(self, present: list[str]) -> dict[str, str]:
        seen = set(present)
        self.assigned &= seen
        out: dict[str, str] = {}
        for value in present:
            if value not in self.assigned and len(self.assigned) < self.limit:
                self.assigned.add(value)
            out[value] = value if value in self.assigned else OTHER
        return out


def _sum_streams(streams: tuple[StreamStats, ...], labels: dict[str, str]) -> dict[tuple[str, str], list[float]]:
    """(label, role) -> [accepted, delivered, buffered, unacked, demand, resends, rate]."""
    out: dict[tuple[str, str], list[float]] = {}
    for s in streams:
        row = out.setdefault((labels[s.stream], s.role), [0, 0, 0, 0, 0, 0, 0.0])
        for i, v in enumerate((s.accepted, s.delivered, s.buffered, s.unacked, s.demand, s.resends, s.rate)):
            row[i] += v
    return out


class _Collector:
    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        cfg = system.config.metrics
        self.streams = Labeller(cfg.max_streams)
        self.peers = Labeller(cfg.max_peers)

    def describe(self) -> list[Any]:
        return []  # collected on demand: no up-front description

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        system = self.system
        stats: SystemStats = system.stats()
        yield GaugeMetricFamily("casty_actors", "Live actors", value=stats.actors)
        ready = GaugeMetricFamily("casty_ready", "1 when this node is ready (/ready answers 200)")
        ready.add_metric([], 1.0 if readiness(system)[0] else 0.0)
        yield ready
        members = GaugeMetricFamily("casty_members", "Members by status, as this node sees them", labels=["status"])
        for status, n in sorted(stats.members_by_status.items()):
            members.add_metric([status], n)
        yield members
        dead = CounterMetricFamily("casty_dead_letters", "Undeliverable messages by kind of reason", labels=["reason"])
        for reason, n in sorted(stats.dead_letters_by_reason.items()):
            dead.add_metric([reason], n)
        yield dead
        depth = GaugeMetricFamily("casty_mailbox_depth", "Queued messages of the fullest mailboxes", labels=["actor"])
        for path, n in stats.busiest_mailboxes:
            depth.add_metric([path], n)
        yield depth

        peer_labels = self.peers.relabel([p.address for p in stats.peers])
        by_peer: dict[str, list[int]] = {}
        states: dict[str, int] = {}
        for p in stats.peers:
            row = by_peer.setdefault(peer_labels[p.address], [0, 0])
            row[0] += p.bytes_sent
            row[1] += p.bytes_received
            states[p.state] = states.get(p.state, 0) + 1
        remote = CounterMetricFamily(
            "casty_remote_bytes", "Bytes sent and received per peer", labels=["peer", "direction"]
        )
        for peer, (sent, received) in sorted(by_peer.items()):
            remote.add_metric([peer, "sent"], sent)
            remote.add_metric([peer, "received"], received)
        yield remote
        conns = GaugeMetricFamily("casty_remote_connections", "Peers by connection state", labels=["state"])
        for state, n in sorted(states.items()):
            conns.add_metric([state], n)
        yield conns
        gossip = CounterMetricFamily("casty_gossip_messages", "Membership gossip messages", labels=["direction"])
        gossip.add_metric(["sent"], stats.gossip_sent)
        gossip.add_metric(["received"], stats.gossip_received)
        yield gossip

        latency = system.ask_latency
        yield HistogramMetricFamily(
            "casty_ask_latency_seconds",
            "Round trip of answered asks",
            buckets=latency.cumulative(),
            sum_value=latency.sum,
        )
        yield CounterMetricFamily("casty_ask_timeouts", "Asks that timed out", value=latency.timeouts)

        stream_labels = self.streams.relabel(sorted({s.stream for s in stats.streams}))
        rows = _sum_streams(stats.streams, stream_labels)
        elements = CounterMetricFamily(
            "casty_stream_elements",
            "Stream elements in (accepted) and out (delivered)",
            labels=["stream", "role", "direction"],
        )
        buffered = GaugeMetricFamily(
            "casty_stream_buffered", "Elements held, not sent or not consumed yet", labels=["stream", "role"]
        )
        unacked = GaugeMetricFamily("casty_stream_unacked", "Elements sent and not acknowledged", labels=["stream"])
        demand = GaugeMetricFamily(
            "casty_stream_demand", "Elements asked for and not received yet", labels=["stream", "role"]
        )
        resends = CounterMetricFamily(
            "casty_stream_resends", "Windows resent or asked for again", labels=["stream", "role"]
        )
        rate = GaugeMetricFamily("casty_stream_rate", "Delivered elements per second", labels=["stream", "role"])
        for (label, role), (acc, dlv, buf, una, dem, res, rt) in sorted(rows.items()):
            elements.add_metric([label, role, "in"], acc)
            elements.add_metric([label, role, "out"], dlv)
            buffered.add_metric([label, role], buf)
            if role == "producer":
                unacked.add_metric([label], una)
            demand.add_metric([label, role], dem)
            resends.add_metric([label, role], res)
            rate.add_metric([label, role], rt)
        yield from (elements, buffered, unacked, demand, resends, rate)


class Exposition:
    """The Prometheus text of one system, rendered on each scrape."""

    def __init__(self, system: ActorSystem) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError as exc:
            raise MetricsUnavailable("metrics need prometheus-client: pip install 'casty[metrics]'") from exc
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(system))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def render_metrics(system: ActorSystem) -> bytes:
    """One-off rendering (each call starts label assignment afresh)."""
    return Exposition(system).render()
