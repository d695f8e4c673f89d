"""The suites of staging, core, marts and finance, run by the runner on scratch DuckDB files.

One defect per layer, written into hand-made tables: the test asserts that the expectation
meant to catch it fails, with its severity, and that nothing else in the suite does.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from dagster_project.lib import validation_report
from dagster_project.lib.ge_runner import reuse
from dagster_project.lib.ge_runner.batches import VALIDATED_BATCHES, VALIDATED_BATCHES_DDL
from dagster_project.lib.ge_runner.gx_engine import load_suite
from dagster_project.lib.ge_runner.reading import read_only_warehouse
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.run import validate_suite
from dagster_project.lib.ge_runner.suites import SuiteError, read_suite_file
from tests.raw_tables import write_load_log

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS = ROOT / "expectations"
LAYER_SUITES = sorted(
    p
    for layer in ("staging", "core", "marts", "finance")
    for p in (EXPECTATIONS / layer).glob("*.json")
)
AS_OF = "2026-11-03T12:00:00"
LOADED = datetime(2026, 11, 3, 10, 0)


# ---------------------------------------------------------------------------- suite files


@pytest.mark.parametrize("path", LAYER_SUITES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_suite_file_is_plain_ge_1x_json_with_severity_and_notes(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["name"] == f"{path.parent.name}.{path.stem}"
    assert "id" not in data and data["expectations"] and data["notes"].strip()
    for exp in data["expectations"]:
        assert set(exp) <= {"type", "kwargs", "meta"}
        assert exp["meta"]["severity"] in ("error", "warn"), exp
        assert exp["meta"]["notes"].strip(), exp
    suite_file = read_suite_file(path)  # checks queries and their parameters
    assert set(suite_file.queries) == {
        e["meta"]["query"] for e in data["expectations"] if e["meta"].get("query")
    }


@pytest.mark.parametrize("path", LAYER_SUITES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_suite_loads_into_ge_without_dropping_expectations(path: Path):
    suite_file = read_suite_file(path)
    assert len(load_suite(suite_file).expectations) == len(suite_file.expectations)


def _dbt_column_tests() -> dict[tuple[str, str], set[str]]:
    """(model, column) -> names of the dbt generic tests on it, from every models YAML."""
    tests: dict[tuple[str, str], set[str]] = {}
    for path in (ROOT / "dbt_models" / "models").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            # not_null_columns (tests/generic/not_null_columns.sql): not_null on each column named
            for test in model.get("data_tests", []) or []:
                if isinstance(test, dict) and "not_null_columns" in test:
                    for column in test["not_null_columns"]["arguments"]["columns"]:
                        tests.setdefault((model["name"], column), set()).add("not_null")
            for column in model.get("columns", []):
                for test in column.get("data_tests", []) or []:
                    name = test if isinstance(test, str) else next(iter(test))
                    # primary_key (tests/generic/primary_key.sql) is unique and not_null in one
                    names = {"unique", "not_null"} if name == "primary_key" else {name}
                    tests.setdefault((model["name"], column["name"]), set()).update(names)
    return tests


GE_TO_DBT = {
    "expect_column_values_to_be_unique": "unique",
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_in_set": "accepted_values",
}


def test_no_rule_is_both_a_dbt_test_and_an_expectation():
    """Division of labour (STYLE.md): keys, not-nulls and accepted values on a model's own
    columns are dbt tests; a suite holds them only as thresholds (`mostly`) or conditions."""
    dbt_tests = _dbt_column_tests()
    doubled = []
    for path in LAYER_SUITES:
        for exp in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            kwargs, meta = exp["kwargs"], exp["meta"]
            dbt_name = GE_TO_DBT.get(exp["type"])
            if not dbt_name or meta.get("query") or "mostly" in kwargs or "row_condition" in kwargs:
                continue
            if dbt_name in dbt_tests.get((path.stem, kwargs.get("column")), set()):
                doubled.append((path.stem, kwargs["column"], dbt_name))
    assert doubled == []


def test_the_marts_revenue_reconciliation_is_left_to_dbt():
    """dbt's assert_company_revenue_reconciles holds revenue = managers = facts: no suite
    compares kpi_company_monthly.revenue again."""
    text = (EXPECTATIONS / "marts" / "kpi_company_monthly.json").read_text(encoding="utf-8")
    assert "fct_deals" not in text and "kpi_manager_monthly" not in text


def test_a_query_with_an_unknown_parameter_is_refused(tmp_path: Path):
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "t.json"
    path.write_text(
        json.dumps(
            {
                "name": "marts.t",
                "meta": {"queries": {"q": {"sql": "select $today as x"}}},
                "expectations": [],
            }
        )
    )
    with pytest.raises(SuiteError, match="unknown parameter"):
        read_suite_file(path)


def test_an_expectation_naming_a_missing_query_is_refused(tmp_path: Path):
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "t.json"
    exp = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}
    exp["meta"] = {"severity": "warn", "query": "nope"}
    path.write_text(json.dumps({"name": "marts.t", "expectations": [exp]}))
    with pytest.raises(SuiteError, match="not in meta.queries"):
        read_suite_file(path)


# ---------------------------------------------------------------------------- scratch warehouses


def scratch(path: Path, tables: dict[str, pd.DataFrame], load_log: list[tuple] = ()) -> Path:
    """A DuckDB file with the given tables (``schema.table`` -> rows) and raw._load_log."""
    con = duckdb.connect(str(path))
    try:
        for name, frame in tables.items():
            schema, _, table = name.partition(".")
            con.execute(f"create schema if not exists {schema}")
            con.register("frame", frame)
            con.execute(f"create table {schema}.{table} as select * from frame")
            con.unregister("frame")
        if load_log:
            columns = ("run_id", "batch_id", "entity", "status", "started_at")
            write_load_log(con, (dict(zip(columns, row, strict=True)) for row in load_log))
    finally:
        con.close()
    return path


def validate(path: Path, suite: str) -> SuiteResult:
    with read_only_warehouse(path) as con:
        return validate_suite(con, suite, as_of=AS_OF)


def failures(result: SuiteResult) -> list[tuple[str, str | None, str]]:
    return [(f.type, f.column or f.query, f.severity) for f in result.failed]


# ---------------------------------------------------------------------------- raw


def raw_calls(talk_seconds: list[str]) -> pd.DataFrame:
    n = len(talk_seconds)
    return pd.DataFrame(
        {
            "call_id": [f"k{i}" for i in range(n)],
            "started_at": ["2026-11-01T10:00:00+03:00"] * n,
            "direction": ["outbound"] * n,
            "client_phone": ["+79161234567"] * n,
            "manager_extension": ["101"] * n,
            "line": ["sales"] * n,
            "status": ["answered"] * n,
            "ring_seconds": ["5"] * n,
            "talk_seconds": talk_seconds,
            "_source_file": ["calls/2026-11.csv"] * n,
            "_source_line": list(range(2, n + 2)),
            "_loaded_at": [LOADED] * n,
            "_batch_id": ["b1"] * n,
        }
    )


RUN = [("run-1", "b1", "calls", "loaded", LOADED)]


def test_raw_wrong_typed_column_fails_the_parse_expectation_with_error(tmp_path: Path):
    clean = scratch(tmp_path / "clean.duckdb", {"raw.calls": raw_calls(["30", "40"])}, RUN)
    assert failures(validate(clean, "raw.calls")) == []

    broken = scratch(tmp_path / "bad.duckdb", {"raw.calls": raw_calls(["30", "forty"])}, RUN)
    result = validate(broken, "raw.calls")
    assert failures(result) == [
        ("expect_column_values_to_not_be_null", "talk_seconds__typed", "error")
    ]
    assert not result.success and result.severity == "error"
    [failure] = result.failed
    assert failure.unexpected_count == 1
    assert failure.sample[0]["call_id"] == "k1" and failure.sample[0]["talk_seconds"] == "forty"


# ---------------------------------------------------------------------------- after staging


def stage_changes(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["change_id", "deal_id", "to_stage", "changed_at"])
    frame["changed_at"] = pd.to_datetime(frame["changed_at"])
    frame["manager_id"] = "m1"
    frame["from_stage"] = None
    frame["_source_file"] = "deal_stage_changes/2026-11.csv"
    frame["_source_line"] = range(2, len(frame) + 2)
    frame["_loaded_at"] = LOADED
    frame["_last_loaded_at"] = LOADED
    return frame


MANAGERS = pd.DataFrame({"manager_id": ["m1"], "hired_on": [None], "left_on": [None]})


STAGE_RUN = [("run-1", "b1", "deal_stage_changes", "loaded", LOADED)]
RAW_STAGE_CHANGES = pd.DataFrame({"_batch_id": ["b1"], "_loaded_at": [LOADED]})


def test_duplicate_business_key_after_staging_dedup_warns(tmp_path: Path):
    rows = [
        ("c1", "d1", "qualified", "2026-11-02 10:00"),
        ("c2", "d1", "proposal", "2026-11-02 11:00"),
    ]
    tables = {
        "core.fct_deal_stage_changes": stage_changes(rows),
        "core.dim_managers": MANAGERS,
        "raw.deal_stage_changes": RAW_STAGE_CHANGES,
    }
    clean = scratch(tmp_path / "clean.duckdb", tables, STAGE_RUN)
    assert failures(validate(clean, "core.fct_deal_stage_changes")) == []

    # the same stage entry exported again under a new change_id: dbt's unique(change_id) holds
    rows.append(("c3", "d1", "proposal", "2026-11-02 11:00"))
    tables["core.fct_deal_stage_changes"] = stage_changes(rows)
    broken = scratch(tmp_path / "bad.duckdb", tables, STAGE_RUN)
    result = validate(broken, "core.fct_deal_stage_changes")
    assert failures(result) == [("expect_compound_columns_to_be_unique", None, "warn")]
    assert result.success and result.severity == "warn"  # reported, never blocks
    assert {s["change_id"] for s in result.failed[0].sample} == {"c2", "c3"}


def test_stale_source_warns_on_freshness_and_late_rows(tmp_path: Path):
    rows = [("c1", "d1", "qualified", "2026-10-01 10:00")]  # a month before the as-of
    tables = {
        "core.fct_deal_stage_changes": stage_changes(rows),
        "core.dim_managers": MANAGERS,
        "raw.deal_stage_changes": RAW_STAGE_CHANGES,
    }
    path = scratch(tmp_path / "w.duckdb", tables, STAGE_RUN)
    result = validate(path, "core.fct_deal_stage_changes")
    # late against its file's month too: the file is named 2026-11
    assert sorted(failures(result)) == [
        ("expect_column_values_to_be_between", "days_before_file_month", "warn"),
        ("expect_column_values_to_be_between", "hours_behind_as_of", "warn"),
    ]


# ---------------------------------------------------------------------------- core


def fct_calls(extensions: list[str | None], managers: list[str | None]) -> pd.DataFrame:
    n = len(extensions)
    return pd.DataFrame(
        {
            "call_id": [f"k{i}" for i in range(n)],
            "manager_id": managers,
            "client_id": ["c1"] * n,
            "client_phone": ["+79161234567"] * n,
            "manager_extension": extensions,
            "started_at": [datetime(2026, 11, 2, 9, 0)] * n,
            "_source_file": ["calls/2026-11.csv"] * n,
            "_source_line": list(range(2, n + 2)),
            "_loaded_at": [LOADED] * n,
            "_last_loaded_at": [LOADED] * n,
        }
    )


RAW_CALLS = pd.DataFrame({"_batch_id": ["b1"], "_loaded_at": [LOADED]})


def core_calls(tmp_path: Path, name: str, matched: int, unmatched: int) -> Path:
    extensions = ["101"] * matched + ["999"] * unmatched + [None]  # + a missed call, no extension
    managers = ["m1"] * matched + [None] * unmatched + [None]
    return scratch(
        tmp_path / name,
        {"core.fct_calls": fct_calls(extensions, managers), "raw.calls": RAW_CALLS},
        RUN,
    )


def test_core_unmatched_extensions_beyond_the_threshold_fail_with_error(tmp_path: Path):
    assert failures(validate(core_calls(tmp_path, "ok.duckdb", 200, 0), "core.fct_calls")) == []

    # 1 call in 200 unmatched (0.5 %): within the bars
    assert failures(validate(core_calls(tmp_path, "few.duckdb", 199, 1), "core.fct_calls")) == []

    # 4 in 200 (2 %): beyond the 1 % warning bar, within the 5 % error bar
    result = validate(core_calls(tmp_path, "warn.duckdb", 196, 4), "core.fct_calls")
    assert failures(result) == [("expect_column_values_to_not_be_null", "manager_id", "warn")]
    assert result.success and result.failed[0].query == "extension_calls"

    # 20 in 200 (10 %): beyond the 5 % error bar; a missed call without extension never counts
    result = validate(core_calls(tmp_path, "bad.duckdb", 180, 20), "core.fct_calls")
    assert failures(result) == [
        ("expect_column_values_to_not_be_null", "manager_id", "error"),
        ("expect_column_values_to_not_be_null", "manager_id", "warn"),
    ]
    assert not result.success and result.failed[0].unexpected_count == 20
    assert result.failed[0].sample[0]["manager_extension"] == "999"


def test_core_batch_is_the_batches_not_validated_yet(tmp_path: Path):
    """Rows of batches the suite validated before are not validated again (cost follows new
    data); a batch it never validated is, whenever it was loaded (D82)."""
    old = datetime(2026, 10, 1)
    frame = fct_calls(["999"] * 50 + ["101"] * 10, [None] * 50 + ["m1"] * 10)
    frame.loc[:49, "_last_loaded_at"] = old
    raw = pd.DataFrame({"_batch_id": ["b0", "b1"], "_loaded_at": [old, LOADED]})
    log = [("run-0", "b0", "calls", "loaded", old), *RUN]
    path = scratch(tmp_path / "w.duckdb", {"core.fct_calls": frame, "raw.calls": raw}, log)

    # b0 never validated: its 50 calls without a manager are validated with b1 and fail
    result = validate(path, "core.fct_calls")
    assert result.rows_validated == 60 and not result.success

    # b0 validated by an earlier run: only b1's 10 rows are validated
    con = duckdb.connect(str(path))
    con.execute(VALIDATED_BATCHES_DDL)
    con.execute(
        f"insert into raw.{VALIDATED_BATCHES} values "
        "('core.fct_calls', 'b0', 'error', timestamp '2026-10-01 01:00:00', 'run-0')"
    )
    con.close()
    result = validate(path, "core.fct_calls")
    assert failures(result) == [] and result.rows_validated == 10


# ---------------------------------------------------------------------------- marts


def calls_hourly(service_level: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": ["sales", "sales"],
            "call_date": pd.to_datetime(["2026-11-02", "2026-11-02"]).date,
            "call_hour": [9, 10],
            "offered": [10, 4],
            "answered": [8, 4],
            "missed": [2, 0],
            "service_level": [0.8, service_level],
            "avg_ring_seconds": [12.5, 3.0],
            "talk_minutes": [30.0, 12.0],
            "callback_within_1h_rate": [0.5, None],
        }
    )


def test_mart_ratio_above_one_fails_with_error(tmp_path: Path):
    clean = scratch(tmp_path / "ok.duckdb", {"marts.kpi_calls_hourly": calls_hourly(1.0)})
    assert failures(validate(clean, "marts.kpi_calls_hourly")) == []

    broken = scratch(tmp_path / "bad.duckdb", {"marts.kpi_calls_hourly": calls_hourly(1.25)})
    result = validate(broken, "marts.kpi_calls_hourly")
    assert failures(result) == [("expect_column_values_to_be_between", "service_level", "error")]
    assert result.failed[0].sample == [
        {"line": "sales", "call_date": "2026-11-02", "call_hour": 10, "service_level": 1.25}
    ]


# ---------------------------------------------------------------------------- finance


BANDS = pd.DataFrame(
    {
        "valid_from": pd.to_datetime(["2000-01-01"] * 4).date,
        "lower_pct": [-1e9, 70.0, 100.0, 110.0],
        "upper_pct": [70.0, 100.0, 110.0, None],
        "coefficient": [0.0, 0.9, 1.0, 1.1],
    }
)


def bonus_lines() -> pd.DataFrame:
    # the worked example of kpi-definitions.md: pool 20 000, weight 0.4, KPI 120 % -> 8 800.00
    return pd.DataFrame(
        {
            "month": pd.to_datetime(["2026-10-01", "2026-10-01"]).date,
            "manager_id": ["m1", "m1"],
            "kpi_code": ["revenue", "calls_outbound"],
            "fact": [120.0, 80.0],
            "base": [0.0, 0.0],
            "norm": [100.0, 100.0],
            "kpi_pct": [120.0, 80.0],
            "band_lower_pct": [110.0, 70.0],
            "band_upper_pct": [None, 100.0],
            "premium_coefficient": [1.1, 0.9],
            "weight": [0.4, 0.6],
            "pool_amount": [20000.0, 20000.0],
            "bonus_amount": [8800.0, 10800.0],
            "reason": [None, None],
            "period_status": ["open", "open"],
            "hold_reason": pd.Series([None, None], dtype="string"),
        }
    )


def statements(amount: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": pd.to_datetime(["2026-10-01"]).date,
            "manager_id": ["m1"],
            "manager_name": ["Анна"],
            "team": ["A"],
            "lines": [2],
            "bonus_amount": [amount],
            "period_status": ["open"],
            "closed_at": [None],
            "hold_reason": pd.Series([None], dtype="string"),
        }
    )


def finance(tmp_path: Path, name: str, statement_amount: float) -> Path:
    tables = {
        "core.dim_premium_bands": BANDS,
        "finance.bonus_lines": bonus_lines(),
        "finance.bonus_statements": statements(statement_amount),
    }
    return scratch(tmp_path / name, tables)


def test_finance_statement_that_does_not_sum_its_lines_fails_with_error(tmp_path: Path):
    clean = finance(tmp_path, "ok.duckdb", 19600.0)
    assert failures(validate(clean, "finance.bonus_lines")) == []
    assert failures(validate(clean, "finance.bonus_statements")) == []

    broken = finance(tmp_path, "bad.duckdb", 19700.0)
    assert failures(validate(broken, "finance.bonus_lines")) == []
    result = validate(broken, "finance.bonus_statements")
    assert failures(result) == [("expect_column_values_to_be_in_set", "is_sum_of_lines", "error")]
    [failure] = result.failed
    assert failure.query == "lines"
    assert failure.sample[0]["manager_id"] == "m1" and failure.sample[0]["month"] == "2026-10-01"


def test_finance_held_line_and_statement_pass_without_an_amount(tmp_path: Path):
    """D86: a line held by conflicting input rows has no amount, nor has its statement."""
    lines = bonus_lines()
    lines["bonus_amount"] = lines["bonus_amount"].astype("object")
    lines.loc[1, ["bonus_amount", "reason", "hold_reason"]] = [None, "conflicting_rows", "rows"]
    held = statements(0.0)
    held["bonus_amount"] = held["bonus_amount"].astype("object")
    held.loc[0, ["bonus_amount", "hold_reason"]] = [None, "1 of its lines held back"]
    tables = {
        "core.dim_premium_bands": BANDS,
        "finance.bonus_lines": lines,
        "finance.bonus_statements": held,
    }
    path = scratch(tmp_path / "held.duckdb", tables)
    assert failures(validate(path, "finance.bonus_lines")) == []
    assert failures(validate(path, "finance.bonus_statements")) == []
    # a statement with an amount although a line is held does not sum its lines
    held.loc[0, ["bonus_amount"]] = [8800.0]
    tables["finance.bonus_statements"] = held
    path = scratch(tmp_path / "held-summed.duckdb", tables)
    assert failures(validate(path, "finance.bonus_statements")) == [
        ("expect_column_values_to_be_in_set", "is_sum_of_lines", "error")
    ]


def test_finance_coefficient_outside_the_band_set_fails_with_error(tmp_path: Path):
    lines = bonus_lines()
    lines.loc[0, ["premium_coefficient", "bonus_amount"]] = [1.2, 9600.0]
    path = scratch(
        tmp_path / "w.duckdb", {"core.dim_premium_bands": BANDS, "finance.bonus_lines": lines}
    )
    result = validate(path, "finance.bonus_lines")
    assert failures(result) == [("expect_column_values_to_be_in_set", "is_in_band_set", "error")]


def test_finance_tables_not_built_yet_are_skipped_not_failed(tmp_path: Path):
    path = scratch(tmp_path / "w.duckdb", {"core.dim_premium_bands": BANDS})
    result = validate(path, "finance.bonus_adjustments")
    assert result.skipped and result.success and result.expectations == []
    assert "table missing" in result.note and "skipped" in result.summary()


def test_a_missing_core_table_is_an_error(tmp_path: Path):
    path = scratch(tmp_path / "w.duckdb", {"core.other": BANDS})
    result = validate(path, "core.dim_premium_bands")
    assert not result.success and not result.skipped and "table missing" in result.note


# ---------------------------------------------------------------------------- report


def test_report_lists_failures_with_counts_and_samples(tmp_path: Path):
    warehouse = finance(tmp_path, "w.duckdb", 19700.0)
    results = [validate(warehouse, f"finance.{t}") for t in ("bonus_lines", "bonus_statements")]
    for result in results:
        validation_report.save_result(warehouse, result)
    rows = validation_report.load_rows(warehouse)
    assert [(r.suite, r.severity, r.status) for r in rows] == [
        ("finance.bonus_lines", "", "passed"),
        ("finance.bonus_statements", "error", "failed"),
    ]
    table = "\n".join(validation_report.format_table(rows))
    assert "is_sum_of_lines" in table and "1 unexpected" in table
    page = validation_report.write_report(warehouse)
    assert page == tmp_path / "validation" / "index.html"
    text = page.read_text(encoding="utf-8")
    assert "finance.bonus_statements" in text and "19700" in text


def test_clearing_a_layer_keeps_the_others(tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    for name in ("raw.calls", "finance.bonus_lines"):
        result = SuiteResult(suite_name=name, success=True)
        validation_report.save_result(warehouse, result)
    validation_report.clear(warehouse, "finance")
    assert [r.suite for r in validation_report.load_rows(warehouse)] == ["raw.calls"]
    validation_report.clear(warehouse)
    assert validation_report.load_rows(warehouse) == []


def test_uniqueness_over_chunks_says_it_is_per_chunk(tmp_path: Path):
    rows = [(f"c{i}", "d1", f"s{i}", "2026-11-02 10:00") for i in range(4)]
    rows.append(("c9", "d1", "s0", "2026-11-02 10:00"))  # duplicates c0's stage entry
    tables = {
        "core.fct_deal_stage_changes": stage_changes(rows),
        "core.dim_managers": MANAGERS,
        "raw.deal_stage_changes": RAW_STAGE_CHANGES,
    }
    path = scratch(tmp_path / "w.duckdb", tables, STAGE_RUN)
    with read_only_warehouse(path) as con:
        one = validate_suite(con, "core.fct_deal_stage_changes", as_of=AS_OF)
        chunked = validate_suite(con, "core.fct_deal_stage_changes", as_of=AS_OF, chunk_rows=2)
    [unique] = [e for e in one.expectations if e.type == "expect_compound_columns_to_be_unique"]
    assert not unique.success and "evaluated_on" not in unique.details
    [unique] = [e for e in chunked.expectations if e.type.startswith("expect_compound")]
    assert "across chunks are not counted" in unique.details["evaluated_on"]


def test_the_validation_page_counts_the_quarantined_rows_by_reason(tmp_path):
    """The page says what the loader rejected, per entity and reason (issue 20), and a
    warehouse that cannot be read does not break it."""
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema quarantine")
    con.execute(
        "create table quarantine.calls as select * from (values ('negative:talk_seconds'), "
        "('negative:talk_seconds'), ('invalid_timestamp:started_at')) t(_reason)"
    )
    con.execute("create table quarantine.files as select 'calls' as entity")  # not rows
    con.close()
    validation_report.save_result(warehouse, SuiteResult("raw.calls", success=True))
    page = validation_report.write_report(warehouse).read_text("utf-8")
    assert "3 rows the inbox loader rejected" in page
    assert "<td>calls</td><td>negative:talk_seconds</td><td class='n'>2</td>" in page
    assert "<td>calls</td><td>invalid_timestamp:started_at</td><td class='n'>1</td>" in page
    held = duckdb.connect(str(warehouse))  # a writer holds it: the page says so
    try:
        assert validation_report.quarantine_counts(warehouse) is None
    finally:
        held.close()


# ---------------------------------------------------------------------------- results given again


def checked(path: Path, suite: str, **kwargs) -> SuiteResult:
    """A validation as the asset checks make it: with the results kept beside the file (D330)."""
    with read_only_warehouse(path) as con:
        return validate_suite(con, suite, as_of=AS_OF, results=reuse.results_folder(path), **kwargs)


def keep(path: Path, result: SuiteResult) -> None:
    """What the asset check does after a validation (checks._record)."""
    assert reuse.store(reuse.results_folder(path), result, "run-1")


def same_outcome(a: SuiteResult, b: SuiteResult) -> None:
    ignored = ("duration_seconds", "note", "reused", "fingerprint")
    assert {k: v for k, v in a.to_dict().items() if k not in ignored} == {
        k: v for k, v in b.to_dict().items() if k not in ignored
    }


def test_a_result_is_given_again_only_for_the_rows_it_validated(tmp_path: Path):
    """D330: the same rows give the kept result again, failure and sample included (a failing
    check stays red every run); any changed cell, even one no expectation reads, validates."""
    path = scratch(tmp_path / "w.duckdb", {"raw.calls": raw_calls(["30", "forty"])}, RUN)
    first = checked(path, "raw.calls")
    assert not first.success and first.fingerprint and not first.reused
    assert checked(path, "raw.calls").reused == ""  # nothing kept yet
    keep(path, first)

    again = checked(path, "raw.calls")
    assert again.reused and "D330" in again.note
    assert not again.success and again.severity == "error"
    same_outcome(again, first)
    assert not validate(path, "raw.calls").reused  # `voronka validate` validates

    con = duckdb.connect(str(path))
    con.execute("update raw.calls set client_phone = '+79160000000' where call_id = 'k0'")
    con.close()
    changed = checked(path, "raw.calls")
    assert not changed.reused and changed.fingerprint != first.fingerprint
    assert failures(changed) == failures(first)

    con = duckdb.connect(str(path))
    con.execute("update raw.calls set talk_seconds = '40' where call_id = 'k1'")
    con.close()
    fixed = checked(path, "raw.calls")
    assert not fixed.reused and fixed.success and failures(fixed) == []


def test_a_result_is_validated_again_when_its_suite_or_chunks_change(tmp_path: Path):
    path = scratch(tmp_path / "w.duckdb", {"marts.kpi_calls_hourly": calls_hourly(1.25)})
    first = checked(path, "marts.kpi_calls_hourly")
    keep(path, first)
    again = checked(path, "marts.kpi_calls_hourly")
    assert again.reused and failures(again) == failures(first) != []
    same_outcome(again, first)

    chunked = checked(path, "marts.kpi_calls_hourly", chunk_rows=1)  # two chunks: never again
    assert chunked.fingerprint is None and not chunked.reused

    ordered = json.loads((EXPECTATIONS / "marts" / "kpi_calls_hourly.json").read_text("utf-8"))
    ordered["expectations"].append(
        {
            "type": "expect_column_values_to_be_increasing",
            "kwargs": {"column": "call_hour"},
            "meta": {"severity": "warn", "notes": "an expectation on the rows' order"},
        }
    )
    with read_only_warehouse(path) as con:
        suite = read_suite_file(EXPECTATIONS / "marts" / "kpi_calls_hourly.json")
        assert reuse.fingerprint(con, suite, [], parameters={}, chunk_rows=10)
        suite = replace(suite, expectations=tuple(ordered["expectations"]))
        assert reuse.fingerprint(con, suite, [], parameters={}, chunk_rows=10) is None

    root = tmp_path / "expectations"  # the same suite, one expectation's bound edited
    (root / "marts").mkdir(parents=True)
    suite = json.loads((EXPECTATIONS / "marts" / "kpi_calls_hourly.json").read_text("utf-8"))
    [bound] = [
        e["kwargs"]
        for e in suite["expectations"]
        if e["kwargs"].get("column") == "service_level" and "max_value" in e["kwargs"]
    ]
    bound["max_value"] = 2
    (root / "marts" / "kpi_calls_hourly.json").write_text(json.dumps(suite), encoding="utf-8")
    edited = checked(path, "marts.kpi_calls_hourly", root=root)
    assert not edited.reused and failures(edited) == []


def test_a_kept_result_reads_back_as_it_was_written(tmp_path: Path):
    result = validate(finance(tmp_path, "w.duckdb", 19700.0), "finance.bonus_statements")
    assert not result.success and result.failed[0].sample
    same_outcome(reuse.from_json(reuse.to_json(result)), result)


def staging_clients_view(path: Path, phones: list[str]) -> Path:
    """raw.c and the view staging.stg_inbox__clients over it, which calls `voronka_seen` on
    every row it computes: a test registers the function and counts the view's passes."""
    con = duckdb.connect(str(path))
    try:
        con.create_function("voronka_seen", lambda _: True, ["VARCHAR"], "BOOLEAN")
        con.execute("create schema raw")
        con.execute("create schema staging")
        con.execute(
            "create table raw.c as select 'c' || i as client_id, phone,"
            " timestamp '2026-11-03 09:00:00' as updated_at"
            " from (select unnest(?) as phone, generate_subscripts(?, 1) as i)",
            [phones, phones],
        )
        con.execute(
            "create view staging.stg_inbox__clients as"
            " select * from raw.c where voronka_seen(client_id)"
        )
    finally:
        con.close()
    return path


