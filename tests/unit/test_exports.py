"""The xlsx export: typed cells, text never a formula, nothing written for a refused schema."""

import zipfile
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
    assert first["Month"].value == datetime(2026, 3, 1)
    assert first["Month"].number_format == "yyyy-mm"
    assert first["Bonus, RUB"].value == 8800
    assert first["Bonus, RUB"].number_format == "#,##0.00"
    assert first["N"].value == 3
    assert first["Is final"].value is True
    assert first["Closed at"].value == datetime(2026, 4, 1, 9, 30)
    assert first["Note"].value == "=1+1" and first["Note"].data_type == "s"  # not a formula
    assert second["Note"].value == "http://x.example" and second["Note"].hyperlink is None
    assert second["Manager id"].value is None and second["Bonus, RUB"].value is None
    assert date(2026, 4, 1) == second["Month"].value.date()


def test_a_table_too_big_for_a_sheet_writes_nothing(con, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 1)
    with pytest.raises(exports.ExportError, match="more than an Excel sheet holds"):
        exports.export_schema(con, "finance", "xlsx", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def finance() -> duckdb.DuckDBPyConnection:
    """Statements and lines as finance has them: lines without the manager's name, unsorted."""
    con = duckdb.connect()
    con.execute("create schema finance")
    con.execute(
        """
        create table finance.bonus_statements as select * from (values
            (date '2026-04-01', 'm2', 'Борисова Анна', 1200.50::decimal(18,2)),
            (date '2026-03-01', 'm2', 'Борисова А.', 10.00::decimal(18,2)),
            (date '2026-03-01', 'm1', 'Антонов Пётр', 123456.78::decimal(18,2))
        ) t(month, manager_id, manager_name, bonus_amount)
        """
    )
    con.execute(
        """
        create table finance.bonus_lines as select * from (values
            (date '2026-04-01', 'm2', 'revenue', 120.123456789::double, 600.25::decimal(18,2)),
            (date '2026-03-01', 'm2', 'nps', null, 10.00::decimal(18,2)),
            (date '2026-03-01', 'm1', 'revenue', 99.5::double, 123456.78::decimal(18,2))
        ) t(month, manager_id, kpi_code, kpi_pct, bonus_amount)
        """
    )
    con.execute("create table finance.bonus_adjustments (month_affected date, delta decimal(18,2))")
    return con


def test_the_workbook_opens_on_sorted_named_statements_a_controller_can_read(finance, tmp_path):
    exports.export_schema(finance, "finance", "xlsx", tmp_path, language="ru")
    book = load_workbook(tmp_path / "finance.xlsx")
    assert book.sheetnames == ["bonus_statements", "bonus_lines", "bonus_adjustments"]
    lines = book["bonus_lines"]
    header = [c.value for c in lines[1]]
    assert header == ["Месяц", "ID менеджера", "Менеджер", "KPI", "Выполнение, %", "Премия, руб."]
    rows = [[c.value for c in row] for row in lines.iter_rows(min_row=2)]
    # by month, then manager name; the name of every line is the manager's latest
    assert [(r[0].date(), r[2], r[3]) for r in rows] == [
        (date(2026, 3, 1), "Антонов Пётр", "revenue"),
        (date(2026, 3, 1), "Борисова Анна", "nps"),
        (date(2026, 4, 1), "Борисова Анна", "revenue"),
    ]
    assert lines.freeze_panes == "A2"
    assert lines.auto_filter.ref == "A1:F4"
    widths = {key: dim.width for key, dim in lines.column_dimensions.items()}
    assert all(widths[column] > 10 for column in "ABCDEF"), widths  # not the default 8.43
    assert lines["E2"].number_format == "#,##0.00" and lines["F2"].number_format == "#,##0.00"
    english = exports.export_schema(finance, "finance", "xlsx", tmp_path / "en", language="en")
    assert english
    header = [c.value for c in load_workbook(tmp_path / "en" / "finance.xlsx")["bonus_lines"][1]]
    assert header == ["Month", "Manager id", "Manager", "Kpi code", "Kpi pct", "Bonus, RUB"]


def test_csv_rows_are_sorted_with_fixed_decimals(finance, tmp_path):
    exports.export_schema(finance, "finance", "csv", tmp_path, decimal_comma=True)
    text = (tmp_path / "finance.bonus_lines.csv").read_text("utf-8-sig").splitlines()
    assert text == [
        "month;manager_id;manager_name;kpi_code;kpi_pct;bonus_amount",
        "2026-03-01;m1;Антонов Пётр;revenue;99,5000;123456,78",
        "2026-03-01;m2;Борисова Анна;nps;;10,00",
        "2026-04-01;m2;Борисова Анна;revenue;120,1235;600,25",
    ]


class _Hashes:
    """A connection that counts the tables it hashes (D392's digest: `sum(hash(t))`)."""

    def __init__(self, con) -> None:
        self.con, self.hashed = con, []

    def execute(self, sql: str, *args):
        if "sum(hash(t))" in sql:
            self.hashed.append(sql)
        return self.con.execute(sql, *args)


def _export_finance(con, out: Path, keep_unchanged: bool = True) -> dict[str, bool]:
    """The run's finance exports (`run_finance_exports`, defs/reports.py), or with
    `keep_unchanged` off the csv and xlsx exports as `voronka export` writes them; file ->
    unchanged. Each table is hashed once for both (none without `keep_unchanged`)."""
    counted = _Hashes(con)
    if keep_unchanged:
        written = [*sum(exports.run_finance_exports(counted, out, "en"), [])]
    else:
        written = [
            *exports.export_schema(counted, "finance", "csv", out, decimal_comma=True),
            *exports.export_schema(counted, "finance", "xlsx", out),
        ]
    tables = exports.schema_tables(con, "finance")
    assert (
        sorted(counted.hashed)
        == sorted(
            f'select count(*), sum(hash(t)) from "finance".{exports._quote(t)} as t' for t in tables
        )
        if keep_unchanged
        else not counted.hashed
    )
    return {t.path.name: t.unchanged for t in written}


def _files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("finance.*"))}


