"""A fleet that connects at once: 1,000 ``ClusterClient``s in two processes of 500 start
together against one node (a node restart in a real fleet looks like this), and each then
tells the node's tally 100 readings. All must get in (the node admits their handshakes in
order; the clients back off with jitter) and every reading must arrive.

All clients come from 127.0.0.1 here, as a whole fleet would come from many addresses: the
node's per-address limits are raised to the node-wide ones accordingly. ``CASTY_FLEET_CLIENTS``
sets the number of clients per process (default 500).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from casty import CastyConfig, RemoteActorSystem
from tests.guard_app import SYSTEM, Tally, rss_kib
from tests.procs import NodeProcess

PER_PROCESS = int(os.environ.get("CASTY_FLEET_CLIENTS", "500"))
PROCESSES = 2
READINGS = 100

pytestmark = pytest.mark.timeout(120)


async def test_a_thousand_clients_connecting_at_once_all_get_in_and_deliver() -> None:
    fleet = PER_PROCESS * PROCESSES
    node_cfg = {
        "remote": {
            "max_connections": fleet + 100,
            "max_unauthenticated_per_address": fleet + 100,
            "max_handshakes_per_address": 64,
            "accept_rate_per_address": float(fleet * 2),
        }
    }
    async with NodeProcess("tests.guard_app", "fleet-node", json.dumps(node_cfg), ready_timeout=30) as node:
        pid = node.info["pid"]
        before = rss_kib(pid)
        started = time.monotonic()
        procs = [
            NodeProcess("tests.guard_app", "clients", str(node.port), str(PER_PROCESS), str(READINGS), ready_timeout=90)
            for _ in range(PROCESSES)
        ]
        try:
            await asyncio.gather(*(p.start() for p in procs))
            elapsed = time.monotonic() - started
            reports = [p.info for p in procs]
            assert all(r["connected"] == PER_PROCESS for r in reports), reports
            after = rss_kib(pid)
            async with RemoteActorSystem(SYSTEM, config=CastyConfig()) as peer:
                tally = peer.ref(f"casty://{SYSTEM}@127.0.0.1:{node.port}/user/tally")
                total = 0
                deadline = time.monotonic() + 30
                while total < fleet * READINGS and time.monotonic() < deadline:
                    total = await peer.ask(tally, Tally, timeout=10)
            assert total == fleet * READINGS
        finally:
            await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)
        per_client = (after - before) / fleet
        print(
            f"{fleet} clients at once: all in and {fleet * READINGS:,} readings delivered in {elapsed:.1f}s; "
            f"node RSS +{(after - before) / 1024:.1f} MB, {per_client:.0f} KiB per client"
        )
