"""The sensor pipeline of casty 0.21's "Reactive Streams over the Network" guide, written the
way that release's users wrote it (constructors, keyword arguments, ``client.lookup`` in a
retry loop), for ``test_pipeline_021``.

    python -m tests.compat.pipeline_app node --port P --seed host:P1 --nodes 3 --sensor temp \
        --node-id node-1 --config casty.toml [--alert-monitor]
    python -m tests.compat.pipeline_app client --contact host:P1 --producers 3

A node prints ``{"port": ...}`` once ``required_quorum`` members are up, then produces
``READINGS`` readings (values 0, 1, 2, ...) and stays until stdin closes or SIGTERM. The
client prints one JSON summary line when it is done: the values it received per sensor, the
alerts it sent and the alerts the monitor node received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casty
from casty import (
    ActorRef,
    Behavior,
    Behaviors,
    ClusterClient,
    ClusteredActorSystem,
    GetSink,
    GetSource,
    ServiceKey,
    SinkRef,
    SourceRef,
    StreamProducerMsg,
    load_config,
    stream_consumer,
    stream_producer,
)
from tests.remote_app import _wait_for_exit

log = logging.getLogger("pipeline")

READINGS = 20
THRESHOLD = 14.5
"""Readings 15..19 of every sensor are over the threshold: 5 alerts per sensor."""


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    value: float
    timestamp: float
    node: str


@dataclass(frozen=True)
class Alert:
    sensor: str
    value: float
    threshold: float
    timestamp: float


@dataclass(frozen=True)
class ConsumeAlerts:
    producer: ActorRef[StreamProducerMsg[Alert]]


@dataclass(frozen=True)
class AlertsDone:
    """Ask the monitor how many alerts it received; answered once the alert stream completed."""

    reply_to: ActorRef[int]


@dataclass(frozen=True)
class AlertStreamFinished:
    count: int


MonitorMsg = ConsumeAlerts | AlertsDone | AlertStreamFinished

SENSOR_KEY: ServiceKey[StreamProducerMsg[SensorReading]] = ServiceKey("sensor")
ALERT_MONITOR_KEY: ServiceKey[MonitorMsg] = ServiceKey("alert-monitor")


def alert_monitor(requests: asyncio.Queue[ActorRef[StreamProducerMsg[Alert]]]) -> Behavior[MonitorMsg]:
    def monitoring(received: int | None, waiting: tuple[ActorRef[int], ...]) -> Behavior[MonitorMsg]:
        async def receive(ctx: Any, msg: MonitorMsg) -> Behavior[MonitorMsg]:
            match msg:
                case ConsumeAlerts(producer=producer):
                    requests.put_nowait(producer)
                    return Behaviors.same()
                case AlertsDone(reply_to=reply_to):
                    if received is not None:
                        reply_to.tell(received)
                        return Behaviors.same()
                    return monitoring(None, (*waiting, reply_to))
                case AlertStreamFinished(count=count):
                    for reply_to in waiting:
                        reply_to.tell(count)
                    return monitoring(count, ())
            return Behaviors.same()

        return Behaviors.receive(receive)

    return monitoring(None, ())


async def produce(sink: SinkRef[SensorReading], sensor: str, node_name: str) -> None:
    for i in range(READINGS):
        reading = SensorReading(sensor=sensor, value=float(i), timestamp=time.time(), node=node_name)
        await sink.put(reading)
    await sink.complete()


async def consume_alerts(
    system: ClusteredActorSystem,
    monitor: ActorRef[MonitorMsg],
    requests: asyncio.Queue[ActorRef[StreamProducerMsg[Alert]]],
) -> None:
    producer_ref = await requests.get()
    consumer = system.spawn(stream_consumer(producer_ref, timeout=30.0), "alert-consumer")
    source: SourceRef[Alert] = await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)
    count = 0
    async for alert in source:
        count += 1
        log.warning("ALERT #%d sensor=%s value=%.1f threshold=%.1f", count, alert.sensor, alert.value, alert.threshold)
    monitor.tell(AlertStreamFinished(count))


async def run_node(args: argparse.Namespace) -> None:
    config = load_config(Path(args.config)) if args.config else load_config()
    seed_host, _, seed_port = args.seed.rpartition(":")
    async with ClusteredActorSystem(
        name="sensors",
        host="127.0.0.1",
        port=args.port,
        node_id=args.node_id,
        seed_nodes=[(seed_host, int(seed_port))],
        config=config,
        required_quorum=args.nodes,
    ) as system:
        producer_ref = system.spawn(
            Behaviors.discoverable(stream_producer(), key=SENSOR_KEY),
            f"sensor-{args.sensor}",
        )
        sink: SinkRef[SensorReading] = await system.ask(producer_ref, lambda r: GetSink(reply_to=r), timeout=5.0)
        tasks = [asyncio.create_task(produce(sink, args.sensor, args.node_id))]
        if args.alert_monitor:
            requests: asyncio.Queue[ActorRef[StreamProducerMsg[Alert]]] = asyncio.Queue()
            monitor = system.spawn(
                Behaviors.discoverable(alert_monitor(requests), key=ALERT_MONITOR_KEY), "alert-monitor"
            )
            tasks.append(asyncio.create_task(consume_alerts(system, monitor, requests)))
        state = await system.get_cluster_state()
        print(json.dumps({"port": system.port, "members": sorted(m.id for m in state.members)}), flush=True)
        await _wait_for_exit()
        for task in tasks:
            task.cancel()


async def consume_sensor(
    source: SourceRef[SensorReading], alert_sink: SinkRef[Alert], values: list[float], sent: list[Alert]
) -> None:
    async for reading in source:
        values.append(reading.value)
        if reading.value > THRESHOLD:
            alert = Alert(sensor=reading.sensor, value=reading.value, threshold=THRESHOLD, timestamp=time.time())
            sent.append(alert)
            await alert_sink.put(alert)


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    host, _, port = args.contact.rpartition(":")
    async with ClusterClient(
        contact_points=[(host, int(port))],
        system_name="sensors",
        client_host="127.0.0.1",
        client_port=0,
    ) as client:
        producers: list[Any] = []
        for _attempt in range(60):
            listing = client.lookup(SENSOR_KEY)
            if listing and len(listing.instances) >= args.producers:
                producers = sorted(listing.instances, key=lambda i: i.ref.path)
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"found fewer than {args.producers} sensor producers")

        # -- Spawn local alert producer and get its SinkRef --
        alert_producer = client.spawn(stream_producer(), "alert-producer")
        alert_sink: SinkRef[Alert] = await client.ask(alert_producer, lambda r: GetSink(reply_to=r), timeout=5.0)

        # -- Discover alert monitor (with retries) --
        monitor_ref = None
        for attempt in range(15):
            monitor_listing = client.lookup(ALERT_MONITOR_KEY)
            if monitor_listing and monitor_listing.instances:
                monitor_ref = next(iter(monitor_listing.instances)).ref
                monitor_ref.tell(ConsumeAlerts(producer=alert_producer))
                log.info("Alert monitor connected")
                break
            log.info("Alert monitor not found yet (attempt %d/15), retrying ...", attempt + 1)
            await asyncio.sleep(1.0)
        else:
            raise RuntimeError("no alert monitor found after 15 attempts")

        received: dict[str, list[float]] = {}
        sent: list[Alert] = []
        tasks = []
        for i, instance in enumerate(producers):
            consumer_ref = client.spawn(stream_consumer(instance.ref, timeout=10.0), f"sensor-consumer-{i}")
            source: SourceRef[SensorReading] = await client.ask(
                consumer_ref, lambda r: GetSource(reply_to=r), timeout=5.0
            )
            sensor = instance.ref.path.rsplit("sensor-", 1)[-1]
            tasks.append(asyncio.create_task(consume_sensor(source, alert_sink, received.setdefault(sensor, []), sent)))
        await asyncio.gather(*tasks)
        await alert_sink.complete()
        alerts_received = await client.ask(monitor_ref, lambda r: AlertsDone(reply_to=r), timeout=60.0)
    return {"readings": received, "alerts_sent": len(sent), "alerts_received": alerts_received}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    node = sub.add_parser("node")
    node.add_argument("--port", type=int, required=True)
    node.add_argument("--seed", required=True)
    node.add_argument("--nodes", type=int, default=3)
    node.add_argument("--sensor", required=True)
    node.add_argument("--node-id", required=True)
    node.add_argument("--config", default=None)
    node.add_argument("--alert-monitor", action="store_true")
    client = sub.add_parser("client")
    client.add_argument("--contact", required=True)
    client.add_argument("--producers", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.role == "node":
        casty.run(run_node(args))
    else:
        summary = casty.run(run_client(args))
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
