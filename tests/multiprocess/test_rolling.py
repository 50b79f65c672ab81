"""Rolling replacement across processes: three nodes found by DNS discovery, each producing a
stream a client consumes, replaced one at a time by nodes speaking another range of protocol
versions while the streams run. Every replaced node drains on SIGTERM: its stream delivers
every element it accepted, in order, exactly once, and completes; the replacement joins the
running cluster and the client streams from it.

The schema upgrade does the same with streams of ``SensorReading`` records: release 1 of the
class on the old nodes, release 2 (a field added, with a default) on their replacements, and
two clients, one of each release, reading every stream (see tests/sensor_schema.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from casty import ClusterClient, GetSource, ServiceKey, SourceRef
from casty.streams import stream_consumer
from tests.conftest import eventually
from tests.drain_app import READINGS
from tests.multiprocess.test_discovery import CONFIG, HOSTS, Records
from tests.ports import common_free_port
from tests.procs import NodeProcess
from tests.sensor_schema import reader_key, reading_class, serializer

NODE = "tests.rolling_node"
DRAIN_TIMEOUT = 10.0


class Streams:
    """The client's side: one consumer per producer it finds, each stream's elements in order."""

    def __init__(self, client: ClusterClient, key: ServiceKey[Any] = READINGS) -> None:
        self.client = client
        self.key = key
        self.received: dict[str, list[Any]] = {}
        self.outcome: dict[str, str] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def follow(self) -> None:
        async for listing in self.client.listings(self.key):
            for instance in listing.instances:
                key = str(instance.ref)
                if key not in self.received:
                    self.received[key] = []
                    name = f"reader-{len(self.received)}"
                    self.tasks.append(asyncio.ensure_future(self.read(instance.ref, key, name)))

    async def read(self, ref: Any, key: str, name: str) -> None:
        consumer = self.client.spawn(stream_consumer(ref), name)
        source: SourceRef[Any] = await self.client.ask(consumer, lambda r: GetSource(reply_to=r), timeout=10)
        values = self.received[key]
        try:
            async for value in source:
                values.append(value)
            self.outcome[key] = "completed"
        except Exception as exc:  # the test reports it below
            self.outcome[key] = f"{type(exc).__name__}: {exc}"


def node(tmp_path: Path, records: Records, host: str, port: int, versions: str, schema: str = "") -> NodeProcess:
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
    if schema:
        args += ["--schema", schema]
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


def readings(schema: str, sensor: str, count: int, unit: str) -> list[Any]:
    """What a reader of release ``schema`` receives of ``count`` readings of ``sensor`` whose
    unit (release 2's field) is ``unit``."""
    cls = reading_class(schema)
    if schema == "v2":
        return [cls(sensor, i, i / 2, unit) for i in range(count)]
    return [cls(sensor, i, i / 2) for i in range(count)]


@pytest.mark.timeout(240)
async def test_schema_upgrade_while_streaming(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Three nodes producing release 1 ``SensorReading`` streams (and speaking protocol 1..3)
    are replaced one at a time by nodes producing release 2 (``unit`` added, default
    ``"celsius"``; they send ``"kelvin"``) and speaking 2..3, while a release 1 client and a
    release 2 client read every stream: nothing lost, doubled or reordered, no message refused,
    no connection closed; the release 2 reader sees the default in release 1 readings, the
    release 1 reader ignores the field release 2 added. (At protocol 1 or 2 records travel
    positionally and a class must keep its shape: a run of release 1 readings is refused by a
    release 2 reader there, which is why field names came with protocol 3.)"""
    old_versions, new_versions = "1,3", "2,3"
    caplog.set_level(logging.WARNING, logger="casty")
    records = Records(tmp_path / "records")
    port = common_free_port(HOSTS)
    procs = [node(tmp_path, records, host, port, old_versions, "v1") for host in HOSTS]
    finals: dict[str, tuple[str, int]] = {}  # producer -> (sensor, accepted) of every drained node
    try:
        await asyncio.gather(*(start_published(p, records, h) for p, h in zip(procs, HOSTS, strict=True)))
        contacts = [(h, port) for h in HOSTS]
        async with (
            ClusterClient(contact_points=contacts, system_name="dns-test", serializer=serializer("v1")) as client_v1,
            ClusterClient(contact_points=contacts, system_name="dns-test", serializer=serializer("v2")) as client_v2,
        ):
            readers = {"v1": Streams(client_v1, reader_key("v1")), "v2": Streams(client_v2, reader_key("v2"))}
            following = [asyncio.ensure_future(r.follow()) for r in readers.values()]

            def streamed(proc: NodeProcess, n: int = 100) -> bool:
                keys = proc.info["producer"]
                return all(len(r.received.get(keys[s], ())) >= n for s, r in readers.items())

            try:
                for proc in procs:
                    await eventually(
                        lambda p=proc: streamed(p), timeout=30, what=f"both clients streaming from {proc.info}"
                    )
                for i, host in enumerate(HOSTS):
                    old = procs[i]
                    sensor = old.info["node"]
                    assert old.proc is not None and old.info["schema"] == "v1"
                    old.proc.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(old.wait(), DRAIN_TIMEOUT + 5)
                    final = await old.read_line(timeout=5)
                    assert code == 0
                    for schema, reader in readers.items():
                        key, accepted = final["producer"][schema], final["accepted"][schema]
                        finals[key] = (sensor, accepted)
                        await eventually(lambda r=reader, k=key: k in r.outcome, timeout=10, what=f"the end of {key}")
                        assert reader.outcome[key] == "completed", (schema, reader.outcome[key])
                        # none lost, doubled or reordered; release 2 reads the default for release 1
                        assert reader.received[key] == readings(schema, sensor, accepted, "celsius"), schema
                        assert all(type(r) is reading_class(schema) for r in reader.received[key])
                    records.remove(host)
                    old_node = f"{host}:{port}"
                    await eventually(
                        lambda n=old_node: all(str(m.node) != n for m in client_v1.members),
                        timeout=15,
                        what=f"the cluster to remove {old_node}",
                    )
                    new = node(tmp_path, records, host, port, new_versions, "v2")  # another release
                    procs[i] = await start_published(new, records, host)
                    assert new.info["versions"] == [int(v) for v in new_versions.split(",")]
                    await eventually(
                        lambda p=new: streamed(p), timeout=30, what=f"both clients streaming from {new.info}"
                    )
                # the replacements' streams, still running: whole and in order so far, each reader
                # with its own release of the class (release 1 without the added field)
                for proc in procs:
                    sensor = proc.info["node"]
                    for schema, reader in readers.items():
                        key = proc.info["producer"][schema]
                        got = list(reader.received[key])
                        assert got == readings(schema, sensor, len(got), "kelvin"), schema
                        assert key not in reader.outcome
            finally:
                for task in following:
                    task.cancel()
                for reader in readers.values():
                    for task in reader.tasks:
                        task.cancel()
    finally:
        codes = await asyncio.gather(*(p.stop() for p in procs))
    assert list(codes) == [0, 0, 0]
    assert len(finals) == 6  # three drained nodes, a stream for each reader
    refused = [
        r.getMessage()
        for r in caplog.records
        if any(s in r.getMessage() for s in ("cannot decode", "refused a message", "could not decode"))
    ]
    assert not refused, refused  # no message refused, no connection closed on a decode error
