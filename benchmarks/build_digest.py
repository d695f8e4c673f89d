"""What D320's digest of the code costs a dbt run of unchanged code.

Each incremental model asks `should_full_refresh()` (macros/build_digest.sql) whether the code
and settings it was built by changed: a digest computed in dbt's Jinja and one query of the kept
digest. This script generates a demo inbox, loads it, and builds it with dbt three times
(`dbt build` of the models and seeds, as tests/integration/test_incremental.py does) from a copy
of `dbt_models` whose `build_digest()` logs its own duration and whose kept-digest query logs
itself: the first build is a full one, the second builds the digests' tables (the copy's code
differs from the repository's), the third has the same code and data. For the third it prints
how many digests were computed and in how many milliseconds in all, how many kept digests were
read, the build's wall time, and whether every incremental model took its incremental path.

    .venv/bin/python benchmarks/build_digest.py [--scale tiny] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib.demo import generate_demo  # noqa: E402
from dagster_project.lib.inbox_loader import load_inbox  # noqa: E402

DIGEST_LOG = "D320-DIGEST"
QUERY_LOG = "D320-KEPT"
# the compiled SQL of a model that took its incremental path
INCREMENTAL_PATH = {
    "fct_calls": "_last_loaded_at > cast('",
    "fct_deal_stage_changes": "_last_loaded_at > cast('",
    "fct_survey_responses": "_last_loaded_at > cast('",
    "kpi_calls_hourly": "_last_loaded_at > cast('",
    "kpi_manager_monthly": "where 1 = 0",
    "kpi_company_monthly": "where 1 = 0",
    "kpi_funnel_stage_monthly": "where 1 = 0",
}


def instrumented_project(workdir: Path) -> Path:
    """A copy of dbt_models (and the seeds beside it) whose digest and kept-digest query log."""
    project = workdir / "dbt_models"
    shutil.copytree(
        ROOT / "dbt_models",
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    shutil.copytree(ROOT / "seeds", workdir / "seeds")
    macros = project / "macros" / "build_digest.sql"
    text = macros.read_text(encoding="utf-8")
    timed = (
        "{% macro build_digest() -%}\n"
        "    {%- set started = modules.datetime.datetime.now() -%}\n"
        "    {%- set digest = build_digest_timed() -%}\n"
        f"    {{%- do log('{DIGEST_LOG} ' ~ model.unique_id ~ ' ' ~ "
        "((modules.datetime.datetime.now() - started).total_seconds() * 1000), info=true) -%}\n"
        "    {{ return(digest) }}\n"
        "{%- endmacro %}\n\n"
        "{% macro build_digest_timed() -%}\n"
    )
    query = "    {{ return(run_query(query)"
    assert text.count("{% macro build_digest() -%}\n") == 1 and text.count(query) == 1
    text = text.replace("{% macro build_digest() -%}\n", timed)
    text = text.replace(
        query, f"    {{%- do log('{QUERY_LOG} ' ~ model.unique_id, info=true) -%}}\n{query}"
    )
    macros.write_text(text, encoding="utf-8")
    return project


def dbt_build(project: Path, warehouse: Path, target: Path) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--exclude-resource-type",
            "test",
            "unit_test",
            "--target-path",
            str(target),
        ],
        cwd=project,
        env={**os.environ, "VORONKA_WAREHOUSE": str(warehouse)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"dbt build failed:\n{result.stdout[-4000:]}")
    return time.monotonic() - started, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(dir=args.workdir, prefix="voronka-digest-"))
    inbox, warehouse = workdir / "inbox", workdir / "warehouse.duckdb"
    generate_demo(inbox, scale=args.scale)
    load_inbox(inbox, warehouse)
    project = instrumented_project(workdir)

    for number in (1, 2, 3):
        target = workdir / f"target-{number}"
        if number > 1:  # dbt's partial parse, as D283's direct builds
            target.mkdir()
            shutil.copyfile(
                workdir / f"target-{number - 1}" / "partial_parse.msgpack",
                target / "partial_parse.msgpack",
            )
        seconds, log = dbt_build(project, warehouse, target)
        print(f"build {number}: {seconds:.1f} s")

    durations = [float(m) for m in re.findall(rf"{DIGEST_LOG} \S+ ([0-9.]+)", log)]
    print(
        f"unchanged build: {len(durations)} digests computed, {sum(durations):.1f} ms in all "
        f"(the largest {max(durations):.1f} ms), {log.count(QUERY_LOG)} kept digests read"
    )
    for model, marker in INCREMENTAL_PATH.items():
        compiled = next(target.rglob(f"compiled/**/{model}.sql")).read_text(encoding="utf-8")
        print(f"  {model}: {'incremental' if marker in compiled else 'FULL BUILD'}")
    print(f"workdir: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
