"""A node that finds its cluster by DNS discovery, for multi-process tests:
``python -m tests.discovery_node --records FILE --config casty.toml``.

Its configuration is ``load_config(--config)``, so the test sets host, port and the discovery
knobs through ``CASTY_*`` environment variables. The records of ``cluster.service_name`` are
the lines of ``--records``, which the test rewrites as processes come and go
(:class:`FileResolver`). It prints a JSON ready line once started, then a line with its view
after every membership event: ``{"node", "up", "members", "formed"}``; it leaves the cluster
and exits when signalled or when stdin closes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import casty
from casty import (
    ActorContext,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    EventStreamSubscribe,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    MemberStatus,
    MemberUp,
)
from tests.remote_app import _wait_for_exit

_EVENTS: tuple[type, ...] = (MemberJoined, MemberUp, MemberLeft, MemberExited, MemberDowned, MemberRemoved)


class FileResolver:
    """Records read from a file, one address a line (no file: no records)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def resolve(self, name: str) -> Sequence[str]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return ()
        return [line.strip() for line in text.splitlines() if line.strip()]


def reporter(system: ClusteredActorSystem) -> Behavior[Any]:
    def report(event: str, subject: str) -> None:
        state = system.membership
        if state is None:
            return
        members = state.gossip.members
        discovery = system.discovery
        line = {
            "node": str(system.self_node),
            "event": event,
            "subject": subject,
            "up": sorted(str(m.node) for m in members if m.status is MemberStatus.UP),
            "members": sorted(str(m.node) for m in members),
            "formed": bool(discovery is not None and discovery.formed),
        }
        print(json.dumps(line), flush=True)

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        for event in _EVENTS:
            system.event_stream.tell(EventStreamSubscribe(event, ctx.self))
        report("Subscribed", "")

        async def receive(ctx: ActorContext[Any], msg: Any) -> None:
            report(type(msg).__name__, str(getattr(getattr(msg, "member", None), "node", "")))

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


async def run(args: argparse.Namespace) -> None:
    config = casty.load_config(args.config)
    system = ClusteredActorSystem.from_config(config, resolver=FileResolver(args.records))
    async with system:
        system.spawn(reporter(system), "reporter")
        print(json.dumps({"node": str(system.self_node), "port": system.port}), flush=True)
        await _wait_for_exit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--config", required=True)
    casty.run(run(parser.parse_args()))
