"""`int_deals__unioned` and `int_clients__unioned` before and after D340, in a one-new-day state.

Generates a demo inbox (`--scale`, default medium), holds its last day back (as `run.py` does),
loads the rest and builds every model and seed with dbt (no tests) from a copy of the current
`dbt_models`; then delivers the held-back day and loads it. On that state it builds the two
models in turn, `--rounds` times each, with `dbt run -s`:

- before: a copy of `dbt_models` whose two model files are those of `--base` (a git revision,
  default the commit before D340): a table ranking every version of history;
- D340: the current code, incremental (built once before the rounds: a first build by other
  code is a full one, D320), its inputs seen (D201) set back before each round to the newest
  load before the new day, so that every round ranks the keys the new day touched, as the
  one-new-day run does.

`--resume DIR` takes the state an earlier run left in DIR (its warehouse and inbox) again.

Prints each model's node time (dbt's `run_results.json`: the model's SQL and its hooks) per round,
and compares the tables the two codes leave (every row with its count): they must be equal.
Not a test: the machine is shared, compare figures of one run of this script.

    .venv/bin/python benchmarks/unioned.py [--scale medium] [--rounds 3] [--base REV]
        [--workdir DIR]
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import deliver, hold_back_last_day  # noqa: E402
from dagster_project.lib.demo import generate_demo  # noqa: E402
from dagster_project.lib.inbox_loader import load_inbox  # noqa: E402

MODELS = ("int_deals__unioned", "int_clients__unioned")
MODEL_DIR = "dbt_models/models/intermediate/sources"
# the file D340 added: the commit before it is the default base
ADDED_BY_D340 = "dbt_models/macros/unioned_incremental.sql"
# the raw table of each model's inbox rows and its key
INBOX = {
    "int_deals__unioned": ("deals", "deal_id"),
    "int_clients__unioned": ("clients", "client_id"),
}


def project_copy(workdir: Path, name: str, base: str | None) -> Path:
    """A copy of dbt_models (the seeds beside it); with `base`, the two models at that revision."""
    project = workdir / name / "dbt_models"
    shutil.copytree(
        ROOT / "dbt_models",
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    if not (workdir / name / "seeds").exists():
        shutil.copytree(ROOT / "seeds", workdir / name / "seeds")
    if base:
        for model in MODELS:
            text = subprocess.run(
                ["git", "show", f"{base}:{MODEL_DIR}/{model}.sql"],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (project / "models" / "intermediate" / "sources" / f"{model}.sql").write_text(
                text, encoding="utf-8"
            )
    return project


def dbt(project: Path, warehouse: Path, *args: str) -> dict[str, float]:
    """Run dbt in `project` on `warehouse`; the node seconds of its models."""
    target = project.parent / "target"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--target-path", str(target)],
        cwd=project,
        env={**os.environ, "VORONKA_WAREHOUSE": str(warehouse)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    return {item["unique_id"].split(".")[-1]: item["execution_time"] for item in results["results"]}


def query(warehouse: Path, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=None, help="default: the commit before D340")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument(
        "--resume", type=Path, default=None, help="the workdir of an earlier run: its state again"
    )
    args = parser.parse_args()
    base = (
        args.base
        or subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H^", "--", ADDED_BY_D340],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    if args.resume:
        workdir = args.resume
        shutil.rmtree(workdir / "d340")
        shutil.rmtree(workdir / "before")
    else:
        workdir = Path(tempfile.mkdtemp(dir=args.workdir, prefix="voronka-unioned-"))
    inbox, warehouse = workdir / "inbox", workdir / "warehouse.duckdb"
    started = time.monotonic()
    new = project_copy(workdir, "d340", None)
    old = project_copy(workdir, "before", base)
    if not args.resume:
        generate_demo(inbox, scale=args.scale)
        held = hold_back_last_day(inbox, workdir / "last-day")
        print(f"demo {args.scale}, held-back day {held['day']}: {held['rows']}")
        load_inbox(inbox, warehouse)
        dbt(new, warehouse, "build", "--exclude-resource-type", "test", "unit_test")
        deliver(workdir / "last-day", inbox)
        load_inbox(inbox, warehouse)
    # the newest load before the new day's (one load of each raw table)
    before_day = {
        model: query(
            warehouse,
            f"select max(_loaded_at) from raw.{table} "
            f"where _loaded_at < (select max(_loaded_at) from raw.{table})",
        )[0][0]
        for model, (table, _) in INBOX.items()
    }
    touched = {
        model: query(
            warehouse,
            f"select count(distinct {key}) from raw.{table} "
            f"where _loaded_at > timestamp '{before_day[model]}'",
        )[0][0]
        for model, (table, key) in INBOX.items()
    }
    print(f"inbox keys the new day touched: {touched}")
    print(f"setup {time.monotonic() - started:.0f} s; base {base}")

    select = ["run", "-s", *MODELS]
    times: dict[str, list[dict[str, float]]] = {"before": [], "D340": []}
    kept: dict[str, dict[str, Counter]] = {}
    dbt(new, warehouse, *select)  # this code's first build of the two is a full one (D320)
    for _ in range(args.rounds):
        times["before"].append(dbt(old, warehouse, *select))
        kept["before"] = {
            model: Counter(query(warehouse, f"select * from intermediate.{model}"))
            for model in MODELS
        }
        for model in MODELS:
            query(
                warehouse,
                f"update intermediate.{model}__inputs_seen "
                f"set loaded_until = timestamp '{before_day[model]}'",
            )
        times["D340"].append(dbt(new, warehouse, *select))
        kept["D340"] = {
            model: Counter(query(warehouse, f"select * from intermediate.{model}"))
            for model in MODELS
        }
    for model in MODELS:
        for code in ("before", "D340"):
            seconds = ", ".join(f"{round_[model]:.2f}" for round_ in times[code])
            print(f"{model} {code}: {seconds}")
        equal = kept["before"][model] == kept["D340"][model]
        rows = sum(kept["D340"][model].values())
        print(f"{model}: {rows} rows, {'equal' if equal else 'DIFFERENT'}")
        if not equal:
            return 1
    print(f"workdir: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
