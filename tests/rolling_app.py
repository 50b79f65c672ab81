"""A sensor node for the rolling-replacement test: ``python -m tests.rolling_node --records FILE
--config FILE [--versions LOW,HIGH]``.

It finds its cluster by DNS discovery (the records are the lines of ``--records``, see
:class:`tests.discovery_app.FileResolver`; host, port and the discovery knobs come from
``CASTY_*`` variables), and once up feeds the ints 0, 1, 2... into a discoverable stream
producer named after its incarnation, about two thousand a second. ``--versions`` makes it
speak another range of protocol versions, as another release would. Under ``casty.run`` a
SIGTERM drains it; when ``main`` ends it prints ``{"accepted": n, "producer": path}``.
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


def emit(**line: Any) -> None:
    print(json.dumps(line), flush=True)


async def run(args: argparse.Namespace) -> None:
    if args.versions:
        low, high = (int(v) for v in args.versions.split(","))
        casty.remote.transport.MIN_PROTOCOL_VERSION = low
        casty.remote.transport.PROTOCOL_VERSION = high
    config = casty.load_config(args.config)
    system = ClusteredActorSystem.from_config(config, resolver=FileResolver(args.records))
    accepted = 0
    path = ""

    async def feed(sink: SinkRef[int]) -> None:
        nonlocal accepted
        with contextlib.suppress(StreamCancelled):  # DrainingError too
            while True:
                await sink.put(accepted)
                accepted += 1
                if accepted % 4 == 0:
                    await asyncio.sleep(0.002)

    try:
        async with system:
            await system.wait_for(args.wait, timeout=60)  # the whole cluster is up
            name = f"readings-{system.self_member.uid:x}"
            producer = system.spawn(Behaviors.discoverable(stream_producer(), key=READINGS), name)
            path = str(producer)
            sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
            assert system.transport is not None
            emit(node=str(system.self_node), producer=path, versions=list(system.transport.protocol_versions))
            feeding = asyncio.ensure_future(feed(sink))
            try:
                await asyncio.Event().wait()
            finally:
                feeding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeding
    finally:
        emit(accepted=accepted, producer=path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--versions", default="")
    parser.add_argument("--wait", type=int, default=3, help="members up before producing")
    casty.run(run(parser.parse_args()))
