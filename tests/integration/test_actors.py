"""The local actor runtime: behaviors, ask, supervision, lifecycle, watch, mailboxes, timers."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from typing import Any

import pytest

import casty
from casty import (
    ActorContext,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeoutError,
    Behavior,
    Behaviors,
    DeadLetter,
    Directive,
    EventStreamSubscribe,
    InvalidActorName,
    Mailbox,
    MailboxFull,
    MailboxOverflowStrategy,
    OneForOneStrategy,
    Terminated,
    UnhandledMessage,
)
from casty.testkit import TestProbe


@dataclass(frozen=True)
class Get:
    reply_to: ActorRef[Any]


@dataclass(frozen=True)
class Boom:
    text: str = "boom"


def counter() -> Behavior[Any]:
    """State lives in the setup closure, so a restart starts again from zero."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        count = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            nonlocal count
            if isinstance(msg, Get):
                msg.reply_to.tell(count)
            elif isinstance(msg, Boom):
                raise RuntimeError(msg.text)
            else:
                count += 1
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def recorder(probe: TestProbe) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        probe.ref.tell(msg)

    return Behaviors.receive(receive)


async def test_tell_and_ask_in_order() -> None:
    async with ActorSystem("t") as system:
        ref = system.spawn(counter(), "counter")
        for i in range(1000):
            ref.tell(i)
        assert await system.ask(ref, lambda r: Get(r), timeout=5) == 1000


async def test_ask_timeout_is_a_timeout_error() -> None:
    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.ignore(), "silent")
        with pytest.raises(AskTimeoutError) as info:
            await system.ask(ref, lambda r: Get(r), timeout=0.05)
        assert isinstance(info.value, TimeoutError)


async def test_ask_deadlines_each_ask_times_out_on_its_own() -> None:
    """Pending asks share one timer: a later ask with a shorter timeout still expires first, a
    replied ask never fires, and a timeout is never early."""
    async with ActorSystem("t") as system:
        silent = system.spawn(Behaviors.ignore(), "silent")
        answering = system.spawn(counter(), "counter")
        loop = asyncio.get_running_loop()
        started = loop.time()
        ended: dict[str, float] = {}

        async def timed(name: str, timeout: float) -> None:
            with pytest.raises(AskTimeoutError):
                await system.ask(silent, lambda r: Get(r), timeout=timeout)
            ended[name] = loop.time() - started

        long = asyncio.ensure_future(timed("long", 0.6))
        await asyncio.sleep(0)  # the long ask's timer is armed first
        short = asyncio.ensure_future(timed("short", 0.1))
        middle = asyncio.ensure_future(timed("middle", 0.3))
        # many answered asks in between leave nothing behind that could fire
        for _ in range(200):
            assert await system.ask(answering, lambda r: Get(r), timeout=0.05) == 0
        await asyncio.gather(long, short, middle)
        assert ended["short"] < ended["middle"] < ended["long"]
        for name, timeout in (("short", 0.1), ("middle", 0.3), ("long", 0.6)):
            # early by at most the timer's slack, never late by much
            assert timeout - 0.005 <= ended[name] < timeout + 0.5, (name, ended[name])


async def test_asks_with_many_distinct_timeouts_each_expire_on_time() -> None:
    """More distinct timeouts than the shared timer keeps apart (some asks get a timer of their
    own): each still fails at its own deadline; thousands of answered asks
    with a timeout each leave nothing that delays a later one."""
    async with ActorSystem("t") as system:
        silent = system.spawn(Behaviors.ignore(), "silent")
        answering = system.spawn(counter(), "counter")
        for i in range(3000):
            await system.ask(answering, lambda r: Get(r), timeout=5 + i / 1000)
        loop = asyncio.get_running_loop()
        started = loop.time()
        ended: list[tuple[float, float]] = []

        async def timed(timeout: float) -> None:
            with pytest.raises(AskTimeoutError):
                await system.ask(silent, lambda r: Get(r), timeout=timeout)
            ended.append((timeout, loop.time() - started))

        timeouts = [0.05 + 0.01 * i for i in range(40)]
        await asyncio.gather(*(timed(t) for t in reversed(timeouts)))
        assert sorted(t for t, _ in ended) == timeouts
        for timeout, elapsed in ended:
            assert timeout - 0.005 <= elapsed < timeout + 0.5, (timeout, elapsed)


