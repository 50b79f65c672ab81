"""Network partitions of a 5-node cluster, each node in its own process behind a PartitionProxy.

Every node advertises its proxy's port, so every connection between two nodes goes through the
proxy of the node that was dialed; a partition is each proxy refusing the dialers of the other
side. The test process watches through a plain ``RemoteActorSystem`` (its own advertised port,
never blocked): every node pushes its own view of the cluster (``NodeView``) on every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest

from casty import RemoteActorSystem
from casty.testkit import TestProbe
from tests.cluster_app import LookupEcho, NodeView, Ping, WatchView
from tests.partition_proxy import PartitionProxy
from tests.procs import NodeProcess
from tests.remote_app import Echo, echo

NODE = "tests.cluster_node"
# A system name of this file's own: a node of another test that dials a port this file's
# proxies or nodes now hold (its killed peer's, reused by the kernel) is refused at the
# handshake instead of joining the conversation of this cluster.
SYSTEM = "partition"


# -- the proxy on its own ----------------------------------------------------------------------
class EchoServer:
    """A TCP server echoing every byte; counts its connections."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def __aenter__(self) -> EchoServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            writer.transport.abort()


def hello_frame(port: int) -> bytes:
    body: bytes = msgpack.packb(
        {"t": "hello", "v": 1, "system": "x", "host": "127.0.0.1", "port": port}, use_bin_type=True
    )
    return len(body).to_bytes(4, "big") + body


async def dial(proxy: PartitionProxy, first: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(first)
    await writer.drain()
    return reader, writer


async def echoes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: bytes, extra: bytes) -> bool:
    """True when ``sent + extra`` comes back whole (``sent`` was written already)."""
    writer.write(extra)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(sent) + len(extra)), 5) == sent + extra


async def is_cut(reader: asyncio.StreamReader) -> bool:
    """True when the connection ends (reset or EOF) without a byte arriving."""
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except (ConnectionError, OSError):
        return True


@pytest.mark.timeout(20)
async def test_proxy_replays_the_hello_and_blocks_by_dialer_port() -> None:
    writers: list[asyncio.StreamWriter] = []
    try:
        async with EchoServer() as target, PartitionProxy() as proxy:
            # accepted before the target is known: held until it is
            a1 = await dial(proxy, hello_frame(1111))
            writers.append(a1[1])
            await proxy.wait_for(lambda p: p.hellos[1111] == 1, 5)
            proxy.target_port = target.port
            assert await echoes(*a1, hello_frame(1111), b"after the hello")
            b1 = await dial(proxy, hello_frame(2222))
            writers.append(b1[1])
            assert await echoes(*b1, hello_frame(2222), b"x" * 100_000)
            # a first frame that is no hello, and one that is no frame at all: forwarded as unknown
            other = len(b"\x93\x01\x02\x03").to_bytes(4, "big") + b"\x93\x01\x02\x03"
            c1 = await dial(proxy, other)
            writers.append(c1[1])
            assert await echoes(*c1, other, b"!")
            garbage = b"\x16\x03\x01\x02\x00"
            d1 = await dial(proxy, garbage)
            writers.append(d1[1])
            assert await echoes(*d1, garbage, b"?")
            assert proxy.dialers() == {1111, 2222, None}
            assert proxy.hellos == {1111: 1, 2222: 1, None: 2}

            assert proxy.block({1111}) == 1
            assert proxy.blocked == {1111}
            assert await is_cut(a1[0])
            assert await echoes(*b1, b"", b"still through")
            connections = target.connections
            a2 = await dial(proxy, hello_frame(1111))
            writers.append(a2[1])
            assert await is_cut(a2[0])
            assert proxy.refused == 1 and proxy.aborted == 1
            assert target.connections == connections  # refused before reaching the node

            proxy.unblock()
            a3 = await dial(proxy, hello_frame(1111))
            writers.append(a3[1])
            assert await echoes(*a3, hello_frame(1111), b"healed")
            assert proxy.stats()["forwarded"] == 5
    finally:
        for writer in writers:
            writer.transport.abort()


