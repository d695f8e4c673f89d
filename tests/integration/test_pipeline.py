"""`voronka run` on the hand-made inbox of tests/fixtures/mini_inbox: every layer, known counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dagster_project.cli import main
from tests import background
from tests.conftest import FIXTURES, query
from tests.dbt_cli import dbt_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What the mini inbox must give, counted by hand from its files.
EXPECTED_CORE_ROWS = {
    "dim_managers": 4,  # m1, m3, and m2 in two versions (team/role/extension change)
    "dim_clients": 4,
    "dim_pipeline_stages": 5,
    "fct_deals": 5,  # d3 twice in raw (an update), once here
    "fct_deal_stage_changes": 9,  # s9 is in its file twice
    "fct_calls": 6,  # k4 arrives again in the next month's file
    "fct_activities": 3,
    "fct_requests": 2,
    "fct_survey_responses": 3,
    "fct_sales_plans": 2,
    "fct_bonus_pools": 2,
    "fct_marketing_spend": 2,
}


UNIT_TESTS = ["test", "--select", "test_type:unit", "--no-partial-parse"]


@background.job("pipeline", "built")
def _first_run(root: Path) -> list[background.Command]:
    """The mini inbox's first run in a folder of its own (the module's tests run it again), and
    dbt's unit tests against a copy of what it built (their run starts dbt's hooks, which write
    the warehouse): started beside the tests before this module (D412)."""
    shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
    warehouse, copy = root / "warehouse.duckdb", root / "unit" / "warehouse.duckdb"
    return [
        background.voronka(
            "run", "--inbox", str(root / "inbox"), "--warehouse", str(warehouse), "--quiet"
        ),
        background.copy_file(warehouse, copy),
        dbt_command(copy, *UNIT_TESTS, target_path=root / "unit" / "target"),
    ]


@pytest.fixture(scope="module")
def pipeline(background_runs) -> background.Done:
    return background_runs.take("pipeline")


@pytest.fixture(scope="module")
def built(pipeline):
    return (
        pipeline.root / "inbox",
        pipeline.root / "warehouse.duckdb",
        pipeline.results[0].returncode,
    )


def test_run_succeeds(built):
    _, _, code = built
    assert code == 0


@pytest.mark.parametrize(("model", "rows"), sorted(EXPECTED_CORE_ROWS.items()))
def test_core_row_counts(built, model, rows):
    _, warehouse, _ = built
    assert query(warehouse, f"select count(*) from core.{model}") == [(rows,)]


def test_raw_plus_quarantine_equals_input(built):
    inbox, warehouse, _ = built
    for folder in inbox.iterdir():
        lines = sum(len(p.read_text().strip().splitlines()) - 1 for p in folder.glob("*.csv"))
        raw = query(warehouse, f"select count(*) from raw.{folder.name}")[0][0]
        quarantined = query(warehouse, f"select count(*) from quarantine.{folder.name}")[0][0]
        assert raw + quarantined == lines, folder.name


def test_times_are_utc_and_naive_ones_read_in_moscow(built):
    _, warehouse, _ = built
    # d2 closed 2026-01-31 23:30 Moscow (naive in the file) = 20:30 UTC, still January
    closed = query(
        warehouse, "select cast(closed_at as varchar) from core.fct_deals where deal_id = 'd2'"
    )
    assert closed == [("2026-01-31 20:30:00",)]
    # k1 was given with +03:00, k3 with Z
    started = dict(
        query(
            warehouse,
            "select call_id, cast(started_at as varchar) from core.fct_calls where call_id in ('k1', 'k3')",
        )
    )
    assert started == {"k1": "2026-01-05 07:40:00", "k3": "2026-01-12 09:00:00"}


def test_calls_resolve_managers_by_extension_history(built):
    _, warehouse, _ = built
    managers = dict(query(warehouse, "select call_id, manager_id from core.fct_calls"))
    assert managers["k1"] == "m1"
    assert managers["k2"] == "m2"  # extension 102 was Boris's in January
    assert managers["k5"] == "m2"  # extension 104 is Boris's from 15 February
    assert managers["k3"] is None  # a missed inbound call nobody picked up


def test_rerun_changes_nothing(built, capsys):
    """Nothing new: the run is skipped and the published file is not replaced (D150); with
    `--force` it runs and changes nothing."""
    inbox, warehouse, _ = built
    before = {m: query(warehouse, f"select count(*) from core.{m}") for m in EXPECTED_CORE_ROWS}
    raw_before = query(warehouse, "select count(*), max(_loaded_at) from raw.calls")
    published = warehouse.stat()
    capsys.readouterr()
    assert main(["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"]) == 0
    assert "Nothing changed since the run published at" in capsys.readouterr().out
    assert (warehouse.stat().st_ino, warehouse.stat().st_mtime_ns) == (
        published.st_ino,
        published.st_mtime_ns,
    )
    args = ["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet", "--force"]
    assert main(args) == 0
    assert "Nothing changed" not in capsys.readouterr().out
    assert warehouse.stat().st_ino != published.st_ino  # published again
    assert query(warehouse, "select count(*), max(_loaded_at) from raw.calls") == raw_before
    for model, rows in before.items():
        assert query(warehouse, f"select count(*) from core.{model}") == rows


def test_dbt_unit_tests_pass(pipeline):
    """Every dbt unit test (the formulas on hand-made rows), against the built warehouse (a
    copy, tested in the module's job), parsed afresh: dbt 1.11's partial parsing kept stale
    unit-test rows after an edit."""
    assert pipeline.code == 0, pipeline.output()
    result = pipeline.results[2]  # UNIT_TESTS
    assert "PASS=" in result.stdout and "ERROR=0" in result.stdout


def test_a_blocking_check_failure_stops_the_models_and_the_exit_code_says_so(tmp_path, capsys):
    """Calls after the as-of time break an error-severity raw expectation: dbt must not run.
    The failure is told without a stack trace (D84)."""
    inbox = tmp_path / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    warehouse = tmp_path / "warehouse.duckdb"
    code = main(
        [
            "run",
            "--inbox",
            str(inbox),
            "--warehouse",
            str(warehouse),
            "--as-of",
            "2026-01-15",
            "--quiet",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "blocking asset check failed" in err
    assert "Stack Trace" not in err and "Traceback" not in err
    # nothing of a failed run is published for readers (D80); its loads stay in the working copy
    from dagster_project.lib.warehouse import working_path

    assert not warehouse.exists()
    schemas = {
        r[0]
        for r in query(
            working_path(warehouse), "select distinct table_schema from information_schema.tables"
        )
    }
    assert "raw" in schemas
    assert "core" not in schemas and "marts" not in schemas


def test_the_run_validates_every_layer_and_writes_the_report(built):
    _, warehouse, _ = built
    from dagster_project.lib import validation_report

    rows = {r.suite: r for r in validation_report.load_rows(warehouse)}
    layers = {r.layer for r in rows.values()}
    assert {"raw", "staging", "core", "marts"} <= layers
    assert not [r.suite for r in rows.values() if r.severity == "error"]
    page = validation_report.report_path(warehouse).read_text("utf-8")
    # each check renders the page with the quarantine read from the warehouse (issue 20)
    assert "rows the inbox loader rejected" in page and "could not be read" not in page


def test_validate_exits_1_when_exactly_the_broken_mart_fails(built, tmp_path):
    """A mart ratio above 1 written into a copy of the built warehouse: `voronka validate`
    fails on marts.kpi_calls_hourly's service_level and on nothing else."""
    import duckdb

    from dagster_project.lib import validation_report

    _, warehouse, _ = built
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    assert main(["validate", "--warehouse", str(copy), "--layer", "marts"]) == 0
    con = duckdb.connect(str(copy))
    con.execute(
        "update marts.kpi_calls_hourly set service_level = 1.5"
        " where (line, call_date, call_hour) in"
        " (select (line, call_date, call_hour) from marts.kpi_calls_hourly limit 1)"
    )
    con.close()
    assert main(["validate", "--warehouse", str(copy)]) == 1
    failed = [
        (row.suite, f["column"], f["severity"])
        for row in validation_report.load_rows(copy)
        for f in row.failures
        if f["severity"] == "error"
    ]
    assert failed == [("marts.kpi_calls_hourly", "service_level", "error")]


def test_every_column_of_core_marts_and_finance_is_described(built):
    """The dbt docs describe every column a reader of core, marts and finance sees: each
    column of the built tables has a non-empty description in its model's YAML."""
    import json

    from dagster_project.defs.transform.dbt import prepare_manifest

    _, warehouse, _ = built
    manifest = json.loads(prepare_manifest().read_text())
    described = {
        (node["config"].get("schema"), node["name"]): {
            name
            for name, column in node["columns"].items()
            if column.get("description", "").strip()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    columns = query(
        warehouse,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('core', 'marts', 'finance') and table_name not like '\\_%' escape '\\' "
        "order by 1, 2, ordinal_position",
    )
    missing = [
        f"{schema}.{table}.{column}"
        for schema, table, column in columns
        if column not in described.get((schema, table), set())
    ]
    assert missing == []


def test_a_blocking_row_blocks_until_its_vanished_file_is_forgotten(built, tmp_path, capsys):
    """A call dated 2030 (after the run's as-of) breaks a blocking raw check. Its file deleted
    from the inbox, the run lists it as vanished and it still blocks (D73, D82: a failed batch
    stays pending); `voronka forget-file` removes its rows and logs it; the next run passes."""
    source_inbox, source_warehouse, code = built
    assert code == 0
    root = tmp_path / "w"
    shutil.copytree(source_inbox.parent, root)  # the built warehouse, its working copy, inbox
    inbox, warehouse = root / "inbox", root / "warehouse.duckdb"
    header = (FIXTURES / "mini_inbox/calls/2026-02.csv").read_text().splitlines()[0]
    future = inbox / "calls/2026-03.csv"
    future.write_text(
        f"{header}\nf1,2030-01-01 10:00,inbound,+79035556677,103,74950000001,answered,5,120\n"
    )
    where = ["--inbox", str(inbox), "--warehouse", str(warehouse)]
    capsys.readouterr()

    assert main(["run", *where, "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "blocking asset check failed" in err
    future.unlink()
    assert main(["run", *where, "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "file vanished: calls/2026-03.csv" in out
    assert "blocking asset check failed" in err

    assert main(["forget-file", "calls/2026-03.csv", *where]) == 0
    assert "1 rows from raw.calls" in capsys.readouterr().out
    assert main(["run", *where, "--quiet"]) == 0, capsys.readouterr()
    out, _ = capsys.readouterr()
    assert "file vanished" not in out
    assert query(warehouse, "select count(*) from core.fct_calls where call_id = 'f1'") == [(0,)]
    # the load log adds up to what raw holds of the file: nothing
    assert query(
        warehouse,
        "select status, rows_loaded from raw._load_log where source_file = 'calls/2026-03.csv' "
        "order by started_at",
    ) == [("loaded", 1), ("vanished", 0), ("forgotten", -1)]


def test_dbt_builds_in_the_warehouse_folder_from_the_shared_parse(built):
    """D220: the build's artifacts and log are in the warehouse's own dbt folder, and dbt reused
    the parse the run's definitions were built from (a full parse of the project is the larger
    part of a small build)."""
    from dagster_project.defs.transform.dbt import dbt_folder

    _, warehouse, _ = built
    builds = list(dbt_folder(warehouse).glob("*/run_results.json"))
    assert builds  # one, and one more if test_rerun_changes_nothing forced a run before
    for build in builds:
        assert "Unable to do partial parsing" not in (build.parent / "dbt.log").read_text()
