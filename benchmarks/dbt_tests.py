"""One new day built by two versions of the code, alternated, from the same warehouse: what the
dbt data tests and the dbt step cost each (D370).

Prepare once (as `benchmarks/run.py` does): a demo inbox with its last day held back
(`run.hold_back_last_day`), a full `voronka run` of it, and a copy of the warehouse's folder
(the file, `.voronka`, `.dagster`) as the state. Each round restores the state, delivers the
held-back day and runs `voronka run` with each code (a folder holding the repository's files,
e.g. `git archive <commit>` unpacked), in turn. Printed per run: the wall time, the Dagster
step of dbt, dbt's elapsed time, the data tests that dbt ran and their node-seconds.

    .venv/bin/python benchmarks/dbt_tests.py --state W/wh0 --folder W/wh --inbox W/inbox \\
        --last-day W/last-day --code old=/path/a new=/path/b --rounds 2

Not a test: machines are shared and noisy; compare the runs of one call of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (benchmarks/run.py: the same measures)

from dagster_project.defs.transform.dbt import dbt_folder  # noqa: E402


def restore(state: Path, folder: Path, inbox: Path, last_day: Path) -> None:
    """The warehouse's folder as in `state`; the held-back day delivered into the inbox."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(state, folder, symlinks=True)
    for path in last_day.rglob("*.csv"):
        target = inbox / path.relative_to(last_day)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def one_run(code: Path, warehouse: Path, inbox: Path, log: Path) -> dict:
    env = {**os.environ, "VORONKA_INBOX": str(inbox), "VORONKA_WAREHOUSE": str(warehouse)}
    # the code's shared dbt parse made first (D220), not timed: a first run of a checkout parses
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from dagster_project.defs.transform.dbt import prepare_manifest; prepare_manifest()",
        ],
        cwd=code,
        env=env,
        check=True,
    )
    started, known = time.time(), bench.dagster_runs(warehouse)
    result = bench.measure(
        [sys.executable, "-m", "dagster_project.cli", "run", "--quiet"], env, log, cwd=code
    )
    steps = bench.step_seconds(warehouse, known)
    result["dbt_step_seconds"] = steps.get("voronka_dbt_assets")
    found = [
        p for p in dbt_folder(warehouse).glob("*/run_results.json") if p.stat().st_mtime >= started
    ]
    newest = max(found, key=lambda p: p.stat().st_mtime)
    shutil.copyfile(newest, log.with_suffix(".run_results.json"))  # kept beside the log
    results = json.loads(newest.read_text())
    tests = [r for r in results["results"] if r["unique_id"].startswith("test.")]
    result["dbt_elapsed"] = round(results["elapsed_time"], 1)
    result["tests_run"] = len(tests)
    result["test_node_seconds"] = round(sum(r["execution_time"] for r in tests), 1)
    result["model_node_seconds"] = round(
        sum(r["execution_time"] for r in results["results"] if r not in tests), 1
    )
    result["load_average"] = os.getloadavg()[0]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True, help="the warehouse folder to copy")
    parser.add_argument(
        "--folder", type=Path, required=True, help="where the state was built (replaced)"
    )
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--last-day", type=Path, required=True)
    parser.add_argument("--code", nargs="+", required=True, help="label=folder, in turn")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    folder = args.folder
    warehouse = folder / "warehouse.duckdb"
    codes = [item.split("=", 1) for item in args.code]
    for round_ in range(args.rounds):
        for label, code in codes:
            restore(args.state, folder, args.inbox, args.last_day)
            log = args.state.parent / f"dbt-tests-{label}-{round_}.log"
            result = one_run(Path(code), warehouse, args.inbox, log)
            print(json.dumps({"code": label, "round": round_, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