def counted(path: Path, suite: str, **kwargs) -> tuple[SuiteResult, int]:
    """A validation (as `checked`, or without the kept results with `results=None`) and the
    number of rows the view computed for it."""
    seen = []

    def voronka_seen(client_id: str) -> bool:
        seen.append(client_id)
        return True

    results = kwargs.pop("results", reuse.results_folder(path))
    with read_only_warehouse(path) as con:
        con.raw.create_function("voronka_seen", voronka_seen, ["VARCHAR"], "BOOLEAN")
        result = validate_suite(con, suite, as_of=AS_OF, results=results, **kwargs)
    return result, len(seen)


def test_a_view_and_a_query_are_computed_once_for_the_fingerprint_and_the_validation(
    tmp_path: Path,
):
    """D390: the staging suite of clients reads its view twice (the table's batch and the
    freshness query); each is computed once, hashed and validated from the same rows, with the
    verdict of a validation that reads them as before (no kept results: no fingerprint)."""
    path = staging_clients_view(tmp_path / "w.duckdb", ["+7 1", "+7 2", "+7 2"])
    plain, plain_rows = counted(path, "staging.stg_inbox__clients", results=None)
    assert plain.fingerprint is None and plain_rows == 2 * 3
    assert failures(plain) == [("expect_column_values_to_be_unique", "phone", "warn")]

    first, rows = counted(path, "staging.stg_inbox__clients")
    assert first.fingerprint and not first.reused
    assert rows == 2 * 3  # 4 * 3 when the fingerprint computed the view and the query again
    same_outcome(first, plain)
    keep(path, first)

    again, rows = counted(path, "staging.stg_inbox__clients")
    assert again.reused and rows == 2 * 3
    same_outcome(again, plain)

    # more rows than a chunk: read in chunks as before (uniqueness per chunk), no fingerprint
    chunked, _ = counted(path, "staging.stg_inbox__clients", chunk_rows=2)
    assert chunked.fingerprint is None and not chunked.reused
    assert (chunked.rows_validated, chunked.chunks) == (3, 2)

    fixed = staging_clients_view(tmp_path / "fixed.duckdb", ["+7 1", "+7 2", "+7 3"])
    keep(fixed, first)  # a kept result of other rows is not given again
    result, _ = counted(fixed, "staging.stg_inbox__clients")
    assert not result.reused and result.success and failures(result) == []


