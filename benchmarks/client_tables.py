"""The client- and month-keyed tables in a one-new-day dbt build, before and after (D360-D362).

Generates one demo inbox and holds its last day back (`benchmarks/run.py`'s helpers); loads the
rest into raw once (`voronka load`). Then for each of two commits (`--before`, `--after`, default
the working tree; each `dbt_models` and `seeds` extracted with `git archive`, so that editing the
checkout during the run changes nothing): a copy of that warehouse, a full `dbt build` of the
models, the held-back day loaded, and the state kept. Then `--rounds` one-new-day `dbt build`s
of the models, each on a fresh copy of its commit's state, the two commits alternating: the
machine is shared, so compare figures of one run of this script only.

The builds are `dbt build --exclude-resource-type test unit_test` (models and seeds, no data
tests) with the run's default settings, two threads (the profile's). Each build's node seconds
come from its `run_results.json`.

    .venv/bin/python benchmarks/client_tables.py --scale medium [--rounds 2]

Writes `benchmarks/results/client_tables_<timestamp>.json` and prints a Markdown table. The
inbox and the warehouses live in a `mktemp` folder (or `--workdir`), deleted at the end.
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
# the commit before the client-keyed tables were made incremental
DEFAULT_BEFORE = "043fd65"
NODES = [
    "int_months_fingerprinted",
    "int_client_months_classified",
    "int_client_base_months_listed",
    "dim_clients",
]
DBT = str(Path(sys.executable).parent / "dbt")
VORONKA = [sys.executable, "-m", "dagster_project.cli"]


def extract(revision: str | None, folder: Path) -> Path:
    """`dbt_models` and `seeds` of a commit (None: the working tree) under `folder`."""
    folder.mkdir(parents=True)
    if revision is None:
        for name in ("dbt_models", "seeds"):
            shutil.copytree(
                ROOT / name, folder / name, ignore=shutil.ignore_patterns("target", "logs")
            )
    else:
        archive = subprocess.run(
            ["git", "archive", revision, "dbt_models", "seeds"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "dbt_models"


def dbt_build(project: Path, warehouse: Path, target: Path) -> dict:
    """One `dbt build` of the models and seeds; wall seconds and seconds per node."""
    started = time.monotonic()
    result = subprocess.run(
        [DBT, "build", "--exclude-resource-type", "test", "unit_test"]
        + ["--target-path", str(target)],
        cwd=project,
        env={**os.environ, "VORONKA_WAREHOUSE": str(warehouse)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dbt build in {project} failed:\n{result.stdout[-3000:]}")
    seconds = time.monotonic() - started
    results = json.loads((target / "run_results.json").read_text())
    nodes = {
        item["unique_id"].split(".")[-1]: round(item["execution_time"], 2)
        for item in results["results"]
    }
    return {
        "seconds": round(seconds, 1),
        "dbt_elapsed": round(results["elapsed_time"], 1),
        "models_seconds": round(sum(nodes.values()), 1),
        "nodes": {name: nodes.get(name) for name in NODES},
    }


def load(inbox: Path, warehouse: Path) -> Path:
    """`voronka load` into `warehouse`; the file it loaded into (its working copy, D80)."""
    from dagster_project.lib import warehouse as wh

    subprocess.run(
        [*VORONKA, "load", "--inbox", str(inbox), "--warehouse", str(warehouse)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return wh.working_path(warehouse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git revision of 'before'")
    parser.add_argument("--after", default=None, help="git revision of 'after' (default: files)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import deliver, hold_back_last_day  # a sibling script, not a package

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voronka-clients-"))
    started_at = datetime.now(UTC)
    try:
        inbox, held_file = workdir / "inbox", workdir / "held.json"
        base = workdir / "base.duckdb"
        if not held_file.exists():  # a --workdir whose inbox was loaded is taken up again
            subprocess.run(
                [*VORONKA, "demo", "--out", str(inbox), "--scale", args.scale],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            held = hold_back_last_day(inbox, workdir / "last-day")
            shutil.move(load(inbox, base), base)
            deliver(workdir / "last-day", inbox)
            held_file.write_text(json.dumps(held))
        held = json.loads(held_file.read_text())
        variants = {"before": args.before, "after": args.after}
        states, full = {}, {}
        for name, revision in variants.items():
            shutil.rmtree(workdir / name, ignore_errors=True)
            project = extract(revision, workdir / name)
            warehouse = workdir / f"{name}.duckdb"
            shutil.copyfile(base, warehouse)
            full[name] = dbt_build(project, warehouse, workdir / f"{name}-full")
            print(f"{name} full: {json.dumps(full[name])}", flush=True)
            states[name] = (project, load(inbox, warehouse))
        day: dict[str, list[dict]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            for name, (project, state) in states.items():
                copy = workdir / f"{name}-round.duckdb"
                shutil.copyfile(state, copy)
                built = dbt_build(project, copy, workdir / f"{name}-day-{round_number}")
                day[name].append(built)
                print(f"{name} one new day, round {round_number + 1}: {json.dumps(built)}")
                copy.unlink()
        report = {
            "started": started_at.isoformat(timespec="seconds"),
            "scale": args.scale,
            "held_back": held,
            "before": args.before,
            "after": args.after or "working tree",
            "full": full,
            "one_new_day": day,
        }
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        stamp = started_at.strftime("%Y%m%dT%H%M%S")
        (out / f"client_tables_{stamp}.json").write_text(json.dumps(report, indent=2))
        print_table(full, day)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def cell(build: dict, node: str) -> str:
    value = build.get(node) if node in build else build["nodes"].get(node)
    return "" if value is None else f"{value}"


def print_table(full: dict, day: dict) -> None:
    print("\n| node | before: full | after: full | before: one new day | after: one new day |")
    print("|---|---|---|---|---|")
    for node in [*NODES, "models_seconds", "dbt_elapsed"]:
        days = {name: ", ".join(cell(build, node) for build in day[name]) for name in day}
        print(
            f"| `{node}` | {cell(full['before'], node)} | {cell(full['after'], node)} | "
            f"{days['before']} | {days['after']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
