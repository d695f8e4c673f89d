"""The suite queries written in SQL both engines read (D188) give what DuckDB's own functions
gave: `date_diff` (boundaries crossed) and a file name's month by `try_cast(regexp_extract())`."""

from __future__ import annotations

import duckdb
import pytest

from dagster_project.lib.ge_runner.suites import get_suite_file

AS_OF = "2026-03-01 10:30:00"
TIMES = [
    "2026-03-01 10:00:00",
    "2026-03-01 09:59:59",
    "2026-02-28 23:00:00",
    "2025-12-31 23:59:59",
    "2024-02-29 00:00:01",
    "2026-03-01 11:00:00",  # after the as-of: negative
]
FILES = [
    "calls/2026-01.csv",
    "calls/calls_2026-02-15.csv",
    "calls/2025-13_2026-02.csv",  # the first YYYY-MM is no month: null, as try_cast gave
    "calls/undated.csv",
    "2026-02",
    "abcd-05",
    "x/0000-00-2026-01.csv",
]


def _run(con, suite: str, query: str, **params):
    sql = get_suite_file(suite).queries[query].sql
    return con.execute(sql, params).fetchall()


@pytest.mark.parametrize(
    ("suite", "part"),
    [
        ("core.fct_calls", "hour"),
        ("staging.stg_inbox__clients", "day"),
    ],
)
def test_freshness_counts_the_boundaries_date_diff_counted(suite, part):
    schema, table = suite.split(".")
    column = "started_at" if table == "fct_calls" else "updated_at"
    for time in TIMES:
        con = duckdb.connect()
        con.execute(f"create schema {schema}")
        con.execute(f"create table {suite} as select timestamp '{time}' as {column}")
        got = _run(con, suite, "freshness", as_of=AS_OF)[0][1]
        want = con.execute(
            f"select date_diff('{part}', timestamp '{time}', timestamp '{AS_OF}')"
        ).fetchone()[0]
        assert got == want, (suite, time)


def test_month_freshness_counts_the_months_date_diff_counted():
    for month in ["2026-03-01", "2026-02-01", "2025-12-01", "2024-03-01", "2026-04-01"]:
        con = duckdb.connect()
        con.execute("create schema staging")
        con.execute(
            f"create table staging.stg_inbox__sales_plans as select date '{month}' as month"
        )
        got = _run(con, "staging.stg_inbox__sales_plans", "freshness", as_of=AS_OF)[0][1]
        want = con.execute(
            f"select date_diff('month', date '{month}', "
            f"cast(date_trunc('month', timestamp '{AS_OF}') as date))"
        ).fetchone()[0]
        assert got == want, month


def test_a_file_names_month_is_what_try_cast_of_regexp_extract_gave():
    con = duckdb.connect()
    con.execute("create schema core")
    con.execute(
        "create table core.fct_calls (call_id varchar, started_at timestamp, "
        "_source_file varchar, _last_loaded_at timestamp)"
    )
    for n, name in enumerate(FILES):
        con.execute(
            "insert into core.fct_calls values (?, timestamp '2026-01-20 12:00:00', ?, "
            "timestamp '2026-03-01 00:00:00')",
            [f"c{n}", name],
        )
    got = dict(
        (row[0], row[3])
        for row in _run(con, "core.fct_calls", "late_arrivals", batch_since="2026-01-01")
    )
    want = dict(
        con.execute(
            "select call_id, date_diff('day', started_at, try_cast(regexp_extract(_source_file, "
            "'(\\d{4}-\\d{2})', 1) || '-01' as timestamp)) from core.fct_calls"
        ).fetchall()
    )
    assert got == want
    assert got["c0"] == -19 and got["c2"] is None and got["c3"] is None
