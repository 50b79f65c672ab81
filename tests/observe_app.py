"""A cluster node program for the observability tests: ``python -m tests.observe_node ...``.

It joins through ``--seed`` (none: it forms the cluster) with the cluster secret read from
``--secret-file``, serves ``/metrics``, ``/alive`` and ``/ready`` on ``--metrics-port``, and
with ``--produce N`` offers a stream of the ints ``0 .. N-1`` under ``NUMBERS_KEY`` (the
producer completes once they are all accepted; its SinkRef is kept, so its figures stay
visible after it completed). It prints a JSON ready line once it runs, and reads commands on
stdin: ``leave`` leaves the cluster and stays running (answering ``{"left": true}``).
Every node offers a service under ``OBSERVED_KEY`` for its whole life. ``--bind-port`` makes it listen on that port while it advertises ``--port`` (a proxy in front
of it); the ready line then carries ``bind_port``. When the system shuts down by itself (downed,
or on the minority side of a partition) it prints ``{"terminated": true}`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

import casty
from casty import Behaviors, ClusteredActorSystem, GetSink, Register, ServiceKey, SinkRef, stream_producer

NUMBERS_KEY: ServiceKey[Any] = ServiceKey("numbers")
#: a service every node offers for its whole life
OBSERVED_KEY: ServiceKey[Any] = ServiceKey("observed")

#: SinkRefs kept for the life of the process
_sinks: list[SinkRef[int]] = []


def observe_config(name: str, secret_file: str, metrics_port: int, min_members: int, down_after: float) -> casty.CastyConfig:
    return casty.CastyConfig.from_dict(
        {
            "system": {"name": name},
            "security": {"secret_file": secret_file},
            "metrics": {"port": metrics_port},
            "cluster": {
                "min_members": min_members,
                "down_after": down_after,
                "retry_join_interval": 0.2,
                "gossip": {"interval": 0.2},
                "heartbeat": {"interval": 0.2, "availability_check_interval": 0.2},
                "failure_detector": {"threshold": 8.0, "acceptable_heartbeat_pause": 0.6},
            },
            "remote": {"reconnect_backoff_max": 0.3},
        }
    )


async def produce(system: ClusteredActorSystem, count: int) -> None:
    ref = system.spawn(stream_producer(), "numbers")
    sink: SinkRef[int] = await system.ask(ref, lambda r: GetSink(r), timeout=10)
    _sinks.append(sink)
    system.receptionist.tell(Register(NUMBERS_KEY, ref))
    for i in range(count):
        await sink.put(i)
    await sink.complete()


async def commands(system: ClusteredActorSystem, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"leave":
            await system.leave()
            print(json.dumps({"left": True}), flush=True)
    stop.set()


async def run(args: argparse.Namespace) -> None:
    config = observe_config(args.name, args.secret_file, args.metrics_port, args.min_members, args.down_after)
    seeds = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in args.seed)]
    system = ClusteredActorSystem(
        name=args.name, host="127.0.0.1", port=args.port, seed_nodes=seeds, config=config, bind_port=args.bind_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    async with system:
        ready: dict[str, Any] = {"port": system.port}
        if args.bind_port is not None and system.transport is not None:
            ready["bind_port"] = system.transport.bind_port
        system.spawn(Behaviors.discoverable(Behaviors.ignore(), key=OBSERVED_KEY), "observed")
        print(json.dumps(ready), flush=True)
        tasks.append(asyncio.create_task(commands(system, stop)))
        if args.produce:
            tasks.append(asyncio.create_task(produce(system, args.produce)))
        ended = asyncio.ensure_future(system.wait_for_termination())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
        terminated = ended.done()
        for task in (*tasks, ended, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if terminated:
        print(json.dumps({"terminated": True}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="observed")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind-port", type=int, default=None)
    parser.add_argument("--seed", action="append", default=[])
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--min-members", type=int, default=1)
    parser.add_argument("--down-after", type=float, default=10.0)
    parser.add_argument("--produce", type=int, default=0)
    casty.run(run(parser.parse_args()))
