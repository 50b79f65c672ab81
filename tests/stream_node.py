"""A node process for the cross-process stream tests: ``python -m tests.stream_node``.

It starts a RemoteActorSystem with the ``control`` actor of :mod:`tests.stream_app`, prints one
JSON line (``port``: the advertised port, ``bind_port``: the port it listens on, ``uid``,
``pid``) and runs until its stdin closes, SIGTERM, or it is killed.  ``--port P --bind-port 0``
makes it listen on a free port while advertising ``P``: a proxy listening on ``P`` and
forwarding to ``bind_port`` then carries all traffic to it.
"""

from __future__ import annotations

import argparse
import json
import os

import casty
from casty.remote import RemoteActorSystem
from tests.remote_app import _wait_for_exit
from tests.stream_app import control


async def run_node(args: argparse.Namespace) -> None:
    config = casty.load_config(args.config) if args.config else None
    system = RemoteActorSystem(
        args.name,
        host="127.0.0.1",
        port=args.port,
        bind_port=args.bind_port if args.bind_port >= 0 else None,
        config=config,
    )
    async with system:
        system.spawn(control(), "control")
        transport = system.transport
        assert transport is not None
        info = {"port": system.port, "bind_port": transport.bind_port, "uid": transport.uid, "pid": os.getpid()}
        print(json.dumps(info), flush=True)
        await _wait_for_exit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="test")
    parser.add_argument("--port", type=int, default=0, help="advertised port (0: the bound one)")
    parser.add_argument("--bind-port", type=int, default=-1, help="listening port (default: --port)")
    parser.add_argument("--config", default="")
    args = parser.parse_args(argv)
    casty.run(run_node(args))


if __name__ == "__main__":
    main()
