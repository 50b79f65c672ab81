"""A ClusterClient in its own process: ``python -m tests.client_node --contact host:port``.

It waits for the echo service on ``--expect`` nodes, asks each instance, spawns an echo actor
of its own and prints one JSON line with the answers and that actor's URI; then it runs until
stdin closes.
"""

from __future__ import annotations

import argparse
import json

import casty
from casty import ClusterClient
from tests.cluster_app import ECHO_KEY, Ping
from tests.remote_app import _wait_for_exit, echo


async def run(args: argparse.Namespace) -> None:
    contacts = [(h, int(p)) for h, p in (c.rsplit(":", 1) for c in args.contact)]
    async with ClusterClient(contact_points=contacts, system_name=args.name) as client:
        listing = await client.wait_for_service(ECHO_KEY, timeout=30, count=args.expect)
        answers = sorted([await client.ask(i.ref, lambda r: Ping(r), timeout=10) for i in listing.instances])
        mine = client.spawn(echo(), "client-echo")
        print(json.dumps({"answers": answers, "echo": mine.uri, "port": 0}), flush=True)
        await _wait_for_exit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="cluster")
    parser.add_argument("--contact", action="append", required=True)
    parser.add_argument("--expect", type=int, default=1)
    casty.run(run(parser.parse_args()))
