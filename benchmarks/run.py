"""Benchmark `voronka demo` and `voronka run` per scale: wall time and peak memory.

Per scale: generate the demo inbox; hold its last day back; run the pipeline on the rest (a
full build); deliver the last day and run again (the incremental path: new files loaded, only
changed hours and months of the marts rebuilt); run once more with nothing new. For each run,
the dbt part is split by layer from dbt's run_results.json (the time the marts add), and the
validation time and the publish time are read from the run's summary. Then the speed floor
(`shared/floor/floor.py` next to the repository: the same work as one hand-written DuckDB
script, a yardstick outside the project, issue 18) runs on the same inbox, and the table of
issue 18's targets is printed (`--no-floor` leaves it out).

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
import re
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


def measure(command: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> dict:
    """Run a command; return wall seconds, peak tree RSS and exit code.

    The tree's RSS is also written every second to ``<log>.rss.tsv`` (seconds since start,
    MB), so that a peak can be matched with the phase in the log's timestamps.
    """
    peak = 0
    started = time.monotonic()
    with log_path.open("w") as log, log_path.with_suffix(".rss.tsv").open("w") as timeline:
        timeline.write(f"# started {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        timeline.write("seconds\ttree_rss_mb\n")
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            last_written = -1.0
            while not done.is_set():
                rss = _tree_rss_bytes(process.pid)
                peak = max(peak, rss)
                elapsed = time.monotonic() - started
                if elapsed - last_written >= 1.0:
                    timeline.write(f"{elapsed:.0f}\t{rss / 2**20:.0f}\n")
                    timeline.flush()
                    last_written = elapsed
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


# the column that says when a row of each event entity happened (or last changed)
DAY_COLUMNS = {
    "calls": "started_at",
    "deals": "updated_at",
    "deal_stage_changes": "changed_at",
    "activities": "updated_at",
    "requests": "updated_at",
    "survey_responses": "responded_at",
    "clients": "updated_at",
}


def hold_back_last_day(inbox: Path, side: Path) -> dict:
    """Move the rows of the inbox's last calendar day (the newest call's date) out of the
    newest monthly file of each event entity into `side` (same relative paths, a
    `-last-day` suffix), so that delivering them later is "one new day of data".

    Uses DuckDB only; files that are not plain UTF-8 `,` CSV (the demo's cp1251 defect file)
    or whose timestamps do not parse stay where they are."""
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar=false")
    calls = sorted((inbox / "calls").glob("????-??.csv"))
    last_day = con.execute(
        f"select max(try_cast(started_at as timestamp))::date from read_csv("
        f"'{calls[-1]}', all_varchar=true)"
    ).fetchone()[0]
    moved = {}
    for entity, column in DAY_COLUMNS.items():
        files = sorted((inbox / entity).glob("????-??.csv"))
        if not files:
            continue
        path = files[-1]
        try:
            con.execute(
                f"create or replace temp table t as select * from read_csv('{path}', "
                f"all_varchar=true, header=true, delim=',', quote='\"')"
            )
        except duckdb.Error:
            continue
        is_new = f"try_cast({column} as timestamp)::date >= date '{last_day}'"
        n = con.execute(f"select count(*) from t where {is_new}").fetchone()[0]
        if not n:
            continue
        target = side / entity / f"{path.stem}-last-day.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy (select * from t where {is_new}) to '{target}' (header, delimiter ',')")
        con.execute(
            f"copy (select * from t where not coalesce({is_new}, false)) to '{path}' "
            f"(header, delimiter ',')"
        )
        moved[entity] = n
    con.close()
    return {"day": str(last_day), "rows": moved}


def deliver(side: Path, inbox: Path) -> None:
    for path in side.rglob("*.csv"):
        target = inbox / path.relative_to(side)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)


def dbt_breakdown(warehouse: Path, since: float) -> dict:
    """Seconds per layer of the newest dbt invocation on `warehouse` that started after
    `since` (its builds' artifacts are in its dbt folder, D220)."""
    from dagster_project.defs.transform.dbt import dbt_folder

    found = [
        p for p in dbt_folder(warehouse).glob("*/run_results.json") if p.stat().st_mtime >= since
    ]
    if not found:
        return {}
    results = json.loads(max(found, key=lambda p: p.stat().st_mtime).read_text())
    layers: dict[str, float] = {}
    for item in results["results"]:
        kind, _, name = item["unique_id"].split(".", 2)
        layer = "tests" if kind == "test" else kind
        if kind == "model":
            for prefix, label in (
                ("stg_", "staging"),
                ("int_", "intermediate"),
                ("dim_", "core"),
                ("fct_", "core"),
                ("kpi_", "marts"),
                ("bonus_", "finance"),
            ):
                if name.startswith(prefix):
                    layer = label
        layers[layer] = round(layers.get(layer, 0.0) + item["execution_time"], 1)
    layers["dbt_elapsed"] = round(results.get("elapsed_time", 0.0), 1)
    slowest = sorted(results["results"], key=lambda item: -item["execution_time"])[:8]
    layers["slowest"] = {
        item["unique_id"].split(".")[-1]: round(item["execution_time"], 1) for item in slowest
    }
    return layers


def publish_seconds(log: Path) -> float | None:
    """The time the run took to publish the warehouse for readers (D80), from its summary."""
    found = re.search(
        r"published for readers in ([0-9.]+) s", log.read_text(errors="replace"), re.IGNORECASE
    )
    return float(found.group(1)) if found else None


def step_seconds(warehouse: Path, known_runs: int) -> dict[str, float]:
    """Seconds per Dagster step of the newest run in the instance next to the warehouse (the
    one `voronka run` records into, D107), slowest first; empty when no run was added since
    `known_runs` (a skipped run, D150)."""
    import dagster as dg

    home = warehouse.resolve().parent / ".dagster"
    if not home.exists():
        return {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        if len(runs) <= known_runs:
            return {}
        stats = instance.get_run_step_stats(runs[0].run_id)
    found = {s.step_key: s.end_time - s.start_time for s in stats if s.end_time and s.start_time}
    return {key: round(found[key], 1) for key in sorted(found, key=lambda k: -found[k])}


def phases(steps: dict[str, float]) -> dict[str, float]:
    """Step seconds summed by phase: loads, raw checks, dbt, the checks after dbt, the rest
    (finance adjustments, report, exports, summary)."""
    found: dict[str, float] = {}
    for key, seconds in steps.items():
        if key == "voronka_dbt_assets":
            phase = "dbt"
        elif "_ge_" in key:
            phase = "raw checks" if key.startswith("inbox__") else "layer checks"
        elif key.startswith("inbox__"):
            phase = "load"
        else:
            phase = "finance, report, exports"
        found[phase] = round(found.get(phase, 0.0) + seconds, 1)
    return found


def dagster_runs(warehouse: Path) -> int:
    import dagster as dg

    home = warehouse.resolve().parent / ".dagster"
    if not home.exists():
        return 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_runs())


def validation_seconds(log: Path) -> float | None:
    """The Great Expectations time of a run, from its summary ("X s of validation")."""
    found = re.search(r"([0-9.]+) s of validation", log.read_text(errors="replace"))
    return float(found.group(1)) if found else None


def default_floor() -> Path | None:
    """The floor script beside the repository (`../shared/floor/floor.py`, or one folder up
    for a worktree), if there is one."""
    for base in (ROOT.parent, ROOT.parent.parent):
        path = base / "shared" / "floor" / "floor.py"
        if path.exists():
            return path
    return None


def run_floor(floor: Path, inbox: Path, workdir: Path, env: dict[str, str]) -> dict:
    """The floor on the same inbox (the whole of it), timed like the runs."""
    out = workdir / "floor.duckdb"
    result = measure([sys.executable, str(floor), str(inbox), str(out)], env, workdir / "floor.log")
    result["command"] = f"floor.py {inbox}"
    for path in workdir.glob("floor.duckdb*"):
        if path.is_file():
            path.unlink()
    return result


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_scale(scale: str, workdir: Path, keep: bool, floor: Path | None) -> dict:
    inbox, warehouse = workdir / scale / "inbox", workdir / scale / "warehouse.duckdb"
    shutil.rmtree(workdir / scale, ignore_errors=True)
    inbox.parent.mkdir(parents=True)
    env = {**os.environ, "VORONKA_INBOX": str(inbox), "VORONKA_WAREHOUSE": str(warehouse)}
    logs = workdir / scale
    result = {"scale": scale}
    result["demo"] = measure(
        [*VORONKA, "demo", "--out", str(inbox), "--scale", scale], env, logs / "demo.log"
    )
    print(f"{scale} demo: {json.dumps(result['demo'])}", flush=True)
    if result["demo"]["exit_code"] != 0:
        return failed(result, "demo")
    result["inbox_mb"] = round(du(inbox) / 2**20)
    result["held_back"] = hold_back_last_day(inbox, workdir / scale / "last-day")
    for step in ("run", "run_one_new_day", "rerun_unchanged"):
        if step == "run_one_new_day":
            deliver(workdir / scale / "last-day", inbox)
        started, known_runs = time.time(), dagster_runs(warehouse)
        result[step] = measure([*VORONKA, "run", "--quiet"], env, logs / f"{step}.log")
        result[step]["steps"] = step_seconds(warehouse, known_runs)
        result[step]["phases"] = phases(result[step]["steps"])
        result[step]["dbt_seconds"] = (
            dbt_breakdown(warehouse, started) if result[step]["steps"] else {}
        )
        result[step]["publish_seconds"] = publish_seconds(logs / f"{step}.log")
        result[step]["validation_seconds"] = validation_seconds(logs / f"{step}.log")
        print(f"{scale} {step}: {json.dumps(result[step])}", flush=True)
        if result[step]["exit_code"] != 0:
            return failed(result, step)
    result["warehouse_mb"] = round(warehouse.stat().st_size / 2**20) if warehouse.exists() else 0
    if floor is not None:
        result["floor"] = run_floor(floor, inbox, logs, env)
        print(f"{scale} floor: {json.dumps(result['floor'])}", flush=True)
    if not keep:
        shutil.rmtree(inbox, ignore_errors=True)
    return result


def failed(result: dict, step: str) -> dict:
    """A scale whose step failed: its later steps would measure a broken warehouse, so they
    are not run; the script exits 1 after the other scales."""
    print(
        f"{result['scale']} {step} failed (exit {result[step]['exit_code']}, log "
        f"{result[step]['log']}): the later steps of this scale are not run",
        file=sys.stderr,
        flush=True,
    )
    return {**result, "failed": step}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "medium"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voronka-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated inboxes")
    parser.add_argument(
        "--floor",
        type=Path,
        default=default_floor(),
        help="the floor script (default: ../shared/floor/floor.py beside the repository)",
    )
    parser.add_argument("--no-floor", action="store_true", help="do not run the floor")
    parser.add_argument(
        "--from-output",
        type=Path,
        help="print the tables of an earlier (e.g. interrupted) run of this script from its "
        "printed lines, for the scales whose three runs it finished; runs nothing",
    )
    args = parser.parse_args()
    if args.from_output:
        print_tables(results_from_output(args.from_output))
        return 0
    floor = None if args.no_floor else args.floor
    results = [bench_scale(scale, args.workdir, args.keep, floor) for scale in args.scales]
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
    print_tables([r for r in results if "failed" not in r])
    return 1 if any("failed" in r for r in results) else 0


def results_from_output(path: Path) -> list[dict]:
    """The results of the scales an earlier run of this script finished, from its printed
    `<scale> <step>: {json}` lines."""
    found: dict[str, dict] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"(\w+) (demo|run|run_one_new_day|rerun_unchanged|floor): (\{.*\})$", line)
        if match:
            found.setdefault(match[1], {"scale": match[1]})[match[2]] = json.loads(match[3])
    steps = ("run", "run_one_new_day", "rerun_unchanged")
    return [r for r in found.values() if all(step in r for step in steps)]


def print_tables(results: list[dict]) -> None:
    print(
        "| scale | step | wall s | peak RSS MB | exit | dbt s | of which marts s | "
        "validation s | publish s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for step in ("demo", "run", "run_one_new_day", "rerun_unchanged", "floor"):
            m = r.get(step)
            if m is None:
                continue
            dbt = m.get("dbt_seconds") or {}
            row = (
                r["scale"],
                step,
                m["seconds"],
                m["peak_tree_rss_mb"],
                m["exit_code"],
                dbt.get("dbt_elapsed", ""),
                dbt.get("marts", ""),
                m.get("validation_seconds") or "",
                m.get("publish_seconds") or "",
            )
            print("| " + " | ".join(map(str, row)) + " |")
        if "inbox_mb" in r:
            sizes = f"{r['inbox_mb']} MB / {r['warehouse_mb']} MB"
            print(f"| {r['scale']} | inbox / warehouse size | {sizes} | | |")
    print()
    print_phases(results)
    print()
    print_targets(results)


def print_phases(results: list[dict]) -> None:
    """Where each run's time went: Dagster's steps by phase, the publish, the rest (start-up,
    the check for changes, the summary) as the remainder of the command's wall time."""
    names = ["load", "raw checks", "dbt", "layer checks", "finance, report, exports"]
    print("| scale | step | wall s | " + " | ".join(names) + " | publish | rest |")
    print("|---|---|---|" + "---|" * (len(names) + 2))
    for r in results:
        for step in ("run", "run_one_new_day", "rerun_unchanged"):
            m = r[step]
            found = m.get("phases") or {}
            publish = m.get("publish_seconds") or 0.0
            rest = m["seconds"] - sum(found.values()) - publish
            cells = [str(found.get(name, "")) for name in names]
            print(
                f"| {r['scale']} | {step} | {m['seconds']} | "
                + " | ".join(cells)
                + f" | {publish or ''} | {rest:.1f} |"
            )


def print_targets(results: list[dict]) -> None:
    """Issue 18's targets against this run's figures (large: absolute seconds and the floor;
    medium and below: shares of the full run)."""
    print("| scale | target | goal | measured | met |")
    print("|---|---|---|---|---|")

    def line(scale: str, target: str, goal: str, measured: str, met: bool | None) -> None:
        verdict = "" if met is None else ("yes" if met else "NO")
        print(f"| {scale} | {target} | {goal} | {measured} | {verdict} |")

    for r in results:
        scale, full = r["scale"], r["run"]["seconds"]
        day, same = r["run_one_new_day"]["seconds"], r["rerun_unchanged"]["seconds"]
        if scale == "large":
            line(scale, "one new day", "<= 30 s", f"{day} s", day <= 30)
            line(scale, "unchanged rerun", "<= 10 s", f"{same} s", same <= 10)
            floor = r.get("floor")
            if floor and floor["exit_code"] == 0:
                ratio = full / floor["seconds"]
                line(
                    scale,
                    "full run / floor",
                    "<= 2",
                    f"{full} / {floor['seconds']} s = {ratio:.2f}",
                    ratio <= 2,
                )
            else:
                line(scale, "full run / floor", "<= 2", "floor not run", None)
        else:
            line(
                scale,
                "one new day / full",
                "<= 25 %",
                f"{100 * day / full:.0f} %",
                day <= 0.25 * full,
            )
            line(
                scale,
                "unchanged / full",
                "<= 10 %",
                f"{100 * same / full:.0f} %",
                same <= 0.10 * full,
            )
            floor = r.get("floor")
            if floor and floor["exit_code"] == 0:
                line(
                    scale,
                    "full run / floor",
                    "(large: <= 2)",
                    f"{full / floor['seconds']:.2f}",
                    None,
                )
        peak = max(
            r[step]["peak_tree_rss_mb"] for step in ("run", "run_one_new_day", "rerun_unchanged")
        )
        line(scale, "peak RSS of the process tree", "< 3 584 MB", f"{peak} MB", peak < 3584)
        for step in ("run", "run_one_new_day", "rerun_unchanged"):
            m = r[step]
            share = 100 * (m.get("validation_seconds") or 0.0) / m["seconds"]
            line(scale, f"validation, {step}", "<= 15 %", f"{share:.0f} %", share <= 15)


if __name__ == "__main__":
    sys.exit(main())
