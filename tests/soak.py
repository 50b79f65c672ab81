"""Soak run: 3 cluster nodes and a ClusterClient streaming at full rate while connections are
cut at random. Every element must arrive exactly once and in order, and the nodes' memory must
stay flat. Not part of the test suite (it runs for minutes); one command:

    python -m tests.soak --seconds 180        # or: make soak

Each node listens behind its own ChaosProxy (it advertises the proxy's port), so every
connection to it, from the other nodes and from the client, can be cut. The run repeats rounds
until the time is up; in each round every node produces ``--elements`` ints, the client
consumes the three streams and node 1 also consumes node 2's second stream (node to node),
while the chaos task cuts a random proxy's connections every 0.2-1.5 s and now and then
blackholes one for a moment. The process prints one line per round and a final JSON summary,
and exits 0 when every round verified and no node grew by more than ``--max-growth-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import casty
from casty import ClusterClient, ClusteredActorSystem, GetSource, SourceRef, stream_consumer
from casty.testkit import TestProbe
from tests.chaos_proxy import ChaosProxy
from tests.procs import NodeProcess
from tests.remote_app import _wait_for_exit
from tests.stream_app import ConsumerReport, StartConsumer, Started, StartProducer, control

SYSTEM = "soak"

SOAK_CONFIG = {
    "system": {"name": SYSTEM},
    "remote": {"reconnect_backoff_min": 0.01, "reconnect_backoff_max": 0.2, "give_up_after": 60.0},
    "streams": {"resend_interval": 0.3, "timeout": 60.0},
    "cluster": {"down_after": 60.0},
    "client": {"reconnect_backoff_min": 0.05, "reconnect_backoff_max": 0.5},
}


def soak_config() -> casty.CastyConfig:
    return casty.CastyConfig.from_dict(SOAK_CONFIG)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the node program ------------------------------------------------------------------------


async def run_node(args: argparse.Namespace) -> None:
    seeds = [("127.0.0.1", args.seed)] if args.seed else []
    system = ClusteredActorSystem(
        SYSTEM, "127.0.0.1", args.port, seed_nodes=seeds, config=soak_config(), bind_port=0
    )
    async with system:
        system.spawn(control(), "control")
        assert system.transport is not None
        info = {"port": system.port, "bind_port": system.transport.bind_port, "pid": os.getpid()}
        print(json.dumps(info), flush=True)
        await _wait_for_exit()


# -- the soak ----------------------------------------------------------------------------------


async def drain(source: SourceRef[int]) -> tuple[int, int]:
    """(elements, order violations): element i must be the int i."""
    count = violations = 0
    async for batch in source.batches(4096):
        for value in batch:
            if value != count:
                violations += 1
            count += 1
    return count, violations


async def start_producer(client: ClusterClient, control_ref: Any, name: str, count: int) -> Any:
    """Ask a node to start a producer; an ask lost to the chaos (delivery is at most once) is
    retried under a fresh name."""
    for attempt in range(20):
        request = functools.partial(StartProducer, f"{name}-{attempt}", count)
        try:
            ack: Started = await client.ask(control_ref, request, timeout=3)
            return ack.ref
        except casty.AskTimeoutError:
            continue
        except casty.ClusterUnavailable:
            # the chaos cut the client's contact: asks fail at once until it has reconnected
            await client.wait_connected(True, timeout=30)
    raise RuntimeError(f"could not start producer {name}")


async def start_consumer(control_ref: Any, producer: Any, probe: TestProbe, name: str) -> None:
    for attempt in range(20):
        control_ref.tell(StartConsumer(producer, probe.ref, name=f"{name}-{attempt}"))
        try:
            await probe.expect(Started, timeout=3)
            return
        except AssertionError:
            continue
    raise RuntimeError(f"could not start consumer {name}")


class Chaos:
    def __init__(self, proxies: list[ChaosProxy], rng: random.Random) -> None:
        self.proxies = proxies
        self.rng = rng
        self.cuts = 0
        self.blackholes = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            proxy = self.rng.choice(self.proxies)
            if self.rng.random() < 0.15:
                self.blackholes += 1
                proxy.blackhole(True)
                await asyncio.sleep(self.rng.uniform(0.1, 0.5))
                proxy.blackhole(False)
            else:
                self.cuts += proxy.cut() > 0


async def soak(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed_value)
    proxies = [ChaosProxy("127.0.0.1", 1) for _ in range(3)]
    for proxy in proxies:
        await proxy.start()
    nodes: list[NodeProcess] = []
    chaos_task: asyncio.Task[None] | None = None
    summary: dict[str, Any] = {"rounds": 0, "elements": 0, "violations": 0, "errors": []}
    try:
        for i, proxy in enumerate(proxies):
            extra = ["--seed", str(proxies[0].port)] if i else []
            node = NodeProcess("tests.soak", "node", "--port", str(proxy.port), *extra, ready_timeout=60)
            await node.start()
            proxy.target_port = int(node.info["bind_port"])
            nodes.append(node)
        rss_start = {i: rss_kb(n.info["pid"]) for i, n in enumerate(nodes)}
        rss_max = dict(rss_start)
        async with ClusterClient([("127.0.0.1", proxies[0].port)], SYSTEM, config=soak_config()) as client:
            controls = [client.ref(f"casty://{SYSTEM}@127.0.0.1:{p.port}/user/control") for p in proxies]
            chaos = Chaos(proxies, rng)
            chaos_task = asyncio.create_task(chaos.run())
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                summary["rounds"] += 1
                r = summary["rounds"]
                started = time.monotonic()
                producers = [
                    await start_producer(client, ctl, f"r{r}-n{i}", args.elements) for i, ctl in enumerate(controls)
                ]
                # node to node: node 1 consumes a second stream of node 2
                second = await start_producer(client, controls[1], f"r{r}-n1-b", args.elements)
                probe = TestProbe(client.system)
                await start_consumer(controls[0], second, probe, f"r{r}-c")
                sources: list[SourceRef[int]] = []
                for i, producer in enumerate(producers):
                    consumer = client.spawn(stream_consumer(producer, timeout=60.0), f"r{r}-consumer-{i}")
                    # a local ask: it never depends on the cluster being reachable
                    sources.append(await client.system.ask(consumer, lambda reply: GetSource(reply), timeout=60))
                results = await asyncio.gather(*(drain(s) for s in sources), return_exceptions=True)
                try:
                    node_report: ConsumerReport | None = await probe.expect(ConsumerReport, timeout=30)
                except AssertionError:
                    # the report is one plain tell (at most once): a blackhole can swallow it
                    node_report = None
                    summary["lost_reports"] = summary.get("lost_reports", 0) + 1
                elapsed = time.monotonic() - started
                ok = True
                for res in results:
                    if isinstance(res, BaseException):
                        ok = False
                        summary["errors"].append(f"round {r}: {type(res).__name__}: {res}")
                        continue
                    count, violations = res
                    summary["elements"] += count
                    summary["violations"] += violations
                    ok &= count == args.elements and violations == 0
                if node_report is not None:
                    summary["elements"] += node_report.count
                    summary["violations"] += node_report.violations
                    ok &= node_report.count == args.elements and node_report.violations == 0
                    ok &= node_report.outcome == "completed"
                for i, n in enumerate(nodes):
                    rss_max[i] = max(rss_max[i], rss_kb(n.info["pid"]))
                rate = 4 * args.elements / elapsed
                print(
                    f"round {r}: {'ok' if ok else 'FAILED'}  {4 * args.elements:,} elements in {elapsed:.1f}s "
                    f"({rate:,.0f}/s)  cuts {chaos.cuts}  blackholes {chaos.blackholes}  "
                    f"rss MiB {[round(rss_kb(n.info['pid']) / 1024, 1) for n in nodes]}",
                    flush=True,
                )
                if not ok:
                    summary["errors"].append(f"round {r}: incomplete or out of order ({results}, {node_report})")
                    break
            summary["cuts"], summary["blackholes"] = chaos.cuts, chaos.blackholes
        rss_end = {i: rss_kb(n.info["pid"]) for i, n in enumerate(nodes)}
        # growth is judged from the end of the first round (warm-up: imports, caches, buffers)
        summary["rss_kb"] = {"start": rss_start, "max": rss_max, "end": rss_end}
        growth_mb = max((rss_end[i] - rss_start[i]) / 1024 for i in rss_end)
        summary["max_growth_mb"] = round(growth_mb, 1)
        flat = growth_mb <= args.max_growth_mb
        passed = not summary["errors"] and summary["violations"] == 0 and flat and summary["rounds"] > 0
        summary["ok"] = passed
        print("SOAK " + json.dumps(summary), flush=True)
        return 0 if passed else 1
    finally:
        if chaos_task is not None:
            chaos_task.cancel()
        for node in nodes:
            await node.stop()
        for proxy in proxies:
            await proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="soak", choices=["soak", "node"])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--elements", type=int, default=100_000, help="elements per stream per round")
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    parser.add_argument("--seed-value", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.role == "node":
        casty.run(run_node(args))
    else:
        sys.exit(casty.run(soak(args)))


if __name__ == "__main__":
    main()