async def test_asks_pending_at_shutdown_fail_at_once() -> None:
    system = ActorSystem("t")
    await system.start()
    silent = system.spawn(Behaviors.ignore(), "silent")
    pending = asyncio.ensure_future(system.ask(silent, lambda r: Get(r), timeout=30))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.shutdown()
    with pytest.raises(AskTimeoutError, match="stopped"):
        await pending
    assert loop.time() - started < 5


async def test_fail_reply_fails_only_an_ask_sent_to_the_named_system() -> None:
    """``fail_reply`` (a transport's way to say a peer refused an ask's request) fails the ask
    waiting at that reply path, and with ``sent_to`` only when the ask went to that system."""
    from casty.actors.ref import SystemAddress

    async with ActorSystem("t") as system:
        silent = system.spawn(Behaviors.ignore(), "silent")
        slots: list[ActorRef[Any]] = []

        def request(reply_to: ActorRef[Any]) -> Get:
            slots.append(reply_to)
            return Get(reply_to)

        pending = asyncio.ensure_future(system.ask(silent, request, timeout=30))
        await asyncio.sleep(0)
        path = slots[0].path
        other = SystemAddress("t", "10.0.0.9", 2552)
        assert not system.fail_reply(path, ValueError("not yours"), other)
        assert not system.fail_reply("/temp/no-such-ask", ValueError("none"))
        assert not pending.done()
        assert system.fail_reply(path, ValueError("refused"), silent.system_address)
        with pytest.raises(ValueError, match="refused"):
            await pending
        assert not system.fail_reply(path, ValueError("again"))


async def test_ref_identity_and_printing() -> None:
    async with ActorSystem("app") as system:
        ref = system.spawn(counter(), "a")
        assert str(ref) == "casty://app/user/a"
        again = system.lookup("/user/a")
        assert again == ref and hash(again) == hash(ref)
        assert {ref: 1}[again] == 1
        assert system.lookup("/user/missing") is None


async def test_invalid_and_duplicate_names() -> None:
    async with ActorSystem("t") as system:
        system.spawn(counter(), "a")
        with pytest.raises(InvalidActorName):
            system.spawn(counter(), "a")
        for bad in ("", "x/y", "$x"):
            with pytest.raises(InvalidActorName):
                system.spawn(counter(), bad)


async def test_setup_runs_once_per_start_and_sees_context() -> None:
    seen: list[str] = []

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        seen.append(str(ctx.self))

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            msg.reply_to.tell(len(seen))

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.setup(setup), "s")
        assert await system.ask(ref, lambda r: Get(r)) == 1
        assert seen == ["casty://t/user/s"]


async def test_become_switches_behavior() -> None:
    def locked() -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            if msg == "unlock":
                return unlocked()
            if isinstance(msg, Get):
                msg.reply_to.tell("locked")
            return None

        return Behaviors.receive(receive)

    def unlocked() -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            if isinstance(msg, Get):
                msg.reply_to.tell("open")
            return None

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        ref = system.spawn(locked(), "door")
        assert await system.ask(ref, lambda r: Get(r)) == "locked"
        ref.tell("unlock")
        assert await system.ask(ref, lambda r: Get(r)) == "open"


async def test_stopped_runs_post_stop_and_notifies_watchers() -> None:
    events: list[str] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return Behaviors.stopped()

    async def post_stop(ctx: ActorContext[Any]) -> None:
        events.append("post_stop")

    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        ref = system.spawn(
            Behaviors.with_lifecycle(Behaviors.receive(receive), post_stop=post_stop), "short"
        )

        async def watcher_setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            ctx.watch(ref)
            return recorder(probe)

        system.spawn(Behaviors.setup(watcher_setup), "watcher")
        await asyncio.sleep(0)
        ref.tell("anything")
        terminated = await probe.expect(Terminated)
        assert terminated.ref == ref
        assert events == ["post_stop"]
        assert system.lookup("/user/short") is None


