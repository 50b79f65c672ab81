"""``/ready`` on the minority side of a partition: 3 node processes, each behind its own
PartitionProxy (see test_partition), one of them cut off from the other two."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.faults.test_partition import Node, addr
from tests.observing import http_get, until_ready_is
from tests.partition_proxy import PartitionProxy
from tests.ports import free_port
from tests.procs import NodeProcess

NODE = "tests.observe_node"


@pytest.mark.timeout(60)
async def test_ready_turns_503_on_the_minority_side_before_it_downs_itself(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("partition-secret\n")
    down_after = 4.0
    async with AsyncExitStack() as stack:
        nodes = [Node(await stack.enter_async_context(PartitionProxy())) for _ in range(3)]
        metrics = [free_port() for _ in nodes]

        async def start(i: int) -> None:
            node = nodes[i]
            node.proc = NodeProcess(
                NODE,
                "--port", str(node.port),
                "--bind-port", "0",
                "--seed", addr(nodes[0].port),
                "--secret-file", str(secret),
                "--metrics-port", str(metrics[i]),
                "--min-members", "3",
                "--down-after", str(down_after),
            )  # fmt: skip
            await stack.enter_async_context(node.proc)
            node.proxy.target_port = int(node.proc.info["bind_port"])

        await start(0)
        await asyncio.gather(start(1), start(2))
        for port in metrics:
            await until_ready_is(port, 200, 30)

        # cut the third node off: it is on the minority side
        for node in nodes[:2]:
            node.proxy.block({nodes[2].port})
        nodes[2].proxy.block({n.port for n in nodes[:2]})
        await until_ready_is(metrics[2], 503, down_after + 5, reason="minority")
        for port in metrics[:2]:
            status, body = await http_get(port, "/ready")
            assert status == 200, body
        # then it downs itself and stops serving; the majority stays ready
        assert nodes[2].proc is not None
        line = await nodes[2].proc.read_line(down_after + 15)
        assert line.get("terminated") is True, line
        for port in metrics[:2]:
            status, body = await http_get(port, "/ready")
            assert status == 200, body
