"""Export a schema of the warehouse (finance, marts) as CSV, Parquet or one xlsx workbook.

CSV is what Excel in a Russian locale opens as it is: `;`-separated, UTF-8 with a BOM, and
(optionally) a decimal comma, so numbers stay numbers. CSV and Parquet are written by DuckDB's
COPY; xlsx (one sheet per table, typed cells) by XlsxWriter, for the small tables finance reads.

What a controller opens (D106): rows sorted by month, then manager, then the rest of the key;
finance tables carry the manager's name on every line (from finance.bonus_statements); CSV
fractions have fixed decimals; the workbook has the statements first, a frozen header row with
filters, column widths from the data, number and date formats, and headers in the language
setting (lib/text.py).

Every export is written by DuckDB's SQL on every engine (D231): a PostgreSQL warehouse's tables
are first copied into a private DuckDB file (`Connection.in_duckdb`: COPY TO STDOUT, in one
snapshot, with the same column types), so the files are byte for byte those a DuckDB warehouse
with the same rows gives, and each formatting rule is written once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib import postgres as pg
from dagster_project.lib.sql import identifier as _quote

log = logging.getLogger("voronka.export")

FORMATS = ("csv", "parquet", "xlsx")
BOM = "\ufeff".encode()
XLSX_MAX_ROWS = 1_048_575  # Excel's limit, less the header row

_NUMERIC_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL",
}  # fmt: skip
_NUMBER_FORMATS = {"DATE": "yyyy-mm-dd", "TIMESTAMP": "yyyy-mm-dd hh:mm:ss"}
MONTH_COLUMNS = ("month", "month_affected", "cohort_month", "payable_month")
MONTH_FORMAT = "yyyy-mm"
CSV_DOUBLE_DECIMALS = 4  # DOUBLE columns (KPI %, facts) in CSV: fixed, not 15 significant digits
# sheets first in a workbook, by schema; the other tables follow by name
SHEET_ORDER = {"finance": ("bonus_statements", "bonus_lines", "bonus_adjustments")}
MAX_COLUMN_WIDTH = 60


@dataclass(frozen=True)
class ExportedTable:
    """One table written."""

    table: str
    rows: int
    path: Path
    unchanged: bool = False  # the file was left as it was: its inputs are unchanged (D392)


class ExportError(Exception):
    """An export that cannot be done (unknown schema, table too big for a sheet, ...)."""


def schema_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables and views of a schema, by name: internal `_` ones aside, and the tables dbt
    builds beside a published one and drops after the swap (`<name>__dbt_tmp`,
    `<name>__dbt_backup`), which a reader of a PostgreSQL warehouse sees during a run."""
    rows = con.execute(
        """
        select table_name from information_schema.tables
        where table_catalog = current_database() and table_schema = ?
            and table_name not like '\\_%' escape '\\'
            and table_name not like '%\\_\\_dbt\\_tmp' escape '\\'
            and table_name not like '%\\_\\_dbt\\_backup' escape '\\'
        order by table_name
        """,
        [schema],
    ).fetchall()
    return [row[0] for row in rows]


def _no_tables(con, schema: str) -> str:
    """Why `schema` shows no table: none built yet, or (PostgreSQL) tables this login's role
    may not read, which the catalogue lists to every role while `information_schema` hides them."""
    if getattr(con, "engine", "duckdb") == "postgres":
        hidden = con.execute(
            "select count(*) from pg_catalog.pg_class c "
            "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = ? and c.relkind in ('r', 'p', 'v', 'm')",
            [schema],
        ).fetchone()[0]
        if hidden:
            user = con.execute("select current_user").fetchone()[0]
            return f"schema {schema!r} has tables the role {user!r} may not read. {pg.READERS}"
    return f"schema {schema!r} has no tables in this warehouse: run the pipeline"


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        """
        select column_name, data_type from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        order by ordinal_position
        """,
        [schema, table],
    ).fetchall()


@dataclass(frozen=True)
class _Export:
    """How a table is exported: its columns (name, type, qualified expression), the FROM clause,
    the ORDER BY keys and the tables of its schema that clause reads (the table, and the one
    joined for the managers' names)."""

    columns: list[tuple[str, str, str]]
    source: str
    order: str
    reads: tuple[str, ...]

    def select(self, expressions: list[str] | None = None) -> str:
        chosen = expressions or [f"{expr} as {_quote(name)}" for name, _, expr in self.columns]
        return f"select {', '.join(chosen)} from {self.source} order by {self.order}"

    @property
    def names_and_types(self) -> list[tuple[str, str]]:
        return [(name, data_type) for name, data_type, _ in self.columns]


