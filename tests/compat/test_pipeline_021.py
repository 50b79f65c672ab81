"""The sensor pipeline of casty 0.21's streaming guide, end to end in separate processes: three
nodes configured by a 0.21 ``casty.toml`` waiting for a quorum of three, and a client
constructed the 0.21 way that finds the producers and the alert monitor with ``client.lookup``
in a retry loop, consumes every sensor stream and streams alerts back to the monitor node."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.compat.pipeline_app import READINGS, THRESHOLD
from tests.ports import free_ports
from tests.procs import NodeProcess

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

APP = "tests.compat.pipeline_app"
SENSORS = ("temp", "humidity", "pressure")

CASTY_TOML_021 = """
[system]
name = "sensors"
suppress_dead_letters_on_shutdown = true

[cluster]
host = "127.0.0.1"
port = 25520
seed_nodes = ["127.0.0.1:25520"]

[cluster.gossip]
interval = 0.2
fanout = 3

[cluster.heartbeat]
interval = 0.2
availability_check_interval = 0.2

[cluster.failure_detector]
threshold = 8.0
acceptable_heartbeat_pause_ms = 600
min_std_deviation_ms = 100

[defaults.mailbox]
capacity = 5000
strategy = "drop_new"

[defaults.supervision]
strategy = "restart"
max_restarts = 3
within_seconds = 60.0
"""


async def test_sensor_pipeline_as_written_for_021(tmp_path: Path) -> None:
    config = tmp_path / "casty.toml"
    config.write_text(CASTY_TOML_021)
    ports = free_ports(3)
    seed = f"127.0.0.1:{ports[0]}"
    async with AsyncExitStack() as stack:
        nodes = [
            NodeProcess(
                APP,
                "node",
                "--port",
                str(port),
                "--seed",
                seed,
                "--nodes",
                "3",
                "--sensor",
                sensor,
                "--node-id",
                f"node-{i + 1}",
                "--config",
                str(config),
                *(["--alert-monitor"] if i == 2 else []),
                ready_timeout=60.0,
            )
            for i, (port, sensor) in enumerate(zip(ports, SENSORS, strict=True))
        ]
        started = await asyncio.gather(*(stack.enter_async_context(n) for n in nodes))
        everyone = sorted(f"127.0.0.1:{p}" for p in ports)
        for node in started:
            # each node returned from `async with` only once the quorum of three was up
            assert node.info["members"] == everyone
        client = await stack.enter_async_context(
            NodeProcess(APP, "client", "--contact", seed, "--producers", "3", ready_timeout=120.0)
        )
        summary = client.info
        assert await client.wait() == 0
    expected = [float(i) for i in range(READINGS)]
    assert summary["readings"] == {sensor: expected for sensor in SENSORS}
    over = sum(1 for v in expected if v > THRESHOLD)
    assert summary["alerts_sent"] == over * len(SENSORS)
    assert summary["alerts_received"] == summary["alerts_sent"]
