"""Actors and messages shared by the test process and the node processes it launches.

The node program (``python -m tests.node_main``) starts a system with these actors, prints
one JSON line with its address when it is ready, and runs until its stdin closes or it is
killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from typing import Any

import casty
from casty import ActorContext, ActorRef, Behavior, Behaviors, Terminated


@dataclass(frozen=True)
class Echo:
    payload: Any
    reply_to: ActorRef[Any]


@dataclass(frozen=True)
class GetCount:
    reply_to: ActorRef[tuple[int, int, int]]


@dataclass(frozen=True)
class Forward:
    target: ActorRef[Any]
    message: Any


@dataclass(frozen=True)
class WatchIt:
    target: ActorRef[Any]
    notify: ActorRef[Any]


@dataclass(frozen=True)
class SpawnChild:
    name: str
    reply_to: ActorRef[ActorRef[Any]]


@dataclass(frozen=True)
class StopChild:
    name: str


@dataclass(frozen=True)
class Refs:
    refs: tuple[ActorRef[Any], ...]
    reply_to: ActorRef[Any]


def echo() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, Echo):
            msg.reply_to.tell(msg.payload)
        elif isinstance(msg, Refs):
            msg.reply_to.tell(Refs((*tuple(msg.refs), ctx.self), msg.reply_to))

    return Behaviors.receive(receive)


def sequence_counter() -> Behavior[Any]:
    """Counts ints and checks that they arrive in increasing order: (count, last, violations)."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        count = 0
        last = -1
        violations = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal count, last, violations
            if type(msg) is int:
                count += 1
                if msg <= last:
                    violations += 1
                last = msg
            elif isinstance(msg, GetCount):
                msg.reply_to.tell((count, last, violations))

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def forwarder() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, Forward):
            msg.target.tell(msg.message)

    return Behaviors.receive(receive)


def watcher() -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        notify: dict[ActorRef[Any], ActorRef[Any]] = {}

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, WatchIt):
                notify[msg.target] = msg.notify
                ctx.watch(msg.target)
                msg.notify.tell(("watching", msg.target))
            elif isinstance(msg, Terminated):
                target = notify.pop(msg.ref, None)
                if target is not None:
                    target.tell(("terminated", msg.ref))

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def parent() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, SpawnChild):
            msg.reply_to.tell(ctx.spawn(echo(), msg.name))
        elif isinstance(msg, StopChild):
            child = ctx.child(msg.name)
            if child is not None:
                ctx.stop(child)

    return Behaviors.receive(receive)


def install(system: casty.ActorSystem) -> None:
    system.spawn(echo(), "echo")
    system.spawn(sequence_counter(), "counter")
    system.spawn(forwarder(), "forwarder")
    system.spawn(watcher(), "watcher")
    system.spawn(parent(), "parent")
    system.spawn(asker(), "asker")
    system.spawn(dead_letter_log(), "deadletters")


async def _wait_for_exit() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def stdin_closed() -> None:
        while await reader.read(1024):
            pass
        stop.set()

    watcher_task = asyncio.create_task(stdin_closed())
    await stop.wait()
    watcher_task.cancel()


async def run_node(args: argparse.Namespace) -> None:
    from casty.remote import RemoteActorSystem

    config = casty.load_config(args.config) if args.config else None
    system = RemoteActorSystem(args.name, host="127.0.0.1", port=args.port, config=config)
    async with system:
        install(system)
        print(json.dumps({"port": system.port, "uid": system.transport.uid if system.transport else 0}), flush=True)
        await _wait_for_exit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="test")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="")
    args = parser.parse_args(argv)
    casty.run(run_node(args))


@dataclass(frozen=True)
class AskIt:
    """Ask ``target`` ``Echo(payload)`` from this node and send the answer to ``reply_to``."""

    target: ActorRef[Any]
    payload: Any
    reply_to: ActorRef[Any]


def asker() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, AskIt):
            answer: Any
            try:
                answer = await ctx.system.ask(msg.target, lambda r: Echo(msg.payload, r), timeout=10)
            except Exception as exc:
                answer = f"failed: {exc}"
            msg.reply_to.tell(answer)

    return Behaviors.receive(receive)


@dataclass(frozen=True)
class GetDeadLetters:
    """Answered with ``[(recipient path or None, reason), ...]``: the dead letters of this node."""

    reply_to: ActorRef[list[tuple[str | None, str]]]


def dead_letter_log() -> Behavior[Any]:
    """Keeps the node's dead letters (recipient path and reason) for tests to ask about."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        letters: list[tuple[str | None, str]] = []
        ctx.system.event_stream.tell(casty.EventStreamSubscribe(casty.DeadLetter, ctx.self))

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, casty.DeadLetter):
                letters.append((msg.recipient.path if msg.recipient is not None else None, msg.reason))
            elif isinstance(msg, GetDeadLetters):
                msg.reply_to.tell(list(letters))

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)
