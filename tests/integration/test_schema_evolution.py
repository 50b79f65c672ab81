"""Record messages between two releases of a class, over real sockets.

Each system registers its own release of a record class under one wire name, as two versions
of a program would. At protocol 3 the receiver maps the sender's fields by name: an added field
takes its default, a field it lacks is ignored; a field it needs and the sender does not send
makes that message a dead letter naming the class and the field, and the connection stays up.
At an older protocol version records travel positionally, as they did before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from casty import DeadLetter, DeserializationFailed, EventStreamSubscribe
from casty.remote import RemoteActorSystem
from casty.serde import MsgpackSerializer, RecordRun, TypeRegistry
from casty.testkit import TestProbe
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(60)

WIRE = "sensors:Reading"


@dataclass(frozen=True)
class ReadingV1:
    sensor: str
    seq: int


@dataclass(frozen=True)
class ReadingV2:
    seq: int
    sensor: str
    unit: str = "C"
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadingNeedsUnit:
    sensor: str
    seq: int
    unit: str


def system_with(cls: type) -> RemoteActorSystem:
    registry = TypeRegistry()
    registry.register(cls, name=WIRE)
    return RemoteActorSystem("test", serializer=MsgpackSerializer(registry))


def versions(system: RemoteActorSystem, low: int, high: int) -> None:
    transport = system.require_transport()
    transport.protocol_versions = (low, high)


async def test_added_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    async with system_with(ReadingV1) as old, system_with(ReadingV2) as new:
        on_old, on_new = TestProbe(old, "old"), TestProbe(new, "new")
        to_new = old.ref(f"{new.address}{on_new.ref.path}")
        to_old = new.ref(f"{old.address}{on_old.ref.path}")
        to_new.tell(ReadingV1("t", 1))
        assert await on_new.receive(10) == ReadingV2(seq=1, sensor="t", unit="C", tags=[])
        to_old.tell(ReadingV2(2, "u", unit="F", tags=["x"]))
        assert await on_old.receive(10) == ReadingV1("u", 2)
        # runs, column-wise, both ways
        to_new.tell(RecordRun([ReadingV1(f"s{i}", i) for i in range(100)]))
        assert await on_new.receive(10) == [ReadingV2(i, f"s{i}") for i in range(100)]
        to_old.tell(RecordRun([ReadingV2(i, f"s{i}", "K") for i in range(100)]))
        assert await on_old.receive(10) == [ReadingV1(f"s{i}", i) for i in range(100)]
        conn = old.require_transport().associations[new.address].conn
        assert conn is not None and conn.handshake.version == 3


async def test_a_missing_field_without_default_is_a_dead_letter_and_the_connection_stays_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="casty.remote")
    async with system_with(ReadingV1) as sender, system_with(ReadingNeedsUnit) as receiver:
        dead = TestProbe(receiver, "dead")
        receiver.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        notices = TestProbe(sender, "notices")
        sender.event_stream.tell(EventStreamSubscribe(DeserializationFailed, notices.ref))
        target = TestProbe(receiver, "target")
        to_target = sender.ref(f"{receiver.address}{target.ref.path}")
        to_target.tell("first")
        assert await target.receive(10) == "first"
        assoc = sender.require_transport().associations[receiver.address]
        conn = assoc.conn
        assert conn is not None
        to_target.tell(ReadingV1("s", 1))
        to_target.tell("next")
        letter = await dead.expect(DeadLetter, timeout=10)
        assert letter.recipient == target.ref
        assert "cannot decode" in letter.reason and WIRE in letter.reason
        assert "ReadingNeedsUnit" in letter.reason and "'unit'" in letter.reason
        assert await target.receive(10) == "next"  # the next message went through
        # again, as a run: a dead letter too, and still the same connection
        to_target.tell(RecordRun([ReadingV1("s", 2), ReadingV1("s", 3)]))
        to_target.tell("after the run")
        letter = await dead.expect(DeadLetter, timeout=10)
        assert "'unit'" in letter.reason
        assert await target.receive(10) == "after the run"
        assert assoc.conn is conn and conn.state == "open"
        inbound = receiver.require_transport().associations[sender.address].conn
        assert inbound is not None and inbound.state == "open"
        notice = await notices.expect(DeserializationFailed, timeout=10)
        assert notice.type_name == WIRE and "'unit'" in notice.reason
        await eventually(
            lambda: any("'unit'" in r.getMessage() and "stays up" in r.getMessage() for r in caplog.records),
            timeout=5,
            what="the refusal logged on the receiving side",
        )


async def test_an_older_protocol_version_sends_records_positionally() -> None:
    async with system_with(ReadingV1) as old, system_with(ReadingV2) as new:
        versions(old, 1, 2)  # the release before field names
        on_old, on_new = TestProbe(old, "old"), TestProbe(new, "new")
        dead = TestProbe(old, "dead")
        old.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        to_new = old.ref(f"{new.address}{on_new.ref.path}")
        to_old = new.ref(f"{old.address}{on_old.ref.path}")
        to_new.tell("hello")
        assert await on_new.receive(10) == "hello"
        conn = new.require_transport().associations[old.address].conn
        assert conn is not None and conn.handshake.version == 2
        assert getattr(conn.encoder, "protocol_version", None) == 2
        # positionally, V1's values fill V2's first two fields: not mapped by name
        to_new.tell(ReadingV1("t", 1))
        received: Any = await on_new.receive(10)
        assert type(received) is ReadingV2 and (received.seq, received.sensor) == ("t", 1)
        # and V2's four values are too many for V1: a dead letter, the connection stays up
        to_old.tell(ReadingV2(2, "u"))
        to_old.tell("next")
        letter = await dead.expect(DeadLetter, timeout=10)
        assert WIRE in letter.reason
        assert await on_old.receive(10) == "next"
        assert new.require_transport().associations[old.address].conn is conn