async def test_watching_a_stopped_actor_delivers_terminated_at_once() -> None:
    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        ref = system.spawn(counter(), "gone")
        await system.stop(ref)

        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            ctx.watch(ref)
            return recorder(probe)

        system.spawn(Behaviors.setup(setup), "late-watcher")
        assert (await probe.expect(Terminated)).ref == ref


async def test_unwatch_stops_notifications() -> None:
    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        target = system.spawn(counter(), "target")

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if msg == "watch":
                ctx.watch(target)
            elif msg == "unwatch":
                ctx.unwatch(target)
            else:
                probe.ref.tell(msg)
            if msg in ("watch", "unwatch"):
                probe.ref.tell(msg)

        w = system.spawn(Behaviors.receive(receive), "w")
        w.tell("watch")
        w.tell("unwatch")
        assert await probe.receive() == "watch"
        assert await probe.receive() == "unwatch"
        await system.stop(target)
        await probe.expect_no_message(0.05)


async def test_children_stop_before_parent() -> None:
    order: list[str] = []

    def leaf(name: str) -> Behavior[Any]:
        async def post_stop(ctx: ActorContext[Any]) -> None:
            order.append(name)

        return Behaviors.with_lifecycle(Behaviors.ignore(), post_stop=post_stop)

    async def parent_setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        child = ctx.spawn(leaf("child"), "child")
        ctx.spawn(leaf("sibling"), "sibling")
        assert str(child) == "casty://t/user/parent/child"

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            msg.reply_to.tell([str(c) for c in ctx.children])

        return Behaviors.receive(receive)

    async def parent_post_stop(ctx: ActorContext[Any]) -> None:
        order.append("parent")

    async with ActorSystem("t") as system:
        ref = system.spawn(
            Behaviors.with_lifecycle(Behaviors.setup(parent_setup), post_stop=parent_post_stop), "parent"
        )
        children = await system.ask(ref, lambda r: Get(r))
        assert len(children) == 2
        assert system.lookup("/user/parent/child") is not None
    assert order[-1] == "parent"
    assert sorted(order[:2]) == ["child", "sibling"]


async def test_unsupervised_failure_stops_the_actor() -> None:
    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(ActorStopped, probe.ref))
        ref = system.spawn(counter(), "fragile")
        ref.tell(Boom())
        stopped = await probe.expect(ActorStopped)
        assert stopped.ref == ref


async def test_supervised_restart_resets_state() -> None:
    strategy = OneForOneStrategy(max_restarts=3, within=10.0, decider=lambda e: Directive.RESTART)
    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.supervise(counter(), strategy), "c")
        ref.tell(1)
        ref.tell(2)
        assert await system.ask(ref, lambda r: Get(r)) == 2
        ref.tell(Boom())
        assert await system.ask(ref, lambda r: Get(r)) == 0


async def test_supervised_resume_keeps_state() -> None:
    strategy = OneForOneStrategy(decider=lambda e: Directive.resume)
    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.supervise(counter(), strategy), "c")
        ref.tell(1)
        ref.tell(Boom())
        ref.tell(2)
        assert await system.ask(ref, lambda r: Get(r)) == 2


async def test_restart_budget_exhausted_stops_the_actor() -> None:
    strategy = OneForOneStrategy(max_restarts=2, within=60.0)
    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(ActorStopped, probe.ref))
        ref = system.spawn(Behaviors.supervise(counter(), strategy), "c")
        for _ in range(3):
            ref.tell(Boom())
        assert (await probe.expect(ActorStopped)).ref == ref


async def test_pre_restart_hook_and_escalation() -> None:
    hooks: list[str] = []

    async def pre_restart(ctx: ActorContext[Any]) -> None:
        hooks.append("pre_restart")

    async def parent_setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        child = ctx.spawn(
            Behaviors.supervise(counter(), OneForOneStrategy(decider=lambda e: Directive.ESCALATE)), "child"
        )

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, Get):
                msg.reply_to.tell(child)
            else:
                child.tell(msg)

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        parent = system.spawn(
            Behaviors.supervise(
                Behaviors.with_lifecycle(Behaviors.setup(parent_setup), pre_restart=pre_restart),
                OneForOneStrategy(max_restarts=5),
            ),
            "parent",
        )
        child = await system.ask(parent, lambda r: Get(r))
        child.tell(Boom())
        new_child = await system.ask(parent, lambda r: Get(r))
        assert hooks == ["pre_restart"]
        assert new_child == child  # same path, new incarnation
        assert await system.ask(new_child, lambda r: Get(r)) == 0


