"""Observing a running cluster of node processes: /metrics, /ready, ``casty status``, refusal of
strangers."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from casty import CastyConfig, ClusterClient, GetSource, SourceRef, stream_consumer
from tests.observe_app import NUMBERS_KEY, OBSERVED_KEY
from tests.observing import http_get, run_casty, until_ready_is
from tests.ports import free_port
from tests.procs import NodeProcess

pytestmark = pytest.mark.timeout(120)

NODE = "tests.observe_node"
NAME = "observed"
COUNT = 20_000


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text, keyed by name and sorted labels."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


class Cluster:
    def __init__(self, stack: AsyncExitStack, secret: Path) -> None:
        self.stack = stack
        self.secret = secret
        self.nodes: list[NodeProcess] = []
        self.metrics: list[int] = []

    async def start_node(self, *extra: str, min_members: int = 1) -> NodeProcess:
        metrics = free_port()
        seed = [] if not self.nodes else ["--seed", f"127.0.0.1:{self.nodes[0].port}"]
        proc = NodeProcess(
            NODE,
            "--name", NAME,
            "--secret-file", str(self.secret),
            "--metrics-port", str(metrics),
            "--min-members", str(min_members),
            *seed,
            *extra,
        )  # fmt: skip
        await self.stack.enter_async_context(proc)
        self.nodes.append(proc)
        self.metrics.append(metrics)
        return proc


def client_config(secret: Path) -> CastyConfig:
    return CastyConfig.from_dict(
        {
            "system": {"name": NAME},
            "security": {"secret_file": str(secret)},
            "client": {"reconnect_backoff_min": 0.05, "reconnect_backoff_max": 0.5},
        }
    )


async def test_ready_flips_across_join_and_leave(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("observe-secret\n")
    async with AsyncExitStack() as stack:
        cluster = Cluster(stack, secret)
        first = await cluster.start_node(min_members=2)
        # up on its own, but the cluster has not reached min_members
        await until_ready_is(cluster.metrics[0], 503, 10, reason="min_members")
        status, text = await http_get(cluster.metrics[0], "/alive")
        assert status == 200, text
        await cluster.start_node(min_members=2)
        await until_ready_is(cluster.metrics[0], 200, 20)
        await until_ready_is(cluster.metrics[1], 200, 20)
        third = await cluster.start_node(min_members=2)
        await until_ready_is(cluster.metrics[2], 200, 20)
        # the third leaves (and keeps running): it is no longer ready, the others still are
        assert third.proc is not None and third.proc.stdin is not None
        third.proc.stdin.write(b"leave\n")
        assert (await third.read_line(15)) == {"left": True}
        await until_ready_is(cluster.metrics[2], 503, 10, reason="this member is")
        for port in cluster.metrics[:2]:
            assert (await http_get(port, "/ready"))[0] == 200
        assert first.proc is not None and first.proc.returncode is None


async def test_metrics_status_and_strangers_on_a_streaming_cluster(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("observe-secret\n")
    async with AsyncExitStack() as stack:
        cluster = Cluster(stack, secret)
        await cluster.start_node("--produce", str(COUNT))
        await asyncio.gather(cluster.start_node(), cluster.start_node())
        for port in cluster.metrics:
            await until_ready_is(port, 200, 30)

        # a client streams every element the producer on the first node offers
        client = await stack.enter_async_context(
            ClusterClient([("127.0.0.1", cluster.nodes[1].port)], NAME, config=client_config(secret))
        )
        listing = await client.wait_for_service(NUMBERS_KEY, timeout=20)
        producer = next(iter(listing.instances)).ref
        consumer = client.spawn(stream_consumer(producer), "numbers-consumer")
        source: SourceRef[int] = await client.ask(consumer, lambda r: GetSource(r), timeout=10)
        received = [x async for x in source]
        assert received == list(range(COUNT))
        mine = source.stats()
        assert mine.role == "consumer" and mine.delivered == COUNT and mine.accepted == COUNT and mine.done

        # the producer's node counts exactly the elements delivered, in and out (the consumer's
        # acknowledgement of the end, which confirms the last elements, may still be on its way)
        async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            status, text = await http_get(cluster.metrics[0], "/metrics")
            assert status == 200, text
            return samples(text)

        found = await scrape()
        deadline = asyncio.get_running_loop().time() + 10
        while total(found, "casty_stream_elements_total", role="producer", direction="out") < COUNT:
            assert asyncio.get_running_loop().time() < deadline, "the producer never counted every element delivered"
            await asyncio.sleep(0.05)
            found = await scrape()
        assert total(found, "casty_stream_elements_total", role="producer", direction="in") == COUNT
        assert total(found, "casty_stream_elements_total", role="producer", direction="out") == COUNT
        assert total(found, "casty_stream_buffered", role="producer") == 0
        assert total(found, "casty_stream_unacked") == 0
        assert total(found, "casty_members", status="up") == 3
        assert total(found, "casty_ready") == 1
        peers = {dict(ls)["peer"] for (n, ls) in found if n == "casty_remote_bytes_total"}
        assert {f"127.0.0.1:{n.port}" for n in cluster.nodes[1:]} <= peers
        assert total(found, "casty_remote_bytes_total", direction="sent") > COUNT  # the elements went out
        assert total(found, "casty_gossip_messages_total", direction="received") > 0

        # casty status --json against the cluster's real state. Registrations replicate with
        # gossip: first wait until the contact node holds every member's.
        async with ClusterClient([("127.0.0.1", cluster.nodes[2].port)], NAME, config=client_config(secret)) as watcher:
            await watcher.wait_for_service(OBSERVED_KEY, timeout=20, count=3)
        ports = sorted(n.port for n in cluster.nodes)
        code, out, err = await run_casty(
            "status", "--contact", f"127.0.0.1:{cluster.nodes[2].port}", "--secret-file", str(secret), "--json"
        )
        assert code == 0, err
        status_doc: dict[str, Any] = json.loads(out)
        assert status_doc["system"] == NAME
        assert sorted(m["address"] for m in status_doc["members"]) == [f"127.0.0.1:{p}" for p in ports]
        assert all(m["status"] == "up" and m["reachable"] for m in status_doc["members"])
        assert status_doc["leader"] == f"127.0.0.1:{ports[0]}"
        assert sorted(i["node"] for i in status_doc["services"]["observed"]) == [f"127.0.0.1:{p}" for p in ports]
        streams = [s for s in status_doc["streams"] if s["role"] == "producer"]
        assert len(streams) == 1 and streams[0]["node"] == f"127.0.0.1:{cluster.nodes[0].port}"
        assert streams[0]["delivered"] == COUNT and streams[0]["done"]
        assert set(status_doc["nodes"]) == {f"127.0.0.1:{p}" for p in ports}
        assert all(n["ready"] for n in status_doc["nodes"].values())

        # the text form names the same members
        code, out, err = await run_casty("status", "--contact", f"127.0.0.1:{ports[0]}", "--secret-file", str(secret))
        assert code == 0, err
        assert "MEMBERS" in out and all(f"127.0.0.1:{p}" in out for p in ports) and "observed" in out

        # top draws the same view, refreshed
        code, out, err = await run_casty(
            "top", "--contact", f"127.0.0.1:{ports[0]}", "--secret-file", str(secret), "--iterations", "2",
            "--interval", "0.2",
        )  # fmt: skip
        assert code == 0, err
        assert out.count("casty top") == 2 and out.count("MEMBERS") == 2

        # nothing listens: exit 2 with a one-line reason
        dead = free_port()
        code, out, err = await run_casty("status", "--contact", f"127.0.0.1:{dead}", "--timeout", "2")
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and f"127.0.0.1:{dead}" in err

        # without the secret the node refuses the inspection: exit 2, the reason names the secret
        code, out, err = await run_casty("status", "--contact", f"127.0.0.1:{ports[0]}", "--timeout", "3")
        assert code == 2 and out == "", out
        assert "secret" in err and err.count("\n") == 1, err
        wrong = tmp_path / "wrong"
        wrong.write_text("not-the-secret\n")
        code, out, err = await run_casty(
            "status", "--contact", f"127.0.0.1:{ports[0]}", "--secret-file", str(wrong), "--timeout", "3"
        )
        assert code == 2 and out == "" and "secret" in err, err


LOGGING_PROGRAM = """
import asyncio, logging
import casty
from casty import Behaviors

async def main():
    async with casty.RemoteActorSystem("logs", port=0) as system:
        async def receive(ctx, msg):
            ctx.log.warning("got %s", msg)
        ref = system.spawn(Behaviors.receive(receive), "talker")
        ref.tell("hello")
        await asyncio.sleep(0.2)
        print(system.port, flush=True)

casty.run(main())
"""


async def test_json_logs_from_the_environment_carry_node_and_actor() -> None:
    import os
    import sys

    env = dict(os.environ, CASTY_LOG_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOGGING_PROGRAM, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    port = int(out.decode().strip())
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    talker = [line for line in lines if line.get("actor") == "/user/talker"]
    assert talker and talker[0]["message"] == "got hello" and talker[0]["level"] == "WARNING"
    assert all(line["node"] == f"127.0.0.1:{port}" for line in talker)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
