"""The generic test not_null_columns (D261): one query for the not-nulls of a model's columns,
a failing row per column that holds a null. Rendered with Jinja (it uses no dbt function) and
run on DuckDB; and each test's columns are columns its model's YAML documents."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEST_SQL = ROOT / "dbt_models" / "tests" / "generic" / "not_null_columns.sql"


def _render(model: str, columns: list[str]) -> str:
    text = TEST_SQL.read_text(encoding="utf-8")
    text = re.sub(r"\{%\s*test not_null_columns\(model, columns\)\s*%\}", "", text)
    text = re.sub(r"\{%\s*endtest\s*%\}", "", text)
    return jinja2.Template(text).render(model=model, columns=columns)


def _failures(con: duckdb.DuckDBPyConnection, columns: list[str]) -> list[tuple]:
    return sorted(con.execute(_render("t", columns)).fetchall())


def test_a_row_per_column_with_nulls_and_none_without():
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values (1, 'a', null), (2, null, null), (3, 'c', 7))"
        " as v(id, name, amount)"
    )
    assert _failures(con, ["id"]) == []
    assert _failures(con, ["id", "name", "amount"]) == [("amount", 2), ("name", 1)]
    con.execute("delete from t where amount is null")
    assert _failures(con, ["id", "name", "amount"]) == []


def test_an_empty_model_passes():
    con = duckdb.connect()
    con.execute("create table t (id integer, name varchar)")
    assert _failures(con, ["id", "name"]) == []


def test_each_named_column_is_documented_on_its_model():
    """A typo in a column list fails at the warehouse, not here; the lists name only the
    columns their model's YAML documents (so a renamed column is caught before a run)."""
    unknown = []
    for path in [*(ROOT / "dbt_models" / "models").rglob("*.yml"), ROOT / "seeds" / "_seeds.yml"]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in data.get("models", []) + data.get("seeds", []):
            documented = {column["name"] for column in model.get("columns", [])}
            for test in model.get("data_tests", []) or []:
                if isinstance(test, dict) and "not_null_columns" in test:
                    assert test["not_null_columns"]["name"] == f"not_null_{model['name']}"
                    named = test["not_null_columns"]["arguments"]["columns"]
                    unknown += [(model["name"], c) for c in named if c not in documented]
    assert unknown == []
