"""DNS discovery across processes: the records of the service name change as nodes come and
go (a resolver reading a file the test rewrites, see tests/discovery_app.py), and exactly one
cluster forms."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ports import common_free_port
from tests.procs import NodeProcess

NODE = "tests.discovery_node"
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")

CONFIG = """
[system]
name = "dns-test"

[cluster]
stable_after = 0.5
resolve_interval = 0.1
refresh_interval = 0.5
down_after = 3.0

[cluster.gossip]
interval = 0.2

[cluster.heartbeat]
interval = 0.2
availability_check_interval = 0.2

[remote]
reconnect_backoff_max = 0.3
"""


class Records:
    """The records of the service name: a file, one address a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.addresses: list[str] = []
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{a}\n" for a in self.addresses))
        tmp.replace(self.path)  # atomic: a resolver never reads half a file

    def add(self, address: str) -> None:
        self.addresses.append(address)
        self.write()

    def remove(self, address: str) -> None:
        self.addresses.remove(address)
        self.write()


def node(tmp_path: Path, records: Records, host: str, port: int, min_members: int) -> NodeProcess:
    config = tmp_path / "casty.toml"
    if not config.exists():
        config.write_text(CONFIG)
    env = {
        "CASTY_CLUSTER__HOST": host,
        "CASTY_CLUSTER__PORT": str(port),
        "CASTY_CLUSTER__DISCOVERY": "dns",
        "CASTY_CLUSTER__SERVICE_NAME": "nodes.test.internal",
        "CASTY_CLUSTER__MIN_MEMBERS": str(min_members),
    }
    return NodeProcess(NODE, "--records", str(records.path), "--config", str(config), env=env)


async def until(proc: NodeProcess, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Read the node's view lines until one satisfies ``predicate``; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{proc.info.get('node')}: condition not reached in {timeout}s; last view {last}")
        try:
            line = await proc.read_line(timeout=remaining)
        except TimeoutError:
            continue
        if "up" not in line:
            continue
        last = line
        if predicate(line):
            return line


async def start_published(proc: NodeProcess, records: Records, host: str) -> NodeProcess:
    """Start ``proc`` and publish its record once it runs (as an orchestrator does)."""
    await proc.start()
    records.add(host)
    return proc


async def stop_all(procs: list[NodeProcess]) -> list[int | None]:
    return list(await asyncio.gather(*(p.stop() for p in procs)))


@pytest.mark.timeout(300)
async def test_three_nodes_started_at_once_form_one_cluster_ten_times(tmp_path: Path) -> None:
    timings: list[float] = []
    for attempt in range(10):
        round_dir = tmp_path / f"round-{attempt}"
        round_dir.mkdir()
        records = Records(round_dir / "records")
        port = common_free_port(HOSTS)
        everyone = sorted(f"{h}:{port}" for h in HOSTS)
        procs = [node(round_dir, records, host, port, min_members=3) for host in HOSTS]
        started = time.monotonic()
        try:
            await asyncio.gather(*(start_published(p, records, h) for p, h in zip(procs, HOSTS, strict=True)))
            views = [await until(p, lambda v, e=everyone: v["up"] == e) for p in procs]
            timings.append(time.monotonic() - started)
            assert all(v["members"] == everyone for v in views)
            formed = [v["node"] for v in views if v["formed"]]
            assert formed == [f"127.0.0.1:{port}"], f"round {attempt}: formed by {formed}"
        finally:
            await stop_all(procs)
    print(f"10 formations of 3 nodes: {min(timings):.2f}s .. {max(timings):.2f}s from start to all up")


@pytest.mark.timeout(120)
async def test_a_record_removed_and_added_again_joins_the_existing_cluster(tmp_path: Path) -> None:
    records = Records(tmp_path / "records")
    port = common_free_port(HOSTS)
    a, b, c = (f"{h}:{port}" for h in HOSTS)
    procs = [node(tmp_path, records, host, port, min_members=3) for host in HOSTS]
    try:
        await asyncio.gather(*(start_published(p, records, h) for p, h in zip(procs, HOSTS, strict=True)))
        for p in procs:
            await until(p, lambda v: v["up"] == [a, b, c])
        # the node that formed the cluster (the lowest address) goes away with its record
        assert await procs[0].stop() == 0
        records.remove(HOSTS[0])
        for p in procs[1:]:
            await until(p, lambda v: v["members"] == [b, c])
        # it comes back: still the lowest address, but a cluster exists, so it joins it
        again = node(tmp_path, records, HOSTS[0], port, min_members=3)
        procs[0] = await start_published(again, records, HOSTS[0])
        view = await until(again, lambda v: v["up"] == [a, b, c])
        assert view["formed"] is False
        for p in procs[1:]:
            await until(p, lambda v: v["up"] == [a, b, c])
    finally:
        codes = await stop_all(procs)
    assert codes == [0, 0, 0]
