"""``casty.core.event_stream`` of casty 0.21: the event stream's messages and behavior."""

from __future__ import annotations

from casty.actors.events import EventStreamSubscribe, EventStreamUnsubscribe, Publish
from casty.actors.eventstream import EventStreamMsg, event_stream_actor

Subscribe = EventStreamSubscribe
Unsubscribe = EventStreamUnsubscribe

__all__ = ["EventStreamMsg", "Publish", "Subscribe", "Unsubscribe", "event_stream_actor"]
