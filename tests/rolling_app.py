"""A sensor node for the rolling-replacement test: ``python -m tests.rolling_node --records FILE
--config FILE [--versions LOW,HIGH] [--schema v1|v2]``.

It finds its cluster by DNS discovery (the records are the lines of ``--records``, see
:class:`tests.discovery_app.FileResolver`; host, port and the discovery knobs come from
``CASTY_*`` variables), and once up feeds the ints 0, 1, 2... into a discoverable stream
producer named after its incarnation, about two thousand a second. ``--versions`` makes it
speak another range of protocol versions, as another release would. ``--schema`` makes it feed
``SensorReading`` records of that release instead of ints (reading ``n`` has ``seq`` n), to one
producer per reader of :mod:`tests.sensor_schema` (a stream has one subscriber), each under its
reader's key; ``producer`` and ``accepted`` are then maps by reader. Under ``casty.run`` a SIGTERM drains it; when ``main`` ends it prints
``{"accepted": n, "producer": path}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import casty
import casty.remote.transport
from casty import Behaviors, ClusteredActorSystem, GetSink, SinkRef, StreamCancelled, stream_producer
from tests.discovery_app import FileResolver
from tests.drain_app import READINGS
from tests.sensor_schema import READERS, SCHEMAS, reader_key, reading, serializer


def emit(**line: Any) -> None:
    print(json.dumps(line), flush=True)


async def run(args: argparse.Namespace) -> None:
    if args.versions:
        low, high = (int(v) for v in args.versions.split(","))
        casty.remote.transport.MIN_PROTOCOL_VERSION = low
        casty.remote.transport.PROTOCOL_VERSION = high
    config = casty.load_config(args.config)
    schema = args.schema
    system = ClusteredActorSystem.from_config(
        config, resolver=FileResolver(args.records), serializer=serializer(schema) if schema else None
    )
    # int mode: one producer under READINGS; schema mode: one per reader (a stream has one subscriber)
    keys = {reader: reader_key(reader) for reader in READERS} if schema else {"": READINGS}
    accepted = dict.fromkeys(keys, 0)
    paths = dict.fromkeys(keys, "")

    async def feed(reader: str, sink: SinkRef[Any]) -> None:
        sensor = str(system.self_node)
        with contextlib.suppress(StreamCancelled):  # DrainingError too
            while True:
                n = accepted[reader]
                await sink.put(reading(schema, sensor, n) if schema else n)
                accepted[reader] = n + 1
                if (n + 1) % 4 == 0:
                    await asyncio.sleep(0.002)

    try:
        async with system:
            await system.wait_for(args.wait, timeout=60)  # the whole cluster is up
            sinks: dict[str, SinkRef[Any]] = {}
            for reader, key in keys.items():
                name = f"readings-{reader + '-' if reader else ''}{system.self_member.uid:x}"
                producer = system.spawn(Behaviors.discoverable(stream_producer(), key=key), name)
                paths[reader] = str(producer)
                sinks[reader] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
            assert system.transport is not None
            versions = list(system.transport.protocol_versions)
            producers: Any = paths if schema else paths[""]
            emit(node=str(system.self_node), producer=producers, versions=versions, schema=schema)
            feeding = [asyncio.ensure_future(feed(reader, sink)) for reader, sink in sinks.items()]
            try:
                await asyncio.Event().wait()
            finally:
                for task in feeding:
                    task.cancel()
                for task in feeding:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        if schema:
            emit(accepted=accepted, producer=paths)
        else:
            emit(accepted=accepted[""], producer=paths[""])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--versions", default="")
    parser.add_argument("--schema", choices=SCHEMAS, default=None, help="feed SensorReading records of this release")
    parser.add_argument("--wait", type=int, default=3, help="members up before producing")
    casty.run(run(parser.parse_args()))
