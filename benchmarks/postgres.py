"""The medium demo on DuckDB and on PostgreSQL in one benchmark run (issue 19).

Generates the demo inbox once (default `medium`), holds its last day back (as benchmarks/run.py
does), then for each engine: a full `voronka run` into an empty warehouse, and a run after the
last day is delivered ("one new day"). For each run: wall time and the peak RSS of the run's
process tree (`voronka run`, its validation worker, dbt; sampled from /proc as benchmarks/run.py
does) and, on PostgreSQL, the peak memory of the server: the postmaster and all its backends,
summed as PSS (proportional set size, from /proc/<pid>/smaps_rollup), so that the shared buffers
every backend maps are counted once, not once per backend; the machine's 1-minute load average
(lowest and highest while the run lasts); dbt's elapsed time and slowest nodes. Also the size of
the DuckDB file and of the PostgreSQL database after the runs.

The server is a throwaway one of tests/pg_server.py started with PostgreSQL's durable defaults
(fsync on; `running_server(durable=True)`), on this machine, on the same disks. Not a test: the
machine is shared and noisy, so compare figures from one run of this script only.

    .venv/bin/python benchmarks/postgres.py [--scale medium] [--workdir DIR]

Writes `benchmarks/results/postgres-<timestamp>.json` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import VORONKA, dbt_breakdown, deliver, hold_back_last_day, measure  # noqa: E402
from tests.pg_server import running_server  # noqa: E402

STEPS = ("run", "run_one_new_day")


def _tree_pids(root: int) -> list[int]:
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


def _tree_pss_bytes(root: int) -> int:
    """Proportional set size of a process tree: shared pages divided among their users."""
    total = 0
    for pid in _tree_pids(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class ServerSampler:
    """The peak PSS of the PostgreSQL server's process tree, and the range of the machine's
    1-minute load average, while a step runs."""

    def __init__(self, data_dir: Path) -> None:
        self.pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.peak = 0
        self.load: list[float] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _tree_pss_bytes(self.pid))
            self.load.append(os.getloadavg()[0])
            time.sleep(0.5)

    def __enter__(self) -> ServerSampler:
        self.peak = 0
        self.load = []
        self._done.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def bench(scale: str, workdir: Path) -> dict:
    source, side_source = workdir / "inbox-source", workdir / "last-day-source"
    result: dict = {"scale": scale}
    result["demo"] = measure(
        [*VORONKA, "demo", "--out", str(source), "--scale", scale], dict(os.environ),
        workdir / "demo.log",
    )  # fmt: skip
    result["held_back"] = hold_back_last_day(source, side_source)
    with running_server(durable=True) as server:
        result["postgres_version"] = server.version
        url = server.create_database("bench")
        for engine, warehouse in (
            ("duckdb", str(workdir / "duckdb" / "warehouse.duckdb")),
            ("postgres", url),
        ):
            folder = workdir / engine
            inbox, side = folder / "inbox", folder / "last-day"
            shutil.copytree(source, inbox)
            shutil.copytree(side_source, side)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))},
                "VORONKA_INBOX": str(inbox),
                "VORONKA_WAREHOUSE": warehouse,
                "PGPASSWORD": server.password,
                "DAGSTER_HOME": str(folder / ".dagster"),
            }
            (folder / ".dagster").mkdir()
            for step in STEPS:
                if step == "run_one_new_day":
                    deliver(side, inbox)
                started = time.time()
                with ServerSampler(server.data_dir) as sampler:
                    # the run's local files (a PostgreSQL warehouse's go under the current
                    # folder, D181) stay in the work folder
                    figures = measure(
                        [*VORONKA, "run", "--quiet"], env, folder / f"{step}.log", cwd=folder
                    )
                figures["server_peak_pss_mb"] = round(sampler.peak / 2**20)
                figures["load_average"] = [min(sampler.load), max(sampler.load)]
                with contextlib.chdir(folder):  # where the PostgreSQL warehouse's dbt folder is
                    figures["dbt"] = dbt_breakdown(warehouse, started)
                result[f"{engine}_{step}"] = figures
                print(f"{engine} {step}: {json.dumps(figures)}", flush=True)
            if engine == "postgres":
                with server.connect(database="bench") as con:
                    size = con.execute("select pg_database_size('bench')").fetchone()[0]
                result["postgres_database_mb"] = round(size / 2**20)
            else:
                result["duckdb_file_mb"] = round(Path(warehouse).stat().st_size / 2**20)
    return result


def print_table(result: dict) -> None:
    print("| engine | step | wall s | run tree peak RSS MiB | server peak PSS MiB | exit |")
    print("|---|---|---|---|---|---|")
    for engine in ("duckdb", "postgres"):
        for step in STEPS:
            m = result[f"{engine}_{step}"]
            print(
                f"| {engine} | {step} | {m['seconds']} | {m['peak_tree_rss_mb']} "
                f"| {m['server_peak_pss_mb']} | {m['exit_code']} |"
            )
    for engine in ("duckdb", "postgres"):
        for step in STEPS:
            m = result[f"{engine}_{step}"]
            low, high = m["load_average"]
            slowest = ", ".join(f"{name} {s}" for name, s in m["dbt"].get("slowest", {}).items())
            print(
                f"{engine} {step}: load average {low:.1f}-{high:.1f}; dbt elapsed "
                f"{m['dbt'].get('dbt_elapsed')} s; slowest: {slowest}"
            )
    print(
        f"DuckDB file {result['duckdb_file_mb']} MiB, PostgreSQL database "
        f"{result['postgres_database_mb']} MiB (PostgreSQL {result['postgres_version']})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default a temp folder")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voronka-pg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = bench(args.scale, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result["when"], result["cpus"] = stamp, os.cpu_count()
    (out / f"postgres-{stamp}.json").write_text(json.dumps(result, indent=2))
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
