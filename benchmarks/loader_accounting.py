"""Load time of the inbox loader before and after the line accounting (issue 15, D70).

Generates one demo inbox, then loads it into fresh warehouses with the loader of two commits
(`--before` and `--after`, default HEAD; each extracted with `git archive` into a temporary
folder, so that editing the checkout during the run changes nothing), alternating, `--rounds`
times each (the machine is shared: compare figures
of one run of this script only). With `--slow-path`, every calls file then gets a blank line
after its header, which makes the new loader read each of them line by line (`csv_lines`):
the cost of the SQL reader on the biggest entity.

Only `load_inbox` runs (no Dagster, no dbt), each load in its own process: wall seconds, CPU
seconds (user + system, all threads) and the process's peak RSS (kernel high-water mark).

    .venv/bin/python benchmarks/loader_accounting.py --scale medium [--rounds 2] [--slow-path]

Writes `benchmarks/results/loader_accounting_<timestamp>.json` and prints a Markdown table.
The demo inbox and the warehouses live in a `mktemp` folder, deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the commit before the accounting landed (its parent is the loader without it)
DEFAULT_BEFORE = "c60c0c8^"

LOAD = """
import sys
from pathlib import Path
from dagster_project.lib import inbox_loader
reports = inbox_loader.load_inbox(
    Path(sys.argv[1]), Path(sys.argv[2]), memory_limit=sys.argv[3] or None
)
print(sum(r.rows_loaded for r in reports), sum(r.rows_quarantined for r in reports))
print(inbox_loader.__file__)
"""


def run_load(code_root: Path, inbox: Path, warehouse: Path, memory_limit: str) -> dict:
    """One load in a child process: wall seconds, peak RSS, rows loaded and quarantined."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(inbox), str(warehouse), memory_limit],
        cwd=code_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"load with {code_root} failed")
    counts, module = output.splitlines()
    if not Path(module).resolve().is_relative_to(code_root.resolve()):
        raise RuntimeError(f"the load imported {module}, not the loader under {code_root}")
    loaded, quarantined = (int(x) for x in counts.split())
    return {
        "seconds": round(seconds, 1),
        # CPU time of the load (all its threads): less sensitive to a busy machine than wall time
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git revision of 'before'")
    parser.add_argument("--after", default="HEAD", help="git revision of 'after'")
    parser.add_argument("--slow-path", action="store_true", help="also time the line reader")
    parser.add_argument("--slow-rounds", type=int, default=1, help="rounds of --slow-path")
    parser.add_argument("--memory-limit", default=os.environ.get("VORONKA_MEMORY_LIMIT", ""))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="voronka_loader_bench_"))
    try:
        roots, shas = {}, {}
        for label, revision in (("before", args.before), ("after", args.after)):
            roots[label] = work / label
            roots[label].mkdir()
            archive = subprocess.run(
                ["git", "archive", revision, "dagster_project"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(roots[label])], input=archive, check=True)
            shas[label] = subprocess.run(
                ["git", "rev-parse", "--short", revision],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        before_sha, after_sha = shas["before"], shas["after"]

        inbox = work / "inbox"
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster_project.cli",
                "demo",
                "--out",
                str(inbox),
                "--scale",
                args.scale,
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        generated = time.monotonic() - started
        size = sum(p.stat().st_size for p in inbox.rglob("*.csv"))
        print(f"demo {args.scale}: {size / 2**20:.0f} MiB in {generated:.0f} s", flush=True)

        runs = []
        for n in range(args.rounds):
            for label in ("before", "after"):
                code_root = roots[label]
                warehouse = work / f"{label}_{n}.duckdb"
                result = run_load(code_root, inbox, warehouse, args.memory_limit)
                warehouse.unlink()
                runs.append({"variant": label, "round": n + 1, **result})
                print(json.dumps(runs[-1]), flush=True)
        if args.slow_path:
            for path in sorted((inbox / "calls").glob("*.csv")):
                # a blank line after the header (one at the end would keep the fast read)
                copy = path.with_suffix(".tmp")
                with path.open("rb") as source, copy.open("wb") as target:
                    target.write(source.readline() + b"\n")
                    shutil.copyfileobj(source, target, 1 << 20)
                copy.replace(path)
            for n in range(args.slow_rounds):
                warehouse = work / f"slow_{n}.duckdb"
                result = run_load(roots["after"], inbox, warehouse, args.memory_limit)
                warehouse.unlink()
                runs.append({"variant": "after, calls line by line", "round": n + 1, **result})
                print(json.dumps(runs[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "scale": args.scale,
        "before": before_sha,
        "after": after_sha,
        "inbox_mib": round(size / 2**20),
        "runs": runs,
    }
    (out / f"loader_accounting_{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{args.scale}: before = {before_sha}, after = {after_sha}\n")
    print("| variant | round | seconds | CPU seconds | peak RSS MiB | rows loaded | quarantined |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['variant']} | {r['round']} | {r['seconds']} | {r['cpu_seconds']} | "
            f"{r['peak_rss_mb']} | {r['rows_loaded']} | {r['rows_quarantined']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
