"""Benchmark `voronka demo` and `voronka run` per scale: wall time and peak memory.

Not a test: machines are shared and noisy, so compare figures from one run of this script.
Each step runs as a subprocess; its peak memory is sampled from /proc every 0.2 s over the
whole process tree (dbt runs as a grandchild), and also read from the kernel's
RUSAGE_CHILDREN high-water mark (the largest single process).

    .venv/bin/python benchmarks/run.py --scales small medium large [--workdir /tmp/voronka-bench]

Writes `benchmarks/results/<timestamp>.json` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VORONKA = [sys.executable, "-m", "dagster_project.cli"]


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{current}/task/{current}/children") as handle:
                stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measure(command: list[str], env: dict[str, str], log_path: Path) -> dict:
    """Run a command; return wall seconds, peak tree RSS and exit code."""
    peak = 0
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_bytes(process.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
    return {
        "command": " ".join(command[2:]),
        "seconds": round(time.monotonic() - started, 1),
        "peak_tree_rss_mb": round(peak / 2**20),
        "exit_code": code,
        "log": str(log_path),
    }


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_scale(scale: str, workdir: Path, keep: bool) -> dict:
    inbox, warehouse = workdir / scale / "inbox", workdir / scale / "warehouse.duckdb"
    shutil.rmtree(workdir / scale, ignore_errors=True)
    inbox.parent.mkdir(parents=True)
    env = {**os.environ, "VORONKA_INBOX": str(inbox), "VORONKA_WAREHOUSE": str(warehouse)}
    logs = workdir / scale
    result = {"scale": scale}
    result["demo"] = measure(
        [*VORONKA, "demo", "--out", str(inbox), "--scale", scale], env, logs / "demo.log"
    )
    result["inbox_mb"] = round(du(inbox) / 2**20)
    result["run"] = measure([*VORONKA, "run", "--quiet"], env, logs / "run.log")
    result["rerun_unchanged"] = measure([*VORONKA, "run", "--quiet"], env, logs / "rerun.log")
    result["warehouse_mb"] = round(warehouse.stat().st_size / 2**20) if warehouse.exists() else 0
    if not keep:
        shutil.rmtree(inbox, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "medium"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voronka-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated inboxes")
    args = parser.parse_args()
    results = [bench_scale(scale, args.workdir, args.keep) for scale in args.scales]
    rusage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "when": stamp,
        "cpus": os.cpu_count(),
        "largest_child_maxrss_mb": round(rusage.ru_maxrss / 1024),
        "results": results,
    }
    (out / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
    print("| scale | step | wall s | peak RSS MB | exit |")
    print("|---|---|---|---|---|")
    for r in results:
        for step in ("demo", "run", "rerun_unchanged"):
            m = r[step]
            row = (r["scale"], step, m["seconds"], m["peak_tree_rss_mb"], m["exit_code"])
            print("| " + " | ".join(map(str, row)) + " |")
        sizes = f"{r['inbox_mb']} MB / {r['warehouse_mb']} MB"
        print(f"| {r['scale']} | inbox / warehouse size | {sizes} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
