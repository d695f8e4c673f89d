"""Export a schema of the warehouse (finance, marts) as CSV, Parquet or one xlsx workbook.

CSV is what Excel in a Russian locale opens as it is: `;`-separated, UTF-8 with a BOM, and
(optionally) a decimal comma, so numbers stay numbers. CSV and Parquet are written by DuckDB's
COPY; xlsx (one sheet per table, typed cells) by XlsxWriter, for the small tables finance reads.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger("voronka.export")

FORMATS = ("csv", "parquet", "xlsx")
BOM = "\ufeff".encode()
XLSX_MAX_ROWS = 1_048_575  # Excel's limit, less the header row

_NUMERIC_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL",
}  # fmt: skip
_NUMBER_FORMATS = {"DATE": "yyyy-mm-dd", "TIMESTAMP": "yyyy-mm-dd hh:mm:ss"}


@dataclass(frozen=True)
class ExportedTable:
    """One table written."""

    table: str
    rows: int
    path: Path


class ExportError(Exception):
    """An export that cannot be done (unknown schema, table too big for a sheet, ...)."""


def schema_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables and views of a schema, internal `_` ones aside, by name."""
    rows = con.execute(
        """
        select table_name from information_schema.tables
        where table_catalog = current_database() and table_schema = ?
            and table_name not like '\\_%' escape '\\'
        order by table_name
        """,
        [schema],
    ).fetchall()
    return [row[0] for row in rows]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        """
        select column_name, data_type from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        order by ordinal_position
        """,
        [schema, table],
    ).fetchall()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_fractional(data_type: str) -> bool:
    upper = data_type.upper()
    return upper.startswith(("DECIMAL", "NUMERIC")) or upper in ("DOUBLE", "FLOAT", "REAL")


def _csv_select(columns: list[tuple[str, str]], relation: str, decimal_comma: bool) -> str:
    """SELECT of a table for CSV: timestamps without a zone suffix, optional decimal comma."""
    expressions = []
    for name, data_type in columns:
        column = _quote(name)
        if decimal_comma and _is_fractional(data_type):
            column = f"replace(cast({column} as varchar), '.', ',') as {_quote(name)}"
        expressions.append(column)
    return f"select {', '.join(expressions)} from {relation}"


def export_schema(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    fmt: str,
    out: Path,
    decimal_comma: bool = False,
) -> list[ExportedTable]:
    """Write every table of `schema` into `out` (created if missing).

    csv and parquet: one file per table, `<schema>.<table>.<ext>`; xlsx: one workbook
    `<schema>.xlsx` with a sheet per table.

    Raises:
        ExportError: unknown format, a schema with no table, or a table too big for a sheet.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    tables = schema_tables(con, schema)
    if not tables:
        raise ExportError(f"schema {schema!r} has no tables in this warehouse: run the pipeline")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        return _export_xlsx(con, schema, tables, out / f"{schema}.xlsx")
    written = []
    for table in tables:
        relation = f"{_quote(schema)}.{_quote(table)}"
        path = out / f"{schema}.{table}.{fmt}"
        rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
        if fmt == "parquet":
            con.execute(f"copy (select * from {relation}) to '{_sql_path(path)}' (format parquet)")
        else:
            select = _csv_select(_columns(con, schema, table), relation, decimal_comma)
            _copy_csv_with_bom(con, select, path)
        written.append(ExportedTable(table, int(rows), path))
        log.info("exported %s.%s: %d rows -> %s", schema, table, rows, path)
    return written


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _copy_csv_with_bom(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> None:
    """DuckDB writes the CSV; the BOM goes in front by a streamed file copy (no row in Python)."""
    body = path.with_name(path.name + ".part")
    con.execute(
        f"copy ({select}) to '{_sql_path(body)}' "
        "(format csv, delimiter ';', header true, quote '\"', "
        "timestampformat '%Y-%m-%d %H:%M:%S', dateformat '%Y-%m-%d')"
    )
    with open(path, "wb") as target, open(body, "rb") as source:
        target.write(BOM)
        shutil.copyfileobj(source, target, 1 << 20)
    os.remove(body)


def _export_xlsx(
    con: duckdb.DuckDBPyConnection, schema: str, tables: list[str], path: Path
) -> list[ExportedTable]:
    """One sheet per table, by XlsxWriter, row by row in constant memory.

    Cells keep their types (numbers, dates) with a number format per column; text is never read
    as a formula or a link. XlsxWriter writes the 80 k finance rows of the large demo in 8-13 s,
    openpyxl's write-only cells took 30 s (D67).
    """
    import xlsxwriter

    for table in tables:  # refuse before writing anything
        rows = con.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchone()[0]
        if rows > XLSX_MAX_ROWS:
            raise ExportError(
                f"{schema}.{table} has {rows} rows, more than an Excel sheet holds: "
                "export it as csv or parquet"
            )
    partial = path.with_name(path.name + ".part")
    workbook = xlsxwriter.Workbook(
        str(partial),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "remove_timezone": True,
        },
    )
    bold = workbook.add_format({"bold": True})
    cell_formats: dict[str, Any] = {}
    written = []
    try:
        for table in tables:
            relation = f"{_quote(schema)}.{_quote(table)}"
            columns = _columns(con, schema, table)
            sheet = workbook.add_worksheet(table[:31])
            sheet.write_row(0, 0, [name for name, _ in columns], bold)
            writers = []  # per column: XlsxWriter's method for its type, and its format
            for _, data_type in columns:
                number_format = _number_format(data_type)
                if number_format and number_format not in cell_formats:
                    cell_formats[number_format] = workbook.add_format({"num_format": number_format})
                cell_format = cell_formats.get(number_format) if number_format else None
                writers.append((_xlsx_writer(sheet, data_type), cell_format))
            result = con.execute(f"select * from {relation}")
            row = 0
            while batch := result.fetchmany(10_000):
                for record in batch:
                    row += 1
                    for column, (value, (write, cell_format)) in enumerate(
                        zip(record, writers, strict=True)
                    ):
                        if value is not None:
                            write(row, column, value, cell_format)
            written.append(ExportedTable(table, row, path))
        workbook.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    log.info("exported %d tables of %s -> %s", len(tables), schema, path)
    return written


def _xlsx_writer(sheet: Any, data_type: str) -> Any:
    """The XlsxWriter method for a DuckDB type: numbers and dates typed, anything else as text."""
    upper = data_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC")) or upper.split("(")[0] in _NUMERIC_TYPES:
        return lambda row, column, value, fmt: sheet.write_number(row, column, float(value), fmt)
    if upper.startswith(("DATE", "TIMESTAMP")):
        return sheet.write_datetime
    if upper == "BOOLEAN":
        return sheet.write_boolean
    return lambda row, column, value, fmt: sheet.write_string(row, column, str(value), fmt)


def _number_format(data_type: str) -> str | None:
    upper = data_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC")):
        scale = upper.rstrip(")").split(",")[-1].strip() if "," in upper else "0"
        return "0" if scale == "0" else "0." + "0" * int(scale)
    return _NUMBER_FORMATS.get(upper.split("(")[0].replace(" WITH TIME ZONE", ""))
