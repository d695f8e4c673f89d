"""Fresh and incremental runs of the same demo inbox give byte-identical marts (issue 15, D92).

Per scale: generate the demo inbox; run `voronka run` on all of it in a fresh warehouse; run it
again in a second warehouse in two deliveries (all but the last day, then the last day: the
"one new day" of benchmarks/run.py); with `--one-thread`, a third fresh run with one dbt thread.
Then every table and view of schemas `marts` and `finance` is compared with the fresh run's:
the rows ordered by every column and written as CSV, byte for byte, and the rows found on one
side only counted. Load metadata (columns named `_...`, such as `kpi_calls_hourly._last_loaded_at`,
the time the rows were loaded) is left out: it says when, not what.

Not a test (tests/integration/test_incremental.py holds the same promise on a tiny inbox); this
measures it on a scale where DuckDB aggregates in parallel.

    .venv/bin/python benchmarks/identical_marts.py --scale medium [--workdir DIR] [--one-thread]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VORONKA = [sys.executable, "-m", "dagster_project.cli"]
SCHEMAS = ("marts", "finance")


def _relations(con, alias: str, schemas: tuple[str, ...] = SCHEMAS) -> dict[str, list[str]]:
    """`schema.table` -> its columns (load metadata `_...` left out), in column order."""
    found: dict[str, list[str]] = {}
    for schema, table, column in con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = ? and list_contains(?, table_schema) "
        "and not starts_with(column_name, '_') "
        "order by table_schema, table_name, ordinal_position",
        [alias, list(schemas)],
    ).fetchall():
        found.setdefault(f"{schema}.{table}", []).append(column)
    return found


def compare_warehouses(
    first: Path, second: Path, schemas: tuple[str, ...] = SCHEMAS
) -> dict[str, dict]:
    """Per table of `schemas` (default marts and finance): rows on each side, rows found on one
    side only, and whether the ordered CSV dumps are byte-identical. A table missing on one side
    counts all its rows as differing."""
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(f"attach '{first}' as a (read_only)")
    con.execute(f"attach '{second}' as b (read_only)")
    tables_a, tables_b = _relations(con, "a", schemas), _relations(con, "b", schemas)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in sorted(set(tables_a) | set(tables_b)):
            columns = tables_a.get(name) or tables_b[name]
            if tables_a.get(name) != tables_b.get(name):
                report[name] = {"columns_differ": True}
                continue
            select = ", ".join(f'"{c}"' for c in columns)
            entry: dict = {}
            digests = []
            for alias in ("a", "b"):
                path = Path(scratch) / f"{alias}.csv"
                con.execute(
                    f"copy (select {select} from {alias}.{name} order by all) to '{path}' "
                    "(header, delimiter ',')"
                )
                digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
                entry[f"rows_{alias}"] = con.execute(
                    f"select count(*) from {alias}.{name}"
                ).fetchone()[0]
            for side, other, key in (("a", "b", "only_a"), ("b", "a", "only_b")):
                entry[key] = con.execute(
                    f"select count(*) from (select {select} from {side}.{name} "
                    f"except all select {select} from {other}.{name})"
                ).fetchone()[0]
            entry["identical"] = digests[0] == digests[1]
            report[name] = entry
    con.close()
    return report


def _run(inbox: Path, warehouse: Path, log: Path, threads: int | None = None) -> None:
    env = {**os.environ, "VORONKA_INBOX": str(inbox), "VORONKA_WAREHOUSE": str(warehouse)}
    if threads:
        env["VORONKA_DBT_THREADS"] = str(threads)
    with log.open("a") as out:
        code = subprocess.call(
            [*VORONKA, "run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if code != 0:
        raise SystemExit(f"voronka run exited {code}; see {log}")


def main() -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import deliver, hold_back_last_day  # a sibling script, not a package

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--one-thread", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voronka-identical-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo, log = workdir / "demo", workdir / "runs.log"
    if not demo.exists():
        subprocess.check_call(
            [*VORONKA, "demo", "--out", str(demo), "--scale", args.scale], cwd=ROOT
        )

    fresh = workdir / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(demo, fresh / "inbox")
    _run(fresh / "inbox", fresh / "warehouse.duckdb", log)

    incremental = workdir / "incremental"
    shutil.rmtree(incremental, ignore_errors=True)
    shutil.copytree(demo, incremental / "inbox")
    held = hold_back_last_day(incremental / "inbox", incremental / "side")
    _run(incremental / "inbox", incremental / "warehouse.duckdb", log)
    deliver(incremental / "side", incremental / "inbox")
    _run(incremental / "inbox", incremental / "warehouse.duckdb", log)
    runs = {"incremental": incremental}

    if args.one_thread:
        one = workdir / "fresh-one-thread"
        shutil.rmtree(one, ignore_errors=True)
        shutil.copytree(demo, one / "inbox")
        _run(one / "inbox", one / "warehouse.duckdb", log, threads=1)
        runs["fresh-one-thread"] = one

    result = {"scale": args.scale, "held_back": held, "workdir": str(workdir)}
    for label, other in runs.items():
        report = compare_warehouses(fresh / "warehouse.duckdb", other / "warehouse.duckdb")
        differing = {name: entry for name, entry in report.items() if not entry.get("identical")}
        result[label] = {
            "tables": len(report),
            "tables_differing": len(differing),
            "rows_differing": sum(e.get("only_a", 0) for e in differing.values()),
            "differing": differing,
        }
    print(json.dumps(result, indent=2, default=str))
    return 0 if all(result[label]["tables_differing"] == 0 for label in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
