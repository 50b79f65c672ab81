"""Messages shared by the cluster nodes and the client of the sensor pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from casty import ActorRef, ServiceKey, StreamProducerMsg


@dataclass(frozen=True)
class SensorReading:
    sensor: str
    value: float
    timestamp: float
    node: str


@dataclass(frozen=True)
class Alert:
    sensor: str
    value: float
    threshold: float
    timestamp: float


@dataclass(frozen=True)
class ConsumeAlerts:
    producer: ActorRef[StreamProducerMsg[Alert]]


SENSOR_KEY: ServiceKey[StreamProducerMsg[SensorReading]] = ServiceKey("sensor")
ALERT_MONITOR_KEY: ServiceKey[ConsumeAlerts] = ServiceKey("alert-monitor")

# value ranges of the simulated sensors and the alert thresholds the client applies
RANGES: dict[str, tuple[float, float]] = {
    "temp": (15.0, 35.0),
    "humidity": (30.0, 90.0),
    "pressure": (990.0, 1040.0),
}
THRESHOLDS: dict[str, float] = {"temp": 30.0, "humidity": 80.0, "pressure": 1030.0}

RED = "\033[31m"
YELLOW = "\033[33m"
MAGENTA = "\033[35m"
GREEN = "\033[32m"
RESET = "\033[0m"
