"""The event stream as a behavior: publish/subscribe by event type, spawnable by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from casty.actors.behaviors import Behavior, Behaviors
from casty.actors.events import EventStreamSubscribe, EventStreamUnsubscribe, Publish, Terminated
from casty.actors.ref import ActorRef

if TYPE_CHECKING:
    from casty.actors.context import ActorContext

__all__ = ["EventStreamMsg", "event_stream_actor"]

EventStreamMsg = EventStreamSubscribe[Any] | EventStreamUnsubscribe[Any] | Publish


def event_stream_actor() -> Behavior[EventStreamMsg]:
    """An event stream actor (``system.event_stream`` is the system's own): ``Publish(event)``
    reaches every subscriber of the event's type or of one of its base types; a subscriber that
    stops is dropped."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        subscribers: dict[type, set[ActorRef[Any]]] = {}

        def drop(ref: ActorRef[Any]) -> None:
            for key in [k for k, subs in subscribers.items() if ref in subs]:
                subs = subscribers[key]
                subs.discard(ref)
                if not subs:
                    del subscribers[key]

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if isinstance(msg, Publish):
                event = msg.event
                for cls in type(event).__mro__:
                    subs = subscribers.get(cls)
                    if subs:
                        for ref in list(subs):
                            ref.tell(event)
            elif isinstance(msg, EventStreamSubscribe):
                subscribers.setdefault(msg.event_type, set()).add(msg.handler)
                ctx.watch(msg.handler)
            elif isinstance(msg, EventStreamUnsubscribe):
                subs = subscribers.get(msg.event_type)
                if subs is not None:
                    subs.discard(msg.handler)
                    if not subs:
                        del subscribers[msg.event_type]
                if not any(msg.handler in s for s in subscribers.values()):
                    ctx.unwatch(msg.handler)
            elif isinstance(msg, Terminated):
                if msg.reason != "not watchable":  # a probe or reply ref stays until unsubscribed
                    drop(msg.ref)
            else:
                return Behaviors.unhandled()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)
