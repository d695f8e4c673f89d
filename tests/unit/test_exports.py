"""The xlsx export: typed cells, text never a formula, nothing written for a refused schema."""

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from dagster_project.lib import exports


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema finance")
    con.execute(
        """
        create table finance.lines as select * from (values
            (date '2026-03-01', 'm1', 8800.00::decimal(18,2), 3::bigint, true,
             timestamp '2026-04-01 09:30:00', '=1+1'),
            (date '2026-04-01', null, null, null, false, null, 'http://x.example')
        ) t(month, manager_id, bonus_amount, n, is_final, closed_at, note)
        """
    )
    return con


def test_xlsx_cells_keep_their_types_and_text_stays_text(con, tmp_path: Path):
    [table] = exports.export_schema(con, "finance", "xlsx", tmp_path)
    assert (table.table, table.rows) == ("lines", 2)
    assert not list(tmp_path.glob("*.part"))
    sheet = load_workbook(tmp_path / "finance.xlsx")["lines"]
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, sheet[2], strict=True))
    second = dict(zip(header, sheet[3], strict=True))
    assert first["month"].value == datetime(2026, 3, 1)
    assert first["month"].number_format == "yyyy-mm-dd"
    assert first["bonus_amount"].value == 8800 and first["bonus_amount"].number_format == "0.00"
    assert first["n"].value == 3
    assert first["is_final"].value is True
    assert first["closed_at"].value == datetime(2026, 4, 1, 9, 30)
    assert first["note"].value == "=1+1" and first["note"].data_type == "s"  # not a formula
    assert second["note"].value == "http://x.example" and second["note"].hyperlink is None
    assert second["manager_id"].value is None and second["bonus_amount"].value is None
    assert date(2026, 4, 1) == second["month"].value.date()


def test_a_table_too_big_for_a_sheet_writes_nothing(con, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 1)
    with pytest.raises(exports.ExportError, match="more than an Excel sheet holds"):
        exports.export_schema(con, "finance", "xlsx", tmp_path)
    assert list(tmp_path.iterdir()) == []
