"""The public API: every exported name resolves, and the guide's names come from top-level casty."""

from __future__ import annotations

import casty


def test_every_public_name_resolves() -> None:
    for name in casty.__all__:
        assert getattr(casty, name) is not None, name
    assert len(set(casty.__all__)) == len(casty.__all__)


def test_guide_names_are_exported() -> None:
    guide = [
        "ActorRef", "Behaviors", "ServiceKey", "SinkRef", "SourceRef", "GetSink", "GetSource",
        "stream_producer", "stream_consumer", "StreamProducerMsg", "StreamElement", "StreamDemand",
        "StreamCompleted", "StreamSubscribe",
    ]  # fmt: skip
    missing = [n for n in guide if n not in casty.__all__]
    assert not missing, missing
    # the receptionist owns the plain name; the stream protocol's Subscribe is StreamSubscribe
    assert casty.Subscribe is not casty.StreamSubscribe
