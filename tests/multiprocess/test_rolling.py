"""Rolling replacement across processes: three nodes found by DNS discovery, each producing a
stream a client consumes, replaced one at a time by nodes speaking another range of protocol
versions while the streams run. Every replaced node drains on SIGTERM: its stream delivers
every element it accepted, in order, exactly once, and completes; the replacement joins the
running cluster and the client streams from it."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from casty import ClusterClient, GetSource, SourceRef
from casty.streams import stream_consumer
from tests.conftest import eventually
from tests.drain_app import READINGS
from tests.multiprocess.test_discovery import CONFIG, HOSTS, Records, common_free_port
from tests.procs import NodeProcess

NODE = "tests.rolling_node"
DRAIN_TIMEOUT = 10.0


class Streams:
    """The client's side: one consumer per producer it finds, each stream's elements in order."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client
        self.received: dict[str, list[int]] = {}
        self.outcome: dict[str, str] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def follow(self) -> None:
        async for listing in self.client.listings(READINGS):
            for instance in listing.instances:
                key = str(instance.ref)
                if key not in self.received:
                    self.received[key] = []
                    name = f"reader-{len(self.received)}"
                    self.tasks.append(asyncio.ensure_future(self.read(instance.ref, key, name)))

    async def read(self, ref: Any, key: str, name: str) -> None:
        consumer = self.client.spawn(stream_consumer(ref), name)
        source: SourceRef[int] = await self.client.ask(consumer, lambda r: GetSource(reply_to=r), timeout=10)
        values = self.received[key]
        try:
            async for value in source:
                values.append(value)
            self.outcome[key] = "completed"
        except Exception as exc:  # the test reports it below
            self.outcome[key] = f"{type(exc).__name__}: {exc}"


def node(tmp_path: Path, records: Records, host: str, port: int, versions: str) -> NodeProcess:
    config = tmp_path / "casty.toml"
    if not config.exists():
        config.write_text(CONFIG)
    env = {
        "CASTY_CLUSTER__HOST": host,
        "CASTY_CLUSTER__PORT": str(port),
        "CASTY_CLUSTER__DISCOVERY": "dns",
        "CASTY_CLUSTER__SERVICE_NAME": "sensors.test.internal",
        "CASTY_CLUSTER__MIN_MEMBERS": "3",
        "CASTY_SHUTDOWN__DRAIN_TIMEOUT": str(DRAIN_TIMEOUT),
    }
    args = ["--records", str(records.path), "--config", str(config), "--versions", versions]
    return NodeProcess(NODE, *args, env=env, ready_timeout=60)


async def start_published(proc: NodeProcess, records: Records, host: str) -> NodeProcess:
    records.add(host)  # the record first: the node is ready once it is a member
    return await proc.start()


@pytest.mark.timeout(240)
async def test_nodes_replaced_one_at_a_time_lose_nothing(tmp_path: Path) -> None:
    records = Records(tmp_path / "records")
    port = common_free_port(HOSTS)
    procs = [node(tmp_path, records, host, port, "1,2") for host in HOSTS]
    drain_times: list[float] = []
    try:
        await asyncio.gather(*(start_published(p, records, h) for p, h in zip(procs, HOSTS, strict=True)))
        contacts = [(h, port) for h in HOSTS]
        async with ClusterClient(contact_points=contacts, system_name="dns-test") as client:
            streams = Streams(client)
            following = asyncio.ensure_future(streams.follow())
            try:
                producers = {p.info["producer"] for p in procs}
                await eventually(
                    lambda: all(len(streams.received.get(k, ())) >= 100 for k in producers),
                    timeout=30,
                    what=f"the client streaming from all three nodes {producers}",
                )
                for i, host in enumerate(HOSTS):
                    old = procs[i]
                    key = old.info["producer"]
                    assert old.proc is not None
                    started = time.monotonic()
                    old.proc.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(old.wait(), DRAIN_TIMEOUT + 5)
                    drain_times.append(time.monotonic() - started)
                    final = await old.read_line(timeout=5)
                    assert code == 0 and drain_times[-1] < DRAIN_TIMEOUT
                    await eventually(lambda k=key: k in streams.outcome, timeout=10, what=f"the end of {key}")
                    assert streams.outcome[key] == "completed"
                    assert streams.received[key] == list(range(final["accepted"]))  # none lost, doubled, reordered
                    records.remove(host)
                    old_node = f"{host}:{port}"
                    await eventually(
                        lambda n=old_node: all(str(m.node) != n for m in client.members),
                        timeout=15,
                        what=f"the cluster to remove {old_node}: {client.members} contact {client.contact}",
                    )
                    new = node(tmp_path, records, host, port, "2,3")  # another release
                    procs[i] = await start_published(new, records, host)
                    assert new.info["versions"] == [2, 3]
                    new_key = new.info["producer"]
                    await eventually(
                        lambda k=new_key: len(streams.received.get(k, ())) >= 100,
                        timeout=30,
                        what=f"the client streaming from the replacement {new_key}",
                    )
                # every stream still running is whole and in order so far
                for key in (p.info["producer"] for p in procs):
                    values = streams.received[key]
                    assert values == list(range(len(values)))
                    assert key not in streams.outcome
            finally:
                following.cancel()
                for task in streams.tasks:
                    task.cancel()
    finally:
        codes = await asyncio.gather(*(p.stop() for p in procs))
    assert list(codes) == [0, 0, 0]
    print("rolling replacement: drains " + ", ".join(f"{t:.2f}s" for t in drain_times))
