"""Small counters the runtime keeps for its statistics: dead-letter reasons and ask latencies.

Both are updated off the element path: a dead letter is already the slow path, an ask costs
one clock read and one bisection of a short sorted tuple.
"""

from __future__ import annotations

import bisect

__all__ = ["ASK_BUCKETS", "AskLatency", "dead_letter_kind"]

#: upper bounds, in seconds, of the ask latency histogram's buckets (the last is +Inf)
ASK_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# (substring of the reason, kind) in the order they are tried; the reason texts are the
# runtime's own, so a short fixed set of kinds keeps metric labels bounded
_KINDS: tuple[tuple[str, str], ...] = (
    ("mailbox full", "mailbox_full"),
    ("actor stopped", "actor_stopped"),
    ("no actor at", "no_actor"),
    ("outbound queue", "outbound_queue_full"),
    ("is gone", "peer_gone"),
    ("not sent", "not_sent"),
    ("ask already completed", "ask_expired"),
    ("accepts", "unsupported_message"),
)


def dead_letter_kind(reason: str) -> str:
    """The bounded category of a dead letter's free-text reason (``other`` when none fits)."""
    for needle, kind in _KINDS:
        if needle in reason:
            return kind
    return "other"


class AskLatency:
    """A cumulative histogram of ask round trips (answered asks only; timeouts are counted apart)."""

    __slots__ = ("buckets", "count", "sum", "timeouts")

    def __init__(self) -> None:
        self.buckets = [0] * (len(ASK_BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0
        self.timeouts = 0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(ASK_BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus writes them, ``+Inf`` last."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip((*ASK_BUCKETS, float("inf")), self.buckets, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out
