"""Helpers for the observability tests: free ports, HTTP GETs with urllib, running ``casty``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from tests.procs import ROOT


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


async def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """``GET http://127.0.0.1:port/path`` with urllib (in a thread): status and body; an
    OSError when nothing answers."""
    return await asyncio.get_running_loop().run_in_executor(None, _get, f"http://127.0.0.1:{port}{path}", timeout)


async def ready_status(port: int) -> int | None:
    """What ``/ready`` answers, or None when nothing answers."""
    try:
        return (await http_get(port, "/ready", timeout=2.0))[0]
    except OSError:
        return None


async def until_ready_is(port: int, expected: int, timeout: float, reason: str = "") -> dict[str, Any]:
    """Poll ``/ready`` until it answers ``expected`` (with ``reason`` in its reason); returns
    its JSON body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: tuple[int, str] | str = "no answer"
    while loop.time() < deadline:
        try:
            last = await http_get(port, "/ready", timeout=2.0)
            if last[0] == expected:
                body: dict[str, Any] = json.loads(last[1])
                if reason in body["reason"]:
                    return body
        except OSError as exc:
            last = str(exc)
        await asyncio.sleep(0.1)
    raise AssertionError(f"/ready on {port} did not answer {expected} within {timeout}s; last: {last}")


async def run_casty(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """Run ``python -m casty ARGS`` and return its exit status, stdout and stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "casty", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
