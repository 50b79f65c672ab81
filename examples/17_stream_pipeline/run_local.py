"""Run the whole sensor pipeline as processes on loopback and print a summary.

Three nodes (temp, humidity, pressure; the third is also the alert monitor) and one client,
each in its own process, exactly as in docker-compose.yml but on 127.0.0.1. Exits 0 when the
client received every reading of every sensor and the monitor received every alert.

    python examples/17_stream_pipeline/run_local.py                       # 20 readings per sensor
    python examples/17_stream_pipeline/run_local.py --readings 200000 --interval 0 --live

``--live`` shows rates while it runs (readings/s and alerts/s from the client, alerts received
by the monitor each second) and the summary at the end, not a line per alert; ``--quiet``
hides the alert lines without the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SENSORS = ("temp", "humidity", "pressure")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, label: str, args: list[str], quiet: bool) -> None:
        self.label = label
        self.args = args
        self.quiet = quiet
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.summary: dict[str, Any] | None = None
        self._pump: asyncio.Task[None] | None = None
        #: alert lines this process printed (shown only without --quiet/--live)
        self.alert_lines = 0

    async def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
        )
        self._pump = asyncio.create_task(self.pump())

    async def pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("SUMMARY "):
                self.summary = json.loads(line[8:])
            elif line.startswith("{") and '"ready"' in line and not self.ready.done():
                self.ready.set_result(json.loads(line))
                continue
            elif line.startswith("RATE "):
                print(f"[{self.label}] {line}", flush=True)
                continue
            if "ALERT" in line:
                self.alert_lines += 1
                if self.quiet:
                    continue
            print(f"[{self.label}] {line}", flush=True)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"{self.label} exited before it was ready"))
            self.ready.exception()  # a client never reports ready; nobody waits on it

    async def stop(self, timeout: float = 15.0) -> int:
        proc = self.proc
        assert proc is not None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._pump is not None:
            await self._pump
        return proc.returncode if proc.returncode is not None else -1

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._pump is not None:
            await self._pump
        return self.proc.returncode if self.proc.returncode is not None else -1


async def run(args: argparse.Namespace) -> int:
    seed_port = args.port or free_port()
    seed = f"127.0.0.1:{seed_port}"
    common = ["--host", "127.0.0.1", "--seed", seed, "--nodes", "3", "--readings", str(args.readings)]
    common += ["--interval", str(args.interval)]
    nodes = []
    quiet = args.quiet or args.live  # live mode shows rates, not one line per alert
    for i, sensor in enumerate(SENSORS):
        port = seed_port if i == 0 else 0
        extra = ["--alert-monitor"] if i == 2 else []
        nodes.append(
            Proc(f"node-{i + 1}", [str(HERE / "node.py"), "--port", str(port), "--sensor", sensor, *common, *extra], quiet)
        )
    client = Proc(
        "client",
        [str(HERE / "client.py"), "--contact", seed, "--producers", "3", *(["--live"] if args.live else [])],
        quiet,
    )
    monitor_rate = asyncio.create_task(report_alerts(nodes[2])) if args.live else None
    exit_codes: dict[str, int] = {}
    try:
        await nodes[0].start()
        for node in nodes[1:]:
            await node.start()
        await asyncio.wait_for(asyncio.gather(*(n.ready for n in nodes)), args.timeout)
        await client.start()
        exit_codes["client"] = await client.wait(args.timeout)
    finally:
        running = [n for n in nodes if n.proc is not None]
        codes = await asyncio.gather(*(n.stop() for n in running))
        exit_codes.update({n.label: code for n, code in zip(running, codes, strict=True)})
        if client.proc is not None and "client" not in exit_codes:
            exit_codes["client"] = await client.stop()
        if monitor_rate is not None:
            monitor_rate.cancel()
    return report(args, nodes, client, exit_codes)


async def report_alerts(monitor: Proc) -> None:
    """Live mode: the alerts the monitor received, once a second."""
    last = 0
    while True:
        await asyncio.sleep(1.0)
        if monitor.alert_lines != last:
            print(f"[{monitor.label}] ALERTS {monitor.alert_lines - last:,}/s  (total {monitor.alert_lines:,})", flush=True)
            last = monitor.alert_lines


def report(args: argparse.Namespace, nodes: list[Proc], client: Proc, exit_codes: dict[str, int]) -> int:
    cs = client.summary or {}
    monitor = nodes[2].summary or {}
    readings = cs.get("readings", {})
    print("\n==== sensor pipeline summary ====")
    ok = True
    for sensor in SENSORS:
        got = readings.get(sensor, 0)
        mark = "ok" if got == args.readings else "MISSING"
        ok &= got == args.readings
        print(f"  readings received by the client  {sensor:<9} {got:>9} / {args.readings}  {mark}")
    sent, received = cs.get("alerts_sent", 0), monitor.get("alerts", 0)
    ok &= sent == received
    print(f"  alerts sent by the client / received by the monitor: {sent} / {received}")
    if cs.get("seconds"):
        print(f"  client run time {cs['seconds']}s ({cs.get('total', 0) / cs['seconds']:,.0f} readings/s overall)")
    for label, code in sorted(exit_codes.items()):
        ok &= code == 0
        print(f"  exit code {label:<8} {code}")
    if cs.get("errors"):
        ok = False
        print(f"  client errors: {cs['errors']}")
    print("RESULT " + ("OK" if ok else "FAILED"))
    summary = {"readings": readings, "alerts_sent": sent, "alerts_received": received, "exit_codes": exit_codes, "ok": ok}
    print("PIPELINE " + json.dumps(summary), flush=True)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=20, help="readings per sensor")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between readings (0: full rate)")
    parser.add_argument("--port", type=int, default=0, help="port of node-1, the seed (0: a free one)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--live", action="store_true", help="show readings/s while it runs")
    parser.add_argument("--quiet", action="store_true", help="do not echo every alert line")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
