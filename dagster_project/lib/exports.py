"""Export a schema of the warehouse (finance, marts) as CSV, Parquet or one xlsx workbook.

CSV is what Excel in a Russian locale opens as it is: `;`-separated, UTF-8 with a BOM, and
(optionally) a decimal comma, so numbers stay numbers. CSV and Parquet are written by DuckDB's
COPY; xlsx (one sheet per table, typed cells) by openpyxl, for the small tables finance reads.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger("voronka.export")

FORMATS = ("csv", "parquet", "xlsx")
BOM = "\ufeff".encode()
XLSX_MAX_ROWS = 1_048_575  # Excel's limit, less the header row

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
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    written = []
    for table in tables:
        relation = f"{_quote(schema)}.{_quote(table)}"
        rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
        if rows > XLSX_MAX_ROWS:
            raise ExportError(
                f"{schema}.{table} has {rows} rows, more than an Excel sheet holds: "
                "export it as csv or parquet"
            )
        columns = _columns(con, schema, table)
        sheet = workbook.create_sheet(title=table[:31])
        header = []
        for name, _ in columns:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = Font(bold=True)
            header.append(cell)
        sheet.append(header)
        formats = [_number_format(data_type) for _, data_type in columns]
        result = con.execute(f"select * from {relation}")
        while batch := result.fetchmany(10_000):
            for record in batch:
                cells = []
                for value, number_format in zip(record, formats, strict=True):
                    cell = WriteOnlyCell(sheet, value=value)
                    if number_format and value is not None:
                        cell.number_format = number_format
                    cells.append(cell)
                sheet.append(cells)
        written.append(ExportedTable(table, int(rows), path))
    workbook.save(path)
    log.info("exported %d tables of %s -> %s", len(tables), schema, path)
    return written


def _number_format(data_type: str) -> str | None:
    upper = data_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC")):
        scale = upper.rstrip(")").split(",")[-1].strip() if "," in upper else "0"
        return "0" if scale == "0" else "0." + "0" * int(scale)
    return _NUMBER_FORMATS.get(upper.split("(")[0].replace(" WITH TIME ZONE", ""))
