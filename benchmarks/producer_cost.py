"""What a streamed element costs its producer, in instructions (load-independent).

    python -m benchmarks.producer_cost [--n 20000 --n2 120000]

Needs ``valgrind``. A producer process (a ``RemoteActorSystem`` with a ``stream_producer``,
fed with ``await sink.put(SensorReading(...))`` as in ``stream_node_node``) runs under
``valgrind --tool=callgrind``, streaming to a consumer process (``async for``) over loopback.
It runs twice, with ``--n`` and ``--n2`` elements; the difference of the producer's instruction
counts over the difference of the element counts is what one element costs it, start-up and
shutdown cancelled out. Three producers are measured:

- ``user loop``: the same loop building each element and dropping it (the user's own code:
  the frozen dataclass and the loop; ``await sink.put(x)`` is counted as casty's);
- ``compiled`` and ``pure``: the real stream, with the compiled fast paths and with
  ``CASTY_NO_EXTENSIONS=1``.

casty's cost per element is the stream's count less the user loop's. On a producer-bound
scenario, (user + casty pure) / (user + casty compiled) is what compiling casty can give; with
casty's compiled cost at zero it would be (user + casty pure) / user. Instruction counts are the
same on a busy machine as on a quiet one, unlike the throughput figures of ``python -m
benchmarks``, which move by up to 1.5x from run to run here. Takes about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import casty
from benchmarks.remote_app import SensorReading
from casty import GetSink, GetSource, RemoteActorSystem, stream_consumer, stream_producer

ROOT = Path(__file__).resolve().parent.parent


async def _producer(n: int, mode: str) -> None:
    async with RemoteActorSystem("cost", host="127.0.0.1", port=0) as system:
        ref = system.spawn(stream_producer(), "readings")
        sink = await system.ask(ref, lambda r: GetSink(r), timeout=60)
        print(system.port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # the consumer is subscribed
        put = sink.put
        stamp = time.time()
        if mode == "stream":
            for i in range(n):
                await put(SensorReading("temp-1", float(i), stamp, "node-a"))
        else:  # the user's part alone: each element is built and dropped
            for i in range(n):
                SensorReading("temp-1", float(i), stamp, "node-a")
        await sink.complete()
        await loop.run_in_executor(None, sys.stdin.readline)  # the consumer has everything


async def _consumer(port: int) -> None:
    async with RemoteActorSystem("cost", host="127.0.0.1", port=0) as system:
        remote = system.ref(f"casty://cost@127.0.0.1:{port}/user/readings")
        ref = system.spawn(stream_consumer(remote, timeout=600), "reader")
        source = await system.ask(ref, lambda r: GetSource(r), timeout=60)
        print("subscribed", flush=True)
        count = 0
        async for _ in source:
            count += 1
        print(count, flush=True)


def _env(pure: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CASTY_NO_EXTENSIONS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if pure:
        env["CASTY_NO_EXTENSIONS"] = "1"
    return env


def _instructions(mode: str, pure: bool, n: int, out: Path) -> int:
    """The producer's instruction count for ``n`` elements (checks the consumer got them all)."""
    env = _env(pure)
    me = [sys.executable, "-m", "benchmarks.producer_cost"]
    profile = out / f"callgrind.{mode}.{'pure' if pure else 'compiled'}.{n}"
    producer = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", *me, "--role", "producer",
         "--mode", mode, "--n", str(n)],
        env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    consumer: subprocess.Popen[str] | None = None
    try:
        assert producer.stdin is not None and producer.stdout is not None
        port = producer.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"producer did not start: {producer.communicate(timeout=60)[1][-2000:]}")
        consumer = subprocess.Popen(
            [*me, "--role", "consumer", "--port", port],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert consumer.stdout is not None
        if consumer.stdout.readline().strip() != "subscribed":
            raise RuntimeError(f"consumer did not subscribe: {consumer.communicate(timeout=60)[1][-2000:]}")
        producer.stdin.write("go\n")
        producer.stdin.flush()
        got, err = consumer.communicate(timeout=1800)
        expected = n if mode == "stream" else 0
        if consumer.returncode != 0 or got.strip() != str(expected):
            raise RuntimeError(f"consumer got {got.strip()!r} of {expected}: {err[-2000:]}")
        _, err = producer.communicate("done\n", timeout=300)
        if producer.returncode != 0:
            raise RuntimeError(f"producer failed: {err[-2000:]}")
    finally:
        for proc in (producer, consumer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    text = profile.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction count in {profile}")
    return int(match.group(1))


def measure(n: int, n2: int) -> dict[str, Any]:
    """Instructions per element: the user loop, and casty compiled and pure on top of it."""
    runs = [("build", False), ("stream", False), ("stream", True)]
    with tempfile.TemporaryDirectory(prefix="casty-producer-cost-") as tmp, ThreadPoolExecutor(2) as pool:
        out = Path(tmp)
        futures = {
            (mode, pure, k): pool.submit(_instructions, mode, pure, k, out) for mode, pure in runs for k in (n, n2)
        }
        counts = {key: f.result() for key, f in futures.items()}
    per = {(mode, pure): (counts[(mode, pure, n2)] - counts[(mode, pure, n)]) / (n2 - n) for mode, pure in runs}
    user = per[("build", False)]
    compiled = per[("stream", False)] - user
    pure = per[("stream", True)] - user
    return {
        "user_loop": user,
        "casty_compiled": compiled,
        "casty_pure": pure,
        "casty_pure_over_compiled": pure / compiled,
        "producer_pure_over_compiled": (user + pure) / (user + compiled),
        "bound_with_free_casty": (user + pure) / user,
        "unit": "instructions per element",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.producer_cost")
    parser.add_argument("--n", type=int, default=20_000, help="elements of the shorter run")
    parser.add_argument("--n2", type=int, default=120_000, help="elements of the longer run")
    parser.add_argument("--role", choices=("producer", "consumer"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("stream", "build"), default="stream", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "producer":
        casty.run(_producer(args.n, args.mode))
        return
    if args.role == "consumer":
        casty.run(_consumer(args.port))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("python -m benchmarks.producer_cost needs valgrind (apt install valgrind)")
    if not 0 < args.n < args.n2:
        raise SystemExit("--n must be positive and smaller than --n2")
    result = measure(args.n, args.n2)
    print(f"producer of stream_node_node's element, instructions per element (callgrind, {args.n2 - args.n} elements):")
    print(f"  the user's loop alone (elements built, dropped){result['user_loop']:8,.0f}")
    print(f"  casty, compiled                                {result['casty_compiled']:8,.0f}")
    print(f"  casty, pure                                    {result['casty_pure']:8,.0f}")
    print(f"  casty pure / compiled                          {result['casty_pure_over_compiled']:8.2f}")
    print(f"  producer pure / compiled (user + casty)        {result['producer_pure_over_compiled']:8.2f}")
    print(f"  the same with casty's compiled cost at zero    {result['bound_with_free_casty']:8.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