def _relation(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> _Export:
    """How to export a table: the manager's name added to finance tables that have a manager_id
    and no name, rows sorted by month, manager, then every other column (a stable order: the
    same data gives the same file)."""
    columns = [
        (name, data_type, f"exported.{_quote(name)}")
        for name, data_type in _columns(con, schema, table)
    ]
    names = [name for name, _, _ in columns]
    source = f"{_quote(schema)}.{_quote(table)} as exported"
    reads = (table,)
    if (
        schema == "finance"
        and "manager_id" in names
        and "manager_name" not in names
        and "bonus_statements" in schema_tables(con, schema)
    ):
        source += (
            " left join (select manager_id, arg_max(manager_name, month) as manager_name "
            f"from {_quote(schema)}.bonus_statements group by manager_id) as names "
            "on names.manager_id = exported.manager_id"
        )
        reads += ("bonus_statements",)
        at = names.index("manager_id") + 1
        columns.insert(at, ("manager_name", "VARCHAR", "names.manager_name"))
    expression = {name: expr for name, _, expr in columns}
    order = [n for n in names if n in MONTH_COLUMNS][:1]
    order += [n for n in ("manager_name", "manager_id") if n in expression]
    order += [n for n, _, _ in columns if n not in order]
    order_by = ", ".join(f"{expression[n]} nulls first" for n in order)
    return _Export(columns, source, order_by, reads)


def _is_fractional(data_type: str) -> bool:
    upper = data_type.upper()
    return upper.startswith(("DECIMAL", "NUMERIC")) or upper in ("DOUBLE", "FLOAT", "REAL")


def _csv_select(export: _Export, decimal_comma: bool) -> str:
    """SELECT of a table for CSV: timestamps without a zone suffix, fixed decimals (a decimal
    keeps its scale, a double gets `CSV_DOUBLE_DECIMALS`), optional decimal comma."""
    expressions = []
    for name, data_type, column in export.columns:
        upper = data_type.upper()
        if upper in ("DOUBLE", "FLOAT", "REAL"):
            column = f"printf('%.{CSV_DOUBLE_DECIMALS}f', {column})"
        elif _is_fractional(data_type):
            column = f"cast({column} as varchar)"
        if decimal_comma and _is_fractional(data_type):
            column = f"replace({column}, '.', ',')"
        expressions.append(f"{column} as {_quote(name)}")
    return export.select(expressions)


def export_schema(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    fmt: str,
    out: Path,
    decimal_comma: bool = False,
    language: str = "en",
    keep_unchanged: bool = False,
    digests: dict[str, list[Any]] | None = None,
) -> list[ExportedTable]:
    """Write every table of `schema` into `out` (created if missing).

    csv and parquet: one file per table, `<schema>.<table>.<ext>`; xlsx: one workbook
    `<schema>.xlsx` with a sheet per table; `language` (ru, en) is that of its headers.

    With `keep_unchanged` (the run's finance exports, D392), a file whose inputs are those it
    was last written from (`FINGERPRINTS` in `out`: the rows and columns of every table it
    reads, the options, the code) and that nobody changed since is left as it is (the same
    bytes it would be written with); its `ExportedTable.unchanged` says so. `digests`: the
    tables' digests taken so far, shared by the exports of one state of the warehouse (the
    run's CSV files and workbook read the same tables: each is hashed once).

    Raises:
        ExportError: unknown format, a schema with no table, or a table too big for a sheet.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    tables = schema_tables(con, schema)
    if not tables:
        raise ExportError(_no_tables(con, schema))
    out.mkdir(parents=True, exist_ok=True)
    with _in_duckdb(con, [f"{schema}.{table}" for table in tables]) as local:
        options = (fmt, decimal_comma, language)
        kept = _Fingerprints(out, local, schema, options, keep_unchanged, digests)
        if fmt == "xlsx":
            path = out / f"{schema}.xlsx"
            key = kept.key(path, tables)
            if kept.unchanged(path, key):
                return [
                    ExportedTable(t, _count(local, schema, t), path, unchanged=True)
                    for t in _sheet_order(schema, tables)
                ]
            written = _export_xlsx(local, schema, tables, path, language)
            kept.wrote(path, key)
            return written
        return _export_files(local, schema, tables, fmt, out, decimal_comma, kept)


def run_finance_exports(
    con: duckdb.DuckDBPyConnection, out: Path, language: str
) -> tuple[list[ExportedTable], list[ExportedTable]]:
    """A run's finance exports (the CSV files with a decimal comma, and the workbook), a file
    whose inputs are unchanged left as it is (D392); each table is hashed once for both."""
    digests: dict[str, list[Any]] = {}
    files = export_schema(
        con, "finance", "csv", out, decimal_comma=True, keep_unchanged=True, digests=digests
    )
    workbook = export_schema(
        con, "finance", "xlsx", out, language=language, keep_unchanged=True, digests=digests
    )
    return files, workbook


def _count(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    return int(con.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchone()[0])


FINGERPRINTS = ".fingerprints.json"  # in the export folder: what each file was written from


class _Fingerprints:
    """The inputs each export file was last written from (D392), kept in `FINGERPRINTS` beside
    the files: per file, a digest of the rows (their number and the sum of each row's DuckDB
    `hash`, the fingerprint of D330), the columns and types of every table the file reads, the
    format and its options, the pipeline's code and the versions of DuckDB and XlsxWriter; and
    the file's size and modification time as written, so a file changed or removed since is
    written again. Inactive (every file written, nothing kept) unless `active`."""

    def __init__(self, out, con, schema, options, active, digests) -> None:
        fmt, decimal_comma, language = options
        self.path = out / FINGERPRINTS
        self.con, self.schema, self.active = con, schema, active
        self.options = [schema, fmt, decimal_comma, language if fmt == "xlsx" else None]
        self.tables: dict[str, list[Any]] = {} if digests is None else digests
        self.kept: dict[str, Any] = {}
        if active:
            with contextlib.suppress(OSError, ValueError):
                self.kept = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.kept, dict):
                self.kept = {}

    def _table(self, table: str) -> list[Any]:
        relation = f"{_quote(self.schema)}.{_quote(table)}"
        if relation not in self.tables:
            [(rows, hashed)] = self.con.execute(
                f"select count(*), sum(hash(t)) from {relation} as t"
            ).fetchall()
            self.tables[relation] = [_columns(self.con, self.schema, table), rows, str(hashed)]
        return self.tables[relation]

    def key(self, path: Path, tables: list[str]) -> str | None:
        """The digest of what `path` is written from, reading `tables`; None when inactive."""
        if not self.active:
            return None
        import hashlib

        # the tables and those their exports join (the managers' names)
        reads = {t for table in tables for t in _relation(self.con, self.schema, table).reads}
        inputs = [_code(), self.options, path.name, tables, {t: self._table(t) for t in reads}]
        text = json.dumps(inputs, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def unchanged(self, path: Path, key: str | None) -> bool:
        """Whether `path` is there as it was written from these same inputs."""
        kept = self.kept.get(path.name)
        if key is None or not isinstance(kept, dict) or kept.get("key") != key:
            return False
        try:
            stat = path.stat()
        except OSError:
            return False
        return [stat.st_size, stat.st_mtime_ns] == kept.get("file")

    def wrote(self, path: Path, key: str | None) -> None:
        """Keep what `path`, just written, was written from (written whole, then renamed)."""
        if key is None:
            return
        stat = path.stat()
        self.kept[path.name] = {"key": key, "file": [stat.st_size, stat.st_mtime_ns]}
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.kept, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


@functools.lru_cache(maxsize=1)
def _code() -> tuple[str, ...]:
    """The code an export file depends on: the pipeline's files and the writers' versions."""
    from importlib import metadata

    from dagster_project.lib import run_inputs

    return (run_inputs.code_digest(), duckdb.__version__, metadata.version("xlsxwriter"))


def _in_duckdb(con, relations: list[str]):
    """The connection every export reads: the warehouse's own when it is DuckDB (or a plain
    DuckDB connection), else a DuckDB copy of `relations` (D231)."""
    in_duckdb = getattr(con, "in_duckdb", None)
    return in_duckdb(relations) if in_duckdb else contextlib.nullcontext(con)


def _export_files(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    tables: list[str],
    fmt: str,
    out: Path,
    decimal_comma: bool,
    kept: _Fingerprints,
) -> list[ExportedTable]:
    """csv or parquet: one file per table; a file whose inputs are unchanged is kept (D392)."""
    written = []
    for table in tables:
        path = out / f"{schema}.{table}.{fmt}"
        rows = _count(con, schema, table)
        key = kept.key(path, [table])
        if kept.unchanged(path, key):
            written.append(ExportedTable(table, rows, path, unchanged=True))
            log.info("%s.%s unchanged: %s kept as it is (D392)", schema, table, path)
            continue
        export = _relation(con, schema, table)
        if fmt == "parquet":
            con.execute(f"copy ({export.select()}) to '{_sql_path(path)}' (format parquet)")
        else:
            _copy_csv_with_bom(con, _csv_select(export, decimal_comma), path)
        kept.wrote(path, key)
        written.append(ExportedTable(table, rows, path))
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
    con: duckdb.DuckDBPyConnection, schema: str, tables: list[str], path: Path, language: str
) -> list[ExportedTable]:
    """One sheet per table, by XlsxWriter, row by row in constant memory.

    Cells keep their types (numbers, dates) with a number format per column; text is never read
    as a formula or a link. XlsxWriter, not openpyxl's write-only cells: several times faster on
    the large demo's finance workbook (D67, docs/performance.md). Sheets: `SHEET_ORDER` first;
    each with a frozen header row, filters on every column and widths from the longest value.
    The data rows' XML is written by `_write_rows_as_xml`, the bytes XlsxWriter's cell calls
    write (D417); XlsxWriter writes everything else.
    """
    import xlsxwriter

    from dagster_project.lib.text import header

    counts = {}
    for table in tables:  # refuse before writing anything
        rows = _count(con, schema, table)
        if rows > XLSX_MAX_ROWS:
            raise ExportError(
                f"{schema}.{table} has {rows} rows, more than an Excel sheet holds: "
                "export it as csv or parquet"
            )
        counts[table] = rows
    tables = _sheet_order(schema, tables)
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
    head = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top", "bottom": 1})
    cell_formats: dict[str, Any] = {}
    written = []
    try:
        for table in tables:
            export = _relation(con, schema, table)
            columns = export.names_and_types
            sheet = workbook.add_worksheet(table[:31])
            headers = [header(name, language) for name, _ in columns]
            kinds = []  # per column: its kind of cell (`_xlsx_kind`) and its format
            longest = _longest(con, export)
            for column, ((name, data_type), title) in enumerate(zip(columns, headers, strict=True)):
                number_format = _number_format(data_type, name)
                if number_format and number_format not in cell_formats:
                    cell_formats[number_format] = workbook.add_format({"num_format": number_format})
                cell_format = cell_formats.get(number_format) if number_format else None
                kinds.append((_xlsx_kind(data_type), cell_format))
                width = _width(longest[column], title, number_format)
                sheet.set_column(column, column, width)
            sheet.write_row(0, 0, headers, head)
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, max(counts[table], 1), len(columns) - 1)
            if _rows_as_xml_apply(sheet):
                rows = _write_rows_as_xml(sheet, con.execute(_xml_select(export)), kinds)
            else:
                rows = _write_rows_by_cell(sheet, con.execute(export.select()), kinds)
            written.append(ExportedTable(table, rows, path))
        workbook.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    log.info("exported %d tables of %s -> %s", len(tables), schema, path)
    return written


def _sheet_order(schema: str, tables: list[str]) -> list[str]:
    first = [t for t in SHEET_ORDER.get(schema, ()) if t in tables]
    return first + [t for t in tables if t not in first]


def _longest(con: duckdb.DuckDBPyConnection, export: _Export) -> list[int]:
    """The longest value (as text) of each column, in one scan."""
    lengths = ", ".join(
        f"coalesce(max(length(cast({expr} as varchar))), 0)" for _, _, expr in export.columns
    )
    return [int(n) for n in con.execute(f"select {lengths} from {export.source}").fetchone()]


def _width(longest: int, title: str, number_format: str | None) -> float:
    """A column's width in characters: its longest value, widened for group separators, or the
    header's longest word (headers wrap), plus room for the filter button; at most
    `MAX_COLUMN_WIDTH`."""
    value = longest + (longest // 3 if number_format and "#,##" in number_format else 0)
    words = max((len(word) for word in title.split()), default=0)
    short_title = len(title) if len(title) <= 16 else 0
    return float(min(MAX_COLUMN_WIDTH, max(value, words, short_title) + 3))


def _xlsx_kind(data_type: str) -> str:
    """The kind of cell a DuckDB type is written as: numbers and dates typed, booleans, anything
    else as text."""
    upper = data_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC")) or upper.split("(")[0] in _NUMERIC_TYPES:
        return "number"
    if upper.startswith(("DATE", "TIMESTAMP")):
        return "datetime"
    if upper == "BOOLEAN":
        return "boolean"
    return "string"


def _write_rows_by_cell(sheet: Any, result: Any, kinds: list[tuple[str, Any]]) -> int:
    """The data rows of `result` below the header, by XlsxWriter's cell calls; the number of rows.
    What `_write_rows_as_xml` writes is compared with this (D417)."""
    writers = []
    for kind, cell_format in kinds:
        if kind == "number":
            write = functools.partial(_write_float, sheet.write_number)
        elif kind == "string":
            write = functools.partial(_write_text, sheet.write_string)
        else:
            write = sheet.write_datetime if kind == "datetime" else sheet.write_boolean
        writers.append((write, cell_format))
    row = 0
    while batch := result.fetchmany(10_000):
        for record in batch:
            row += 1
            for column, (value, (write, cell_format)) in enumerate(
                zip(record, writers, strict=True)
            ):
                if value is not None:
                    write(row, column, value, cell_format)
    return row


def _write_float(write: Any, row: int, column: int, value: Any, cell_format: Any) -> None:
    write(row, column, float(value), cell_format)


def _write_text(write: Any, row: int, column: int, value: Any, cell_format: Any) -> None:
    write(row, column, str(value), cell_format)


def _rows_as_xml_apply(sheet: Any) -> bool:
    """Whether `_write_rows_as_xml` writes what the cell calls would on this sheet: XlsxWriter's
    constant-memory mode (rows go to its file as they are done), nothing but the header row
    written yet, no row options, comments or Excel 2010 row attributes, the default height."""
    return (
        sheet.constant_memory
        and sheet.previous_row == 0
        and set(sheet.table) <= {0}
        and not sheet.row_info
        and not sheet.comments
        and sheet.excel_version == 2007
        and sheet.default_row_height == sheet.original_row_height
    )


def _xml_select(export: _Export) -> str:
    """The rows `_write_rows_as_xml` writes: a decimal read as its exact text, whose float is
    the float of the decimal (Python makes that float from the decimal's text), and which costs
    less to make than a Python decimal (D417)."""
    return export.select(
        [
            f"cast({expr} as varchar) as {_quote(name)}"
            if data_type.upper().startswith(("DECIMAL", "NUMERIC"))
            else f"{expr} as {_quote(name)}"
            for name, data_type, expr in export.columns
        ]
    )


def _write_rows_as_xml(sheet: Any, result: Any, kinds: list[tuple[str, Any]]) -> int:
    """The data rows of `result` below the header as the XML XlsxWriter writes for them, by
    whole batches into its row file; the number of rows (D417).

    XlsxWriter's cell calls cost microseconds a cell (checks, a cell tuple, a tag writer per
    cell), most of the run's finance exports step at large. Here each cell is one f-string of
    the same text: `<c r=.. s=..>` with the number as `%.16G`, the date as Excel's serial
    number (XlsxWriter's own conversion), a boolean as `t="b"`, text as an inline string with
    XlsxWriter's own escapes, truncation and whitespace rule; a row's `<row r="n">` holds its
    cells that are not null, and a row of nulls is not written. A format's style number is taken
    at its first cell, row by row, as XlsxWriter numbers them. The header row is written first by
    XlsxWriter (as its next cell call would), and the sheet's dimensions and last row are set
    as its cell calls leave them. `tests/unit/test_exports.py` compares the two writers' files
    part by part."""

    sheet._write_single_row(1)  # the header row, which XlsxWriter writes when row 1 begins
    cells = [
        _xml_cell(sheet, column, kind, cell_format)
        for column, (kind, cell_format) in enumerate(kinds)
    ]
    row, last = 0, None
    write = sheet.fh.write
    while batch := result.fetchmany(10_000):
        out = []
        for record in batch:
            row += 1
            number = str(row + 1)
            parts = [
                cell(value, number)
                for cell, value in zip(cells, record, strict=True)
                if value is not None
            ]
            if parts:
                out.append(f'<row r="{number}">{"".join(parts)}</row>')
                last = row
        write("".join(out))
    if last is not None:
        sheet._check_dimensions(last, 0)  # the columns are the header's
        sheet.previous_row = last
    return row


_XML_CACHED_VALUES = 10_000  # per column: the distinct texts and dates whose XML is kept


def _xml_cell(sheet: Any, column: int, kind: str, cell_format: Any) -> Any:
    """A function of (value, row number as text) giving the `<c>` element XlsxWriter writes
    for a cell of `kind` in `column` (`_write_rows_as_xml`)."""
    from xlsxwriter.utility import xl_col_to_name

    if kind == "datetime" and cell_format is None:
        cell_format = sheet.default_date_format
    if cell_format is None and column in sheet.col_info:
        cell_format = sheet.col_info[column].column_format
    attributes = _XmlAttributes(xl_col_to_name(column), cell_format)
    make = {"number": _xml_number, "datetime": _xml_datetime, "boolean": _xml_boolean}
    return make.get(kind, _xml_text)(sheet, attributes)


class _XmlAttributes:
    """A cell's `r` and `s` attributes; the format's style number is taken at the column's first
    cell, as XlsxWriter numbers a format when a cell first uses it."""

    def __init__(self, letter: str, cell_format: Any) -> None:
        self.letter, self.format, self.style = letter, cell_format, None

    def __call__(self, row: str) -> str:
        if self.style is None:
            self.style = "" if self.format is None else f' s="{self.format._get_xf_index()}"'
        return f'r="{self.letter}{row}"{self.style}'


def _xml_number(sheet: Any, attributes: _XmlAttributes) -> Any:
    import math

    def cell(value: Any, row: str) -> str:
        number = float(value)
        if not math.isfinite(number):  # as XlsxWriter's write_number without nan_inf_to_errors
            raise TypeError(
                "NAN/INF not supported in write_number() without 'nan_inf_to_errors' "
                "Workbook() option"
            )
        return f"<c {attributes(row)}><v>{number:.16G}</v></c>"

    return cell


def _xml_datetime(sheet: Any, attributes: _XmlAttributes) -> Any:
    serials: dict[Any, str] = {}  # a column's dates repeat (months)

    def cell(value: Any, row: str) -> str:
        serial = serials.get(value)
        if serial is None:
            serial = f"{sheet._convert_date_time(value):.16G}"
            if len(serials) < _XML_CACHED_VALUES:
                serials[value] = serial
        return f"<c {attributes(row)}><v>{serial}</v></c>"

    return cell


def _xml_boolean(sheet: Any, attributes: _XmlAttributes) -> Any:
    def cell(value: Any, row: str) -> str:
        return f'<c {attributes(row)} t="b"><v>{1 if value else 0}</v></c>'

    return cell


def _xml_text(sheet: Any, attributes: _XmlAttributes) -> Any:
    inner: dict[str, str] = {}  # a column's texts repeat (names, roles, kinds of line)

    def cell(value: Any, row: str) -> str:
        text = value if value.__class__ is str else str(value)
        body = inner.get(text)
        if body is None:
            body = _xml_inline_text(sheet, text)
            if len(inner) < _XML_CACHED_VALUES:
                inner[text] = body
        return f'<c {attributes(row)} t="inlineStr"><is>{body}</is></c>'

    return cell


def _xml_inline_text(sheet: Any, text: str) -> str:
    """What XlsxWriter writes inside `<is>` for a text in constant-memory mode: cut to Excel's
    length, control characters escaped, `<t>` with XML escapes and `xml:space` when the text
    begins or ends with white space.

    Unlike XlsxWriter, a text that begins with `<r>` and ends with `</r>` is escaped too: its
    constant-memory writer takes such a text for a rich string and writes it as XML, unescaped,
    so a name like `<r></t></is></c></row></r>` from a CRM broke the sheet (D417). A value is
    data, never markup."""
    from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate

    limit = sheet.xls_strmax
    if len(text) > limit // 2 and _utf16_len(text) > limit:
        text = _utf16_truncate(text, limit)
    text = sheet._escape_control_characters(text)
    space = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
    return f"<t{space}>{sheet._escape_data(text)}</t>"


def _number_format(data_type: str, name: str = "") -> str | None:
    """Excel's number format of a column: decimals with their scale and thousands grouped, a
    month as year-month, dates and times in ISO order; None for text and booleans."""
    upper = data_type.upper()
    if upper.startswith(("DECIMAL", "NUMERIC")):
        scale = upper.rstrip(")").split(",")[-1].strip() if "," in upper else "0"
        return "#,##0" if scale == "0" else "#,##0." + "0" * int(scale)
    if upper in ("DOUBLE", "FLOAT", "REAL"):
        return "#,##0.00"
    if upper == "DATE" and name in MONTH_COLUMNS:
        return MONTH_FORMAT
    return _NUMBER_FORMATS.get(upper.split("(")[0].replace(" WITH TIME ZONE", ""))
