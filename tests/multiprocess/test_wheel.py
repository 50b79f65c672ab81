"""Packaging: ``python -m build`` makes an sdist and a wheel as a user would get them.

Both are built from a copy of the checkout (built modules included, caches and venvs left
out). The wheel is installed into a fresh virtual environment outside the checkout and runs a
stream between two processes that use only casty's public API; the sdist is unpacked and its
own test suite collects and runs there. Building compiles the fast paths once (about a minute on two
busy cores); pip's cache serves the build and runtime dependencies.

The compiled run (``make test-compiled``) does this; the pure run skips it: the packages do not
depend on which twin the test process happens to use, and a build without compiled modules is
covered by tests/unit/test_fastpath.py (the warning) and the twin tests (the behaviour).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from casty import _fastpath

ROOT = Path(__file__).resolve().parent.parent.parent
ELEMENTS = 20_000

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.skipif(_fastpath.NO_EXTENSIONS, reason="packaging is checked once, in the compiled run"),
]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could point a child at the checkout or pick a build."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CASTY_")}
    return env | extra


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path
    log: str
    seconds: float


# What a checkout holds besides its sources: left out of the copy the packages are built from.
# Built modules (.so) stay in: they must not reach the sdist (MANIFEST.in lists sources only).
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    ".benchmarks", "results", ".matrix-venvs.log",
)  # fmt: skip


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy of the checkout as it stands: the build writes casty.egg-info into its
    # source tree, and `make test` installs other interpreters' venvs into this one meanwhile.
    tree = tmp_path_factory.mktemp("checkout") / "casty"
    shutil.copytree(ROOT, tree, ignore=_NOT_SOURCES)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        env=_clean_env(CASTY_REQUIRE_EXTENSIONS="1"),
        cwd=out,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (sdist,) = out.glob("casty-*.tar.gz")
    (wheel,) = out.glob("casty-*.whl")
    print(f"python -m build: {seconds:.1f}s")
    return Dist(sdist, wheel, proc.stdout + proc.stderr, seconds)


def test_build_prints_no_warning(dist: Dist) -> None:
    noisy = [line for line in dist.log.splitlines() if re.search(r"warn|deprecat", line, re.IGNORECASE)]
    assert not noisy, noisy


def test_wheel_carries_compiled_modules_and_no_generated_sources(dist: Dist) -> None:
    names = zipfile.ZipFile(dist.wheel).namelist()
    for name in _fastpath.FAST_PATHS:
        assert any(re.fullmatch(rf"casty/_fastpath/_{name}_c\..*\.so", n) for n in names), name
        assert f"casty/_fastpath/_{name}_py.py" in names
    assert not [n for n in names if n.endswith((".c", ".html"))]
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dist.wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_sdist_is_the_complete_source_tree(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py") if "__pycache__" not in p.parts}
    assert expected <= names, sorted(expected - names)
    for path in ("LICENSE", "README.md", "Makefile", ".ci/run", "setup.py", "casty/_fastpath/_env.py"):
        assert path in names, path
    assert not [n for n in names if n.endswith((".c", ".html", ".so", ".pyc"))]


def test_sdist_tests_run_from_the_unpacked_sdist(dist: Dist, tmp_path: Path) -> None:
    with tarfile.open(dist.sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.glob("casty-*")
    # Run from the unpacked tree with this interpreter's test tools: the tree's own casty (not
    # built there, so its pure twins) is the one imported, and every helper the tests use is there.
    env = _clean_env(CASTY_NO_EXTENSIONS="1")
    where = subprocess.run(
        [sys.executable, "-c", "import casty; print(casty.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(tree)
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    collect = subprocess.run(
        [*pytest_cmd, "--collect-only", "tests"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stdout[-4000:] + collect.stderr[-2000:]
    run = subprocess.run(
        [*pytest_cmd, "tests/unit/test_readme.py", "tests/unit/test_fastpath.py", "tests/unit/test_frame.py"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


SMOKE = '''
"""Two processes, public API only: a producer node streams ints to a consumer node."""
import asyncio, json, sys
import casty
from casty import GetSink, GetSource, RemoteActorSystem, stream_consumer, stream_producer

def report(**fields):
    fields.update(implementation=casty.IMPLEMENTATION, file=casty.__file__)
    print(json.dumps(fields), flush=True)

async def producer(count):
    async with RemoteActorSystem("wheel", host="127.0.0.1", port=0) as system:
        ref = system.spawn(stream_producer(), "numbers")
        sink = await system.ask(ref, lambda r: GetSink(r), timeout=10)
        report(port=system.port)
        for i in range(count):
            await sink.put(i)
        await sink.complete()
        # stay up until the test has the consumer's report and closes stdin
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

async def consumer(port):
    async with RemoteActorSystem("wheel", host="127.0.0.1", port=0) as system:
        remote = system.ref(f"casty://wheel@127.0.0.1:{port}/user/numbers")
        ref = system.spawn(stream_consumer(remote), "reader")
        source = await system.ask(ref, lambda r: GetSource(r), timeout=10)
        count, in_order = 0, True
        async for x in source:
            in_order = in_order and x == count
            count += 1
        report(count=count, in_order=in_order)

if sys.argv[1] == "producer":
    casty.run(producer(int(sys.argv[2])))
else:
    casty.run(consumer(int(sys.argv[2])))
'''


def test_wheel_in_a_fresh_venv_streams_across_processes(dist: Dist, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    started = time.monotonic()
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # this interpreter's pip installs into the new environment (and reuses pip's cache)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(dist.wheel)],
        env=_clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    installed = time.monotonic()
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE)
    # -I: neither the script's directory, the working directory nor PYTHONPATH is on sys.path
    run = [str(python), "-I", str(script)]
    producer = subprocess.Popen(
        [*run, "producer", str(ELEMENTS)],
        cwd=tmp_path, env=_clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert producer.stdout is not None and producer.stdin is not None
        ready = json.loads(producer.stdout.readline() or "{}")
        assert "port" in ready, producer.communicate(timeout=30)[1]
        consumer = subprocess.run(
            [*run, "consumer", str(ready["port"])],
            cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert consumer.returncode == 0, consumer.stderr[-4000:]
        report = json.loads(consumer.stdout.splitlines()[-1])
        producer.stdin.close()
        assert producer.wait(timeout=30) == 0
        producer_stderr = producer.stderr.read() if producer.stderr else ""
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    streamed = time.monotonic()
    print(f"fresh venv + install: {installed - started:.1f}s, stream: {streamed - installed:.1f}s")
    assert report["count"] == ELEMENTS and report["in_order"]
    for side in (ready, report):
        assert side["implementation"] == "compiled"
        assert Path(side["file"]).is_relative_to(env_dir), side["file"]
    assert consumer.stderr == "" and producer_stderr == "", (consumer.stderr, producer_stderr)