def clients_kept_in_union(path: Path, phones: list[str], *, view: str = "stg_inbox__clients"):
    """raw.c (loaded at one time) and the view staging.stg_inbox__clients over it, which calls
    `voronka_seen` on every row it computes (`counted` counts them); the union
    intermediate.int_clients__unioned holding the view's rows as source_system 'inbox' (and an
    amoCRM client with a phone of theirs, not the view's); and the state kept beside it as
    `keep_staging_seen` keeps it after a build (macros/unioned_incremental.sql)."""
    con = duckdb.connect(str(path))
    try:
        con.create_function("voronka_seen", lambda _: True, ["VARCHAR"], "BOOLEAN")
        for schema in ("raw", "staging", "intermediate"):
            con.execute(f"create schema {schema}")
        con.execute(
            "create table raw.c as select 'c' || i as client_id, phone,"
            " timestamp '2026-11-03 09:00:00' as updated_at,"
            " timestamp '2026-11-03 10:00:00' as _loaded_at"
            " from (select unnest(?) as phone, generate_subscripts(?, 1) as i)",
            [phones, phones],
        )
        con.execute(
            "create table raw._removals (source_table varchar, source_file varchar,"
            " rows_removed bigint, removed_at timestamp, batch_id varchar)"
        )
        con.execute(
            "create view staging.stg_inbox__clients as select client_id, phone, updated_at"
            " from raw.c where voronka_seen(client_id)"
        )
        con.execute(
            "create table intermediate.int_clients__unioned as"
            " select 'inbox' as source_system, * from staging.stg_inbox__clients"
            " union all select 'amocrm', 'amocrm:1', '+7 1', timestamp '2026-11-03 10:00:00'"
        )
        con.execute(
            "create table intermediate.int_clients__unioned__staging_seen as select"
            f" 'staging' as staging_schema, '{view}' as staging_table,"
            " (select sql from duckdb_views() where schema_name = 'staging'"
            f" and view_name = '{view}') as staging_sql,"
            " 'inbox' as source_system, 'raw' as raw_schema, 'c' as raw_table,"
            " (select count(*) from raw.c) as raw_rows,"
            " (select max(_loaded_at) from raw.c) as raw_loaded_until,"
            " (select count(*) from raw._removals) as removals_logged"
        )
    finally:
        con.close()
    return path


