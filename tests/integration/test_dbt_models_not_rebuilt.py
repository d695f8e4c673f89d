"""D385 end to end: a dbt model left out of `dbt build` holds what a rebuild would write.

The session's run of the mini inbox kept the keys of the models it built. Behind the loader a
manager's team is changed (a small source: the tables under it rebuild, its staging view does
not, its definition is the same) and by hand a table and a view are dropped (rebuilt although
their keys are kept). The next run leaves out every other model it may, reports them
materialized ("not rebuilt", and why) so that the checks after dbt still run, and leaves the
warehouse equal to the same folder built again with nothing kept (every model run), byte for
byte.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import pytest

from benchmarks.identical_marts import compare_warehouses
from dagster_project.defs.transform.dbt import _NOT_REBUILT, dbt_folder
from dagster_project.lib import dbt_test_reuse
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings
from dagster_project.runner import dagster_home, run_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MANAGERS_VIEW = "stg_inbox__managers"  # its source's rows change, its columns do not
MANAGERS = "dim_managers"  # under the changed source: rebuilt
STAGES = "dim_pipeline_stages"  # nothing under it changed: left out
WEIGHTS_VIEW = "stg_inbox__kpi_weights"  # left out
BANDS = "dim_premium_bands"  # dropped by hand: rebuilt
STAGES_VIEW = "stg_inbox__pipeline_stages"  # dropped by hand: re-created
# what an incremental model keeps about its last build (tests/integration/test_run_sequences.py)
BUILD_BOOKKEEPING = (
    "_seen",
    "__built_fingerprints",
    ".int_months_fingerprinted",
    "__months_written",
)


def test_models_left_out_hold_what_a_rebuild_writes(mini_run, tmp_path, monkeypatch):
    run = mini_run.copy_to(tmp_path / "w")
    kept = dbt_test_reuse.kept_in(wh.working_path(run.warehouse))
    built = {node.split(".")[2] for node in kept if node.startswith("model.")}
    assert {MANAGERS_VIEW, MANAGERS, STAGES, WEIGHTS_VIEW, BANDS, STAGES_VIEW} <= built

    con = duckdb.connect(str(run.warehouse))
    con.execute("update raw.managers set team = 'Planted' where manager_id = 'm1'")
    con.execute(f"drop table core.{BANDS}")
    con.execute(f"drop view staging.{STAGES_VIEW}")
    con.close()
    outcome = _run(run, monkeypatch)

    assert outcome.success, outcome
    assert not outcome.skipped_steps
    ran = _newest_statuses(run)
    assert ran[MANAGERS] == "success"
    assert ran[BANDS] == "success" and ran[STAGES_VIEW] == "success"
    for left_out in (MANAGERS_VIEW, STAGES, WEIGHTS_VIEW):
        assert left_out not in ran
    # a left-out model's own data tests still run (`--indirect-selection empty`, D385)
    assert ran[f"not_null_{MANAGERS_VIEW}"] == "pass"
    teams = _query(run, f"select distinct team from core.{MANAGERS} where manager_id = 'm1'")
    assert teams == [("Planted",)]
    # reported materialized, not rebuilt, and why; its Great Expectations check ran after it
    metadata = _materialization(run, ["core", STAGES]).metadata
    assert metadata["status"].value == "reused"
    assert metadata["rebuilt"].value == _NOT_REBUILT["table"]
    checks = {check.name for check in outcome.checks}
    assert {f"ge_core_{STAGES}", f"ge_staging_{WEIGHTS_VIEW}"} <= checks

    # the same folder with nothing kept (no token: D385): every model runs
    full = tmp_path / "full"
    shutil.copytree(run.root, full)
    con = duckdb.connect(str(full / run.warehouse.name))
    con.execute(f"drop table {dbt_test_reuse.TOKEN_TABLE}")
    con.close()
    rebuilt = type(run)(full, run.code)
    assert _run(rebuilt, monkeypatch).success
    assert {MANAGERS_VIEW, STAGES, WEIGHTS_VIEW} <= set(_newest_statuses(rebuilt))
    report = compare_warehouses(
        rebuilt.warehouse, run.warehouse, schemas=("core", "marts", "finance", "intermediate")
    )
    differing = {
        name: entry
        for name, entry in report.items()
        if not name.endswith(BUILD_BOOKKEEPING) and not entry.get("identical")
    }
    assert f"core.{STAGES}" in report and not differing, differing


def _run(run, monkeypatch):
    monkeypatch.setenv("VORONKA_INBOX", str(run.inbox))
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(run.warehouse))
    return run_pipeline(Settings.from_env(), log_level="WARNING", force=True)


def _newest_statuses(run) -> dict[str, str]:
    found = dbt_folder(run.warehouse).glob("*/run_results.json")
    newest = max(found, key=lambda path: path.stat().st_mtime)
    results = json.loads(newest.read_text(encoding="utf-8"))["results"]
    return {result["unique_id"].split(".")[2]: result["status"] for result in results}


def _query(run, sql: str) -> list[tuple]:
    con = duckdb.connect(str(run.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _materialization(run, path: list[str]) -> dg.AssetMaterialization:
    # the settings `_run` left in the environment: this run's folder
    with dg.DagsterInstance.from_config(str(dagster_home(Settings.from_env()))) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(path))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization
