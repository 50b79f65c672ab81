"""Launching node processes from tests: each prints a JSON line when ready and is always ended."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    """A node in its own process. ``async with NodeProcess(...) as node`` starts it and, on exit,
    ends it (SIGTERM, then SIGKILL) whatever happened."""

    def __init__(self, module: str, *args: str, ready_timeout: float = 20.0, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    @property
    def port(self) -> int:
        return int(self.info["port"])

    async def start(self) -> NodeProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.extra_env)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.ready_timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"{self.module} {self.args} did not become ready") from None
        if not line:
            await self.wait()
            raise AssertionError(f"{self.module} {self.args} exited before it was ready")
        self.info = json.loads(line)
        return self

    async def __aenter__(self) -> NodeProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, timeout: float = 10.0) -> int | None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc else None
        try:
            proc.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(proc.wait(), timeout)
        except (TimeoutError, ProcessLookupError):
            return await self.kill()

    async def kill(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        return await proc.wait()

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def read_line(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        return json.loads(line)  # type: ignore[no-any-return]
