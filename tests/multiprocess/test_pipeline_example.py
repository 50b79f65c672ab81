"""The sensor pipeline example (3 node processes + 1 client process) end to end, short settings."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.timeout(150)


async def test_run_local_pipeline_summary() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "17_stream_pipeline" / "run_local.py"),
        "--readings", "30", "--interval", "0.002", "--quiet", "--timeout", "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 140)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("PIPELINE ")), None)
    assert line is not None, text[-3000:]
    summary = json.loads(line[len("PIPELINE ") :])
    assert summary["readings"] == {"temp": 30, "humidity": 30, "pressure": 30}, text[-3000:]
    assert summary["alerts_sent"] == summary["alerts_received"]
    assert set(summary["exit_codes"].values()) == {0}
    assert summary["ok"] and proc.returncode == 0


async def test_run_local_live_shows_rates_and_a_summary_not_every_alert() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "17_stream_pipeline" / "run_local.py"),
        "--readings", "2000", "--interval", "0", "--live", "--timeout", "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 140)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode(errors="replace").splitlines()
    line = next((ln for ln in lines if ln.startswith("PIPELINE ")), None)
    assert line is not None, "\n".join(lines[-60:])
    summary = json.loads(line[len("PIPELINE ") :])
    assert summary["ok"] and summary["alerts_sent"] > 0
    assert [ln for ln in lines if "ALERT #" in ln] == []  # no line per alert...
    assert any("RATE overall" in ln for ln in lines)  # ...but the rates
    assert any("alerts sent by the client / received by the monitor" in ln for ln in lines)
    assert len(lines) < 100
