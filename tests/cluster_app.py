"""A cluster node program for multi-process tests: ``python -m tests.cluster_node ...``.

It joins through ``--seed`` (none: it forms the cluster), registers an echo service under
``ECHO_KEY`` and a control actor at ``/user/control``, prints a JSON ready line once it is up,
and runs until stdin closes or it is signalled (SIGTERM leaves the cluster gracefully).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import casty
from casty import ActorContext, ActorRef, Behavior, Behaviors, ClusteredActorSystem, ServiceKey
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


def service(name: str) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any] | None:
        if isinstance(msg, Ping):
            msg.reply_to.tell(name)
        elif isinstance(msg, StopService):
            return Behaviors.stopped()
        return None

    return Behaviors.receive(receive)


def control(system: ClusteredActorSystem) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, LookupEcho):
            listing = await system.lookup(ECHO_KEY)
            msg.reply_to.tell(tuple(sorted(str(i.ref) for i in listing.instances)))

    return Behaviors.receive(receive)


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


async def run(args: argparse.Namespace) -> None:
    config = fast_cluster_config(args.name)
    seeds = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in args.seed)]
    system = ClusteredActorSystem(
        name=args.name, host="127.0.0.1", port=args.port, seed_nodes=seeds, config=config
    )
    async with system:
        install(system)
        system.spawn(Behaviors.discoverable(service(str(system.self_node)), key=ECHO_KEY), "svc")
        system.spawn(control(system), "control")
        if args.wait:
            await system.wait_for(args.wait, timeout=30)
        print(json.dumps({"port": system.port, "uid": system.self_member.uid}), flush=True)
        await _wait_for_exit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="cluster")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", action="append", default=[])
    parser.add_argument("--wait", type=int, default=0, help="print ready only once this many members are up")
    args = parser.parse_args()
    casty.run(run(args))