@pytest.mark.timeout(20)
async def test_proxy_partitions_two_real_systems_by_their_advertised_ports() -> None:
    async with contextlib.AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(PartitionProxy())
        b = RemoteActorSystem("p", host="127.0.0.1", port=proxy.port, bind_port=0)
        await stack.enter_async_context(b)
        assert b.port == proxy.port and b.transport is not None
        proxy.target_port = b.transport.bind_port
        b.spawn(echo(), "echo")
        a = RemoteActorSystem("p", host="127.0.0.1", port=0)
        c = RemoteActorSystem("p", host="127.0.0.1", port=0)
        await stack.enter_async_context(a)
        await stack.enter_async_context(c)
        from_a = a.remote_ref("127.0.0.1", proxy.port, "/user/echo")
        from_c = c.remote_ref("127.0.0.1", proxy.port, "/user/echo")
        assert await a.ask(from_a, lambda r: Echo(1, r), timeout=5) == 1
        assert await c.ask(from_c, lambda r: Echo(2, r), timeout=5) == 2
        assert proxy.dialers() == {a.port, c.port}

        assert a.transport is not None
        disconnected = asyncio.Event()
        a.transport.listeners.append(lambda event, assoc: disconnected.set() if event == "disconnected" else None)
        assert proxy.block({a.port}) == 1
        await asyncio.wait_for(disconnected.wait(), 5)  # what is written before a notices is lost
        pending: asyncio.Future[int] = asyncio.ensure_future(a.ask(from_a, lambda r: Echo(3, r), timeout=10))
        await proxy.wait_for(lambda p: p.refused >= 1, 5)  # a redials and is turned away
        assert await c.ask(from_c, lambda r: Echo(4, r), timeout=5) == 4
        assert not pending.done()
        proxy.unblock()
        assert await pending == 3  # the message queued during the cut goes out on reconnect


# -- a cluster of node processes behind proxies ------------------------------------------------
def addr(port: int) -> str:
    return f"127.0.0.1:{port}"


class Node:
    def __init__(self, proxy: PartitionProxy) -> None:
        self.proxy = proxy
        self.proc: NodeProcess | None = None

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def addr(self) -> str:
        return addr(self.port)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.proc is not None and self.proc.proc.returncode is None


