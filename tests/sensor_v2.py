"""Release 2 of the sensor reading: release 1 with a field added, with a default (see
tests/sensor_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    seq: int
    value: float
    unit: str = "celsius"