def test_an_export_whose_tables_are_unchanged_is_not_written_again(finance, tmp_path):
    """D392: the run's exports keep a file whose tables, options and code are those it was
    written from (the same bytes, not written again); a changed row rewrites the files that read
    it (the lines' csv, the workbook) and only them; a file changed by hand is written again."""
    out = tmp_path / "exports"
    assert not any(_export_finance(finance, out).values())
    first = _files(out)
    assert set(first) == {
        "finance.bonus_adjustments.csv", "finance.bonus_lines.csv",
        "finance.bonus_statements.csv", "finance.xlsx",
    }  # fmt: skip

    assert all(_export_finance(finance, out).values())
    assert _files(out) == first  # bytes and modification times: not written

    fresh = tmp_path / "fresh"  # what a full write of the same rows gives: the same bytes
    _export_finance(finance, fresh, keep_unchanged=False)
    assert {k: v[0] for k, v in _files(fresh).items() if k.endswith(".csv")} == {
        k: v[0] for k, v in first.items() if k.endswith(".csv")
    }

    finance.execute("update finance.bonus_lines set kpi_pct = 99.6 where manager_id = 'm1'")
    assert _export_finance(finance, out) == {
        "finance.bonus_adjustments.csv": True,
        "finance.bonus_lines.csv": False,
        "finance.bonus_statements.csv": True,
        "finance.xlsx": False,
    }
    after = _files(out)
    assert after["finance.bonus_statements.csv"] == first["finance.bonus_statements.csv"]
    assert after["finance.bonus_lines.csv"][0] != first["finance.bonus_lines.csv"][0]

    # a manager's name (from the statements) is on the lines: both are written again
    finance.execute("update finance.bonus_statements set manager_name = 'Антонов П.'")
    changed = _export_finance(finance, out)
    assert not changed["finance.bonus_lines.csv"] and not changed["finance.bonus_statements.csv"]
    assert changed["finance.bonus_adjustments.csv"]

    (out / "finance.bonus_adjustments.csv").write_text("edited", encoding="utf-8")
    (out / "finance.xlsx").unlink()
    again = _export_finance(finance, out)
    assert not again["finance.bonus_adjustments.csv"] and not again["finance.xlsx"]
    assert (out / "finance.bonus_adjustments.csv").read_bytes() == (
        fresh / "finance.bonus_adjustments.csv"
    ).read_bytes()

    # `voronka export` (keep_unchanged off) always writes
    assert not any(_export_finance(finance, out, keep_unchanged=False).values())


def _parts(path: Path) -> dict[str, bytes]:
    """A workbook's parts, less `docProps/core.xml`, which holds the time it was written."""
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist() if name != "docProps/core.xml"}


