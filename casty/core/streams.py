"""``casty.core.streams`` of casty 0.21: the stream behaviors, their refs and protocol messages."""

from __future__ import annotations

from casty.streams import (
    CompleteStream,
    GetSink,
    GetSource,
    Push,
    SinkRef,
    SourceRef,
    StreamCancel,
    StreamCompleted,
    StreamConsumerMsg,
    StreamDemand,
    StreamElement,
    StreamProducerMsg,
    Subscribe,
    stream_consumer,
    stream_producer,
)

__all__ = [
    "CompleteStream",
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
    "StreamProducerMsg",
    "Subscribe",
    "stream_consumer",
    "stream_producer",
]