def test_a_staging_suite_reads_the_view_rows_a_union_holds_while_it_holds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """D408: while the union's kept state is the view's (its SQL) and the raw table's (rows,
    newest load, removals logged), the staging suite of clients reads the view's rows from the
    union, computing the view not once, with the verdict of a validation of the view; a load, a
    row planted behind the loader, a removal since, another SQL of the view, another type in the
    union or a state kept for another view or none: the view is read."""
    phones = ["+7 1", "+7 2", "+7 2"]
    path = clients_kept_in_union(tmp_path / "kept.duckdb", phones)
    view_only = tmp_path / "view.duckdb"
    clients_kept_in_union(view_only, phones)
    with duckdb.connect(str(view_only)) as con:
        con.execute("drop table intermediate.int_clients__unioned__staging_seen")
    plain, rows = counted(view_only, SUITE_CLIENTS, results=None)
    assert rows == 2 * 3 and failures(plain) == [
        ("expect_column_values_to_be_unique", "phone", "warn")
    ]
    hashed = []  # the batches as the fingerprint gets them (D390)

    def fingerprint(con, suite_file, batches, **kwargs):
        hashed.extend(batches)
        return real_fingerprint(con, suite_file, batches, **kwargs)

    real_fingerprint = reuse.fingerprint
    monkeypatch.setattr(reuse, "fingerprint", fingerprint)
    for results in (None, reuse.results_folder(path)):
        result, rows = counted(path, SUITE_CLIENTS, results=results)
        assert rows == 0 and "intermediate.int_clients__unioned" in result.note
        same_outcome(result, plain)
    # the kept rows are a table's: hashed where they lie, not read into Arrow ahead as a view's
    # rows are; the freshness query (a query-defined batch) is read ahead
    assert {batch.name: batch.data is None for batch in hashed} == {None: True, "freshness": False}

    def changed(name: str, *sql: str) -> int:
        path = clients_kept_in_union(tmp_path / f"{name}.duckdb", phones)
        con = duckdb.connect(str(path))
        try:
            con.create_function("voronka_seen", lambda _: True, ["VARCHAR"], "BOOLEAN")
            for statement in sql:
                con.execute(statement)
        finally:
            con.close()
        result, rows = counted(path, SUITE_CLIENTS, results=None)
        assert "int_clients__unioned" not in (result.note or "")
        return rows

    loaded = "insert into raw.c values ('c9', '+7 9', null, timestamp '2026-11-04 10:00:00')"
    assert changed("loaded", loaded) == 2 * 4
    planted = "insert into raw.c values ('c9', '+7 9', null, timestamp '2026-11-01 10:00:00')"
    assert changed("planted", planted) == 2 * 4
    removed = (
        "delete from raw.c where client_id = 'c3'",
        "insert into raw._removals values ('clients', 'f.csv', 1, now(), 'b1')",
    )
    assert changed("removed", *removed) == 2 * 2
    # a removal logged alone (raw's rows as they were): the log is part of the kept state
    assert changed("removal_logged", removed[1]) == 2 * 3
    other_sql = (
        "create or replace view staging.stg_inbox__clients as select client_id, phone,"
        " updated_at from raw.c where voronka_seen(client_id) and true"
    )
    assert changed("other_sql", other_sql) == 2 * 3
    other_type = (
        "alter table intermediate.int_clients__unioned alter phone type varchar[] using [phone]"
    )
    assert changed("other_type", other_type) == 2 * 3
    other_view = (
        "update intermediate.int_clients__unioned__staging_seen"
        " set staging_table = 'stg_inbox__deals'"
    )
    assert changed("other_view", other_view) == 2 * 3
    assert changed("no_state", "drop table intermediate.int_clients__unioned__staging_seen") == 6


SUITE_CLIENTS = "staging.stg_inbox__clients"
