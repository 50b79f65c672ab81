"""Two releases of one message class for rolling-upgrade tests: ``tests.sensor_v1`` and
``tests.sensor_v2`` each define ``SensorReading``; a process picks one by name and registers
it under the one wire name both releases share, so a reading of either release is the other's
on the wire (its fields mapped by name from protocol 3 on).

Release 2 adds ``unit`` (default ``"celsius"``); its producers send ``"kelvin"``, so a release 2
reader tells a release 1 reading (the default) from a release 2 one.
"""

from __future__ import annotations

import importlib
from typing import Any

from casty import ServiceKey
from casty.serde import MsgpackSerializer, TypeRegistry

WIRE_NAME = "sensors:SensorReading"
SCHEMAS = ("v1", "v2")
#: the readers of a node's readings, one of each release: each reads its own stream of them
READERS = SCHEMAS


def reader_key(reader: str) -> ServiceKey[Any]:
    """The service key of the producers whose stream ``reader`` reads."""
    return ServiceKey(f"sensor-readings-for-{reader}")


def reading_class(schema: str) -> type:
    """The ``SensorReading`` of release ``schema`` (``"v1"`` or ``"v2"``)."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}")
    cls: type = importlib.import_module(f"tests.sensor_{schema}").SensorReading
    return cls


def serializer(schema: str) -> MsgpackSerializer:
    """A serializer sending and reading release ``schema``'s reading under the shared name."""
    registry = TypeRegistry()
    registry.register(reading_class(schema), name=WIRE_NAME)
    return MsgpackSerializer(registry)


def reading(schema: str, sensor: str, seq: int) -> Any:
    """The ``seq``-th reading of ``sensor`` as release ``schema`` produces it."""
    cls = reading_class(schema)
    if schema == "v2":
        return cls(sensor, seq, seq / 2, "kelvin")
    return cls(sensor, seq, seq / 2)
