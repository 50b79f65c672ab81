"""Inbound backpressure: a fast sender and a slow actor in another process. The receiving
connection stops reading while the actor's mailbox is deep, so TCP pushes back on the sender
and the receiver's memory stays bounded; every message still arrives.

``CASTY_BACKPRESSURE_MESSAGES`` sets how many messages are sent (default 150,000; the figure
in docs/reliability.md is for 1,000,000).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest

from casty import (
    ActorContext,
    Behaviors,
    CastyConfig,
    ClusteredActorSystem,
    DeadLetter,
    EventStreamSubscribe,
    Mailbox,
    MailboxOverflowStrategy,
    RemoteActorSystem,
    UnreachableMember,
)
from casty.testkit import TestProbe
from tests.cluster_app import fast_cluster_config
from tests.conftest import eventually
from tests.guard_app import SYSTEM, Reading, Tally, rss_kib, tally
from tests.procs import NodeProcess

MESSAGES = int(os.environ.get("CASTY_BACKPRESSURE_MESSAGES", "150000"))

pytestmark = pytest.mark.timeout(max(60, MESSAGES // 1000))


async def test_remote_tells_to_a_slow_actor_keep_the_receiver_bounded() -> None:
    sender_cfg = CastyConfig.from_dict({"remote": {"outbound_queue_size": MESSAGES + 1000}})
    async with (
        NodeProcess("tests.guard_app", "node", json.dumps({})) as node,
        RemoteActorSystem(SYSTEM, config=sender_cfg) as sender,
    ):
        pid = node.info["pid"]
        tally = sender.ref(f"casty://{SYSTEM}@127.0.0.1:{node.port}/user/tally")
        assert await sender.ask(tally, Tally, timeout=5) == 0
        before = rss_kib(pid)
        peak = before
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.ensure_future(sample())
        started = time.monotonic()
        for i in range(MESSAGES):
            tally.tell(Reading(i))
            if i % 10_000 == 9_999:
                await asyncio.sleep(0)
        count = 0
        while count < MESSAGES:
            # the ask travels behind every reading still queued at the sender
            count = await sender.ask(tally, Tally, timeout=max(30.0, MESSAGES / 5000))
        elapsed = time.monotonic() - started
        done.set()
        await sampler
        growth = (peak - before) / 1024
        print(f"{MESSAGES:,} remote tells to a slow actor: receiver RSS +{growth:.1f} MB at most, {elapsed:.1f}s")
        assert count == MESSAGES
        assert growth < 16, growth


async def test_a_bounded_mailbox_keeps_its_overflow_strategy_under_remote_traffic() -> None:
    """A bounded mailbox (100, drop_new) below the watermark never holds the connection back:
    what does not fit becomes dead letters, as locally, and the rest is handled."""
    async with RemoteActorSystem(SYSTEM) as node, RemoteActorSystem(SYSTEM) as sender:
        dead = TestProbe(node)
        node.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        node.spawn(
            tally(), "bounded", mailbox=Mailbox(capacity=100, overflow=MailboxOverflowStrategy.drop_new)
        )
        ref = sender.ref(f"{node.address}/user/bounded")
        for i in range(5000):
            ref.tell(Reading(i))
        await eventually(lambda: dead.pending() > 0, 10, what="dead letters from the full mailbox")
        transport = node.transport
        assert transport is not None
        assert all(not c.read_blocks & c.PRESSURE for c in transport._established)
        assert transport.guard._pressured == {}
        first = await dead.receive(5)
        assert isinstance(first, DeadLetter) and "mailbox full (drop_new)" in first.reason


async def test_a_member_held_back_by_its_own_backpressure_is_not_taken_for_unreachable() -> None:
    """A member whose actor is flooded by another member stops reading that member's connection
    for seconds (its mailbox stays above the high watermark). The heartbeats of both directions
    wait unread behind the flood, yet neither member takes the other for unreachable: a member
    that holds a connection back answers the peer's heartbeats in advance and counts the
    silence as its own. Every message still arrives."""
    messages = 1500  # about 3 s of work for the slow actor, 5 x the detector's pause

    def config() -> CastyConfig:
        fast = fast_cluster_config("backpressure", down_after=60.0, heartbeat={"interval": 0.1, "availability_check_interval": 0.1})
        return dataclasses.replace(
            fast, remote=dataclasses.replace(fast.remote, inbound_high_watermark=50, inbound_low_watermark=10)
        )

    async def slow_counter(ctx: ActorContext[Any], msg: Any) -> Any:
        nonlocal handled
        if isinstance(msg, int):
            handled += 1
            await asyncio.sleep(0.002)
        else:
            msg.tell(handled)
        return None

    handled = 0
    async with AsyncExitStack() as stack:
        busy = await stack.enter_async_context(ClusteredActorSystem("backpressure", "127.0.0.1", 0, config=config()))
        sender = await stack.enter_async_context(
            ClusteredActorSystem("backpressure", "127.0.0.1", 0, [("127.0.0.1", busy.port)], config=config())
        )
        await busy.wait_for(2, timeout=30)
        await sender.wait_for(2, timeout=30)
        events = [TestProbe(busy), TestProbe(sender)]
        for system, probe in zip((busy, sender), events, strict=True):
            system.event_stream.tell(EventStreamSubscribe(UnreachableMember, probe.ref))
        busy.spawn(Behaviors.receive(slow_counter), "slow")
        ref = sender.ref(f"{busy.address}/user/slow")
        transport = busy.transport
        assert transport is not None
        for i in range(messages):
            ref.tell(i)
        await eventually(
            lambda: any(c.read_blocks & c.PRESSURE for c in transport._established),
            10,
            interval=0.01,
            what="the busy member holding the sender's connection back",
        )
        # the ask waits behind every message of the flood
        assert await sender.ask(ref, lambda r: r, timeout=60) == messages
        assert [p.pending() for p in events] == [0, 0], [p.pending() for p in events]
        assert busy.membership is not None and sender.membership is not None
        assert not busy.membership.gossip.unreachable and not sender.membership.gossip.unreachable
