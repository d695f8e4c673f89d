"""Mapped file sources: CSV/XLSX exports converted into an inbox entity's shape, per file.

Shared by the generic CDR CSV (`cdr_csv`) and the survey form exports (`survey_forms`). A
mapper turns the staged file (every cell as text, header names lowercased) into SQL selecting
the inbox contract's columns; the inbox loader's own contract check (`checked_select`) then
splits valid rows from rows that break the contract. Per file, in one transaction:

- a file whose sha256 was already loaded is skipped; a changed file replaces its rows;
- valid rows go to `raw_<source>.<entity>` unless their key is already there from another file
  (exports of a form tool repeat every earlier answer): those are kept aside in
  `raw_<source>.<entity>_repeats`, and when a reload drops a key from the table, the first
  loaded repeat of it takes its place (D207); rows that break the contract go to
  `raw_<source>.<entity>_quarantine` with `_reason`;
- the load is logged in `raw_<source>._files`; so is every entry the globs match that cannot be
  read (a broken link, a folder named like a data file, a file unreadable or removed while the
  source runs): status `failed` with the reason, never a skip nor a traceback.

Rows in raw + rows in the quarantine + rows skipped as already loaded = data rows of the file
(those skipped: the repeats kept aside, and a key's later rows within the file).

Files are read, mapped and checked by DuckDB in the sink's scratch; the rows land in the
warehouse through the sink (lib/sink.py, D184): the same statements on DuckDB, COPY on
PostgreSQL (D233).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from dagster_project.lib import csv_sniff
from dagster_project.lib import warehouse as wh
from dagster_project.lib.contract import Entity
from dagster_project.lib.inbox_loader import (
    REMOVALS_DDL,
    checked_select,
    not_a_file,
    plain_link,
    raw_value_sql,
    record_removal,
)
from dagster_project.lib.sink import sink_for
from dagster_project.lib.sources.state import new_batch_id, quote, utcnow
from dagster_project.lib.sql import literal

log = logging.getLogger("voronka.sources.files")

FILE_META: tuple[tuple[str, str], ...] = (
    ("_source_file", "varchar"),
    ("_source_line", "bigint"),
    ("_loaded_at", "timestamp"),
    ("_batch_id", "varchar"),
    ("_source", "varchar"),
)

FILES_DDL = """
create table if not exists {schema}._files (
    mapping varchar,
    source_file varchar,
    sha256 varchar,
    status varchar,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    rows_duplicate bigint,
    message varchar,
    batch_id varchar,
    loaded_at timestamp
)
"""


class MappingError(ValueError):
    """The mapping file is invalid; the message says which key and what to change."""


@dataclass
class FileResult:
    """What happened to one file."""

    source_file: str
    status: str  # loaded, reloaded, skipped_unchanged, failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_restored: int = 0  # other files' repeats that took the place of keys it dropped (D207)
    message: str | None = None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def xlsx_to_csv(source: Path, target: Path, sheet: str | None = None) -> None:
    """The first (or named) sheet of an XLSX workbook as a UTF-8 CSV; cells as text.

    Needs `openpyxl`. Dates and times are written in ISO 8601, whole numbers without `.0`.
    """
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise csv_sniff.UnreadableFile(
            f"{source.name}: reading XLSX needs the `openpyxl` package; install it or export "
            "the form as CSV"
        ) from exc
    try:
        workbook = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:  # not a workbook, or a broken one
        raise csv_sniff.UnreadableFile(
            f"{source.name}: not a readable XLSX workbook ({exc}); export the form again"
        ) from None
    try:
        if sheet and sheet not in workbook.sheetnames:
            raise csv_sniff.UnreadableFile(
                f"{source.name}: has no sheet {sheet!r} (its sheets: "
                f"{', '.join(workbook.sheetnames)}); fix `sheet` in the forms config"
            )
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for row in worksheet.iter_rows(values_only=True):
                writer.writerow([_cell_text(value) for value in row])
    finally:
        workbook.close()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# A mapper: (staged column names, lowercased → actual) → SQL over `_stage` giving the contract
# columns, extra columns, `_source_line` and `_row_text` (the row's cells, for generated ids).
Mapper = Callable[[dict[str, str]], str]


class MappedFileLoader:
    """Loads mapped files of one source and entity into `raw_<source>`: `con` is the
    warehouse; files are read in the sink's DuckDB scratch (the warehouse itself on DuckDB,
    D184). `close()` when done."""

    def __init__(self, con: wh.Connection, source: str, entity: Entity, root: Path, label: str):
        self.con = con
        self.sink = sink_for(con)
        self.scratch = self.sink.scratch
        self.source = source
        self.entity = entity
        self.root = Path(root)
        self.label = label
        self.schema = f"raw_{source}"
        self.table = f"{self.schema}.{quote(entity.name)}"
        self.quarantine = f"{self.schema}.{quote(entity.name + '_quarantine')}"
        self.repeats = f"{self.schema}.{quote(entity.name + '_repeats')}"
        self.key = entity.key[0]
        self._ensure_tables()

    def _ensure_tables(self) -> None:
        con = self.con
        con.execute(f"create schema if not exists {self.schema}")
        con.execute(FILES_DDL.format(schema=self.schema))
        con.execute("create schema if not exists raw")
        con.execute(REMOVALS_DDL)
        columns = [f"{quote(c.name)} varchar" for c in self.entity.columns]
        columns += [f"{quote(n)} {t}" for n, t in FILE_META]
        con.execute(f"create table if not exists {self.table} ({', '.join(columns)})")
        con.execute(
            f"create table if not exists {self.quarantine} ({', '.join(columns)}, _reason varchar)"
        )
        # the table's columns, the extras of the files loaded before D207 included
        con.execute(
            f"create table if not exists {self.repeats} as select * from {self.table} limit 0"
        )

    def close(self) -> None:
        self.sink.close()

    def _failed(self, rel: str, path: Path, message: str, sha: str | None = None) -> FileResult:
        """A file that is not loaded: logged in `_files` with its reason."""
        result = FileResult(rel, "failed", message=f"{path.name}: {message}")
        self._log(result, sha, new_batch_id("file"))
        log.error("%s %s not loaded: %s", self.source, rel, message)
        return result

    def load(self, path: Path, mapper: Mapper, sheet: str | None = None) -> FileResult:
        """Load one file (skipped when unchanged); never raises for a bad file: a broken
        link, a folder, a file that cannot be read end as a `failed` row of `_files`."""
        rel = (
            path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else path.name
        )
        problem = not_a_file(path, self.root.name)
        if problem:
            return self._failed(rel, path, problem)
        try:
            sha = sha256(path)
        except OSError as exc:
            return self._failed(rel, path, _unreadable(exc))
        previous = self.con.execute(
            f"select sha256 from {self.schema}._files where mapping = ? and source_file = ? "
            f"and status in ('loaded', 'reloaded') order by loaded_at desc limit 1",
            [self.label, rel],
        ).fetchone()
        if previous and previous[0] == sha:
            return FileResult(rel, "skipped_unchanged")
        status = "reloaded" if previous else "loaded"
        batch_id = new_batch_id("file")
        try:
            with tempfile.TemporaryDirectory(prefix="voronka_src_") as tmp:
                if path.suffix.lower() == ".xlsx":
                    readable = Path(tmp) / "sheet.csv"
                    xlsx_to_csv(path, readable, sheet)
                else:  # never the file's own name: read_csv takes it as a pattern (D74)
                    readable = plain_link(path, Path(tmp))
                dialect = csv_sniff.sniff(readable)
                if dialect.needs_transcoding:
                    utf8 = Path(tmp) / "utf8.csv"
                    csv_sniff.transcode_to_utf8(readable, utf8, dialect.encoding)
                    readable = utf8
                self.scratch.execute(
                    f"""
                    create or replace temp table _stage as
                    select * from read_csv(
                        {literal(str(readable))}, all_varchar = true, header = true,
                        delim = {literal(dialect.delimiter)}, quote = '"', escape = '"'
                    )
                    """
                )
            staged = [row[0] for row in self.scratch.execute("describe _stage").fetchall()]
            by_name: dict[str, str] = {}
            for name in staged:
                by_name.setdefault(name.strip().lower(), name)
            source_sql = mapper(by_name)
            result = self._write(rel, sha, status, batch_id, source_sql)
        except OSError as exc:  # unreadable, or removed while the source runs
            result = self._failed(rel, path, _unreadable(exc), sha)
        except (csv_sniff.UnreadableFile, MappingError, *wh.database_errors()) as exc:
            result = self._failed(rel, path, str(exc).splitlines()[0], sha)
        finally:
            for table in ("_stage", "_mapped", "_checked"):
                self.scratch.execute(f"drop table if exists {table}")
        return result

    def _write(self, rel: str, sha: str, status: str, batch_id: str, source_sql: str) -> FileResult:
        con, scratch = self.con, self.scratch
        loaded_at = utcnow()
        scratch.execute(f"create temp table _mapped as {source_sql}")
        contract = set(self.entity.column_names)
        meta = {n for n, _ in FILE_META} | {"_row_text", "_reason"}
        mapped_columns = [row[0] for row in scratch.execute("describe _mapped").fetchall()]
        extras = [c for c in mapped_columns if c not in contract and c not in meta]
        select = ", ".join(quote(c) for c in self.entity.column_names + extras)
        scratch.execute(
            f"""
            create temp table _checked as
            {
                checked_select(
                    self.entity,
                    f"select {select}, {literal(rel)} as _source_file, "
                    f"_source_line::bigint as _source_line, "
                    f"{literal(loaded_at.isoformat(sep=' '))}::timestamp as _loaded_at, "
                    f"{literal(batch_id)} as _batch_id, {literal(self.label)} as _source "
                    f"from _mapped",
                )
            }
            """
        )
        result = FileResult(rel, status)
        result.rows_read, result.rows_quarantined = scratch.execute(
            "select count(*), count(_reason) from _checked"
        ).fetchone()
        key = quote(self.key)
        con.execute("begin transaction")
        try:
            for name in extras:
                for table in (self.table, self.quarantine, self.repeats):
                    con.execute(
                        f"alter table {table} add column if not exists {quote(name)} varchar"
                    )
            # the keys the file had, to log those no longer in the table after it (D204)
            con.execute(
                f"create temp table _previous_keys as select {key} from {self.table} "
                "where _source_file = ? and _source = ?",
                [rel, self.label],
            )
            for table in (self.table, self.quarantine, self.repeats):
                con.execute(
                    f"delete from {table} where _source_file = ? and _source = ?", [rel, self.label]
                )
            # the file's valid rows, one per key, beside the table; those whose key another
            # file has loaded already stay out (both engines, through the sink: D233)
            con.execute(f"create temp table _file_rows as select * from {self.table} limit 0")
            self.sink.append(
                "_file_rows",
                f"""
                select * exclude (_reason, _n) from (
                    select *, row_number() over (partition by {key} order by _source_line) as _n
                    from _checked where _reason is null
                ) as c
                where _n = 1
                """,
            )
            columns = ", ".join(quote(c) for c in self._columns())
            result.rows_loaded = con.changed(
                f"""
                insert into {self.table} ({columns})
                select {columns} from _file_rows as c
                where not exists (select 1 from {self.table} as t where t.{key} = c.{key})
                """
            )
            # the rows whose key another file holds: kept aside, to take its place if that
            # file drops the key (D207)
            con.execute(
                f"""
                insert into {self.repeats} ({columns})
                select {columns} from _file_rows as c
                where exists (
                    select 1 from {self.table} as t
                    where t.{key} = c.{key} and not (t._source_file = ? and t._source = ?)
                )
                """,
                [rel, self.label],
            )
            con.execute("drop table _file_rows")
            result.rows_restored = self._restore_repeats(columns, loaded_at, batch_id)
            removed = con.execute(
                f"select count(*) from _previous_keys as p "
                f"where not exists (select 1 from {self.table} as t where t.{key} = p.{key})"
            ).fetchone()[0]
            con.execute("drop table _previous_keys")
            record_removal(
                con, f"{self.schema}.{self.entity.name}", rel, removed, loaded_at, batch_id
            )
            self.sink.append(self.quarantine, "select * from _checked where _reason is not null")
            result.rows_duplicate = result.rows_read - result.rows_loaded - result.rows_quarantined
            self._log(result, sha, batch_id)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
        log.info(
            "%s %s: %s rows, %s loaded, %s quarantined, %s already loaded%s",
            self.source,
            rel,
            result.rows_read,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_duplicate,
            f"; {result.rows_restored} dropped keys taken over from other files"
            if result.rows_restored
            else "",
        )
        return result

    def _restore_repeats(self, columns: str, loaded_at: datetime, batch_id: str) -> int:
        """The keys the reloaded file no longer has that another file repeated: the first
        loaded repeat of each moves from `_repeats` into the table, as a fresh run of the
        inbox would have it (D207). It comes in with this load's time and batch, so the
        incremental facts (D201) and the raw checks (D82) take it as new."""
        con, key = self.con, quote(self.key)
        con.execute(
            f"""
            create temp table _restored as
            select * from (
                select r.*, row_number() over (
                    partition by r.{key} order by r._loaded_at, r._source_file, r._source_line
                ) as _n
                from {self.repeats} as r
                inner join _previous_keys as p on r.{key} = p.{key}
                where not exists (select 1 from {self.table} as t where t.{key} = r.{key})
            ) as ranked
            where _n = 1
            """
        )
        selected = ", ".join(
            "?::timestamp as _loaded_at"
            if c == "_loaded_at"
            else "? as _batch_id"
            if c == "_batch_id"
            else quote(c)
            for c in self._columns()
        )
        restored = con.changed(
            f"insert into {self.table} ({columns}) select {selected} from _restored",
            [loaded_at, batch_id],
        )
        con.execute(
            f"""
            delete from {self.repeats} as r
            where exists (
                select 1 from _restored as x
                where x.{key} = r.{key} and x._source_file = r._source_file
                and x._source = r._source
            )
            """
        )
        con.execute("drop table _restored")
        return restored

    def _columns(self) -> list[str]:
        """The raw table's columns (the contract's, the file metadata, the extras so far)."""
        rows = self.con.execute(
            """
            select column_name from information_schema.columns
            where table_catalog = current_database() and table_schema = ? and table_name = ?
            order by ordinal_position
            """,
            [self.schema, self.entity.name],
        ).fetchall()
        return [row[0] for row in rows]

    def _log(self, result: FileResult, sha: str | None, batch_id: str) -> None:
        self.con.execute(
            f"insert into {self.schema}._files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.label,
                result.source_file,
                sha,
                result.status,
                result.rows_read,
                result.rows_loaded,
                result.rows_quarantined,
                result.rows_duplicate,
                result.message,
                batch_id,
                utcnow(),
            ],
        )

    def row_count(self) -> int:
        return self.con.execute(f"select count(*) from {self.table}").fetchone()[0]


def list_files(root: Path, patterns: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Entries under `root` matching any glob of `patterns`, with one of `suffixes`, sorted:
    files, and the entries that are named like one and are not (a broken link, a folder),
    which the loader logs as failed rather than skipping them unseen."""
    found: set[Path] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.suffix.lower() in suffixes:
                found.add(path)
    return sorted(found)


