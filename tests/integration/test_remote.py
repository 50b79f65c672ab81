"""Remoting over real sockets, with peers in separate processes."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from casty import (
    ActorContext,
    ActorRef,
    AskTimeoutError,
    Behavior,
    Behaviors,
    ClusterClient,
    ClusteredActorSystem,
    ClusterUnavailable,
    DeadLetter,
    DeserializationFailed,
    EventStreamSubscribe,
    FrameTooLarge,
    MessageRefused,
    SerializationError,
)
from casty.config import CastyConfig, RemoteConfig
from casty.remote import PROTOCOL_VERSION, RemoteActorSystem
from casty.remote.transport import REFUSAL_LOG_INTERVAL
from casty.serde import MsgpackSerializer, TypeRegistry
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


async def test_a_client_of_another_system_is_told_why_and_the_node_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """A ClusterClient with the wrong system name retries until its connect timeout: the
    ClusterUnavailable it gets says why (the node's refusal), and the node logs the refusal as
    a warning once, its repeats at debug level; a warning after the quiet interval counts them."""
    caplog.set_level(logging.DEBUG, logger="casty.remote")
    async with ClusteredActorSystem(name="right", host="127.0.0.1", port=0, seed_nodes=[]) as node:
        with pytest.raises(ClusterUnavailable, match=r"system name mismatch: peer is 'wrong', this is 'right'"):
            async with ClusterClient([("127.0.0.1", node.self_node.port)], "wrong", connect_timeout=2.0):
                pass

        def refusals() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.getMessage().startswith("refused connection from 127.0.0.1:")]

        assert len(refusals()) >= 2, "the client did not retry"
        assert [r.levelno for r in refusals()].count(logging.WARNING) == 1
        # the next warning, once the interval is over, says how many were not logged as warnings
        transport = node.transport
        assert transport is not None
        repeats = len(refusals()) - 1
        for entry in transport._refusal_warnings.values():
            entry[0] -= REFUSAL_LOG_INTERVAL
        transport.log_refusal("127.0.0.1:9", "system name mismatch: peer is 'wrong', this is 'right'")
        last = refusals()[-1]
        assert last.levelno == logging.WARNING
        assert last.getMessage().endswith(f"(refused {repeats} more times for this since the last warning)")


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
    "bad_path_id": lambda: frame(msgpack.packb([7, "hello"])),
}

#: well-formed messages naming a type the node must not build: refused one by one, the
#: connection stays up and the sender is told
REFUSED = {
    "unknown_type": ("nowhere.module:Thing", lambda: [[0, "/user/echo"], [type_def(0, "nowhere.module:Thing"), 1]]),
    "non_dataclass_type": ("os:system", lambda: [[0, "/user/echo"], [type_def(0, "os:system"), "id"]]),
    "builtin_eval": ("builtins:eval", lambda: [[0, "/user/echo"], [type_def(0, "builtins:eval"), "1+1"]]),
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


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 10))[0]
    return await asyncio.wait_for(reader.readexactly(size), 10)


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_types_are_dead_letters_and_the_connection_stays_up(case: str) -> None:
    type_name, envelope = REFUSED[case]
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        reader, writer = await raw_connect(node.port)
        writer.write(frame(msgpack.packb(envelope())))
        await writer.drain()
        # the node answers on the same connection with a DeserializationFailed notice
        while True:
            body = await read_frame(reader)
            if b"DeserializationFailed" in body:
                break
        notice = msgpack.unpackb(body, ext_hook=lambda code, data: msgpack.ExtType(code, data), raw=False)
        assert notice[1][1:3] == ["/user/echo", type_name]
        # the connection is up and learned the refused envelope's path: id 0 is /user/echo
        me = msgpack.ExtType(3, struct.pack(">I", 0) + b"casty://test@127.0.0.1:9/user/me")
        writer.write(frame(msgpack.packb([0, [type_def(1, "tests.remote_app:Echo"), "still-here", me]])))
        await writer.drain()
        while b"still-here" not in await read_frame(reader):
            pass
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


@dataclass(frozen=True)
class OnlyHere:
    """A class node processes never load: they do not import this test module."""

    value: int


async def _three_refused(echo: ActorRef[Any], probe: TestProbe, cls: Any, type_name: str) -> None:
    """Tell ``echo`` three messages holding a ``cls`` the node cannot build; each comes back
    as a DeserializationFailed notice naming the class."""
    for i in range(3):
        echo.tell(Echo(cls(i), probe.ref))
    for _ in range(3):
        notice = await probe.expect(DeserializationFailed, timeout=10)
        assert notice.path == "/user/echo"
        assert notice.type_name == type_name
        assert "not a class loaded in this process" in notice.reason


async def test_message_the_receiver_cannot_decode_is_reported_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="casty.remote")
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeserializationFailed, probe.ref))
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        await assert_still_serving(system, node.port)
        assoc = system.require_transport().associations[echo.system_address]
        conn = assoc.conn
        await _three_refused(echo, probe, OnlyHere, "tests.integration.test_remote:OnlyHere")
        # the connection stayed up: the next ask travels on it
        assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"
        assert assoc.conn is conn
        logged = [r for r in caplog.records if "could not decode" in r.getMessage()]
        assert len(logged) == 1 and "OnlyHere" in logged[0].getMessage()  # once per class


@dataclass(frozen=True)
class AskOnlyHere:
    """A request whose own class node processes never load."""

    reply_to: ActorRef[Any]


async def test_an_ask_whose_request_the_peer_cannot_decode_fails_at_once() -> None:
    """The node refuses the request (a class it has not loaded, outside or inside a known
    record); the reply slot it carried is named back, so the ask raises MessageRefused in well
    under its timeout instead of waiting it out. The connection stays up."""
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test") as system:
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        await assert_still_serving(system, node.port)
        conn = system.require_transport().associations[echo.system_address].conn
        loop = asyncio.get_running_loop()
        for request, type_name in (
            (lambda r: Echo(OnlyHere(1), r), "tests.integration.test_remote:OnlyHere"),
            (AskOnlyHere, "tests.integration.test_remote:AskOnlyHere"),
        ):
            started = loop.time()
            with pytest.raises(MessageRefused, match="could not decode the request") as raised:
                await system.ask(echo, request, timeout=60)
            assert loop.time() - started < 10  # told, not timed out (60 s)
            assert raised.value.type_name == type_name
        assert system.ask_latency.timeouts == 0
        assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"
        assert system.require_transport().associations[echo.system_address].conn is conn


def _class_only_here() -> type:
    """A frozen dataclass in a module that exists only in this process (made at run time):
    pickle names it by module, and no other process can import that module."""
    module = types.ModuleType("casty_test_only_here")
    sys.modules[module.__name__] = module

    @dataclass(frozen=True)
    class Gone:
        value: int

    Gone.__module__ = module.__name__
    Gone.__qualname__ = "Gone"
    module.Gone = Gone  # type: ignore[attr-defined]
    return Gone


async def test_pickle_message_naming_a_class_the_receiver_lacks_is_refused_alone(tmp_path: Path) -> None:
    """With ``allow_pickle``, a message whose class the node cannot import is refused on its
    own, as with msgpack: the sender is told (``DeserializationFailed``), the connection stays
    up and the next message on it arrives."""
    toml = tmp_path / "casty.toml"
    toml.write_text("[remote]\nallow_pickle = true\n")
    gone = _class_only_here()
    config = CastyConfig(remote=RemoteConfig(allow_pickle=True))
    async with (
        NodeProcess(NODE, "--name", "test", "--config", str(toml)) as node,
        RemoteActorSystem("test", config=config) as system,
    ):
        probe = TestProbe(system)
        system.event_stream.tell(EventStreamSubscribe(DeserializationFailed, probe.ref))
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        assert await system.ask(echo, lambda r: Echo("before", r), timeout=10) == "before"
        conn = system.require_transport().associations[echo.system_address].conn
        await _three_refused(echo, probe, gone, "casty_test_only_here:Gone")
        assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"
        assert system.require_transport().associations[echo.system_address].conn is conn


async def test_receiver_dead_letters_a_message_it_cannot_decode() -> None:
    registry = TypeRegistry()
    registry.register(OnlyHere, name="elsewhere.module:OnlyHere")  # a name the receiver cannot build
    async with (
        RemoteActorSystem("test", serializer=MsgpackSerializer(registry)) as sender,
        RemoteActorSystem("test") as receiver,
    ):
        dead = TestProbe(receiver, "dead")
        receiver.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        target = TestProbe(receiver, "target")
        to_target = sender.ref(f"{receiver.address}{target.ref.path}")
        to_target.tell(OnlyHere(1))
        to_target.tell("next")
        letter = await dead.expect(DeadLetter, timeout=10)
        assert letter.recipient == target.ref
        assert "elsewhere.module:OnlyHere" in letter.reason and "cannot decode" in letter.reason
        assert await target.receive(10) == "next"  # same connection, next message delivered
        assert receiver.require_transport().associations[sender.address].conn is not None


async def test_ask_whose_message_cannot_be_encoded_raises_at_once() -> None:
    config = CastyConfig(remote=RemoteConfig(max_frame_size=4096))
    async with NodeProcess(NODE, "--name", "test") as node, RemoteActorSystem("test", config=config) as system:
        echo = system.ref(f"casty://test@127.0.0.1:{node.port}/user/echo")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SerializationError, match="function"):
            await system.ask(echo, lambda r: Echo(lambda: None, r), timeout=30)
        with pytest.raises(FrameTooLarge):
            await system.ask(echo, lambda r: Echo("x" * 10_000, r), timeout=30)
        assert loop.time() - started < 5  # not the 30 s timeout
        assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"
