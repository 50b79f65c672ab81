"""The monitoring client of the sensor pipeline: joins nothing, consumes every sensor stream,
detects readings over threshold and streams ``Alert``s back to the cluster's alert monitor.

    python client.py --contact node-1:25520 --producers 3

Prints a ``SUMMARY {json}`` line at the end; with ``--live`` it also prints the rate of
received readings every second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from messages import (
    ALERT_MONITOR_KEY,
    GREEN,
    MAGENTA,
    RESET,
    SENSOR_KEY,
    THRESHOLDS,
    Alert,
    ConsumeAlerts,
    SensorReading,
)

import casty
from casty import (
    ClusterClient,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    stream_consumer,
    stream_producer,
)

log = logging.getLogger("client")


class Stats:
    def __init__(self) -> None:
        self.readings: dict[str, int] = {}
        self.total = 0
        self.alerts = 0


async def consume_sensor(source: SourceRef[SensorReading], alert_sink: SinkRef[Alert], label: str, stats: Stats) -> int:
    count = 0
    async for reading in source:
        count += 1
        stats.total += 1
        stats.readings[reading.sensor] = stats.readings.get(reading.sensor, 0) + 1
        threshold = THRESHOLDS[reading.sensor]
        if reading.value > threshold:
            stats.alerts += 1
            await alert_sink.put(
                Alert(sensor=reading.sensor, value=reading.value, threshold=threshold, timestamp=reading.timestamp)
            )
    log.info("%s%s%s: stream complete after %d readings", GREEN, label, RESET, count)
    return count


async def report_rate(stats: Stats) -> None:
    last, last_alerts, last_t = 0, 0, time.perf_counter()
    while True:
        await asyncio.sleep(1.0)
        now = time.perf_counter()
        rate = (stats.total - last) / (now - last_t)
        alert_rate = (stats.alerts - last_alerts) / (now - last_t)
        last, last_alerts, last_t = stats.total, stats.alerts, now
        print(
            f"RATE {rate:,.0f} readings/s, {alert_rate:,.0f} alerts/s  "
            f"(total {stats.total:,} readings, {stats.alerts:,} alerts)",
            flush=True,
        )


async def main(args: argparse.Namespace) -> int:
    host, _, port = args.contact.rpartition(":")
    stats = Stats()
    started = time.perf_counter()
    async with ClusterClient(contact_points=[(host, int(port))], system_name=args.system, connect_timeout=60) as client:
        listing = await client.wait_for_service(SENSOR_KEY, timeout=60, count=args.producers)
        producers = listing.instances
        log.info("found %d sensor producers", len(producers))

        # -- Spawn local alert producer and get its SinkRef --
        alert_producer = client.spawn(stream_producer(), "alert-producer")
        alert_sink: SinkRef[Alert] = await client.ask(alert_producer, lambda r: GetSink(reply_to=r), timeout=5.0)

        # -- Discover alert monitor (with retries) --
        for attempt in range(15):
            monitor_listing = client.lookup(ALERT_MONITOR_KEY)
            if monitor_listing and monitor_listing.instances:
                monitor_ref = next(iter(monitor_listing.instances)).ref
                monitor_ref.tell(ConsumeAlerts(producer=alert_producer))
                log.info("%sAlert monitor%s connected", MAGENTA, RESET)
                break
            log.info(
                "Alert monitor not found yet (attempt %d/15), retrying ...",
                attempt + 1,
            )
            await asyncio.sleep(2.0)
        else:
            log.warning("No alert monitor found after 15 attempts")

        tasks: list[asyncio.Task[int]] = []
        for i, instance in enumerate(producers):
            producer_ref = instance.ref
            consumer_name = f"sensor-consumer-{i}"

            consumer_ref = client.spawn(
                stream_consumer(producer_ref, timeout=10.0),
                consumer_name,
            )
            source: SourceRef[SensorReading] = await client.ask(
                consumer_ref, lambda r: GetSource(reply_to=r), timeout=5.0
            )

            node_host = instance.node.host if instance.node else "unknown"
            node_port = instance.node.port if instance.node else 0
            sensor_label = f"sensor@{node_host}:{node_port}"

            task = asyncio.create_task(consume_sensor(source, alert_sink, sensor_label, stats))
            tasks.append(task)

        reporter = asyncio.create_task(report_rate(stats)) if args.live else None
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if reporter is not None:
            reporter.cancel()
            seconds = time.perf_counter() - started
            print(
                f"RATE overall {stats.total / seconds:,.0f} readings/s  "
                f"(total {stats.total:,} readings, {stats.alerts:,} alerts in {seconds:.1f}s)",
                flush=True,
            )
        await alert_sink.complete()
        # stay until the monitor has taken every alert (the alert stream completes)
        try:
            await client.wait_terminated(alert_producer, timeout=30.0)
        except TimeoutError:
            log.warning("the alert stream was not fully consumed within 30s")
    elapsed = time.perf_counter() - started
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    summary: dict[str, Any] = {
        "readings": stats.readings,
        "total": stats.total,
        "alerts_sent": stats.alerts,
        "errors": errors,
        "seconds": round(elapsed, 2),
    }
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 1 if errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contact", default="127.0.0.1:25520", help="a cluster node, host:port")
    parser.add_argument("--producers", type=int, default=3, help="sensor producers to wait for")
    parser.add_argument("--system", default="sensor-pipeline", help="the cluster's system name")
    parser.add_argument("--live", action="store_true", help="print the receive rate every second")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise SystemExit(casty.run(main(parse_args())))
