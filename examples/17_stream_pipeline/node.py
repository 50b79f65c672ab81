"""A cluster node of the sensor pipeline.

It joins the cluster, waits until ``--nodes`` members are up, streams ``--readings`` readings of
its ``--sensor`` through a discoverable ``stream_producer``, and with ``--alert-monitor`` also
consumes the alert streams that clients push back. On SIGTERM/SIGINT it drains (its stream
delivers what it accepted and completes, the node leaves the cluster) and prints a
``SUMMARY {json}`` line.

    python node.py --port 25520 --host auto --bind-host 0.0.0.0 --seed node-1:25520 --nodes 3 --sensor temp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from messages import (
    ALERT_MONITOR_KEY,
    MAGENTA,
    RANGES,
    RED,
    RESET,
    SENSOR_KEY,
    YELLOW,
    Alert,
    ConsumeAlerts,
    SensorReading,
)

import casty
from casty import (
    ActorContext,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    DrainingError,
    GetSink,
    GetSource,
    SinkRef,
    SourceRef,
    StreamCancelled,
    StreamFailed,
    load_config,
    stream_consumer,
    stream_producer,
)

log = logging.getLogger("node")


def resolve_host(host: str) -> str:
    """``auto``: this machine's (container's) own address; anything else as given."""
    if host == "auto":
        return socket.gethostbyname(socket.gethostname())
    return host


def resolve_seed(seed: str) -> tuple[str, int]:
    host, _, port = seed.rpartition(":")
    try:
        host = socket.gethostbyname(host)
    except OSError:
        pass
    return host, int(port)


class Monitor:
    """Counts the alerts received from every alert stream a client pushes to this node."""

    def __init__(self, system: ClusteredActorSystem) -> None:
        self.system = system
        self.alerts = 0
        self.streams = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def behavior(self) -> Behavior[ConsumeAlerts]:
        async def receive(ctx: ActorContext[ConsumeAlerts], msg: ConsumeAlerts) -> None:
            task = asyncio.get_running_loop().create_task(self.consume(msg))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        return Behaviors.receive(receive)

    async def consume(self, msg: ConsumeAlerts) -> None:
        system = self.system
        producer_ref = msg.producer
        self.streams += 1
        consumer = system.spawn(stream_consumer(producer_ref, timeout=30.0), f"alert-consumer-{self.streams}")
        source: SourceRef[Alert] = await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)

        count = 0
        try:
            async for alert in source:
                count += 1
                self.alerts += 1
                log.warning(
                    "%sALERT #%d%s  sensor=%s%s%s  value=%.1f  threshold=%.1f",
                    RED,
                    count,
                    RESET,
                    YELLOW,
                    alert.sensor,
                    RESET,
                    alert.value,
                    alert.threshold,
                )
        except (StreamFailed, TimeoutError) as exc:
            log.error("alert stream ended with an error: %s", exc)
        log.info("%salert stream complete%s: %d alerts", MAGENTA, RESET, count)


async def produce(system: ClusteredActorSystem, sensor: str, readings: int, interval: float, node_name: str) -> int:
    producer_ref = system.spawn(
        Behaviors.discoverable(stream_producer(), key=SENSOR_KEY),
        f"sensor-{sensor}",
    )
    sink: SinkRef[SensorReading] = await system.ask(producer_ref, lambda r: GetSink(reply_to=r), timeout=5.0)
    lo, hi = RANGES[sensor]
    sent = 0
    try:
        for _ in range(readings):
            value = round(random.uniform(lo, hi), 2)
            reading = SensorReading(
                sensor=sensor,
                value=value,
                timestamp=time.time(),
                node=node_name,
            )
            await sink.put(reading)
            sent += 1
            if interval > 0:
                await asyncio.sleep(interval)
        await sink.complete()
        log.info("%s: %d readings produced, stream completed", sensor, sent)
    except DrainingError:
        log.info("%s: the node drains: %d readings produced and delivered, stream completed", sensor, sent)
    except StreamCancelled as exc:
        log.warning("%s: the consumer went away after %d readings (%s)", sensor, sent, exc)
    return sent


async def main(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    host = resolve_host(args.host) if args.host else None
    seeds = [resolve_seed(s) for s in args.seed]
    if config is None:
        config = casty.CastyConfig()
    system = ClusteredActorSystem.from_config(
        config,
        host=host,
        port=args.port,
        node_id=args.sensor or "monitor",
        seed_nodes=seeds or None,
        bind_host=args.bind_host or None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    produced = 0
    async with system:
        node_name = str(system.self_node)
        monitor: Monitor | None = None
        if args.alert_monitor:
            monitor = Monitor(system)
            system.spawn(Behaviors.discoverable(monitor.behavior(), key=ALERT_MONITOR_KEY), "alert-monitor")
        await system.wait_for(args.nodes, timeout=120)
        log.info("%s%s is up with %d members%s", MAGENTA, node_name, args.nodes, RESET)
        print(json.dumps({"ready": True, "port": system.port}), flush=True)
        producing: asyncio.Task[int] | None = None
        if args.sensor:
            producing = asyncio.create_task(produce(system, args.sensor, args.readings, args.interval, node_name))
        await stop.wait()
        # drain: the stream delivers the readings it accepted and completes, the node leaves
        drain_time = await system.drain()
        log.info("drained in %.2fs", drain_time)
        if producing is not None:
            if producing.done():
                produced = producing.result()
            else:
                producing.cancel()
        summary: dict[str, Any] = {"node": node_name, "sensor": args.sensor, "produced": produced}
        if monitor is not None:
            summary["alerts"] = monitor.alerts
            summary["alert_streams"] = monitor.streams
        print("SUMMARY " + json.dumps(summary), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=None, help="cluster port (default: from the configuration)")
    parser.add_argument(
        "--host", default=None, help="advertised address; 'auto' = this machine's (default: from the configuration)"
    )
    parser.add_argument("--bind-host", default="", help="interface to listen on (default: --host)")
    parser.add_argument(
        "--seed", action="append", default=[], help="seed node host:port (repeatable; default: from the configuration)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="members to wait for before producing")
    parser.add_argument("--sensor", choices=sorted(RANGES), default=None)
    parser.add_argument("--alert-monitor", action="store_true")
    parser.add_argument("--readings", type=int, default=20, help="readings to produce")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between readings")
    parser.add_argument("--config", default=str(Path(__file__).with_name("casty.toml")))
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise SystemExit(casty.run(main(parse_args())))
