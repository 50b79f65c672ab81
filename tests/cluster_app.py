"""A cluster node program for multi-process tests: ``python -m tests.cluster_node ...``.

It joins through ``--seed`` (none: it forms the cluster), registers an echo service under
``ECHO_KEY`` and a control actor at ``/user/control``, prints a JSON ready line once it is up,
and runs until stdin closes or it is signalled (SIGTERM leaves the cluster gracefully).

``--bind-port`` makes it listen on that port (0: any free one) while it advertises ``--port``
(a proxy in front of it, for instance); the ready line then carries ``bind_port`` too.
``--down-after`` overrides ``cluster.down_after``. When the system shuts down by itself (the
node was downed, or it found itself on the minority side of a partition) the program prints
``{"terminated": true, ...}`` and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import casty
from casty import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    EventStreamSubscribe,
    LeaderChanged,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    MemberStatus,
    MemberUp,
    ReachableMember,
    ServiceKey,
    Subscribe,
    UnreachableMember,
)
from casty.actors.receptionist import Listing
from tests.remote_app import _wait_for_exit, install

ECHO_KEY: ServiceKey[Any] = ServiceKey("echo")


@dataclass(frozen=True)
class Ping:
    reply_to: ActorRef[str]


@dataclass(frozen=True)
class StopService:
    pass


@dataclass(frozen=True)
class LookupEcho:
    reply_to: ActorRef[tuple[str, ...]]


@dataclass(frozen=True)
class WatchView:
    """Send ``reply_to`` this node's ``NodeView`` now and again after every membership event
    and every change of its echo listing."""

    reply_to: ActorRef[NodeView]


@dataclass(frozen=True)
class NodeView:
    """One node's own view of the cluster (addresses are ``host:port`` strings)."""

    node: str
    seq: int
    members: tuple[tuple[str, str], ...]
    """(address, status) of every member in this node's gossip."""
    unreachable: tuple[str, ...]
    """Members some observer reports unreachable, per this node's gossip."""
    leader: str
    """The leader this node sees ("" when none)."""
    listing: tuple[str, ...]
    """Addresses of the echo instances a lookup on this node returns now."""
    ever_unreachable: tuple[str, ...]
    """Every member this node has seen reported unreachable since it started watching."""
    ever_downed: tuple[str, ...]
    """Every member this node has seen downed or removed (left gracefully excluded)."""


_VIEW_EVENTS: tuple[type, ...] = (
    MemberJoined,
    MemberUp,
    MemberLeft,
    MemberExited,
    MemberDowned,
    MemberRemoved,
    UnreachableMember,
    ReachableMember,
    LeaderChanged,
)


def service(name: str) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
        if isinstance(msg, Ping):
            msg.reply_to.tell(name)
        elif isinstance(msg, StopService):
            return Behaviors.stopped()
        return None

    return Behaviors.receive(receive)


def control(system: ClusteredActorSystem) -> Behavior[Any]:
    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        watchers: list[ActorRef[NodeView]] = []
        ever_unreachable: set[str] = set()
        ever_downed: set[str] = set()
        seq = 0

        def view() -> NodeView:
            nonlocal seq
            seq += 1
            state = system.membership
            assert state is not None
            gossip = state.gossip
            unreachable = gossip.unreachable_keys
            leader = state.leader
            return NodeView(
                node=str(system.self_node),
                seq=seq,
                members=tuple(sorted((str(m.node), m.status.value) for m in gossip.members)),
                unreachable=tuple(sorted(str(m.node) for m in gossip.members if m.key in unreachable)),
                leader=str(leader) if leader is not None else "",
                listing=tuple(sorted(str(i.node) for i in system.listing(ECHO_KEY).instances)),
                ever_unreachable=tuple(sorted(ever_unreachable)),
                ever_downed=tuple(sorted(ever_downed)),
            )

        def publish() -> None:
            if watchers:
                current = view()
                for watcher in watchers:
                    watcher.tell(current)

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            if isinstance(msg, LookupEcho):
                listing = await system.lookup(ECHO_KEY)
                msg.reply_to.tell(tuple(sorted(str(i.ref) for i in listing.instances)))
            elif isinstance(msg, WatchView):
                if not watchers:
                    for event in _VIEW_EVENTS:
                        system.event_stream.tell(EventStreamSubscribe(event, ctx.self))
                    system.receptionist.tell(Subscribe(ECHO_KEY, ctx.self))
                watchers.append(msg.reply_to)
                msg.reply_to.tell(view())
            elif isinstance(msg, (*_VIEW_EVENTS, Listing)):
                member = getattr(msg, "member", None)
                if isinstance(msg, UnreachableMember) and member is not None:
                    ever_unreachable.add(str(member.node))
                elif member is not None and (
                    isinstance(msg, MemberDowned)
                    or (isinstance(msg, MemberRemoved) and msg.previous_status is MemberStatus.DOWN)
                ):
                    ever_downed.add(str(member.node))
                publish()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def fast_cluster_config(name: str = "cluster", **cluster: Any) -> casty.CastyConfig:
    base: dict[str, Any] = {
        "system": {"name": name},
        "cluster": {
            "down_after": 2.0,
            "retry_join_interval": 0.2,
            "gossip": {"interval": 0.2},
            "heartbeat": {"interval": 0.2, "availability_check_interval": 0.2},
            "failure_detector": {"threshold": 8.0, "acceptable_heartbeat_pause": 0.6},
        },
        "remote": {"reconnect_backoff_max": 0.3},
    }
    base["cluster"].update(cluster)
    return casty.CastyConfig.from_dict(base)


async def _exit_or_termination(system: ClusteredActorSystem) -> bool:
    """Wait until stdin closes or a signal arrives (False), or until the system shuts down by
    itself (True)."""
    exit_task = asyncio.ensure_future(_wait_for_exit())
    terminated = asyncio.ensure_future(system.wait_for_termination())
    done, pending = await asyncio.wait({exit_task, terminated}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return terminated in done


async def run(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = {}
    if args.down_after is not None:
        overrides["down_after"] = args.down_after
    config = fast_cluster_config(args.name, **overrides)
    seeds = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in args.seed)]
    system = ClusteredActorSystem(
        name=args.name,
        host="127.0.0.1",
        port=args.port,
        seed_nodes=seeds,
        config=config,
        bind_port=args.bind_port,
    )
    terminated = False
    async with system:
        install(system)
        system.spawn(Behaviors.discoverable(service(str(system.self_node)), key=ECHO_KEY), "svc")
        system.spawn(control(system), "control")
        if args.wait:
            await system.wait_for(args.wait, timeout=30)
        ready: dict[str, Any] = {"port": system.port, "uid": system.self_member.uid}
        if args.bind_port is not None and system.transport is not None:
            ready["bind_port"] = system.transport.bind_port
        print(json.dumps(ready), flush=True)
        terminated = await _exit_or_termination(system)
    if terminated:
        print(json.dumps({"terminated": True, "port": system.port, "at": time.time()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="cluster")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", action="append", default=[])
    parser.add_argument("--wait", type=int, default=0, help="print ready only once this many members are up")
    parser.add_argument("--bind-port", type=int, default=None, help="listen on this port (0: any) and advertise --port")
    parser.add_argument("--down-after", type=float, default=None, help="cluster.down_after in seconds")
    args = parser.parse_args()
    casty.run(run(args))
