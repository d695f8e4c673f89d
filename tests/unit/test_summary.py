"""The end-of-run summary counts tables from their data and never runs a view's query."""

from pathlib import Path

import duckdb

from dagster_project.lib.summary import summarize


def test_tables_are_counted_and_views_are_not_run(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw; create schema staging; create schema quarantine")
    con.execute("create table raw.calls as select range as call_id from range(3)")
    con.execute("create table raw._load_log as select 1 as internal")  # `_` tables are internal
    con.execute("create table quarantine.calls as select 'bad' as _reason")
    # running this view fails: the summary must not count it (a staging view at the large scale
    # deduplicates 36 M rows)
    con.execute("create view staging.stg_calls as select cast('not a number' as integer) as n")
    con.close()

    summary = summarize(warehouse)

    assert summary.rows_per_layer == {"raw": 3, "quarantine": 1}
    assert summary.tables_per_layer == {"raw": 1, "quarantine": 1}
    assert summary.views_per_layer == {"staging": 1}
    assert summary.quarantine == {"calls": 1}
