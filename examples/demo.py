"""Local demo: three sensor actors push readings to a monitor actor, which counts them and
raises alerts over a threshold. Prints a summary and exits 0 when every reading arrived.

    python examples/demo.py [--readings N]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from typing import Any

import casty
from casty import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors

THRESHOLDS = {"temp": 30.0, "humidity": 80.0, "pressure": 1030.0}
RANGES = {"temp": (15.0, 35.0), "humidity": (30.0, 90.0), "pressure": (990.0, 1040.0)}


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    value: float
    timestamp: float
    node: str


@dataclass(frozen=True)
class Summary:
    reply_to: ActorRef[dict[str, Any]]


def monitor() -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        counts: dict[str, int] = {}
        alerts = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal alerts
            if isinstance(msg, SensorReading):
                counts[msg.sensor] = counts.get(msg.sensor, 0) + 1
                if msg.value > THRESHOLDS[msg.sensor]:
                    alerts += 1
            elif isinstance(msg, Summary):
                msg.reply_to.tell({"readings": dict(counts), "alerts": alerts})

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def main(readings: int) -> int:
    async with ActorSystem("demo") as system:
        mon = system.spawn(monitor(), "monitor")
        start = time.perf_counter()
        for _ in range(readings):
            for sensor, (lo, hi) in RANGES.items():
                mon.tell(SensorReading(sensor, round(random.uniform(lo, hi), 2), time.time(), "local"))
        summary = await system.ask(mon, lambda r: Summary(r), timeout=30)
        elapsed = time.perf_counter() - start
    total = sum(summary["readings"].values())
    print(f"implementation: {casty.IMPLEMENTATION}")
    for sensor, count in sorted(summary["readings"].items()):
        print(f"  {sensor:<9} {count} readings")
    print(f"  alerts    {summary['alerts']}")
    print(f"  {total} readings in {elapsed:.3f}s ({total / elapsed:,.0f}/s)")
    return 0 if total == readings * len(RANGES) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=100_000)
    raise SystemExit(casty.run(main(parser.parse_args().readings)))