async def test_behaviors_restart_as_return_value() -> None:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        count = 0

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
            nonlocal count
            if msg == "reset":
                return Behaviors.restart()
            if isinstance(msg, Get):
                msg.reply_to.tell(count)
            else:
                count += 1
            return None

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.setup(setup), "r")
        ref.tell(1)
        ref.tell("reset")
        assert await system.ask(ref, lambda r: Get(r)) == 0


async def test_unhandled_and_dead_letters_are_published() -> None:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return Behaviors.unhandled()

    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(UnhandledMessage, probe.ref))
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        ref = system.spawn(Behaviors.receive(receive), "picky")
        ref.tell("what?")
        unhandled = await probe.expect(UnhandledMessage)
        assert unhandled.message == "what?" and unhandled.recipient == ref
        await system.stop(ref)
        before = system.dead_letters
        ref.tell("late")
        dead = await probe.expect(DeadLetter)
        assert dead.message == "late" and "stopped" in dead.reason
        assert system.dead_letters == before + 1


async def test_handler_that_awaits_keeps_order_and_one_at_a_time() -> None:
    active = 0
    max_active = 0
    seen: list[int] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        nonlocal active, max_active
        if isinstance(msg, Get):
            msg.reply_to.tell(list(seen))
            return
        active += 1
        max_active = max(max_active, active)
        if msg % 3 == 0:
            await asyncio.sleep(0.001)
        if msg % 5 == 0:
            await asyncio.sleep(0)
        seen.append(msg)
        active -= 1

    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.receive(receive), "slow")
        for i in range(100):
            ref.tell(i)
        assert await system.ask(ref, lambda r: Get(r)) == list(range(100))
        assert max_active == 1


async def test_failure_after_await_is_supervised() -> None:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, Get):
            msg.reply_to.tell("alive")
            return
        await asyncio.sleep(0)
        raise RuntimeError("late failure")

    async with ActorSystem("t") as system:
        ref = system.spawn(
            Behaviors.supervise(Behaviors.receive(receive), OneForOneStrategy(decider=lambda e: Directive.RESUME)),
            "x",
        )
        ref.tell("fail")
        assert await system.ask(ref, lambda r: Get(r)) == "alive"


async def test_one_busy_actor_does_not_starve_another() -> None:
    handled = {"a": 0, "b": 0}

    def worker(name: str) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            handled[name] += 1
            if isinstance(msg, Get):
                msg.reply_to.tell(dict(handled))

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        a = system.spawn(worker("a"), "a", mailbox=Mailbox(throughput=10))
        b = system.spawn(worker("b"), "b", mailbox=Mailbox(throughput=10))
        for _ in range(1000):
            a.tell(1)
        seen = await system.ask(b, lambda r: Get(r))
        # b got its turn after at most a few of a's batches, not after all 1000 messages
        assert seen["a"] < 100, seen
        assert await system.ask(a, lambda r: Get(r)) == {"a": 1001, "b": 1}


async def test_bounded_mailbox_strategies() -> None:
    gate = asyncio.Event()

    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if msg == "block":
            await gate.wait()
        elif isinstance(msg, Get):
            msg.reply_to.tell("ok")

    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        for strategy in MailboxOverflowStrategy:
            if strategy.name.islower():
                continue
            ref = system.spawn(
                Behaviors.receive(receive), f"b-{strategy.value}", mailbox=Mailbox(2, strategy)
            )
            ref.tell("block")
            await asyncio.sleep(0.01)  # let it start handling "block"
            ref.tell("one")
            ref.tell("two")
            if strategy is MailboxOverflowStrategy.REJECT:
                with pytest.raises(MailboxFull):
                    ref.tell("three")
            else:
                ref.tell("three")
                dead = await probe.expect(DeadLetter)
                expected = "three" if strategy is MailboxOverflowStrategy.DROP_NEW else "one"
                assert dead.message == expected, strategy
            gate.set()
            await asyncio.sleep(0)
            gate.clear()
            await system.stop(ref)
            while probe.pending():
                await probe.receive()


