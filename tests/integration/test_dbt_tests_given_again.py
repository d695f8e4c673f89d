"""D370 end to end: a dbt data test given again never hides a defect in its table's inputs.

The session's run of the mini inbox kept the keys of the tests that passed. A bad row planted in
one small source (a manager whose role no test accepts, written into raw behind the loader, so
that no contract or raw check stops it first) must fail the next run on its dbt tests exactly
as without D370, while the tests of the tables the row does not reach are given again.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from dagster_project.lib import dbt_test_reuse
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings
from dagster_project.runner import run_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLE_TEST = "accepted_values_stg_inbox__managers_role__sales__account__support"
DATES_TEST = "primary_key_dim_dates_calendar_date"


def test_a_bad_row_in_a_table_whose_tests_passed_fails_the_run(mini_run, tmp_path, monkeypatch):
    run = mini_run.copy_to(tmp_path / "w")
    kept = dbt_test_reuse.kept_in(wh.working_path(run.warehouse))
    passed = {test.split(".")[2] for test in kept}
    # both would be given again on the same rows: the planted row alone must run the first
    assert {ROLE_TEST, DATES_TEST} <= passed

    con = duckdb.connect(str(run.warehouse))
    con.execute(
        "insert into raw.managers select * replace ('m9' as manager_id, 'boss' as role) "
        "from raw.managers limit 1"
    )
    con.close()
    monkeypatch.setenv("VORONKA_INBOX", str(run.inbox))
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(run.warehouse))
    outcome = run_pipeline(Settings.from_env(), log_level="WARNING", force=True)

    assert not outcome.success
    failed = {check.name for check in outcome.blocking_failures}
    assert ROLE_TEST in failed
    checks = {check.name: check for check in outcome.checks}
    # not reached by the row: given again, reported passed, not run by dbt
    assert checks[DATES_TEST].passed
    ran = json.loads(_newest_run_results(run).read_text())["results"]
    statuses = {result["unique_id"].split(".")[2]: result["status"] for result in ran}
    assert ROLE_TEST in statuses and DATES_TEST not in statuses
    # the view tested is left out (D385: its definition is the same), and the failed test still
    # stops what is built from it, as when dbt builds the view
    assert "stg_inbox__managers" not in statuses
    assert statuses["dim_managers"] == "skipped"
    # the failure is not kept: the next run runs the test again
    kept = dbt_test_reuse.kept_in(wh.working_path(run.warehouse))
    assert ROLE_TEST not in {test.split(".")[2] for test in kept}


def _newest_run_results(run):
    from dagster_project.defs.transform.dbt import dbt_folder

    found = dbt_folder(run.warehouse).glob("*/run_results.json")
    return max(found, key=lambda path: path.stat().st_mtime)
