"""The node program of the cross-process benchmarks (see ``benchmarks.remote_app``).

    python -m benchmarks.node casty|raw [--max-seconds S]

Prints one JSON line with its port when ready; runs until SIGTERM/SIGINT or ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio

import casty
from benchmarks.remote_app import run_casty_node, run_raw_node


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node")
    parser.add_argument("role", choices=["casty", "raw"])
    parser.add_argument("--max-seconds", type=float, default=240.0, help="exit after this long whatever happens")
    args = parser.parse_args(argv)
    run = run_casty_node if args.role == "casty" else run_raw_node
    casty.run(run(args.max_seconds))


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
