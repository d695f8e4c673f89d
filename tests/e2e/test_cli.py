"""The README's commands as a user runs them: demo inbox, then the pipeline, as subprocesses."""

from __future__ import annotations

import os

import pytest

from tests.conftest import query, voronka_process

pytestmark = [pytest.mark.slow]


def test_demo_then_run(demo_run, tmp_path):
    """The session's `voronka demo` and `voronka run` subprocesses (tests/conftest.py, D282),
    then `voronka validate` on a copy of their folder."""
    demo, run, warehouse = demo_run.demo, demo_run.run, demo_run.warehouse
    assert demo.returncode == 0, demo.stderr
    assert "written to" in demo.stdout
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warehouse:" in run.stdout and "Rows per layer:" in run.stdout
    assert "Quarantined rows:" in run.stdout and "Checks:" in run.stdout
    # the demo's deliberate defects reached the quarantine
    quarantined = query(warehouse, "select count(*) from quarantine.survey_responses")
    assert quarantined[0][0] > 0
    assert query(warehouse, "select count(*) from core.fct_calls")[0][0] > 0
    # ... and the others are reported by the Great Expectations suites, with the report's link
    assert "Data quality (Great Expectations):" in run.stdout
    assert "expect_column_values_to_be_unique" in run.stdout  # duplicated lines (raw)
    assert "(days_before_file_month)" in run.stdout  # late-arriving rows (staging)
    assert "(is_manager_known)" in run.stdout  # unknown manager ids (core coverage)
    assert "report: file://" in run.stdout and (demo_run.root / "validation/index.html").is_file()

    env = {**os.environ, "VORONKA_WAREHOUSE": str(demo_run.copy_to(tmp_path / "run"))}
    validate = voronka_process("validate", "--layer", "marts", env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "marts.kpi_manager_monthly" in validate.stdout and "Report: file://" in validate.stdout


def test_validate_refuses_an_unknown_layer_and_a_missing_warehouse(tmp_path):
    env = {**os.environ, "VORONKA_WAREHOUSE": str(tmp_path / "missing.duckdb")}
    assert voronka_process("validate", "--layer", "gold", env=env).returncode == 2
    missing = voronka_process("validate", env=env)
    assert missing.returncode == 2 and "voronka run" in missing.stderr


def test_run_without_inbox_says_what_to_do(tmp_path):
    env = {**os.environ, "VORONKA_INBOX": str(tmp_path / "missing")}
    run = voronka_process("run", env=env)
    assert run.returncode == 2
    assert "voronka demo --out" in run.stderr


def test_bad_as_of_an_empty_inbox_and_an_unknown_language_are_refused(tmp_path):
    (tmp_path / "inbox" / "calls").mkdir(parents=True)
    env = {**os.environ, "VORONKA_INBOX": str(tmp_path / "inbox")}
    empty = voronka_process("run", env=env)
    assert empty.returncode == 2
    assert f"The inbox folder {tmp_path / 'inbox'} holds no CSV file" in empty.stderr
    (tmp_path / "inbox" / "calls" / "2026-01.csv").write_text("call_id\n")
    run = voronka_process("run", "--as-of", "01.11.2026", env=env)
    assert run.returncode == 2
    assert "ISO 8601" in run.stderr
    german = voronka_process("run", env={**env, "VORONKA_LANGUAGE": "de"})
    assert german.returncode == 2
    assert "VORONKA_LANGUAGE must be one of ru, en, not 'de'" in german.stderr