def test_the_rows_written_as_xml_are_those_of_xlsxwriters_cell_calls(tmp_path, monkeypatch):
    """D417: the data rows' XML written by whole batches is, byte for byte, what XlsxWriter's
    cell calls write, for every kind of cell and the text XlsxWriter escapes or keeps apart;
    the sheet's dimension follows the last row that holds a value."""
    con = duckdb.connect()
    con.execute("create schema finance")
    long_text = "я" * 20_000 + "\U0001f600" * 7_000  # past Excel's 32 767 UTF-16 units
    texts = [
        "plain", "a & b < c > d \"q\"", " leading", "trailing ", "tab\there", "line\nbreak",
        "\x01control\x1f", "_x0041_ kept", "non\ufffechar", "Фёдорова Лидия",
        "=1+1", "http://x.example", long_text, "",
    ]  # fmt: skip
    con.execute(
        "create table finance.mixed (month date, manager_id varchar, amount decimal(18, 2), "
        "big decimal(38, 4), fine decimal(24, 6), n bigint, share double, is_final boolean, "
        "closed_at timestamp, paid_at timestamptz, day date, tags varchar[], note varchar)"
    )
    for i, text in enumerate(texts):
        con.execute(
            "insert into finance.mixed values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                date(2026, 1 + i % 12, 1), f"m{i % 4}" if i % 5 else None,
                None if i % 3 == 0 else f"{(i - 7) * 1234.5:.2f}", "12345678901234567890.1234",
                f"{(i - 7) * 98765432109.8765432:.6f}", i * 10**12 if i % 2 else None,
                None if i % 4 == 1 else i / 7 - 1,
                None if i % 6 == 2 else bool(i % 2), datetime(2026, 4, 1, 9, i, 30),
                datetime(2026, 5, 2, 10, 0) if i % 2 else None, date(2025, 12, 31),
                ["x", "y&z"] if i % 2 else None, text,
            ],
        )  # fmt: skip
    # rows of nulls only (sorted first: before every row with a value), and a sheet of no row
    con.execute("insert into finance.mixed (note) values (null), (null)")
    con.execute("create table finance.empty (month date, note varchar)")
    used = []
    as_xml = exports._write_rows_as_xml
    monkeypatch.setattr(
        exports, "_write_rows_as_xml", lambda *args: used.append(1) or as_xml(*args)
    )
    exports.export_schema(con, "finance", "xlsx", tmp_path / "xml", language="ru")
    assert len(used) == 2  # both sheets written as XML
    monkeypatch.setattr(exports, "_rows_as_xml_apply", lambda sheet: False)
    exports.export_schema(con, "finance", "xlsx", tmp_path / "cells", language="ru")
    xml = _parts(tmp_path / "xml" / "finance.xlsx")
    cells = _parts(tmp_path / "cells" / "finance.xlsx")
    assert xml.keys() == cells.keys()
    for name in cells:
        assert xml[name] == cells[name], name
    book = load_workbook(tmp_path / "xml" / "finance.xlsx")
    assert book["mixed"].max_row == 1 + 2 + len(texts) and book["empty"].max_row == 1
    assert [c.value for c in book["mixed"][3]] == [None] * 13  # a row of nulls writes no cell
    notes = {row[-1].value for row in book["mixed"].iter_rows(min_row=4)}
    assert {"plain", 'a & b < c > d "q"', " leading", "trailing ", "Фёдорова Лидия"} <= notes


def test_a_text_that_looks_like_xlsxwriters_rich_string_is_written_as_text(tmp_path):
    """D417: XlsxWriter's constant-memory writer writes a text in `<r>...</r>` as XML unescaped;
    the rows written as XML escape it, so a hostile name leaves a workbook that opens and holds
    the name as it is."""
    hostile = ['<r></t></is></c></row><row r="9"/></r>', "<r><t>bold?</t></r>", "<r>"]
    con = duckdb.connect()
    con.execute("create schema finance")
    con.execute("create table finance.names (n bigint, manager_name varchar)")
    con.executemany("insert into finance.names values (?, ?)", list(enumerate(hostile)))
    exports.export_schema(con, "finance", "xlsx", tmp_path)
    sheet = load_workbook(tmp_path / "finance.xlsx")["names"]
    assert sorted(row[1].value for row in sheet.iter_rows(min_row=2)) == sorted(hostile)
