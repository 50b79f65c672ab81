"""A cluster member for the cross-process stream tests: ``python -m tests.stream_cluster_node``.

It joins the cluster through ``--seed host:port`` with the default configuration (only the
system name set), runs the ``control`` actor of :mod:`tests.stream_app` at ``/user/control``,
prints one JSON line (``port``, ``pid``) once it is a member, and runs until its stdin closes,
SIGTERM, or it is killed.
"""

from __future__ import annotations

import argparse
import json
import os

import casty
from casty import ClusteredActorSystem
from tests.remote_app import _wait_for_exit
from tests.stream_app import control


async def run_node(args: argparse.Namespace) -> None:
    host, port = args.seed.rsplit(":", 1)
    config = casty.CastyConfig.from_dict({"system": {"name": args.name}})
    system = ClusteredActorSystem(args.name, "127.0.0.1", 0, seed_nodes=[(host, int(port))], config=config)
    async with system:
        system.spawn(control(), "control")
        await system.wait_for(2, timeout=30)
        print(json.dumps({"port": system.port, "pid": os.getpid()}), flush=True)
        await _wait_for_exit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="test")
    parser.add_argument("--seed", required=True)
    args = parser.parse_args(argv)
    casty.run(run_node(args))


if __name__ == "__main__":
    main()
