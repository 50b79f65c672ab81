"""Phi accrual failure detection (Hayashibara et al., 2004), free of any I/O.

A :class:`PhiAccrualFailureDetector` watches the heartbeats of one member. Instead of
a yes/no verdict after a fixed timeout it outputs *phi*, the suspicion level::

    phi = -log10(P(a heartbeat arrives later than now))

where the probability comes from a normal distribution fitted to the recent
inter-arrival intervals.  The mean is widened by ``acceptable_heartbeat_pause``
(so short stalls such as a GC pause or a busy event loop do not raise suspicion)
and the standard deviation never drops below ``min_std_deviation`` (so a perfectly
regular sender does not become suspect a millisecond after a late beat).  phi of 1
means a 10% chance that the member is still alive and merely late, 2 means 1%, 8
(the default threshold) means 1e-8.

The normal CDF uses the logistic approximation ``1 / (1 + exp(-y * (1.5976 +
0.070566 * y**2)))``, evaluated in log space so that neither a very early nor a
very late heartbeat overflows or underflows: phi stays finite and keeps growing
the longer a member is silent.

:class:`FailureDetectorRegistry` keeps one detector per :class:`NodeAddress`.
All time comes from an injectable ``clock`` (``time.monotonic`` by default).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator

from casty.actors.ref import NodeAddress
from casty.config import FailureDetectorConfig

__all__ = ["FailureDetectorRegistry", "PhiAccrualFailureDetector"]

_LN10 = math.log(10.0)


def _phi(elapsed: float, mean: float, std: float) -> float:
    """``-log10(1 - CDF(elapsed))`` for a normal(mean, std), via the logistic approximation."""
    y = (elapsed - mean) / std
    # 1 - CDF(y) ~= 1 / (1 + exp(y * (1.5976 + 0.070566 * y**2))) = sigmoid(z)
    z = -y * (1.5976 + 0.070566 * y * y)
    # log(sigmoid(z)) without overflow: -log1p(exp(-z)) for z >= 0, z - log1p(exp(z)) otherwise.
    log_p = -math.log1p(math.exp(-z)) if z >= 0.0 else z - math.log1p(math.exp(z))
    phi = -log_p / _LN10
    return phi if phi > 0.0 else 0.0


class PhiAccrualFailureDetector:
    """Suspicion level of one monitored member, from the arrival times of its heartbeats.

    ``heartbeat()`` records an arrival, ``phi()`` is the current suspicion and
    ``is_available()`` is ``phi() < threshold``.  Before the first heartbeat the
    member counts as available and ``phi()`` is 0.  Only the last
    ``max_sample_size`` intervals are kept.  An interval that ends a period in which
    the member was already considered unavailable is not sampled, so one long outage
    does not teach the detector to tolerate long outages.
    """

    __slots__ = (
        "_clock",
        "_intervals",
        "_last",
        "_sum",
        "_sum_sq",
        "acceptable_heartbeat_pause",
        "first_heartbeat_estimate",
        "max_sample_size",
        "min_std_deviation",
        "threshold",
    )

    def __init__(
        self,
        threshold: float = 8.0,
        max_sample_size: int = 200,
        min_std_deviation: float = 0.1,
        acceptable_heartbeat_pause: float = 2.0,
        first_heartbeat_estimate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        if max_sample_size < 1:
            raise ValueError(f"max_sample_size must be at least 1, got {max_sample_size!r}")
        if min_std_deviation <= 0:
            raise ValueError(f"min_std_deviation must be positive, got {min_std_deviation!r}")
        if acceptable_heartbeat_pause < 0:
            raise ValueError(f"acceptable_heartbeat_pause must not be negative, got {acceptable_heartbeat_pause!r}")
        if first_heartbeat_estimate <= 0:
            raise ValueError(f"first_heartbeat_estimate must be positive, got {first_heartbeat_estimate!r}")
        self.threshold = threshold
        self.max_sample_size = max_sample_size
        self.min_std_deviation = min_std_deviation
        self.acceptable_heartbeat_pause = acceptable_heartbeat_pause
        self.first_heartbeat_estimate = first_heartbeat_estimate
        self._clock = clock
        self._intervals: deque[float] = deque()
        self._sum = 0.0
        self._sum_sq = 0.0
        self._last: float | None = None

    @property
    def is_monitoring(self) -> bool:
        """True once the first heartbeat has arrived."""
        return self._last is not None

    @property
    def sample_count(self) -> int:
        """Number of inter-arrival intervals currently in the window."""
        return len(self._intervals)

    @property
    def mean(self) -> float:
        """Mean of the sampled intervals, in seconds (0 before the first heartbeat)."""
        n = len(self._intervals)
        return self._sum / n if n else 0.0

    @property
    def std_deviation(self) -> float:
        """Standard deviation of the sampled intervals, in seconds (not yet floored)."""
        n = len(self._intervals)
        if not n:
            return 0.0
        mean = self._sum / n
        variance = self._sum_sq / n - mean * mean
        return math.sqrt(variance) if variance > 0.0 else 0.0

    def _add(self, interval: float) -> None:
        if len(self._intervals) >= self.max_sample_size:
            dropped = self._intervals.popleft()
            self._sum -= dropped
            self._sum_sq -= dropped * dropped
        self._intervals.append(interval)
        self._sum += interval
        self._sum_sq += interval * interval

    def heartbeat(self) -> None:
        """Record that a heartbeat arrived now."""
        now = self._clock()
        last = self._last
        if last is None:
            # Seed the window with two samples around the estimate: mean = estimate,
            # standard deviation = estimate / 4.
            estimate = self.first_heartbeat_estimate
            spread = estimate / 4.0
            self._add(estimate - spread)
            self._add(estimate + spread)
        elif self._phi_at(now, last) < self.threshold:
            self._add(max(0.0, now - last))
        self._last = now

    def _phi_at(self, now: float, last: float) -> float:
        std = max(self.std_deviation, self.min_std_deviation)
        mean = self.mean + self.acceptable_heartbeat_pause
        return _phi(max(0.0, now - last), mean, std)

    def phi(self) -> float:
        """Current suspicion level; 0 before the first heartbeat."""
        last = self._last
        if last is None:
            return 0.0
        return self._phi_at(self._clock(), last)

    def is_available(self) -> bool:
        """``phi() < threshold``; always true before the first heartbeat."""
        return self.phi() < self.threshold

    def reset(self) -> None:
        """Forget all heartbeats, as if newly created."""
        self._intervals.clear()
        self._sum = 0.0
        self._sum_sq = 0.0
        self._last = None

    def __repr__(self) -> str:
        return (
            f"PhiAccrualFailureDetector(phi={self.phi():.3f}, threshold={self.threshold}, "
            f"samples={len(self._intervals)})"
        )


class FailureDetectorRegistry:
    """One :class:`PhiAccrualFailureDetector` per monitored node, created on its first heartbeat.

    A node that was never heard from (or was removed) is reported available with
    phi 0: the registry only judges members it has started to monitor.
    """

    __slots__ = ("_detectors", "_factory")

    def __init__(self, factory: Callable[[], PhiAccrualFailureDetector] | None = None) -> None:
        self._factory: Callable[[], PhiAccrualFailureDetector] = factory or PhiAccrualFailureDetector
        self._detectors: dict[NodeAddress, PhiAccrualFailureDetector] = {}

    @classmethod
    def from_config(
        cls,
        config: FailureDetectorConfig,
        first_heartbeat_estimate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> FailureDetectorRegistry:
        """A registry whose detectors use ``[cluster.failure_detector]`` settings.

        ``first_heartbeat_estimate`` is normally ``cluster.heartbeat.interval``."""

        def make() -> PhiAccrualFailureDetector:
            return PhiAccrualFailureDetector(
                threshold=config.threshold,
                max_sample_size=config.max_sample_size,
                min_std_deviation=config.min_std_deviation,
                acceptable_heartbeat_pause=config.acceptable_heartbeat_pause,
                first_heartbeat_estimate=first_heartbeat_estimate,
                clock=clock,
            )

        return cls(make)

    def heartbeat(self, node: NodeAddress) -> None:
        """Record a heartbeat from ``node``, starting to monitor it if needed."""
        detector = self._detectors.get(node)
        if detector is None:
            detector = self._detectors[node] = self._factory()
        detector.heartbeat()

    def is_available(self, node: NodeAddress) -> bool:
        """False only for a monitored node whose phi reached the threshold."""
        detector = self._detectors.get(node)
        return True if detector is None else detector.is_available()

    def phi(self, node: NodeAddress) -> float:
        """Suspicion level of ``node``; 0 when it is not monitored."""
        detector = self._detectors.get(node)
        return 0.0 if detector is None else detector.phi()

    def is_monitoring(self, node: NodeAddress) -> bool:
        """True once a heartbeat from ``node`` has been recorded (and not removed)."""
        detector = self._detectors.get(node)
        return detector is not None and detector.is_monitoring

    def remove(self, node: NodeAddress) -> None:
        """Stop monitoring ``node`` (a later heartbeat starts afresh)."""
        self._detectors.pop(node, None)

    def reset(self) -> None:
        """Stop monitoring every node."""
        self._detectors.clear()

    def get(self, node: NodeAddress) -> PhiAccrualFailureDetector | None:
        """The detector of ``node``, if it is monitored."""
        return self._detectors.get(node)

    def __contains__(self, node: object) -> bool:
        return node in self._detectors

    def __iter__(self) -> Iterator[NodeAddress]:
        return iter(list(self._detectors))

    def __len__(self) -> int:
        return len(self._detectors)
