"""Run the benchmark scenarios, print a table and write JSON.

    python -m benchmarks                 # full run
    python -m benchmarks --gate          # short run; exits 1 if a floor in benchmarks/README.md is missed
    python -m benchmarks --runs 5 --only local_tell

Each figure is the median of several runs; the compiled and pure implementations are run
alternately, each run in a fresh process, so both see the same machine noise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (scenario, n for a full run, n for the gate)
PLAN: list[tuple[str, int, int]] = [
    ("local_tell", 1_000_000, 300_000),
    ("local_ask", 20_000, 5_000),
]

# Floors checked by --gate; the reasons are in benchmarks/README.md.
FLOORS = {
    "local_tell_compiled_over_pure": 1.4,
}


def run_scenario(name: str, n: int, pure: bool, timeout: float = 300.0) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("CASTY_EXPECT_COMPILED", None)
    if pure:
        env["CASTY_NO_EXTENSIONS"] = "1"
    else:
        env.pop("CASTY_NO_EXTENSIONS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scenarios", name, "--n", str(n)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scenario {name} (pure={pure}) failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--gate", action="store_true", help="short run, fail below the floors")
    parser.add_argument("--runs", type=int, default=0, help="runs per figure (default 5; 3 with --gate)")
    parser.add_argument("--only", action="append", default=[], help="run only these scenarios")
    parser.add_argument("--json", default="", help="where to write the JSON report")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.gate else 5)
    started = time.time()
    figures: dict[str, dict[str, Any]] = {}
    for name, full_n, gate_n in PLAN:
        if args.only and name not in args.only:
            continue
        n = gate_n if args.gate else full_n
        samples: dict[str, list[dict[str, Any]]] = {"compiled": [], "pure": []}
        for _ in range(runs):  # alternate, so both implementations see the same noise
            samples["compiled"].append(run_scenario(name, n, pure=False))
            samples["pure"].append(run_scenario(name, n, pure=True))
        for impl, results in samples.items():
            entry: dict[str, Any] = {"unit": results[0]["unit"], "runs": runs, "n": n}
            entry["implementation"] = results[0]["implementation"]
            for key in results[0]:
                if isinstance(results[0][key], float):
                    entry[key] = summarize([r[key] for r in results])
            figures[f"{name}/{impl}"] = entry
    ratios: dict[str, float] = {}
    for name, _, _ in PLAN:
        c, p = figures.get(f"{name}/compiled"), figures.get(f"{name}/pure")
        if c and p:
            ratios[f"{name}_compiled_over_pure"] = c["rate"]["median"] / p["rate"]["median"]
    report = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "runs": runs,
        "gate": args.gate,
        "seconds": round(time.time() - started, 1),
        "figures": figures,
        "ratios": ratios,
        "floors": FLOORS,
    }
    print_table(report)
    out = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / ("gate.json" if args.gate else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nJSON written to {out}")
    if args.gate:
        failed = [k for k, floor in FLOORS.items() if k in ratios and ratios[k] < floor]
        for k in failed:
            print(f"GATE FAILED: {k} = {ratios[k]:.2f} < floor {FLOORS[k]}")
        missing = [k for k in FLOORS if k not in ratios]
        for k in missing:
            print(f"GATE FAILED: {k} was not measured")
        if failed or missing:
            return 1
        print("gate passed: " + ", ".join(f"{k} = {ratios[k]:.2f} (floor {FLOORS[k]})" for k in FLOORS))
    return 0


def print_table(report: dict[str, Any]) -> None:
    print(f"\ncasty benchmarks: median of {report['runs']} alternating runs (min..max), {report['machine']['platform']}")
    print(f"{'figure':<34} {'median':>14} {'min':>14} {'max':>14}  unit      extra")
    for key, entry in report["figures"].items():
        rate = entry["rate"]
        extra = ""
        if "p50_us" in entry:
            extra = f"p50 {entry['p50_us']['median']:.1f} us, p99 {entry['p99_us']['median']:.1f} us"
        print(
            f"{key:<34} {rate['median']:>14,.0f} {rate['min']:>14,.0f} {rate['max']:>14,.0f}  {entry['unit']:<9} {extra}"
        )
    for key, value in report["ratios"].items():
        print(f"ratio {key:<40} {value:.2f}")


if __name__ == "__main__":
    sys.exit(main())
