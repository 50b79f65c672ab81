"""Remoting over real sockets, with peers in separate processes."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest

from casty import ActorContext, ActorRef, AskTimeoutError, Behavior, Behaviors, DeadLetter, EventStreamSubscribe
from casty.config import CastyConfig, RemoteConfig
from casty.remote import PROTOCOL_VERSION, RemoteActorSystem
from casty.testkit import TestProbe
from tests.procs import NodeProcess
from tests.remote_app import Echo, Forward, GetCount, Refs, SpawnChild, StopChild, WatchIt

pytestmark = pytest.mark.timeout(90)

NODE = "tests.node_main"


def fast_config(**remote: Any) -> CastyConfig:
    base = {"give_up_after": 1.0, "reconnect_backoff_max": 0.2, "handshake_timeout": 2.0}
    base.update(remote)
    return CastyConfig.from_dict({"remote": base})


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "casty.toml"
    path.write_text(text)
    return str(path)


async def test_tell_and_ask_across_processes() -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        assert not echo.is_local
        assert await system.ask(echo, lambda r: Echo("hello", r), timeout=10) == "hello"
        # refs inside messages: a list of refs goes out and comes back with the node's own ref added
        probe = TestProbe(system)
        refs = (probe.ref, echo)
        reply = await system.ask(echo, lambda r: Refs(refs, r), timeout=10)
        assert reply.refs[:2] == refs
        assert reply.refs[0].is_local  # our own probe resolved back to the local ref
        assert reply.refs[2] == echo


async def test_three_processes_refs_passed_through_a_third() -> None:
    async with (
        NodeProcess(NODE, "--name", "test") as a,
        NodeProcess(NODE, "--name", "test") as b,
        RemoteActorSystem("test") as system,
    ):
        forwarder_a = system.ref(f"casty://test@127.0.0.1:{a.port}/user/forwarder")
        echo_b = system.ref(f"casty://test@127.0.0.1:{b.port}/user/echo")
        probe = TestProbe(system)
        # we -> A (forwarder) -> B (echo) -> us (probe): A and B connect to each other by themselves
        forwarder_a.tell(Forward(echo_b, Echo("via-a", probe.ref)))
        assert await probe.receive(10) == "via-a"


async def test_ordering_under_load() -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        counter = system.ref(f"casty://test@127.0.0.1:{node.port}/user/counter")
        n = 100_000
        for i in range(n):
            counter.tell(i)
            if i % 10_000 == 0:
                await asyncio.sleep(0)  # let the loop flush as a real producer would
        count, last, violations = await system.ask(counter, lambda r: GetCount(r), timeout=60)
        assert (count, last, violations) == (n, n - 1, 0)


async def test_remote_death_watch_on_stop_and_on_process_loss() -> None:
    async with RemoteActorSystem("test", config=fast_config()) as system:
        node = await NodeProcess(NODE, "--name", "test").start()
        try:
            parent = system.ref(f"casty://test@127.0.0.1:{node.port}/user/parent")
            child = await system.ask(parent, lambda r: SpawnChild("kid", r), timeout=10)
            assert child.path == "/user/parent/kid" and not child.is_local
            probe = TestProbe(system)

            async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
                async def receive(ctx: ActorContext[Any], msg: Any) -> None:
                    if isinstance(msg, ActorRef):
                        ctx.watch(msg)
                        # a round trip proves the Watch reached the node before we go on
                        msg.tell(Echo("watching", probe.ref))
                    else:
                        probe.ref.tell(msg)

                return Behaviors.receive(receive)

            local_watcher = system.spawn(Behaviors.setup(setup), "w")
            local_watcher.tell(child)
            assert await probe.receive(10) == "watching"
            parent.tell(StopChild("kid"))
            terminated = await probe.receive(10)
            assert terminated.ref == child

            echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
            local_watcher.tell(echo)
            assert await probe.receive(10) == "watching"
            await node.kill()
            terminated = await probe.receive(15)
            assert terminated.ref == echo and "node lost" in terminated.reason
        finally:
            await node.kill()


async def test_node_side_watcher_sees_our_actor_stop() -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        watcher = system.ref(f"casty://test@127.0.0.1:{node.port}/user/watcher")
        probe = TestProbe(system)
        mine = system.spawn(Behaviors.ignore(), "mine")
        watcher.tell(WatchIt(mine, probe.ref))
        assert await probe.receive(10) == ("watching", mine)
        await system.stop(mine)
        assert await probe.receive(10) == ("terminated", mine)


async def test_reconnect_after_peer_restart_on_same_port() -> None:
    async with RemoteActorSystem("test", config=fast_config(give_up_after=30.0)) as system:
        node = await NodeProcess(NODE, "--name", "test").start()
        port = node.port
        try:
            echo = system.ref(f"casty://test@127.0.0.1:{port}/user/echo")
            assert await system.ask(echo, lambda r: Echo(1, r), timeout=10) == 1
            await node.kill()
            with pytest.raises(AskTimeoutError):
                await system.ask(echo, lambda r: Echo(2, r), timeout=0.3)
            node = await NodeProcess(NODE, "--name", "test", "--port", str(port)).start()
            for attempt in range(100):
                try:
                    assert await system.ask(echo, lambda r: Echo(3, r), timeout=0.5) == 3
                    break
                except AskTimeoutError:
                    if attempt == 99:
                        raise
        finally:
            await node.kill()


async def test_wrong_system_name_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with NodeProcess(NODE, "--name", "other") as node, RemoteActorSystem("test", config=fast_config()) as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        with caplog.at_level(logging.WARNING, logger="casty.remote"):
            echo.tell(Echo("x", probe.ref))  # never raises
            dead = await probe.expect(DeadLetter, timeout=15)
        assert dead.message == Echo("x", probe.ref)
        assert "gone" in dead.reason
        assert any("system name mismatch" in r.getMessage() for r in caplog.records)


async def test_tell_to_unreachable_address_never_raises_and_dead_letters() -> None:
    async with RemoteActorSystem("test", config=fast_config()) as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        ghost = system.ref("casty://test@127.0.0.1:1/user/nobody")
        ghost.tell("hello?")
        dead = await probe.expect(DeadLetter, timeout=15)
        assert dead.message == "hello?" and dead.recipient == ghost


async def test_ask_to_vanished_peer_times_out_cleanly() -> None:
    async with RemoteActorSystem("test", config=fast_config()) as system:
        node = await NodeProcess(NODE, "--name", "test").start()
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        assert await system.ask(echo, lambda r: Echo(0, r), timeout=10) == 0
        await node.kill()
        with pytest.raises(AskTimeoutError):
            await system.ask(echo, lambda r: Echo(1, r), timeout=0.5)


# -- hostile input: a raw socket speaking (or failing to speak) the protocol -------------------


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def raw_connect(port: int, system: str = "test") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and complete the handshake by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hello = {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "system": system,
        "host": "127.0.0.1",
        "port": 9,
        "uid": 12345,
        "kind": "node",
        "nonce": os.urandom(16),
    }
    writer.write(frame(msgpack.packb(hello)))
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    welcome = msgpack.unpackb(await reader.readexactly(size))
    assert welcome["t"] == "welcome", welcome
    writer.write(frame(msgpack.packb({"t": "confirm", "mac": b""})))
    await writer.drain()
    return reader, writer


async def assert_closed(reader: asyncio.StreamReader) -> None:
    data = await asyncio.wait_for(reader.read(), 10)
    assert data == b""  # the node closed this connection


async def assert_still_serving(system: RemoteActorSystem, port: int) -> None:
    echo = system.ref(f"casty://test@127.0.0.1:{port}/user/echo")
    assert await system.ask(echo, lambda r: Echo("alive", r), timeout=10) == "alive"


def type_def(ident: int, name: str) -> msgpack.ExtType:
    return msgpack.ExtType(1, struct.pack(">I", ident) + name.encode())


HOSTILE = {
    "garbage": lambda: os.urandom(64),
    "oversized_length": lambda: struct.pack(">I", 0x7FFFFFFF) + b"xx",
    "truncated_then_eof": lambda: struct.pack(">I", 100) + b"partial",
    "not_an_envelope": lambda: frame(msgpack.packb("just a string")),
    "unknown_type": lambda: frame(msgpack.packb([[0, "/user/echo"], [type_def(0, "nowhere.module:Thing"), 1]])),
    "non_dataclass_type": lambda: frame(msgpack.packb([[0, "/user/echo"], [type_def(0, "os:system"), "id"]])),
    "builtin_eval": lambda: frame(msgpack.packb([[0, "/user/echo"], [type_def(0, "builtins:eval"), "1+1"]])),
    "bad_path_id": lambda: frame(msgpack.packb([7, "hello"])),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_frames_close_only_that_connection(case: str, caplog: pytest.LogCaptureFixture) -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        await assert_still_serving(system, node.port)
        reader, writer = await raw_connect(node.port)
        writer.write(HOSTILE[case]())
        if case == "truncated_then_eof":
            writer.write_eof()
        await writer.drain()
        await assert_closed(reader)
        writer.close()
        await assert_still_serving(system, node.port)


async def test_garbage_before_handshake_is_dropped() -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(100))
        await assert_closed(reader)
        writer.close()
        await assert_still_serving(system, node.port)


async def test_silent_peer_is_dropped_after_handshake_timeout(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[remote]\nhandshake_timeout = 0.3\n")
    async with NodeProcess(NODE, "--name", "test", "--config", config) as node:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        await assert_closed(reader)
        writer.close()


async def test_frame_size_limit_refused_on_sending_side() -> None:
    config = CastyConfig(remote=RemoteConfig(max_frame_size=1024))
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test", config=config) as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        echo.tell(Echo("x" * 5000, probe.ref))
        dead = await probe.expect(DeadLetter, timeout=10)
        assert "exceeds the maximum frame size" in dead.reason
        assert await system.ask(echo, lambda r: Echo("small", r), timeout=10) == "small"


async def test_unserializable_message_becomes_dead_letter() -> None:
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeadLetter, probe.ref))
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        echo.tell(Echo(lambda: None, probe.ref))
        dead = await probe.expect(DeadLetter, timeout=10)
        assert "not sent" in dead.reason and "function" in dead.reason
        assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"


async def test_simultaneous_connects_settle_on_one_connection() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        pa, pb = TestProbe(a, "pa"), TestProbe(b, "pb")
        to_b = a.ref(f"{b.address}{pb.ref.path}")
        to_a = b.ref(f"{a.address}{pa.ref.path}")
        for i in range(100):  # both dial at once
            to_b.tell(i)
            to_a.tell(i)
        assert [await pb.receive() for _ in range(100)] == list(range(100))
        assert [await pa.receive() for _ in range(100)] == list(range(100))
        assert a.transport is not None and b.transport is not None
        assoc_a = a.transport.associations[b.address]
        assoc_b = b.transport.associations[a.address]
        assert assoc_a.conn is not None and assoc_b.conn is not None
        # the same TCP connection, seen from both ends
        local_a = assoc_a.conn.tcp.get_extra_info("sockname")  # type: ignore[union-attr]
        peer_b = assoc_b.conn.tcp.get_extra_info("peername")  # type: ignore[union-attr]
        local_b = assoc_b.conn.tcp.get_extra_info("sockname")  # type: ignore[union-attr]
        peer_a = assoc_a.conn.tcp.get_extra_info("peername")  # type: ignore[union-attr]
        assert local_a == peer_b and local_b == peer_a


async def test_cluster_secret_mismatch_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    good = CastyConfig.from_dict({"security": {"cluster_secret": "s3cret"}, "remote": {"give_up_after": 1.0}})
    bad = CastyConfig.from_dict({"security": {"cluster_secret": "wrong"}, "remote": {"give_up_after": 1.0}})
    async with (
        RemoteActorSystem("test", config=good) as a,
        RemoteActorSystem("test", config=good) as b,
        RemoteActorSystem("test", config=bad) as c,
    ):
        echo_a = a.spawn(Behaviors.receive(_echo_receive), "echo")
        uri = echo_a.uri
        assert await b.ask(b.ref(uri), lambda r: Echo("ok", r), timeout=10) == "ok"
        with caplog.at_level(logging.WARNING, logger="casty.remote"), pytest.raises(AskTimeoutError):
            await c.ask(c.ref(uri), lambda r: Echo("no", r), timeout=1.0)
        assert any("secret" in r.getMessage() for r in caplog.records)


async def _echo_receive(ctx: ActorContext[Any], msg: Any) -> None:
    if isinstance(msg, Echo):
        msg.reply_to.tell(msg.payload)


async def test_asks_do_not_grow_connection_tables() -> None:
    """Every ask has its own reply path; none of them may stay in a connection's tables."""
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        echo_a = a.spawn(Behaviors.receive(_echo_receive), "echo")
        remote = b.ref(echo_a.uri)
        for i in range(50):
            assert await b.ask(remote, lambda r, i=i: Echo(i, r), timeout=10) == i
        assert a.transport is not None and b.transport is not None
        sizes = []
        for _ in range(2):
            for i in range(200):
                assert await b.ask(remote, lambda r, i=i: Echo(i, r), timeout=10) == i
            assoc_b = b.transport.associations[a.address]
            assoc_a = a.transport.associations[b.address]
            assert assoc_a.conn is not None and assoc_b.conn is not None
            sizes.append(
                (
                    len(assoc_b.conn.out_paths),
                    len(assoc_a.conn.in_paths),
                    len(assoc_a.refs),
                    assoc_a.conn.encoder.known_refs,  # type: ignore[union-attr]
                    assoc_b.conn.encoder.known_refs,  # type: ignore[union-attr]
                    len(a.transport._ref_cache),
                )
            )
        assert sizes[0] == sizes[1], sizes  # 200 more asks, not one more table entry