async def test_single_and_periodic_timers() -> None:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ticks = 0
        ctx.timers.start_single_timer("once", "single", 0.01)
        ctx.timers.start_periodic_timer("tick", "tick", 0.005)

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            nonlocal ticks
            if msg == "tick":
                ticks += 1
                if ticks == 5:
                    ctx.timers.cancel("tick")
                    probe.ref.tell(("ticks", ticks, ctx.timers.is_active("tick")))
            else:
                probe.ref.tell(msg)

        return Behaviors.receive(receive)

    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.spawn(Behaviors.setup(setup), "timed")
        got = {await probe.receive(), await probe.receive()}
        assert got == {"single", ("ticks", 5, False)}
        await probe.expect_no_message(0.03)


async def test_pipe_to_self() -> None:
    async def compute() -> int:
        await asyncio.sleep(0.001)
        return 42

    async def failing() -> int:
        raise ValueError("nope")

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.pipe_to_self(compute(), lambda v: ("ok", v))
        ctx.pipe_to_self(failing(), lambda v: ("ok", v), on_failure=lambda e: ("failed", str(e)))
        return recorder(probe)

    async with ActorSystem("t") as system:
        probe = TestProbe(system)
        system.spawn(Behaviors.setup(setup), "piper")
        got = {await probe.receive(), await probe.receive()}
        assert got == {("ok", 42), ("failed", "nope")}


async def test_shutdown_leaves_no_task_behind() -> None:
    gate = asyncio.Event()

    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        await gate.wait()

    before = asyncio.all_tasks()
    system = ActorSystem("t")
    async with system:
        for i in range(5):
            ref = system.spawn(Behaviors.receive(receive), f"w{i}")
            ref.tell("hang")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)
    left = asyncio.all_tasks() - before
    assert not left, left
    assert system.is_terminated
    with pytest.raises(RuntimeError):
        system.spawn(counter(), "late")


async def test_sync_handlers_are_accepted() -> None:
    def receive(ctx: ActorContext[Any], msg: Any) -> None:
        msg.reply_to.tell("sync")

    async with ActorSystem("t") as system:
        ref = system.spawn(Behaviors.receive(receive), "s")  # type: ignore[arg-type]
        assert await system.ask(ref, lambda r: Get(r)) == "sync"


async def test_default_mailbox_from_config(tmp_path: Any) -> None:
    path = tmp_path / "casty.toml"
    path.write_text('[system]\nname = "cfg"\n[defaults.mailbox]\ncapacity = 1\nstrategy = "reject"\n')
    config = casty.load_config(path)
    gate = asyncio.Event()

    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        await gate.wait()

    async with ActorSystem(config=config) as system:
        assert system.name == "cfg"
        ref = system.spawn(Behaviors.receive(receive), "tiny")
        ref.tell(1)
        await asyncio.sleep(0.01)
        ref.tell(2)
        with pytest.raises(MailboxFull):
            ref.tell(3)
        gate.set()


async def test_run_uses_uvloop() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop")


def test_casty_run_returns_result() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert casty.run(main()).startswith("uvloop")


def test_no_reference_cycles_keep_stopped_actors_alive() -> None:
    async def main() -> int:
        async with ActorSystem("t") as system:
            for i in range(50):
                await system.stop(system.spawn(counter(), f"c{i}"))
            return len(system._cells)

    assert casty.run(main()) == 0
    gc.collect()


def test_failures_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with ActorSystem("t") as system:
            probe = TestProbe(system)
            system.event_stream.tell(EventStreamSubscribe(ActorStopped, probe.ref))
            ref = system.spawn(counter(), "c")
            ref.tell(Boom("logged"))
            await probe.expect(ActorStopped)

    with caplog.at_level(logging.ERROR, logger="casty"):
        casty.run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "logged" in str(errors[0].exc_info[1] if errors[0].exc_info else "")


async def test_wait_for_termination() -> None:
    system = ActorSystem("t")
    async with system:
        waiter = asyncio.ensure_future(system.wait_for_termination())
        await asyncio.sleep(0)
        assert not waiter.done()
    await asyncio.wait_for(waiter, 5)
    await system.wait_for_termination()  # already terminated: returns at once
