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


def test_each_yaml_file_documents_only_its_own_folder():
    """A model's documentation and its unit tests sit in a YAML file of the model's own folder
    (a core model's unit test in the core YAML, not in an intermediate one)."""
    folders = _model_folders()
    strays = []
    for path in _yaml_files():
        document = yaml.safe_load(path.read_text()) or {}
        named = [(m["name"], "model") for m in document.get("models", [])]
        named += [(t["model"], f"unit test {t['name']}") for t in document.get("unit_tests", [])]
        for model, what in named:
            if folders.get(model) != path.parent:
                strays.append(f"{path.relative_to(MODELS)}: {what} of {model}")
    assert strays == []


def test_kpi_definitions_name_existing_models_macros_and_tests():
    """docs/kpi-definitions.md's "computed in / dbt unit test / integration test" cells name
    models, macros, dbt unit tests and pytest tests that exist (a rename must update the doc)."""
    root = MODELS.parents[1]
    doc = (root / "docs" / "kpi-definitions.md").read_text()
    unit_tests = {
        test["name"]
        for path in _yaml_files()
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }
    macros = {
        name
        for path in (root / "dbt_models" / "macros").glob("*.sql")
        for name in re.findall(r"macro (\w+)\(", path.read_text())
    }
    names = set(_model_folders()) | unit_tests | macros
    cells = [
        cell
        for line in doc.splitlines()
        if line.startswith("| ") and line.count(" | ") >= 3
        for cell in line.strip("|").split(" | ")[-3:]
    ]
    test_files = {path.name: path for path in (root / "tests").glob("*/**/test_*.py")}
    unknown = []
    for token in {t for cell in cells for t in re.findall(r"`([^`]+)`", cell)}:
        if "::" in token:
            file, test = token.split("::")
            test = test.split("[")[0]
            path = test_files.get(file)
            if path is None or f"def {test}(" not in path.read_text():
                unknown.append(token)
        elif re.fullmatch(r"\w+", token) and token not in names and "_" in token:
            unknown.append(token)
        elif (
            "/" in token
            and not (root / token).exists()
            and not (root / "dbt_models" / token).exists()
        ):
            unknown.append(token)
    assert sorted(unknown) == []
    assert "int_sales_measures_aggregated_closed_deals" in str(cells)
