"""Large stream elements between processes: runs are bounded by what one frame carries.

A producer in a node process (``tests.stream_node``) puts elements of ``element_size`` bytes
back-to-back; this process consumes them. The transport splits a run too large for one frame
(``[remote] max_frame_size``, 4 MiB by default) into runs that fit, so every element arrives,
complete and in order; one element that cannot fit fails the stream with a clear error at both
ends while the connection goes on carrying everything else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from casty import StreamFailed
from casty.testkit import TestProbe
from tests.multiprocess.test_streams_remote import (
    NODE,
    local_source,
    node_args,
    start_remote_producer,
    system_with,
    write_config,
)
from tests.procs import NodeProcess
from tests.stream_app import ProducerDone, blob

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20
LIMIT = 4 * MiB  # the default [remote] max_frame_size


def default_config() -> dict[str, dict[str, object]]:
    """Defaults everywhere (frame size, demand, buffer), a short resend interval."""
    return {"streams": {"resend_interval": 0.3}}


@pytest.mark.parametrize(
    ("count", "size"),
    [(32, MiB), (2000, 32 * 1024)],
    ids=["32 x 1 MiB", "2000 x 32 KiB"],
)
async def test_large_elements_put_back_to_back_arrive_complete_and_in_order(
    tmp_path: Path, count: int, size: int
) -> None:
    cfg = default_config()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "blobs", count, element_size=size)
        source = await local_source(system, producer, "blobs-in", timeout=30.0)

        async def receive() -> int:
            n = 0
            async for x in source:
                assert isinstance(x, bytes) and len(x) == size, f"element {n}: {len(x)} bytes"
                assert x == blob(n, size), f"element {n} arrived damaged or out of order"
                n += 1
            return n

        assert await asyncio.wait_for(receive(), 60) == count
        done = await probe.expect(ProducerDone, timeout=10)
        assert (done.put, done.outcome) == (count, "completed")


async def test_an_element_over_the_frame_limit_fails_the_stream_clearly(tmp_path: Path) -> None:
    cfg = default_config()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        producer = await start_remote_producer(system, node.port, probe, "huge", 1, element_size=5 * MiB)
        source = await local_source(system, producer, "huge-in", timeout=30.0)
        with pytest.raises(StreamFailed) as info:
            async with asyncio.timeout(10):
                async for _ in source:
                    raise AssertionError("an element over the frame limit arrived")
        assert info.value.cause_type == "ElementTooLarge"
        assert "element 0" in str(info.value) and str(LIMIT) in str(info.value)
        # the producer's put returned before the transport saw the element; its complete()
        # came too early to raise, and the stream is failed: nothing hangs
        done = await probe.expect(ProducerDone, timeout=10)
        assert done.put == 1
        # the connection still carries other streams
        producer = await start_remote_producer(system, node.port, probe, "after", 1000)
        source = await local_source(system, producer, "after-in")
        assert [x async for x in source] == list(range(1000))


async def test_a_huge_element_in_the_middle_raises_at_the_producers_next_put(tmp_path: Path) -> None:
    # 3 small elements, then one of 5 MiB, then more puts: the producer's put raises
    # ElementTooLarge naming size and limit, the consumer gets the 3 elements, then StreamFailed
    cfg = default_config()
    async with NodeProcess(NODE, *node_args(write_config(tmp_path, cfg))) as node, system_with(cfg) as system:
        probe = TestProbe(system)
        # element_size=5 MiB for every element: the first cannot be sent, puts after it raise
        producer = await start_remote_producer(
            system, node.port, probe, "raising", 10**6, element_size=5 * MiB, buffer_size=4
        )
        source = await local_source(system, producer, "raising-in", timeout=30.0)
        with pytest.raises(StreamFailed) as info:
            async with asyncio.timeout(10):
                async for _ in source:
                    raise AssertionError("an element over the frame limit arrived")
        assert info.value.cause_type == "ElementTooLarge"
        done = await probe.expect(ProducerDone, timeout=10)
        assert done.outcome == "ElementTooLarge", done
        assert str(LIMIT) in done.detail and "max_frame_size" in done.detail
        assert done.put < 10
