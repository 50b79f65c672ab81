"""Refs carry the incarnation of the process they were obtained from: after a restart on the
same address, messages to refs of the old incarnation never reach the new one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from casty import (
    ActorContext,
    ActorRef,
    AskTimeoutError,
    Behavior,
    Behaviors,
    DeadLetter,
    EventStreamSubscribe,
    Terminated,
)
from casty.config import CastyConfig
from casty.remote import RemoteActorSystem
from casty.serde import PickleSerializer
from casty.testkit import TestProbe
from tests.procs import NodeProcess
from tests.remote_app import Echo, GetDeadLetters, Refs, SpawnChild

pytestmark = pytest.mark.timeout(120)

NODE = "tests.node_main"


def config() -> CastyConfig:
    return CastyConfig.from_dict({"remote": {"give_up_after": 30.0, "reconnect_backoff_max": 0.2}})


async def dead_letters(system: RemoteActorSystem, port: int) -> list[tuple[str | None, str]]:
    log = system.ref(f"casty://test@127.0.0.1:{port}/user/deadletters")
    letters: list[tuple[str | None, str]] = await system.ask(log, lambda r: GetDeadLetters(r), timeout=10)
    return letters


async def test_ref_of_an_earlier_incarnation_is_a_dead_letter_on_the_new_one() -> None:
    async with RemoteActorSystem("test", config=config()) as system:
        node = await NodeProcess(NODE, "--name", "test").start()
        port = node.port
        try:
            echo = system.ref(f"casty://test@127.0.0.1:{port}/user/echo")
            assert echo.uid == 0  # built from a URI: whichever incarnation is there
            # refs obtained from the node carry its incarnation
            reply = await system.ask(echo, lambda r: Refs((), r), timeout=10)
            old_echo: ActorRef[Any] = reply.refs[-1]
            assert old_echo == echo and old_echo.uid == node.info["uid"]
            assert str(old_echo) == f"casty://test@127.0.0.1:{port}/user/echo"  # the textual form is unchanged
            parent = system.ref(f"casty://test@127.0.0.1:{port}/user/parent")
            old_child = await system.ask(parent, lambda r: SpawnChild("kid", r), timeout=10)
            assert old_child.uid == node.info["uid"]
            assert await system.ask(old_echo, lambda r: Echo("before", r), timeout=10) == "before"

            await node.kill()
            node = await NodeProcess(NODE, "--name", "test", "--port", str(port)).start()
            assert node.info["uid"] != old_echo.uid
            # the new incarnation has actors at the same paths: reach them by fresh refs
            for _ in range(100):
                try:
                    assert await system.ask(echo, lambda r: Echo("fresh", r), timeout=1) == "fresh"
                    break
                except AskTimeoutError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("no answer from the restarted node")
            await system.ask(parent, lambda r: SpawnChild("kid", r), timeout=10)

            probe = TestProbe(system)
            old_echo.tell(Echo("to-the-old-echo", probe.ref))
            old_child.tell(Echo("to-the-old-child", probe.ref))
            with pytest.raises(AskTimeoutError):
                await system.ask(old_echo, lambda r: Echo("asked-the-old-echo", r), timeout=0.5)
            letters = await dead_letters(system, port)
            gone = [(path, reason) for path, reason in letters if "incarnation gone" in reason]
            assert [path for path, _ in gone] == ["/user/echo", "/user/parent/kid", "/user/echo"], letters
            # a fresh ask travels on the same connection after them: any stray reply arrived first
            assert await system.ask(echo, lambda r: Echo("after", r), timeout=10) == "after"
            assert probe.pending() == 0
            # watching a ref of the old incarnation: Terminated at once, not a watch on a stranger
            system.spawn(watching(old_echo, probe.ref), "watcher")
            terminated = await probe.expect(Terminated, timeout=10)
            assert terminated.ref == old_echo
        finally:
            await node.kill()


def watching(target: ActorRef[Any], report: ActorRef[Any]) -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.watch(target)

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, Terminated):
                report.tell(msg)

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def test_local_ref_of_an_earlier_incarnation_of_this_process_is_gone() -> None:
    async with RemoteActorSystem("test") as a, RemoteActorSystem("test") as b:
        probe = TestProbe(b, "probe")
        uri = f"{b.address}{probe.ref.path}"
        transport = b.require_transport()
        stale = transport.resolve_ref(uri, transport.uid ^ 1)
        dead = TestProbe(b, "dead")
        b.event_stream.tell(EventStreamSubscribe(DeadLetter, dead.ref))
        stale.tell("lost")
        letter = await dead.expect(DeadLetter, timeout=5)
        assert "incarnation gone" in letter.reason
        current = transport.resolve_ref(uri, transport.uid)
        assert current == probe.ref and current.is_local
        # through another process: a ref of b's actor with a wrong incarnation, sent from a
        wrong = a.require_transport().resolve_ref(uri, transport.uid ^ 1)
        wrong.tell("lost-too")
        letter = await dead.expect(DeadLetter, timeout=5)
        assert "incarnation gone" in letter.reason and letter.message == "lost-too"
        assert probe.pending() == 0


@pytest.mark.parametrize("serializer", ["msgpack", "pickle"])
async def test_refs_received_carry_the_incarnation_of_their_process(serializer: str) -> None:
    def make() -> Any:
        return PickleSerializer() if serializer == "pickle" else None

    async with RemoteActorSystem("test", serializer=make()) as a, RemoteActorSystem("test", serializer=make()) as b:
        pa, pb = TestProbe(a, "pa"), TestProbe(b, "pb")
        mine = a.spawn(Behaviors.ignore(), "mine")
        a.ref(f"{b.address}{pb.ref.path}").tell((mine, pa.ref))
        got, reply_to = await pb.receive(10)
        assert got == mine and got.uid == a.require_transport().uid
        # and back: our own actor, at our own incarnation, is the local ref again
        reply_to.tell(got)
        back = await pa.receive(10)
        assert back is mine
