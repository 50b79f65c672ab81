"""Nodes for the drain test: ``python -m tests.drain_node --role producer|consumer ...``.

``producer`` joins through ``--seed`` and, under ``casty.run`` (which drains the node on
SIGTERM), feeds the ints 0, 1, 2... into a discoverable stream producer as fast as its buffer
takes them, counting every ``put`` that returned (accepted); when ``main`` ends it prints
``{"accepted": n, "refused": "<error type>"}``.

``consumer`` forms the cluster, subscribes to the producer it finds under ``READINGS`` and reads
its stream slowly (so the producer always holds a full buffer); it prints
``{"received": n}`` once it has 200 elements, ``{"done": true, "received", "in_order",
"outcome"}`` when the stream ended, and ``{"event", "node"}`` for every membership event about
another member. It runs until stdin closes or it is signalled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import casty
from casty import (
    ActorContext,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    DrainingError,
    EventStreamSubscribe,
    GetSink,
    GetSource,
    MemberDowned,
    MemberExited,
    MemberLeft,
    MemberRemoved,
    ServiceKey,
    SinkRef,
    SourceRef,
    StreamFailed,
    UnreachableMember,
    stream_consumer,
    stream_producer,
)
from tests.remote_app import _wait_for_exit

READINGS: ServiceKey[Any] = ServiceKey("readings")
_EVENTS: tuple[type, ...] = (MemberLeft, MemberExited, MemberRemoved, UnreachableMember, MemberDowned)


def emit(**line: Any) -> None:
    print(json.dumps(line), flush=True)


def system_for(args: argparse.Namespace) -> ClusteredActorSystem:
    config = casty.load_config(args.config)
    seeds = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in args.seed)]
    return ClusteredActorSystem.from_config(config, host="127.0.0.1", port=0, seed_nodes=seeds)


async def produce(args: argparse.Namespace) -> None:
    system = system_for(args)
    accepted = 0
    refused = ""

    async def feed(sink: SinkRef[int]) -> None:
        nonlocal accepted, refused
        try:
            while True:
                await sink.put(accepted)
                accepted += 1
        except DrainingError as exc:
            refused = type(exc).__name__
            emit(refused_put=str(exc))

    try:
        async with system:
            await system.wait_for(2, timeout=30)
            producer = system.spawn(Behaviors.discoverable(stream_producer(), key=READINGS), "readings")
            sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
            feeding = asyncio.ensure_future(feed(sink))
            emit(port=system.port)
            try:
                await asyncio.Event().wait()
            finally:
                feeding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeding
    finally:
        emit(accepted=accepted, refused=refused)


def watcher(system: ClusteredActorSystem) -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        for event in _EVENTS:
            system.event_stream.tell(EventStreamSubscribe(event, ctx.self))

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            node = str(msg.member.node)
            if node != str(system.self_node):
                emit(event=type(msg).__name__, node=node)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def consume(args: argparse.Namespace) -> None:
    system = system_for(args)
    async with system:
        system.spawn(watcher(system), "watcher")
        emit(port=system.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not system.listing(READINGS).instances:
            if loop.time() > deadline:
                raise SystemExit("no producer found")
            await asyncio.sleep(0.05)
        producer = next(iter(system.listing(READINGS).instances)).ref
        consumer = system.spawn(stream_consumer(producer), "consumer")
        source: SourceRef[int] = await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)
        received = 0
        in_order = True
        outcome = "completed"
        try:
            async for value in source:
                if value != received:
                    in_order = False
                received += 1
                if received == 200:
                    emit(received=received)
                if received % 50 == 0:
                    await asyncio.sleep(0.005)  # a slow consumer: the producer's buffer stays full
        except (StreamFailed, casty.StreamCancelled, TimeoutError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        emit(done=True, received=received, in_order=in_order, outcome=outcome)
        await _wait_for_exit()


async def member(args: argparse.Namespace) -> None:
    """A plain member: reports membership events like ``consumer`` and consumes nothing."""
    system = system_for(args)
    async with system:
        system.spawn(watcher(system), "watcher")
        emit(port=system.port)
        await _wait_for_exit()


async def stuck(args: argparse.Namespace) -> None:
    """A single node whose local stream can never finish (its consumer never reads): its drain
    lasts until the deadline. Prints ``{"port"}`` when started and ``{"draining": true}`` once a
    drain began (the ``put`` waiting for room in the full buffer is refused)."""
    system = system_for(args)
    async with system:
        producer = system.spawn(stream_producer(), "readings")
        sink: SinkRef[int] = await system.ask(producer, lambda r: GetSink(reply_to=r), timeout=5.0)
        consumer = system.spawn(stream_consumer(producer), "never-reads")
        await system.ask(consumer, lambda r: GetSource(reply_to=r), timeout=5.0)
        emit(port=system.port)
        i = 0
        try:
            while True:  # fills the consumer's window, then the buffer, then waits for room
                await sink.put(i)
                i += 1
        except DrainingError:
            emit(draining=system.draining)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["producer", "consumer", "member", "stuck"], required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--seed", action="append", default=[])
    args = parser.parse_args()
    roles = {"producer": produce, "consumer": consume, "member": member, "stuck": stuck}
    casty.run(roles[args.role](args))
