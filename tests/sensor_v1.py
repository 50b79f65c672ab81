"""Release 1 of the sensor reading a rolling-upgrade test streams (see tests/sensor_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    seq: int
    value: float
