"""When messages to another process are written: at once when nothing waits, batched otherwise,
and the replies of the actors a read woke right after that read, over real sockets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from casty import ActorContext, ActorRef, Behavior, Behaviors, Mailbox
from casty.remote import RemoteActorSystem
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Numbered:
    seq: int
    reply_to: ActorRef[int]


def _echo_seq() -> Behavior[Numbered]:
    async def receive(ctx: ActorContext[Numbered], msg: Numbered) -> None:
        msg.reply_to.tell(msg.seq)

    return Behaviors.receive(receive)


def _collector(seen: list[int]) -> Behavior[int]:
    async def receive(ctx: ActorContext[int], msg: int) -> None:
        seen.append(msg)

    return Behaviors.receive(receive)


def _queueing(replies: asyncio.Queue[int]) -> Behavior[int]:
    async def receive(ctx: ActorContext[int], msg: int) -> None:
        replies.put_nowait(msg)

    return Behaviors.receive(receive)


async def _connected(a: RemoteActorSystem, b: RemoteActorSystem) -> tuple[ActorRef[Any], ActorRef[Numbered]]:
    """An echo actor in ``a`` (handling up to 1000 messages a turn) and a ref to it from ``b``,
    over an open connection."""
    echo = a.spawn(_echo_seq(), "echo", mailbox=Mailbox(throughput=1000))
    remote = b.ref(echo.uri)
    assert await b.ask(remote, lambda r: Numbered(-1, r), timeout=10) == -1
    return echo, remote


async def _idle(system: RemoteActorSystem, peer: RemoteActorSystem) -> None:
    """Wait until nothing is queued or about to be flushed from ``system`` to ``peer``."""
    assert system.transport is not None
    assoc = system.transport.associations[peer.address]
    await eventually(lambda: not assoc.queue and not assoc.flush_scheduled, what="an idle association")


async def test_a_burst_told_in_one_turn_is_two_writes_at_most_and_stays_in_order() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        _, remote = await _connected(a, b)
        seen: list[int] = []
        collector = b.spawn(_collector(seen), "collector")
        await _idle(b, a)
        assert b.transport is not None
        writes = b.transport.writes
        for i in range(500):
            remote.tell(Numbered(i, collector))  # the first goes out at once, the rest in one batch
        assert b.transport.writes - writes == 1
        await eventually(lambda: len(seen) == 500, timeout=10, what="500 replies")
        assert seen == list(range(500))
        assert b.transport.writes - writes <= 2


async def test_replies_to_one_read_are_written_together() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        _, remote = await _connected(a, b)
        seen: list[int] = []
        collector = b.spawn(_collector(seen), "collector")
        await _idle(a, b)
        assert a.transport is not None
        writes = a.transport.writes
        received = a.transport.bytes_received
        for i in range(300):
            remote.tell(Numbered(i, collector))
        await eventually(lambda: len(seen) == 300, timeout=10, what="300 replies")
        assert seen == list(range(300))
        # the echo actor answered 300 messages that arrived in a read or two (one write-through
        # and one batch): each read's replies went out in one write, not one per reply
        assert a.transport.bytes_received > received
        assert a.transport.writes - writes <= 4


async def test_asks_in_sequence_and_a_tell_between_keep_their_order() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        _, remote = await _connected(a, b)
        seen: list[int] = []
        collector = b.spawn(_collector(seen), "collector")
        for i in range(100):
            remote.tell(Numbered(1000 + i, collector))
            assert await b.ask(remote, lambda r, i=i: Numbered(i, r), timeout=10) == i
        await eventually(lambda: len(seen) == 100, timeout=10, what="100 replies")
        assert seen == [1000 + i for i in range(100)]


async def test_request_response_writes_each_request_at_once_and_schedules_no_flush() -> None:
    """A request sent after a read (the request/response pattern) is written at once and leaves
    no flush scheduled behind it: a flush per request would cost a loop turn per round trip. A
    second message sent before the next read waits for the flush (a burst stays batched)."""
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        _, remote = await _connected(a, b)
        await _idle(b, a)
        await _idle(a, b)
        assert a.transport is not None and b.transport is not None
        assoc = b.transport.associations[a.address]
        replies: asyncio.Queue[int] = asyncio.Queue()
        collector = b.spawn(_queueing(replies), "collector")
        asked, answered = b.transport.writes, a.transport.writes
        for i in range(50):
            remote.tell(Numbered(i, collector))
            assert not assoc.flush_scheduled and not assoc.queue  # written, nothing scheduled
            assert await asyncio.wait_for(replies.get(), 10) == i
        assert b.transport.writes - asked == 50
        assert a.transport.writes - answered == 50
        remote.tell(Numbered(50, collector))
        remote.tell(Numbered(51, collector))  # before any read: joins the scheduled flush
        assert assoc.flush_scheduled and len(assoc.queue) == 1
        assert [await asyncio.wait_for(replies.get(), 10) for _ in range(2)] == [50, 51]


async def test_sequential_asks_keep_one_write_each_way() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        _, remote = await _connected(a, b)
        await _idle(b, a)
        await _idle(a, b)
        assert a.transport is not None and b.transport is not None
        asked, answered = b.transport.writes, a.transport.writes
        for i in range(200):
            assert await b.ask(remote, lambda r, i=i: Numbered(i, r), timeout=10) == i
        assert b.transport.writes - asked == 200
        assert a.transport.writes - answered == 200