def _unreadable(exc: OSError) -> str:
    return (
        f"cannot be read ({exc.strerror or exc}); check that the file exists and is readable, "
        "then run again"
    )


def load_mapping(path: Path) -> dict:
    """A mapping file (YAML or JSON) as a dict."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() == ".json":
        import json

        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise MappingError(f"{Path(path).name}: the mapping must be an object (key: value)")
    return data


def column_ref(by_name: dict[str, str], name: str | None, what: str) -> str | None:
    """The staged column for a mapped header name (case-insensitive), quoted; or an error."""
    if name is None:
        return None
    actual = by_name.get(str(name).strip().lower())
    if actual is None:
        raise MappingError(
            f"column {name!r} (mapped to {what}) is not in the file's header "
            f"(found: {', '.join(list(by_name)[:8])})"
        )
    return raw_value_sql(quote(actual))


def value_map_sql(expr: str, mapping: dict | None) -> str:
    """`expr` through a value map (case-insensitive keys); unmapped values lowercased."""
    if not mapping:
        return f"lower({expr})"
    whens = " ".join(
        f"when {literal(str(k).strip().lower())} then {literal(str(v))}" for k, v in mapping.items()
    )
    return f"(case lower({expr}) {whens} else lower({expr}) end)"


def timestamp_sql(expr: str, fmt: str | None) -> str:
    """`expr` as ISO text: parsed by `fmt` (strptime) when given, else as it is."""
    if not fmt:
        return expr
    return f"coalesce(strftime(try_strptime({expr}, {literal(fmt)}), '%Y-%m-%d %H:%M:%S'), {expr})"


def extras_sql(by_name: dict[str, str], used: set[str], reserved: set[str]) -> list[str]:
    """The file's unmapped columns, kept as extra columns (custom fields pass through)."""
    out = []
    for lower, actual in by_name.items():
        if lower in used:
            continue
        name = lower if lower not in reserved else f"src_{lower}"
        out.append(f"{raw_value_sql(quote(actual))} as {quote(name)}")
    return out
