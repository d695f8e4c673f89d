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


def test_managers_rank_by_the_bonus_scheme_not_by_raw_kpi_percent(tmp_path: Path):
    """A is far above plan on one KPI and below on the other (mean KPI % 195, coefficient
    1.0); B is a little above on both (mean 113.5, coefficient 1.1): the scheme pays B more, so B
    ranks first (D109)."""
    from dagster_project.lib.kpi_summary import Ranked, format_summary, kpi_summary

    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema intermediate; create schema finance")
    con.execute(
        "create table intermediate.int_as_of as select timestamp '2026-04-10 09:00' as as_of_at"
    )
    con.execute(
        """
        create table finance.bonus_lines as select * from (values
            ('a', 'revenue', 300.0, 0.5, 1.1), ('a', 'nps', 90.0, 0.5, 0.9),
            ('b', 'revenue', 115.0, 0.5, 1.1), ('b', 'nps', 112.0, 0.5, 1.1),
            ('c', 'revenue', -1520.0, 1.0, 0.0)
        ) t(manager_id, kpi_code, kpi_pct, weight, premium_coefficient)
        """
    )
    con.execute("alter table finance.bonus_lines add column month date default date '2026-03-01'")
    con.execute(
        """
        create table finance.bonus_statements as select date '2026-03-01' as month, * from (values
            ('a', 'Анна', 20000.00::decimal(18,2)), ('b', 'Борис', 22000.00::decimal(18,2)),
            ('c', null, 0.00::decimal(18,2))
        ) t(manager_id, manager_name, bonus_amount)
        """
    )
    con.close()

    summary = kpi_summary(warehouse, top_n=2)

    assert summary.top == [Ranked("Борис", 1.1, 22000.0), Ranked("Анна", 1.0, 20000.0)]
    assert summary.bottom == [Ranked("c", 0.0, 0.0), Ranked("Анна", 1.0, 20000.0)]
    lines = format_summary(summary)
    assert "    top:    Борис x1.10 (22 000.00), Анна x1.00 (20 000.00)" in lines


def test_the_summary_names_a_postgresql_warehouse_by_its_url_and_its_readers_roles():
    from dagster_project.lib.summary import _where

    lines = _where("postgresql://voronka@db.example:5433/sales?sslmode=require")
    assert (
        lines[0]
        == "Warehouse: postgresql://voronka@db.example:5433/sales?sslmode=require (PostgreSQL)"
    )
    assert "voronka_bi" in lines[1] and "voronka_finance" in lines[1]
    assert _where(Path("w.duckdb"))[0] == f"Warehouse: {Path('w.duckdb').resolve()}"
