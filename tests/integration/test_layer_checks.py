"""The asset checks of staging, core, marts and finance in Dagster runs.

The finance tables are built on another branch, so stand-in assets take their keys and the test
writes the tables into a scratch warehouse (as ``test_raw_checks`` does for raw): a blocking
finance failure must stop the asset downstream (a payout export), a mart error must not.
"""

from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    ExecuteInProcessResult,
    asset,
    materialize,
)

from dagster_project.defs.quality.checks import build_layer_asset_checks, build_layer_check
from dagster_project.defs.resources import ValidationResource, warehouse_from_settings
from dagster_project.defs.transform.dbt import build_dbt_assets
from dagster_project.lib.ge_runner.suites import discover_suites, get_suite_file
from tests.unit.test_layer_suites import BANDS, bonus_lines, calls_hourly, scratch, statements

pytestmark = pytest.mark.integration

LINES = AssetKey(["finance", "bonus_lines"])
STATEMENTS = AssetKey(["finance", "bonus_statements"])
HOURLY = AssetKey(["marts", "kpi_calls_hourly"])


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(path))
    monkeypatch.setenv("VORONKA_AS_OF", "2026-11-03T12:00:00")
    return path


@asset(key=LINES)
def bonus_lines_stand_in() -> None:
    """Stands in for the finance model: the test has written the table."""


@asset(key=STATEMENTS, deps=[LINES])
def bonus_statements_stand_in() -> None:
    """Stands in for the finance model: the test has written the table."""


@asset(deps=[STATEMENTS])
def payout_export() -> None:
    """Downstream of the statements: must not run when their blocking check fails."""


@asset(key=HOURLY)
def calls_hourly_stand_in() -> None:
    """Stands in for the mart: the test has written the table."""


@asset(deps=[HOURLY])
def calls_dashboard_extract() -> None:
    """Downstream of the mart: runs even when the mart's (non-blocking) check fails."""


def check_of(suite: str) -> AssetsDefinition:
    return build_layer_check(get_suite_file(suite))


def materialized(result: ExecuteInProcessResult) -> set[AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def evaluations(result: ExecuteInProcessResult) -> dict[str, tuple[bool, AssetCheckSeverity]]:
    return {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}


def run_finance() -> ExecuteInProcessResult:
    return materialize(
        [
            bonus_lines_stand_in,
            bonus_statements_stand_in,
            payout_export,
            check_of("finance.bonus_lines"),
            check_of("finance.bonus_statements"),
        ],
        resources={"warehouse": warehouse_from_settings(), "validation": ValidationResource()},
        raise_on_error=False,
    )


def test_one_check_per_suite_on_the_dbt_asset_of_its_table():
    dbt_keys = set(build_dbt_assets().keys)
    layer_asset_checks = build_layer_asset_checks(dbt_keys)
    specs = {spec.asset_key: spec for check in layer_asset_checks for spec in check.check_specs}
    expected = {
        AssetKey([s.layer, s.table])
        for layer in ("staging", "core", "marts", "finance")
        for s in discover_suites(layer)
        if AssetKey([s.layer, s.table]) in dbt_keys
    }
    assert set(specs) == expected and len(specs) == len(layer_asset_checks)
    assert expected  # the suites name real dbt models
    for key, spec in specs.items():
        assert spec.name == f"ge_{key.path[0]}_{key.path[1]}"
        assert spec.blocking == (key.path[0] == "finance")
        assert "Great Expectations" in spec.description


def test_finance_checks_block():
    for suite in ("finance.bonus_lines", "finance.bonus_statements", "finance.bonus_adjustments"):
        [spec] = check_of(suite).check_specs
        assert spec.blocking


def test_finance_clean_statements_pass_and_the_export_runs(warehouse: Path):
    scratch(
        warehouse,
        {
            "core.dim_premium_bands": BANDS,
            "finance.bonus_lines": bonus_lines(),
            "finance.bonus_statements": statements(19600.0),
        },
    )
    result = run_finance()
    assert result.success
    checks = evaluations(result)
    assert set(checks) == {"ge_finance_bonus_lines", "ge_finance_bonus_statements"}
    assert all(passed for passed, _ in checks.values())
    assert AssetKey(["payout_export"]) in materialized(result)


def test_finance_statement_not_summing_its_lines_blocks_the_export(warehouse: Path):
    scratch(
        warehouse,
        {
            "core.dim_premium_bands": BANDS,
            "finance.bonus_lines": bonus_lines(),
            "finance.bonus_statements": statements(19700.0),
        },
    )
    result = run_finance()
    checks = evaluations(result)
    assert checks["ge_finance_bonus_lines"][0]
    assert checks["ge_finance_bonus_statements"] == (False, AssetCheckSeverity.ERROR)
    assert AssetKey(["payout_export"]) not in materialized(result)
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name.endswith("statements")
    ]
    [row] = evaluation.metadata["failed_expectations"].value
    assert row["column"] == "is_sum_of_lines" and row["unexpected_count"] == 1
    assert row["sample"][0]["bonus_amount"] == 19700 and row["sample"][0]["lines_amount"] == 19600
    assert evaluation.metadata["duration_seconds"].value >= 0


def test_finance_tables_missing_skip_without_blocking(warehouse: Path):
    scratch(warehouse, {"core.dim_premium_bands": BANDS})
    result = run_finance()
    assert all(passed for passed, _ in evaluations(result).values())
    assert AssetKey(["payout_export"]) in materialized(result)
    [evaluation, _] = result.get_asset_check_evaluations()
    assert evaluation.metadata["status"].value == "skipped"


def test_mart_ratio_above_one_is_an_error_that_does_not_block(warehouse: Path):
    scratch(warehouse, {"marts.kpi_calls_hourly": calls_hourly(1.25)})
    result = materialize(
        [calls_hourly_stand_in, calls_dashboard_extract, check_of("marts.kpi_calls_hourly")],
        resources={"warehouse": warehouse_from_settings(), "validation": ValidationResource()},
        raise_on_error=False,
    )
    assert evaluations(result) == {"ge_marts_kpi_calls_hourly": (False, AssetCheckSeverity.ERROR)}
    assert AssetKey(["calls_dashboard_extract"]) in materialized(result)
