"""Cluster figures with the default settings (run by hand; prints a small report):

    python -m benchmarks.cluster_metrics

1. failure detection and service removal: a 3-member cluster in which one member's process is
   killed with SIGKILL; time until the survivors mark it unreachable and until it is removed
   (and its service is gone from lookups).
2. gossip traffic: 5 members with 200 registered services each (1,000 in all); bytes per
   second per node in steady state, and the bytes exchanged while the registrations spread.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

import casty
from casty import (
    Behaviors,
    ClusteredActorSystem,
    EventStreamSubscribe,
    MemberRemoved,
    ServiceKey,
    UnreachableMember,
)
from casty.testkit import TestProbe

KEY: ServiceKey[Any] = ServiceKey("svc")


async def child_node(seed_port: int) -> None:
    async with ClusteredActorSystem("metrics", "127.0.0.1", 0, seed_nodes=[("127.0.0.1", seed_port)]) as system:
        system.spawn(Behaviors.discoverable(Behaviors.ignore(), key=KEY), "svc")
        await system.wait_for(3, timeout=60)
        print(json.dumps({"port": system.port}), flush=True)
        await asyncio.Event().wait()


async def failure_detection() -> dict[str, float]:
    async with ClusteredActorSystem("metrics", "127.0.0.1", 0) as seed:
        probe = TestProbe(seed)
        seed.event_stream.tell(EventStreamSubscribe(UnreachableMember, probe.ref))
        seed.event_stream.tell(EventStreamSubscribe(MemberRemoved, probe.ref))
        procs = []
        for _ in range(2):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "benchmarks.cluster_metrics",
                    "--child",
                    str(seed.port),
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        try:
            for p in procs:
                assert p.stdout is not None
                await asyncio.wait_for(p.stdout.readline(), 60)
            await seed.wait_for(3, timeout=60)
            while len((await seed.lookup(KEY)).instances) < 2:  # noqa: ASYNC110 - a measurement script polls
                await asyncio.sleep(0.05)
            victim = procs[0]
            started = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            await probe.expect(UnreachableMember, timeout=60)
            unreachable = time.monotonic() - started
            await probe.expect(MemberRemoved, timeout=120)
            removed = time.monotonic() - started
            service_gone = removed if len((await seed.lookup(KEY)).instances) == 1 else -1.0
            return {
                "unreachable_after_s": unreachable,
                "removed_after_s": removed,
                "service_gone_after_s": service_gone,
            }
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                await p.wait()


async def gossip_traffic(nodes: int = 5, services_per_node: int = 200, window: float = 10.0) -> dict[str, float]:
    systems: list[ClusteredActorSystem] = []
    seed = ClusteredActorSystem("metrics", "127.0.0.1", 0)
    await seed.start()
    systems.append(seed)
    for _ in range(nodes - 1):
        s = ClusteredActorSystem("metrics", "127.0.0.1", 0, seed_nodes=[("127.0.0.1", seed.port)])
        await s.start()
        systems.append(s)
    try:
        await asyncio.gather(*(s.wait_for(nodes, timeout=60) for s in systems))

        def sent() -> int:
            return sum(s.transport.bytes_sent for s in systems if s.transport is not None)

        before = sent()
        started = time.monotonic()
        for i, s in enumerate(systems):
            for j in range(services_per_node):
                s.spawn(Behaviors.discoverable(Behaviors.ignore(), key=KEY), f"svc-{i}-{j}")
        total = nodes * services_per_node
        while any(len(s.listing(KEY).instances) < total for s in systems):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        spread_s = time.monotonic() - started
        spread_bytes = sent() - before
        await asyncio.sleep(2.0)
        base = sent()
        await asyncio.sleep(window)
        steady = (sent() - base) / window / nodes
        return {
            "nodes": nodes,
            "services": total,
            "registration_spread_s": spread_s,
            "registration_spread_bytes": spread_bytes,
            "steady_bytes_per_s_per_node": steady,
        }
    finally:
        for s in reversed(systems):
            await s.shutdown()


async def main() -> None:
    fd = await failure_detection()
    print(
        f"failure detection (defaults): unreachable after {fd['unreachable_after_s']:.2f}s, "
        f"removed after {fd['removed_after_s']:.2f}s, service gone after {fd['service_gone_after_s']:.2f}s"
    )
    gt = await gossip_traffic()
    print(
        f"gossip with {gt['nodes']} nodes and {gt['services']} services: registrations spread to every node in "
        f"{gt['registration_spread_s']:.2f}s ({gt['registration_spread_bytes'] / 1024:.0f} KiB in all); steady state "
        f"{gt['steady_bytes_per_s_per_node'] / 1024:.2f} KiB/s sent per node (gossip + heartbeats + digests)"
    )
    print(json.dumps({"failure_detection": fd, "gossip": gt}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        casty.run(child_node(int(sys.argv[2])))
    else:
        casty.run(main())
