"""Seeing a running system from outside: statistics, Prometheus metrics, health endpoints,
the inspection protocol behind the ``casty`` command, and structured logs.

* :mod:`casty.observe.counters` -- dead-letter kinds and the ask latency histogram
* :mod:`casty.observe.stats` -- the snapshots (``system.stats()``, ``SinkRef.stats()``,
  ``SourceRef.stats()``) and the registry of live streams
* :mod:`casty.observe.view` -- a node's local view (members, services, streams, peers) as
  plain values, and its readiness
* :mod:`casty.observe.metrics` -- the Prometheus exposition (needs ``casty[metrics]``)
* :mod:`casty.observe.http` -- the bounded HTTP endpoint: ``/metrics``, ``/alive``, ``/ready``
* :mod:`casty.observe.logs` -- one JSON object per log line
"""

from __future__ import annotations

from casty.observe.stats import PeerStats as PeerStats
from casty.observe.stats import StreamStats as StreamStats
from casty.observe.stats import SystemStats as SystemStats

__all__ = ["PeerStats", "StreamStats", "SystemStats"]
