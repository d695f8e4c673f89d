"""Incremental builds give the rows of a full refresh, and months without new data are kept.

A demo inbox arrives in three deliveries: everything up to September but the July calls, then
October, then the July calls late. After each delivery the loader and an incremental `dbt build` (seeds and models)
update the warehouse; at the end every incremental model (facts and marts) must equal a
`dbt build --full-refresh` of the same data, row for row.

Issue 15 (D92): the same inputs and as-of give byte-identical marts. The whole inbox is also
loaded at once into a fresh warehouse and built with one dbt thread (the others use the
profile's two); every table and view of schemas marts and finance of the incremental warehouse
and of its full refresh must equal the fresh one's byte for byte (ordered CSV dumps; load
metadata `_...` left out).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from benchmarks.identical_marts import compare_warehouses
from dagster_project.lib.demo import generate_demo
from dagster_project.lib.inbox_loader import load_inbox
from tests import background

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2] / "dbt_models"
MONTH_MARTS = ["kpi_manager_monthly", "kpi_company_monthly", "kpi_funnel_stage_monthly"]
INCREMENTAL = [
    ("core", "fct_calls"),
    ("core", "fct_deal_stage_changes"),
    ("core", "fct_survey_responses"),
    ("marts", "kpi_calls_hourly"),
    *[("marts", name) for name in MONTH_MARTS],
]
PARTIAL_PARSE = "partial_parse.msgpack"
REBUILD_FROM = re.compile(r">= cast\('(\d{4}-\d{2}-\d{2})' as date\)")
WATERMARK_FILTER = "_last_loaded_at > cast('"
WATERMARK_MODELS = [name for schema, name in INCREMENTAL if name not in MONTH_MARTS]


def dbt_build(
    warehouse: Path, target: Path, *args: str, project: Path = PROJECT
) -> background.Command:
    """`dbt build` of the models and seeds of `project` on `warehouse`, its artifacts in
    `target`."""
    return background.Command(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--exclude-resource-type",
            "test",
            "unit_test",
            "--target-path",
            str(target),
            *args,
        ],
        env={"VORONKA_WAREHOUSE": str(warehouse)},
        cwd=project,
    )


def dbt_run(
    warehouse: Path,
    target: Path,
    *args: str,
    parse_from: Path | None = None,
    project: Path = PROJECT,
) -> None:
    """`dbt_build` run. `parse_from`: an earlier build's target folder on the same warehouse
    (the same profile and vars), whose parse dbt takes up as a partial parse instead of parsing
    the whole project again (D283)."""
    if parse_from is not None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parse_from / PARTIAL_PARSE, target / PARTIAL_PARSE)
    command = dbt_build(warehouse, target, *args, project=project)
    result = subprocess.run(
        command.args,
        cwd=command.cwd,
        env=command.environment(os.environ),
        capture_output=True,
        text=True,
        timeout=command.timeout,
    )
    assert result.returncode == 0, result.stdout[-4000:]


DEMO = ["--scale", "tiny", "--months", "9", "--seed", "7"]


@background.job("incremental_fresh", "deliveries")
def _fresh_build(root: Path) -> list[background.Command]:
    """The reference of D92: the whole demo inbox loaded at once into a fresh warehouse and
    built with one dbt thread, started beside the tests before this module (D412)."""
    fresh = root / "fresh.duckdb"
    return [
        background.voronka("demo", "--out", str(root / "inbox"), *DEMO),
        background.load(root / "inbox", fresh),
        dbt_build(fresh, root / "target", "--threads", "1"),
    ]


def inbox_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def rebuild_from(target: Path, model: str) -> str | None:
    """The first month the run rebuilt (None: all of them), read from the compiled SQL."""
    compiled = next(target.rglob(f"compiled/**/{model}.sql")).read_text()
    if "where 1 = 0" in compiled:
        return "nothing"
    found = REBUILD_FROM.search(compiled)
    return found.group(1) if found else None


def read_since_watermark(target: Path, model: str) -> bool:
    """Whether a watermark-incremental model read only the rows loaded after its watermark
    (not all of them, as a first build or a full refresh does), from the compiled SQL."""
    compiled = next(target.rglob(f"compiled/**/{model}.sql")).read_text()
    return WATERMARK_FILTER in compiled


def rows(warehouse: Path, schema: str, table: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return sorted(
            con.execute(f"select * from {schema}.{table}").fetchall(),
            key=lambda row: tuple((value is None, str(value)) for value in row),
        )


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory, background_runs):
    root = tmp_path_factory.mktemp("incremental")
    demo = root / "demo"
    generate_demo(demo, scale="tiny", months=9, seed=7)  # `voronka demo` with DEMO
    inbox, warehouse = root / "inbox", root / "warehouse.duckdb"
    late = {Path("calls/2026-07.csv")}
    october = {p.relative_to(demo) for p in demo.rglob("2026-10.csv")}
    assert october and all((demo / p).exists() for p in late)

    def deliver(files: set[Path]) -> None:
        for rel in files:
            (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(demo / rel, inbox / rel)

    everything = {p.relative_to(demo) for p in demo.rglob("*.csv")}
    deliver(everything - late - october)
    load_inbox(inbox, warehouse)
    dbt_run(warehouse, root / "target-1")

    snapshots = {model: rows(warehouse, "marts", model) for model in MONTH_MARTS}
    deliver(october)
    load_inbox(inbox, warehouse)
    dbt_run(warehouse, root / "target-2", parse_from=root / "target-1")
    october_rebuilt = {model: rebuild_from(root / "target-2", model) for model in MONTH_MARTS}
    after_october = {model: rows(warehouse, "marts", model) for model in MONTH_MARTS}

    dbt_run(warehouse, root / "target-3", parse_from=root / "target-1")  # nothing new
    nothing_new = {model: rebuild_from(root / "target-3", model) for model in MONTH_MARTS}
    nothing_new |= {
        model: read_since_watermark(root / "target-3", model) for model in WATERMARK_MODELS
    }

    deliver(late)
    load_inbox(inbox, warehouse)
    dbt_run(warehouse, root / "target-4", parse_from=root / "target-1")
    late_rebuilt = {model: rebuild_from(root / "target-4", model) for model in MONTH_MARTS}
    incremental = {key: rows(warehouse, *key) for key in INCREMENTAL}
    shutil.copyfile(warehouse, root / "incremental.duckdb")
    # built on by the changed code beside the next steps (D412), if a test takes `upgraded`
    upgrade = functools.partial(_upgrade, root / "incremental.duckdb")
    background_runs.submit("incremental_upgraded", "upgraded", upgrade)

    dbt_run(warehouse, root / "target-5", "--full-refresh", parse_from=root / "target-1")
    full = {key: rows(warehouse, *key) for key in INCREMENTAL}

    # the same inbox loaded at once into a fresh warehouse, built with one dbt thread
    done = background_runs.take("incremental_fresh")
    assert done.code == 0, done.output()
    assert inbox_files(done.root / "inbox") == inbox_files(inbox)  # the same inbox
    fresh = done.root / "fresh.duckdb"
    identical = {
        "incremental": compare_warehouses(fresh, root / "incremental.duckdb"),
        "full_refresh": compare_warehouses(fresh, warehouse),
    }
    return {
        "identical": identical,
        "snapshots": snapshots,
        "after_october": after_october,
        "october_rebuilt": october_rebuilt,
        "nothing_new": nothing_new,
        "late_rebuilt": late_rebuilt,
        "incremental": incremental,
        "full": full,
    }


@pytest.mark.parametrize("key", INCREMENTAL, ids=lambda key: ".".join(key))
def test_incremental_equals_full_refresh(deliveries, key):
    incremental, full = deliveries["incremental"][key], deliveries["full"][key]
    assert full, "the full refresh built no rows"
    missing = [row for row in full if row not in incremental]
    extra = [row for row in incremental if row not in full]
    assert not missing and not extra, (len(missing), len(extra), missing[:3], extra[:3])


@pytest.mark.parametrize("model", MONTH_MARTS)
def test_new_month_rebuilds_only_the_recent_months(deliveries, model):
    first = deliveries["october_rebuilt"][model]
    assert first not in (None, "nothing"), first
    # months before the first rebuilt one are the rows of the previous build, untouched
    month_at = 0 if model != "kpi_funnel_stage_monthly" else 2
    kept_before = [r for r in deliveries["snapshots"][model] if str(r[month_at]) < first]
    kept_after = [r for r in deliveries["after_october"][model] if str(r[month_at]) < first]
    assert kept_before, f"{model}: every month was rebuilt (from {first})"
    assert kept_after == kept_before


@pytest.mark.parametrize("model", MONTH_MARTS)
def test_a_run_without_new_data_rebuilds_nothing(deliveries, model):
    assert deliveries["nothing_new"][model] == "nothing"


@pytest.mark.parametrize("model", WATERMARK_MODELS)
def test_a_run_without_new_data_reads_only_new_loads(deliveries, model):
    # the same code and settings again: no full rebuild (D320's digest is stable)
    assert deliveries["nothing_new"][model] is True


@pytest.mark.parametrize("model", MONTH_MARTS)
def test_late_rows_of_an_old_month_rebuild_from_that_month(deliveries, model):
    first = deliveries["late_rebuilt"][model]
    # late July calls: rebuilt from two months before July (UTC month + look-back), or all
    assert first is None or first <= "2026-05-01", first


@pytest.mark.parametrize("build", ["incremental", "full_refresh"])
def test_marts_and_finance_are_byte_identical_to_a_fresh_one_thread_build(deliveries, build):
    report = deliveries["identical"][build]
    assert {"marts.kpi_manager_monthly", "marts.kpi_calls_hourly", "finance.bonus_lines"} <= set(
        report
    )
    assert report["marts.kpi_manager_monthly"]["rows_a"] > 0
    differing = {name: entry for name, entry in report.items() if not entry.get("identical")}
    assert not differing, differing


# D320: code changed between two runs (an upgrade of Voronka), in a copy of the dbt project: a
# macro (every ratio doubled) and a model (every call's talk one second longer)
CODE_CHANGES = {
    "macros/aggregates.sql": (
        "    {{ exact_ratio(numerator, denominator, data_type) }}\n",
        "    {{ exact_ratio('2 * (' ~ numerator ~ ')', denominator, data_type) }}\n",
    ),
    "models/core/fct_calls.sql": (
        "        new_calls.talk_seconds,\n",
        "        new_calls.talk_seconds + 1 as talk_seconds,\n",
    ),
}


def _upgrade(incremental: Path, root: Path) -> list[background.Command]:
    """The incremental warehouse (`incremental`, a copy of the deliveries' last build) built
    on by the changed code, kept as `changed-incremental.duckdb`, then rebuilt by it with
    `--full-refresh` (the same rows loaded, so the load metadata compares too)."""
    changed = root / "changed" / PROJECT.name
    shutil.copytree(
        PROJECT,
        changed,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    shutil.copytree(PROJECT.parent / "seeds", root / "changed" / "seeds")
    for rel, (old, new) in CODE_CHANGES.items():
        path = changed / rel
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, (rel, old)
        path.write_text(text.replace(old, new), encoding="utf-8")

    warehouse = root / "changed.duckdb"
    shutil.copyfile(incremental, warehouse)
    return [
        dbt_build(warehouse, root / "target-7", project=changed),
        background.copy_file(warehouse, root / "changed-incremental.duckdb"),
        background.copy_file(root / "target-7" / PARTIAL_PARSE, root / "target-8" / PARTIAL_PARSE),
        dbt_build(warehouse, root / "target-8", "--full-refresh", project=changed),
    ]


@pytest.fixture(scope="module")
def upgraded(deliveries, background_runs):
    done = background_runs.take("incremental_upgraded")
    assert done.code == 0, done.output()
    incremental = {key: rows(done.root / "changed-incremental.duckdb", *key) for key in INCREMENTAL}
    warehouse = done.root / "changed.duckdb"
    full = {key: rows(warehouse, *key) for key in INCREMENTAL}
    identical = compare_warehouses(
        warehouse, done.root / "changed-incremental.duckdb", ("core", "marts", "finance")
    )
    return {"incremental": incremental, "full": full, "identical": identical}


@pytest.mark.parametrize("key", INCREMENTAL, ids=lambda key: ".".join(key))
def test_changed_code_rebuilds_what_it_changes(deliveries, upgraded, key):
    incremental, full = upgraded["incremental"][key], upgraded["full"][key]
    if key[1] not in ("fct_deal_stage_changes", "fct_survey_responses"):
        # the change reaches the table's rows (else this test could not fail)
        assert full != deliveries["full"][key], f"{key}: the code change changed no row"
    missing = [row for row in full if row not in incremental]
    extra = [row for row in incremental if row not in full]
    assert not missing and not extra, (len(missing), len(extra), missing[:3], extra[:3])


def test_changed_code_gives_the_core_marts_and_finance_of_a_full_run(upgraded):
    report = upgraded["identical"]
    assert {"core.fct_calls", "marts.kpi_manager_monthly", "finance.bonus_lines"} <= set(report)
    differing = {name: entry for name, entry in report.items() if not entry.get("identical")}
    assert not differing, differing
