"""Programs written for casty 0.21: the actor layer, written the way such a program is."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import casty
from casty import (
    ActorContext,
    ActorRef,
    ActorRestarted,
    ActorStarted,
    ActorSystem,
    Behavior,
    Behaviors,
    CancelSchedule,
    DeadLetter,
    Directive,
    EventStreamSubscribe,
    EventStreamUnsubscribe,
    Mailbox,
    MailboxOverflowStrategy,
    OneForOneStrategy,
    ScheduleOnce,
    ScheduleTick,
    ServiceKey,
    Signal,
    UnhandledMessage,
    discover_config,
    event_stream_actor,
    scheduler,
)
from casty.core.event_stream import Publish, Subscribe, Unsubscribe
from casty.core.supervision import SupervisionStrategy
from casty.testkit import TestProbe
from tests.conftest import eventually


@dataclass(frozen=True)
class Get:
    reply_to: ActorRef[int]


@dataclass(frozen=True)
class Boom:
    pass


def counter(count: int = 0) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, Get):
            msg.reply_to.tell(count)
            return Behavior.same()
        if isinstance(msg, Boom):
            raise RuntimeError("boom")
        if isinstance(msg, int):
            return counter(count + msg)
        return Behavior.unhandled()

    return Behavior.receive(receive)


def test_top_level_names_of_021() -> None:
    for name in (
        "Signal", "System", "Interceptor", "EventStreamMsg", "event_stream_actor", "ActorRestarted",
        "ScheduleOnce", "ScheduleTick", "CancelSchedule", "SchedulerMsg", "scheduler", "receptionist_actor",
        "discover_config",
    ):  # fmt: skip
        assert hasattr(casty, name), name
        assert name in casty.__all__, name


def test_deep_import_paths_of_021() -> None:
    from casty.actor import Behavior as B1
    from casty.actor import Behaviors as Bs
    from casty.behaviors import Behaviors as Bs2
    from casty.context import ActorContext as C1
    from casty.context import Interceptor as I1
    from casty.core import ActorSystem as S1
    from casty.core import OneForOneStrategy as O1
    from casty.core.behavior import Signal as Sig
    from casty.core.context import System
    from casty.core.events import ActorRestarted as AR
    from casty.core.mailbox import Mailbox as MB
    from casty.core.messages import Terminated
    from casty.core.ref import ActorRef as R1
    from casty.core.scheduler import scheduler as sch
    from casty.core.streams import Push, stream_consumer, stream_producer
    from casty.core.system import ActorSystem as S2
    from casty.ref import ActorRef as R2

    assert B1 is Behavior and Bs is Bs2 is Behaviors and C1 is ActorContext and I1 is casty.Interceptor
    assert S1 is S2 is ActorSystem and O1 is OneForOneStrategy and Sig is Signal and AR is ActorRestarted
    assert MB is Mailbox and Terminated is casty.Terminated and R1 is R2 is ActorRef and sch is scheduler
    assert Push is casty.Push and stream_consumer is casty.stream_consumer and stream_producer is casty.stream_producer
    assert System is casty.System and issubclass(casty.ClusteredActorSystem, System)


def test_behavior_carries_the_constructors_and_signals() -> None:
    assert Behavior.same() is Behaviors.same()
    assert Behavior.same().signal is Signal.same
    assert Behavior.stopped().signal is Signal.stopped
    assert Behavior.restart().signal is Signal.restart
    assert Behavior.unhandled().signal is Signal.unhandled
    assert Behavior.receive(counter().handler).signal is None  # type: ignore[attr-defined]


async def test_system_defaults_ask_and_ask_or_none() -> None:
    async with ActorSystem() as system:
        assert system.name == "casty-system"
        ref = system.spawn(counter(), "c")
        ref.tell(5)
        assert await system.ask(ref, lambda r: Get(reply_to=r), timeout=5.0) == 5
        silent = system.spawn(Behaviors.ignore(), "silent")
        assert await system.ask_or_none(silent, lambda r: Get(reply_to=r), timeout=0.1) is None
        with pytest.raises(TimeoutError):
            await system.ask(silent, lambda r: Get(reply_to=r), timeout=0.1)
    async with ActorSystem("named", config=None) as system:
        assert system.name == "named"


async def test_lookup_by_path_is_synchronous() -> None:
    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(counter(), "child")
        return counter()

    async with ActorSystem() as system:
        a = system.spawn(Behaviors.setup(parent), "a")
        assert system.lookup("a") == a
        assert system.lookup("/a") == a
        await eventually(lambda: system.lookup("a/child") is not None, what="child spawned")
        child = system.lookup("a/child")
        assert child is not None and child.id == "a/child"
        assert system.lookup(child.id) == child
        assert system.lookup("missing") is None
        assert a.id == "a"


async def test_lookup_of_a_service_key_is_awaitable() -> None:
    key: ServiceKey[Any] = ServiceKey("counter")
    async with ActorSystem() as system:
        ref = system.spawn(Behaviors.discoverable(counter(), key=key), "c")
        await eventually(lambda: bool(system.registry.listing(key).instances), what="registration")
        listing = await system.lookup(key)
        assert isinstance(listing.instances, frozenset)
        assert {i.ref for i in listing.instances} == {ref}


async def test_with_lifecycle_two_argument_pre_restart_and_post_restart() -> None:
    calls: list[Any] = []

    async def pre_start(ctx: ActorContext[Any]) -> None:
        calls.append("pre_start")

    async def pre_restart(ctx: ActorContext[Any], exc: Exception) -> None:
        calls.append(("pre_restart", type(exc).__name__, str(exc)))

    async def post_restart(ctx: ActorContext[Any]) -> None:
        calls.append("post_restart")

    async def post_stop(ctx: ActorContext[Any]) -> None:
        calls.append("post_stop")

    behavior = Behaviors.supervise(
        Behaviors.with_lifecycle(
            counter(), pre_start=pre_start, pre_restart=pre_restart, post_restart=post_restart, post_stop=post_stop
        ),
        OneForOneStrategy(),
    )
    async with ActorSystem() as system:
        ref = system.spawn(behavior, "c")
        ref.tell(Boom())
        ref.tell(1)
        assert await system.ask(ref, lambda r: Get(r), timeout=5.0) == 1
        await system.stop(ref)
    assert calls == ["pre_start", ("pre_restart", "RuntimeError", "boom"), "pre_start", "post_restart", "post_stop"]


async def test_on_stop_and_register_interceptor() -> None:
    stopped = asyncio.Event()
    seen: list[Any] = []

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        async def on_stop() -> None:
            stopped.set()

        ctx.on_stop(on_stop)
        ctx.register_interceptor(lambda msg: msg == "secret")

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            seen.append(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    async with ActorSystem() as system:
        ref = system.spawn(Behaviors.setup(setup), "x")
        for msg in ("a", "secret", "b"):
            ref.tell(msg)
        await eventually(lambda: seen == ["a", "b"], what="intercepted message skipped")
        await system.stop(ref)
        assert stopped.is_set()


async def test_pipe_to_self_without_mapper_sends_the_result() -> None:
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "result"

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.pipe_to_self(fetch())
        ctx.pipe_to_self(fetch(), lambda r: r.upper())

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            got.append(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    got: list[Any] = []
    async with ActorSystem() as system:
        system.spawn(Behaviors.setup(setup), "p")
        await eventually(lambda: sorted(got) == ["RESULT", "result"], what="piped results")


async def test_mailbox_is_a_generic_queue() -> None:
    mb = Mailbox[str](capacity=2, overflow=MailboxOverflowStrategy.drop_new)
    assert mb.empty()
    mb.put("a")
    mb.put("b")
    mb.put("c")  # dropped
    assert mb.size() == 2
    assert await mb.get() == "a"
    reject = Mailbox[int](capacity=1, overflow=MailboxOverflowStrategy.reject)
    reject.put(1)
    with pytest.raises(asyncio.QueueFull):
        reject.put(2)
    oldest = Mailbox[int](capacity=1, overflow=MailboxOverflowStrategy.drop_oldest)
    oldest.put(1)
    oldest.put(2)
    assert await oldest.get() == 2
    waiter = asyncio.ensure_future(Mailbox[int]().get())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()
    assert Mailbox(10, MailboxOverflowStrategy.reject).strategy is MailboxOverflowStrategy.reject  # our form


async def test_a_rejecting_mailbox_given_to_spawn() -> None:
    gate = asyncio.Event()

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        await gate.wait()
        return Behaviors.same()

    async with ActorSystem() as system:
        mb = Mailbox[Any](capacity=1, overflow=MailboxOverflowStrategy.reject)
        ref = system.spawn(Behaviors.receive(receive), "busy", mailbox=mb)
        ref.tell("first")  # taken by the handler, which waits
        await eventually(lambda: mb.empty(), what="first message taken")
        ref.tell("second")
        assert mb.size() == 1
        with pytest.raises(asyncio.QueueFull):
            ref.tell("third")
        gate.set()


def test_directive_members_are_lower_case() -> None:
    assert [d.name for d in Directive] == ["restart", "stop", "resume", "escalate"]
    assert Directive.RESTART is Directive.restart  # the former names stay as aliases


def test_one_for_one_decides_with_its_own_budget_per_child() -> None:
    strategy = OneForOneStrategy()
    assert strategy.max_restarts == 3
    assert [strategy.decide(ValueError(), child_id="a") for _ in range(4)] == [Directive.restart] * 3 + [Directive.stop]
    assert strategy.decide(ValueError(), child_id="b") is Directive.restart
    custom = OneForOneStrategy(decider=lambda e: Directive.stop if isinstance(e, KeyError) else Directive.restart)
    assert custom.decide(KeyError(), child_id="x") is Directive.stop


async def test_decider_none_restarts_and_the_limit_stops() -> None:
    async with ActorSystem() as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(casty.ActorStopped, handler=probe.ref))
        ref = system.spawn(Behaviors.supervise(counter(), OneForOneStrategy(decider=None)), "c")
        ref.tell(2)
        ref.tell(Boom())
        assert await system.ask(ref, lambda r: Get(r), timeout=5.0) == 0  # restarted, state reset
        for _ in range(3):
            ref.tell(Boom())
        assert (await probe.expect(casty.ActorStopped)).ref == ref


async def test_a_custom_strategy_that_only_implements_decide() -> None:
    class EveryOther(SupervisionStrategy):
        def __init__(self) -> None:
            self.children: list[str] = []

        def decide(self, exception: Exception, *, child_id: str = "", **kw: object) -> Directive:
            self.children.append(child_id)
            return Directive.restart if len(self.children) == 1 else Directive.stop

    class Plain:  # not even a subclass
        def decide(self, exception: Exception, *, child_id: str = "", **kw: object) -> Directive:
            return Directive.restart

    strategy = EveryOther()
    async with ActorSystem() as system:
        ref = system.spawn(Behaviors.supervise(counter(), strategy), "c")
        ref.tell(3)
        ref.tell(Boom())
        assert await system.ask(ref, lambda r: Get(r), timeout=5.0) == 0
        ref.tell(Boom())
        await asyncio.wait_for(system.wait_terminated(ref), 5.0)
        assert strategy.children == ["/user/c", "/user/c"]
        plain = system.spawn(Behaviors.supervise(counter(), Plain()), "plain")  # type: ignore[arg-type]
        plain.tell(Boom())
        assert await system.ask(plain, lambda r: Get(r), timeout=5.0) == 0


async def test_event_stream_handler_field_and_events_of_021() -> None:
    async with ActorSystem() as system:
        probe = TestProbe(system)
        for event in (DeadLetter, UnhandledMessage, ActorRestarted):
            system.event_stream.tell(EventStreamSubscribe(event, handler=probe.ref))
        ref = system.spawn(Behaviors.supervise(counter(), OneForOneStrategy()), "c")
        ref.tell("what?")
        unhandled = await probe.expect(UnhandledMessage)
        assert unhandled.message == "what?" and unhandled.ref == ref
        ref.tell(Boom())
        restarted = await probe.expect(ActorRestarted)
        assert restarted.ref == ref and isinstance(restarted.exception, RuntimeError)
        await system.stop(ref)
        ref.tell(1)
        dead = await probe.expect(DeadLetter)
        assert dead.message == 1 and dead.intended_ref == ref
        system.event_stream.tell(EventStreamUnsubscribe(DeadLetter, handler=probe.ref))
        ref.tell(2)
        await probe.expect_no_message(0.1)


async def test_event_stream_actor_spawned_by_hand() -> None:
    async with ActorSystem() as system:
        stream = system.spawn(event_stream_actor(), "events")
        probe = TestProbe(system)
        stream.tell(Subscribe(event_type=str, handler=probe.ref))
        stream.tell(Publish(event="hello"))
        assert await probe.receive() == "hello"
        stream.tell(Unsubscribe(event_type=str, handler=probe.ref))
        stream.tell(Publish(event="gone"))
        await probe.expect_no_message(0.1)

        seen: list[Any] = []

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            seen.append(msg)
            return Behaviors.same()

        sub = system.spawn(Behaviors.receive(receive), "sub")
        stream.tell(Subscribe(ActorStarted, sub))  # positional, like 0.21
        stream.tell(Publish(ActorStarted(sub)))
        await eventually(lambda: len(seen) == 1, what="event delivered")


async def test_scheduler_once_tick_and_cancel() -> None:
    async with ActorSystem() as system:
        probe = TestProbe(system)
        sched = system.scheduler
        assert system.scheduler == sched
        sched.tell(ScheduleOnce(key="once", target=probe.ref, message="later", delay=0.05))
        assert await probe.receive() == "later"
        sched.tell(ScheduleTick(key="tick", target=probe.ref, message="tick", interval=0.02))
        assert [await probe.receive() for _ in range(3)] == ["tick"] * 3
        sched.tell(CancelSchedule(key="tick"))
        sched.tell(ScheduleOnce(key="marker", target=probe.ref, message="marker", delay=0))
        while await probe.receive() != "marker":  # ticks sent before the cancel was handled
            pass
        await probe.expect_no_message(0.1)
        mine = system.spawn(scheduler(), "my-scheduler")
        mine.tell(ScheduleOnce("k", probe.ref, "replaced", 0.05))
        mine.tell(ScheduleOnce("k", probe.ref, "kept", 0.05))
        assert await probe.receive() == "kept"
        await probe.expect_no_message(0.1)


def test_discover_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert discover_config(nested) is None
    (tmp_path / "casty.toml").write_text('[system]\nname = "x"\n')
    assert discover_config(nested) == tmp_path / "casty.toml"
    monkeypatch.chdir(nested)
    assert discover_config() == tmp_path / "casty.toml"