class ViewBoard:
    """The latest ``NodeView`` of every node, fed by a probe the nodes push their views to."""

    def __init__(self, system: RemoteActorSystem) -> None:
        self.probe = TestProbe(system, "views")
        self.views: dict[str, NodeView] = {}
        self.log: list[tuple[float, NodeView]] = []

    def _add(self, view: NodeView) -> None:
        self.log.append((time.monotonic(), view))
        current = self.views.get(view.node)
        if current is None or current.seq < view.seq:
            self.views[view.node] = view

    async def until(self, predicate: Callable[[ViewBoard], bool], timeout: float, what: str) -> float:
        """Await views until ``predicate(self)`` holds; returns the time it first held."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; views: {self.summary()}")
            try:
                view = await asyncio.wait_for(self.probe._target.queue.get(), remaining)
            except TimeoutError:
                continue
            self._add(view)
        return time.monotonic()

    async def drain_for(self, seconds: float) -> None:
        """Collect every view that arrives within ``seconds`` (for properties that must hold
        over a period, such as nobody being downed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                view = await asyncio.wait_for(self.probe._target.queue.get(), remaining)
            except TimeoutError:
                return
            self._add(view)

    def sees_exactly(self, observers: Iterable[Node], members: Iterable[Node]) -> bool:
        """Every observer sees exactly ``members``, all up and reachable, all listing the echo service."""
        expected = tuple(sorted(n.addr for n in members))
        for node in observers:
            view = self.views.get(node.addr)
            if view is None:
                return False
            if tuple(a for a, _ in view.members) != expected or any(s != "up" for _, s in view.members):
                return False
            if view.unreachable or view.listing != expected:
                return False
        return True

    def first(self, predicate: Callable[[NodeView], bool]) -> float | None:
        return next((t for t, v in self.log if predicate(v)), None)

    def summary(self) -> dict[str, Any]:
        return {
            node: {"members": v.members, "unreachable": v.unreachable, "leader": v.leader, "listing": v.listing}
            for node, v in sorted(self.views.items())
        }


class PartitionedCluster:
    """``n`` node processes, each behind its own PartitionProxy, plus an observing system."""

    def __init__(self, n: int, down_after: float) -> None:
        self.n = n
        self.down_after = down_after
        self.nodes: list[Node] = []
        self.observer: RemoteActorSystem | None = None
        self.board: ViewBoard | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> PartitionedCluster:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        observer = RemoteActorSystem(SYSTEM, host="127.0.0.1", port=0)
        await self._stack.enter_async_context(observer)
        self.observer = observer
        self.board = ViewBoard(observer)
        for _ in range(self.n):
            proxy = await self._stack.enter_async_context(PartitionProxy())
            self.nodes.append(Node(proxy))
        # ended together (a graceful leave takes up to a second each), before the proxies close
        self._stack.push_async_callback(self._stop_all)
        seed = self.nodes[0].port
        await self._start_node(self.nodes[0], seed)
        await asyncio.gather(*(self._start_node(node, seed) for node in self.nodes[1:]))
        for node in self.nodes:
            self.control(node).tell(WatchView(self.board.probe.ref))

    async def _start_node(self, node: Node, seed: int) -> None:
        node.proc = NodeProcess(
            NODE,
            "--name",
            SYSTEM,
            "--port",
            str(node.port),
            "--bind-port",
            "0",
            "--seed",
            addr(seed),
            "--down-after",
            str(self.down_after),
        )
        await node.proc.start()
        assert node.proc.port == node.port
        node.proxy.target_port = int(node.proc.info["bind_port"])

    async def _stop_all(self) -> None:
        await asyncio.gather(*(n.proc.stop() for n in self.nodes if n.proc is not None), return_exceptions=True)

    def control(self, node: Node) -> Any:
        assert self.observer is not None
        return self.observer.remote_ref("127.0.0.1", node.port, "/user/control")

    async def formed(self, timeout: float = 20.0) -> None:
        assert self.board is not None
        await self.board.until(lambda b: b.sees_exactly(self.nodes, self.nodes), timeout, "the cluster to form")

    def node_links(self) -> int:
        """Node-to-node connections through the proxies (the observer's are not counted)."""
        ports = {n.port for n in self.nodes}
        return sum(1 for n in self.nodes for p in n.proxy.dialers() if p in ports)

    async def links_restored(self, count: int, timeout: float) -> float:
        """Await until ``count`` node-to-node connections run through the proxies again."""
        waits = [
            asyncio.ensure_future(n.proxy.wait_for(lambda _: self.node_links() == count, timeout)) for n in self.nodes
        ]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            await next(iter(done))  # raises TimeoutError when none saw it in time
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return time.monotonic()

    def partition(self, *sides: Sequence[Node]) -> int:
        """Cut every side off from the others; returns how many live connections were aborted."""
        aborted = 0
        for side in sides:
            others = {n.port for other in sides if other is not side for n in other}
            for node in side:
                aborted += node.proxy.block(others)
        return aborted

    def heal(self) -> None:
        for node in self.nodes:
            node.proxy.unblock()

    async def ping(self, node: Node) -> str:
        assert self.observer is not None
        svc = self.observer.remote_ref("127.0.0.1", node.port, "/user/svc")
        answer: str = await self.observer.ask(svc, lambda r: Ping(r), timeout=5)
        return answer

    async def lookup(self, node: Node) -> tuple[str, ...]:
        assert self.observer is not None
        refs: tuple[str, ...] = await self.observer.ask(self.control(node), lambda r: LookupEcho(r), timeout=5)
        return refs


async def terminated_by_itself(node: Node, timeout: float) -> float:
    """Await the node's ``terminated`` line and its exit with status 0; returns when it exited."""
    assert node.proc is not None
    line = await node.proc.read_line(timeout)
    assert line.get("terminated") is True, line
    assert await asyncio.wait_for(node.proc.wait(), 10) == 0
    return time.monotonic()


def report(title: str, **values: Any) -> None:
    shown = ", ".join(f"{k}={v:.2f}s" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    print(f"\n[partition] {title}: {shown}")


@pytest.mark.timeout(45)
@pytest.mark.parametrize("duration", [0.8, 2.5])
async def test_short_partition_heals_without_downing_anyone(duration: float) -> None:
    """A 3|2 partition shorter than down_after: whether or not the failure detectors notice it
    (0.8 s is below their detection time, 2.5 s is above), nobody is downed and it heals."""
    down_after = 4.0
    async with PartitionedCluster(5, down_after) as cluster:
        board = cluster.board
        assert board is not None
        await cluster.formed()
        nodes = cluster.nodes
        # one connection per pair of nodes, each through exactly one proxy
        assert cluster.node_links() == 10
        refused_before = sum(n.proxy.refused for n in nodes)
        started = time.monotonic()
        assert cluster.partition(nodes[:3], nodes[3:]) == 6  # 3 x 2 pairs cross the cut
        await board.drain_for(duration)  # the partition lasts this long; views are logged as they come
        refused = sum(n.proxy.refused for n in nodes) - refused_before
        assert refused > 0, "no node tried to reconnect across the partition"
        healing = time.monotonic()
        during = [v for t, v in board.log if t >= started]
        cluster.heal()
        relinked = await cluster.links_restored(10, 10)
        whole = await board.until(lambda b: b.sees_exactly(nodes, nodes), 10, "the cluster to heal")
        # keep watching until down_after has passed since the partition began: any member still
        # counted as unreachable from it would have been downed by then
        await board.drain_for(max(0.0, started + down_after + 1.0 - time.monotonic()))
        await board.until(lambda b: b.sees_exactly(nodes, nodes), 5, "the cluster to stay whole")
        assert all(n.running for n in nodes)
        assert all(not v.ever_downed for v in board.views.values()), board.summary()
        for node in nodes:
            assert len(await cluster.lookup(node)) == 5
            assert await cluster.ping(node) == node.addr
        ever_unreachable = sorted({a for v in board.views.values() for a in v.ever_unreachable})
        first_unreachable = board.first(lambda v: bool(v.unreachable))
        if duration >= 2.0:
            # well above the detection time (about 1.3 s with these settings): it must have been seen
            assert ever_unreachable, "a partition longer than the detection time went unnoticed"

        report(
            f"{duration}s 3|2 partition (down_after {down_after}s)",
            refused_reconnects=refused,
            marked_unreachable=len(ever_unreachable),
            first_unreachable_after=(first_unreachable - started) if first_unreachable else "never",
            smallest_listing_seen=min((len(v.listing) for v in during), default=5),
            links_back_after_heal=relinked - healing,
            whole_again_after_heal=whole - healing,
        )


@pytest.mark.timeout(45)
async def test_long_partition_majority_downs_minority_and_minority_shuts_down() -> None:
    down_after = 2.0
    async with PartitionedCluster(5, down_after) as cluster:
        board = cluster.board
        assert board is not None
        await cluster.formed()
        nodes = sorted(cluster.nodes, key=lambda n: n.port)
        assert all(v.leader == nodes[0].addr for v in board.views.values())
        # the current leader (lowest address) ends up in the minority: the majority needs a new one
        minority = [nodes[0], nodes[3]]
        majority = [nodes[1], nodes[2], nodes[4]]
        started = time.monotonic()
        assert cluster.partition(majority, minority) == 6
        exits = [asyncio.ensure_future(terminated_by_itself(n, 20)) for n in minority]

        def majority_alone(b: ViewBoard) -> bool:
            return b.sees_exactly(majority, majority) and all(b.views[n.addr].leader == nodes[1].addr for n in majority)

        removed_at = await board.until(majority_alone, 20, "the majority to remove the minority")
        exited_at = await asyncio.gather(*exits)
        assert all(n.running for n in majority)
        for node in majority:
            assert await cluster.ping(node) == node.addr
            assert len(await cluster.lookup(node)) == 3
        minority_addrs = {n.addr for n in minority}
        for node in majority:
            assert set(board.views[node.addr].ever_downed) == minority_addrs
        first_unreachable = board.first(lambda v: bool(v.unreachable))
        first_down = board.first(lambda v: any(s == "down" for _, s in v.members))
        assert first_unreachable is not None and first_down is not None
        report(
            "3|2 partition (down_after 2s)",
            unreachable_after=first_unreachable - started,
            majority_downs_after=first_down - started,
            majority_removed_after=removed_at - started,
            minority_exited_after=", ".join(f"{t - started:.2f}s" for t in exited_at),
            minority_exit_minus_first_down=", ".join(f"{t - first_down:+.2f}s" for t in exited_at),
        )


@pytest.mark.timeout(50)
async def test_exact_tie_lowest_address_side_survives() -> None:
    down_after = 1.5
    async with PartitionedCluster(5, down_after) as cluster:
        board = cluster.board
        assert board is not None
        await cluster.formed()
        nodes = sorted(cluster.nodes, key=lambda n: n.port)
        victim = nodes[4]
        assert victim.proc is not None
        killed = time.monotonic()
        await victim.proc.kill()
        survivors = nodes[:4]
        gone_at = await board.until(lambda b: b.sees_exactly(survivors, survivors), 20, "the dead node's removal")
        # 2|2 of the four members left: the side holding the lowest address keeps running
        keep = [nodes[0], nodes[2]]
        lose = [nodes[1], nodes[3]]
        started = time.monotonic()
        assert cluster.partition(keep, lose) == 4
        exits = [asyncio.ensure_future(terminated_by_itself(n, 20)) for n in lose]
        removed_at = await board.until(lambda b: b.sees_exactly(keep, keep), 20, "the lowest side to remove the other")
        exited_at = await asyncio.gather(*exits)
        assert all(n.running for n in keep)
        for node in keep:
            assert await cluster.ping(node) == node.addr
            assert len(await cluster.lookup(node)) == 2
            assert board.views[node.addr].leader == nodes[0].addr
        report(
            "2|2 tie after a kill -9 (down_after 1.5s)",
            dead_node_removed_after=gone_at - killed,
            other_side_removed_after=removed_at - started,
            other_side_exited_after=", ".join(f"{t - started:.2f}s" for t in exited_at),
        )
