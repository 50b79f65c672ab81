"""A scheduler actor: tells messages to any actor once after a delay or at a fixed rate."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casty.actors.behaviors import Behavior, Behaviors, Directive, OneForOneStrategy
from casty.actors.ref import ActorRef

if TYPE_CHECKING:
    from casty.actors.context import ActorContext

__all__ = ["CancelSchedule", "ScheduleOnce", "ScheduleTick", "SchedulerMsg", "scheduler"]


@dataclass(frozen=True)
class ScheduleOnce:
    """Tell ``message`` to ``target`` once, ``delay`` seconds from now. A schedule with the same
    ``key`` is replaced."""

    key: str
    target: ActorRef[Any]
    message: Any
    delay: float


@dataclass(frozen=True)
class ScheduleTick:
    """Tell ``message`` to ``target`` every ``interval`` seconds (at a fixed rate, the first one
    ``interval`` seconds from now) until cancelled. A schedule with the same ``key`` is replaced."""

    key: str
    target: ActorRef[Any]
    message: Any
    interval: float


@dataclass(frozen=True)
class CancelSchedule:
    """Cancel the schedule registered under ``key`` (nothing happens if there is none)."""

    key: str


SchedulerMsg = ScheduleOnce | ScheduleTick | CancelSchedule


def scheduler() -> Behavior[SchedulerMsg]:
    """The scheduler behavior: spawn it (``system.scheduler`` is one started on first use) and tell
    it ``ScheduleOnce``/``ScheduleTick``/``CancelSchedule``. Its schedules end when it stops."""

    async def setup(ctx: ActorContext[SchedulerMsg]) -> Behavior[SchedulerMsg]:
        loop = asyncio.get_running_loop()
        handles: dict[str, asyncio.TimerHandle] = {}

        def cancel(key: str) -> None:
            handle = handles.pop(key, None)
            if handle is not None:
                handle.cancel()

        def once(key: str, target: ActorRef[Any], message: Any) -> None:
            handles.pop(key, None)
            target.tell(message)

        def tick(key: str, target: ActorRef[Any], message: Any, interval: float, due: float) -> None:
            target.tell(message)
            now = loop.time()
            due += interval
            if due < now:  # fell behind (a blocked loop): skip the missed ticks
                due = now + interval
            handles[key] = loop.call_at(due, tick, key, target, message, interval, due)

        def cancel_all() -> None:
            for handle in handles.values():
                handle.cancel()
            handles.clear()

        ctx.on_stop(cancel_all)

        async def receive(ctx: ActorContext[SchedulerMsg], msg: SchedulerMsg) -> Behavior[SchedulerMsg]:
            if isinstance(msg, ScheduleOnce):
                if msg.delay < 0:
                    raise ValueError(f"ScheduleOnce {msg.key!r}: delay must be >= 0")
                cancel(msg.key)
                handles[msg.key] = loop.call_later(msg.delay, once, msg.key, msg.target, msg.message)
            elif isinstance(msg, ScheduleTick):
                if msg.interval <= 0:
                    raise ValueError(f"ScheduleTick {msg.key!r}: interval must be > 0")
                cancel(msg.key)
                due = loop.time() + msg.interval
                handles[msg.key] = loop.call_at(due, tick, msg.key, msg.target, msg.message, msg.interval, due)
            elif isinstance(msg, CancelSchedule):
                cancel(msg.key)
            else:
                return Behaviors.unhandled()
            return Behaviors.same()

        return Behaviors.receive(receive)

    # a bad schedule (negative delay) is dropped with a log line; the other schedules carry on
    return Behaviors.supervise(
        Behaviors.setup(setup), OneForOneStrategy(max_restarts=-1, decider=lambda e: Directive.resume)
    )
