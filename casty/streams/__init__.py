"""Backpressured streams between actors, local or across the network.

A ``stream_producer()`` actor is fed through its local :class:`SinkRef`; a
``stream_consumer(producer)`` actor subscribes to it and hands the elements to its local
:class:`SourceRef`, which user code iterates with ``async for``.  Between the two actors
only plain messages travel (``Subscribe``, ``StreamElement``, ``StreamDemand``, ...), so the
producer and the consumer may live in different processes.
"""

from __future__ import annotations

from casty.streams._consumer import SourceRef, stream_consumer
from casty.streams._drain import DrainOutcome, begin_drain, drain_streams
from casty.streams._messages import (
    CompleteStream,
    FailStream,
    GetSink,
    GetSource,
    Push,
    StreamCancel,
    StreamCompleted,
    StreamConsumerMsg,
    StreamDemand,
    StreamElement,
    StreamElements,
    StreamError,
    StreamProducerMsg,
    Subscribe,
    Subscribed,
    SubscriptionRefused,
)
from casty.streams._producer import SinkRef, stream_producer

StreamSubscribe = Subscribe
"""The stream ``Subscribe`` under a name that does not clash with the receptionist's ``casty.Subscribe``."""

__all__ = [
    "CompleteStream",
    "DrainOutcome",
    "FailStream",
    "GetSink",
    "GetSource",
    "Push",
    "SinkRef",
    "SourceRef",
    "StreamCancel",
    "StreamCompleted",
    "StreamConsumerMsg",
    "StreamDemand",
    "StreamElement",
    "StreamElements",
    "StreamError",
    "StreamProducerMsg",
    "StreamSubscribe",
    "Subscribe",
    "Subscribed",
    "SubscriptionRefused",
    "begin_drain",
    "drain_streams",
    "stream_consumer",
    "stream_producer",
]
