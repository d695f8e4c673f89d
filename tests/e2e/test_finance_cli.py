"""`voronka close-period`, `reopen-period` and `export` on a small hand-made warehouse (no dbt):
errors and exit codes, and what the exported files look like to Excel."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest

from dagster_project.cli import main
from tests.conftest import query

MARCH = date(2026, 3, 1)


@pytest.fixture
def built(tmp_path):
    """A warehouse as the pipeline leaves it, reduced to what finance reads (as-of in March)."""
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema intermediate; create schema finance; create schema marts")
    con.execute(
        "create table intermediate.int_as_of as select timestamp '2026-03-10 09:00:00' as as_of_at"
    )
    con.execute(
        """
        create table intermediate.int_bonus_lines_computed as
        select date '2026-03-01' as month, 'm1' as manager_id, 'deals_won' as kpi_code,
            'sales' as role, 160.0::decimal(24,6) as fact, 100::decimal(18,4) as base,
            150::decimal(18,4) as norm, 120::decimal(18,6) as kpi_pct,
            110::decimal(18,4) as band_lower_pct, null::decimal(18,4) as band_upper_pct,
            1.1::decimal(18,4) as premium_coefficient, 0.4::decimal(18,4) as weight,
            20000::decimal(18,2) as pool_amount, 8800::decimal(18,2) as bonus_amount,
            null::varchar as reason, 'Анна Петрова' as manager_name, 'Москва-1' as team
        """
    )
    con.execute(
        """
        create table finance.bonus_lines as
        select * exclude (manager_name, team), 'open' as period_status
        from intermediate.int_bonus_lines_computed
        """
    )
    con.execute(
        """
        create table finance.bonus_statements as
        select month, manager_id, manager_name, team, 1 as lines, bonus_amount,
            'open' as period_status, null::timestamp as closed_at
        from intermediate.int_bonus_lines_computed
        """
    )
    con.execute(
        "create table marts.kpi_company_monthly as select date '2026-03-01' as month, 1.5 as x"
    )
    con.close()
    return path


def test_close_and_reopen_errors_exit_2_with_a_reason(built, tmp_path, capsys):
    wh = ["--warehouse", str(built)]
    assert main(["close-period", "2026-3", *wh]) == 2
    assert "expected YYYY-MM" in capsys.readouterr().err
    assert main(["close-period", "2026-03", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "No warehouse" in capsys.readouterr().err
    assert main(["close-period", "2026-04", *wh]) == 2
    assert "after the warehouse's as-of month 2026-03" in capsys.readouterr().err
    assert main(["close-period", "2026-02", *wh]) == 2
    assert "2026-02 has no bonus lines" in capsys.readouterr().err
    assert main(["reopen-period", "2026-03", "--reason", "typo", *wh]) == 2
    assert "2026-03 is not closed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["reopen-period", "2026-03", *wh])  # --reason is required
    assert exit_info.value.code == 2

    assert main(["close-period", "2026-03", "--by", "Ольга", *wh]) == 0
    assert "Closed 2026-03: 1 statements, 1 lines, 8 800.00 RUB" in capsys.readouterr().out
    assert main(["close-period", "2026-03", *wh]) == 2
    assert "already closed (by Ольга" in capsys.readouterr().err
    assert query(
        built, "select period_status, closed_at is not null from finance.bonus_statements"
    ) == [("closed", True)]
    assert main(["reopen-period", "2026-03", "--reason", "  ", *wh]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert main(["reopen-period", "2026-03", "--reason", "pool fixed", "--by", "Пётр", *wh]) == 0
    log = query(
        built,
        "select month, action, acted_by, reason from finance_ledger.period_log order by event_id",
    )
    assert log == [(MARCH, "close", "Ольга", None), (MARCH, "reopen", "Пётр", "pool fixed")]
    assert query(built, "select period_status, closed_at from finance.bonus_statements") == [
        ("open", None)
    ]


def test_close_period_without_finance_tables(tmp_path, capsys):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    assert main(["close-period", "2026-03", "--warehouse", str(path)]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def test_export_csv_for_excel_in_a_russian_locale(built, tmp_path):
    out = tmp_path / "out"
    args = ["export", "--schema", "finance", "--format", "csv", "--out", str(out)]
    assert main([*args, "--decimal-comma", "--warehouse", str(built)]) == 0
    data = (out / "finance.bonus_statements.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert (
        lines[0] == "month;manager_id;manager_name;team;lines;bonus_amount;period_status;closed_at"
    )
    assert lines[1] == "2026-03-01;m1;Анна Петрова;Москва-1;1;8800,00;open;"
    assert main([*args, "--warehouse", str(built)]) == 0  # decimal point by default
    assert "8800.00" in (out / "finance.bonus_statements.csv").read_text(encoding="utf-8-sig")


def test_export_parquet_and_xlsx_keep_types(built, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "out"
    for fmt in ("parquet", "xlsx"):
        code = main(
            [
                "export",
                "--schema",
                "finance",
                "--format",
                fmt,
                "--out",
                str(out),
                "--warehouse",
                str(built),
            ]
        )
        assert code == 0
    rows = duckdb.sql(
        f"select bonus_amount, month from '{out / 'finance.bonus_lines.parquet'}'"
    ).fetchall()
    assert rows == [(Decimal("8800.00"), MARCH)]
    workbook = load_workbook(out / "finance.xlsx")
    assert workbook.sheetnames == ["bonus_statements", "bonus_lines"]  # statements first
    sheet = workbook["bonus_statements"]
    header = [cell.value for cell in sheet[1]]  # VORONKA_LANGUAGE's default: Russian
    values = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert values["Премия, руб."] == 8800 and isinstance(values["Премия, руб."], int | float)
    assert values["Месяц"] == datetime(2026, 3, 1)
    assert (
        main(
            [
                "export",
                "--schema",
                "marts",
                "--format",
                "csv",
                "--out",
                str(out),
                "--warehouse",
                str(built),
            ]
        )
        == 0
    )
    assert (out / "marts.kpi_company_monthly.csv").exists()


def test_export_errors(tmp_path, capsys):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    args = ["export", "--schema", "finance", "--format", "csv", "--out", str(tmp_path / "o")]
    assert main([*args, "--warehouse", str(path)]) == 2
    assert "has no tables" in capsys.readouterr().err
    assert main([*args, "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--schema", "finance", "--format", "json", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
