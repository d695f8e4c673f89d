"""The dbt project's structure (issue 17): lists that must agree, one rule in one place, each
YAML file beside the models it documents. Reads the files only: no dbt run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MODELS = Path(__file__).resolve().parents[2] / "dbt_models" / "models"
SCORECARD_NON_MEASURES = {"month", "manager_id", "manager_name", "team", "role"}


def _model_folders() -> dict[str, Path]:
    return {path.stem: path.parent for path in MODELS.rglob("*.sql")}


def _yaml_files() -> list[Path]:
    return sorted(MODELS.rglob("*.yml"))


def test_plannable_kpi_codes_are_the_scorecard_measure_columns():
    """kpi_plan_completion lists the plannable codes; they must be the manager scorecard's
    measure columns (its contract), in its order: a new scorecard column is plannable too."""
    sql = (MODELS / "marts" / "kpi_plan_completion.sql").read_text()
    listed = re.search(r"set kpi_columns = \[(.*?)\]", sql, re.S)
    assert listed, "kpi_plan_completion.sql: no `set kpi_columns = [...]`"
    plannable = re.findall(r"'(\w+)'", listed.group(1))
    contract = yaml.safe_load((MODELS / "marts" / "kpi_manager_monthly.yml").read_text())
    (model,) = [m for m in contract["models"] if m["name"] == "kpi_manager_monthly"]
    measures = [c["name"] for c in model["columns"] if c["name"] not in SCORECARD_NON_MEASURES]
    assert plannable == measures


def test_inbox_staging_ranks_versions_with_the_one_macro():
    """The rule "newest version wins" is newest_version_rank (macros/dedup.sql), not a hand-written
    window in an inbox staging model."""
    hand_written = [
        path.name
        for path in sorted((MODELS / "staging" / "inbox").glob("*.sql"))
        if "row_number()" in path.read_text()
    ]
    assert hand_written == []
