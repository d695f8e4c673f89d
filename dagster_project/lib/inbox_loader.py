"""Load inbox CSV files into the raw layer, with DuckDB's own reader.

For one entity (`inbox/<entity>/*.csv`), every file is

1. skipped when a load with the same sha256 is already in `raw._load_log` (idempotence);
2. sniffed (encoding, delimiter, decimal comma; `csv_sniff`), its header checked;
3. read by DuckDB `read_csv` as text into a temporary table, together with the next files of the
   entity written the same way (UTF-8, same delimiter and header line; a file needing
   transcoding is read alone, after transcoding to UTF-8); rows DuckDB cannot split into the
   header's columns are kept from its reject table, with their file and line numbers;
4. checked against the contract in one SQL pass (required, enums, types, ranges, references),
   which keeps the broken rows' `_reason`;
5. written in one transaction per batch: the files' previous rows (a changed file) are deleted
   from raw and quarantine, valid rows go to `raw.<entity>`, the others to
   `quarantine.<entity>`, and each file's load is logged with its own batch id and counts.

A file that cannot be read at all is logged as `failed` and recorded in `quarantine.files`; the
other files still load. Row counts always add up: rows read = rows loaded + rows quarantined.
See docs/architecture.md for the tables' shape, docs/decisions.md D12-D14 for the batches.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.lib import csv_sniff
from dagster_project.lib.contract import ENTITIES, META_COLUMNS, Column, Entity

log = logging.getLogger("voronka.loader")

LOAD_LOG_DDL = """
create table if not exists raw._load_log (
    run_id varchar,
    batch_id varchar,
    entity varchar,
    source_file varchar,
    sha256 varchar,
    bytes bigint,
    status varchar,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    encoding varchar,
    delimiter varchar,
    decimal_comma boolean,
    message varchar,
    started_at timestamp,
    finished_at timestamp
)
"""

QUARANTINED_FILES_DDL = """
create table if not exists quarantine.files (
    entity varchar,
    source_file varchar,
    sha256 varchar,
    reason varchar,
    detected_at timestamp,
    batch_id varchar
)
"""

_TIMESTAMP_RE = (
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?"
)
_BOOLEAN_VALUES = ("true", "false", "1", "0", "yes", "no", "да", "нет")


@dataclass
class FileReport:
    """What happened to one file."""

    entity: str
    source_file: str
    status: str  # loaded, reloaded, skipped_unchanged, failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    encoding: str | None = None
    delimiter: str | None = None
    decimal_comma: bool | None = None
    message: str | None = None
    batch_id: str | None = None


@dataclass
class EntityReport:
    """What happened to one entity's folder in one run."""

    entity: str
    run_id: str
    files: list[FileReport] = field(default_factory=list)
    rows_released: int = 0

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files) + self.rows_released

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files) - self.rows_released

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connect(warehouse: Path, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, creating its folder and file if needed."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": memory_limit} if memory_limit else {}
    con = duckdb.connect(str(warehouse), config=config)
    con.execute("set enable_progress_bar = false")
    return con


def ensure_tables(con: duckdb.DuckDBPyConnection, entities: list[Entity] | None = None) -> None:
    """Create the raw and quarantine tables of the given entities (default: all) if missing."""
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists quarantine")
    con.execute(LOAD_LOG_DDL)
    con.execute(QUARANTINED_FILES_DDL)
    for entity in entities or ENTITIES:
        columns = [f"{quote(c.name)} varchar" for c in entity.columns]
        columns += [f"{quote(name)} {type_}" for name, type_ in META_COLUMNS]
        con.execute(f"create table if not exists raw.{quote(entity.name)} ({', '.join(columns)})")
        quarantine_columns = columns + ['"_reason" varchar', '"_raw_record" varchar']
        con.execute(
            f"create table if not exists quarantine.{quote(entity.name)} "
            f"({', '.join(quarantine_columns)})"
        )
        # a warehouse created under an older contract lacks the columns added since (v1.1:
        # deleted_at, D85): add them, empty, so raw keeps every contract column
        for schema in ("raw", "quarantine"):
            for c in entity.columns:
                con.execute(
                    f"alter table {schema}.{quote(entity.name)} "
                    f"add column if not exists {quote(c.name)} varchar"
                )


# --------------------------------------------------------------------------- validation SQL


def typed_expr(column: Column, value: str | None = None) -> str:
    """DuckDB expression giving the typed value of a raw text column, null when it does not parse.

    These are the loader's acceptance rules; the dbt parse macros implement the same rules.
    """
    v = value or quote(column.name)
    if column.type in ("decimal",):
        cleaned = f"replace(regexp_replace({v}, '[\\s\u00a0]', '', 'g'), ',', '.')"
        return f"try_cast({cleaned} as double)"
    if column.type == "integer":
        cleaned = f"regexp_replace({v}, '[\\s\u00a0]', '', 'g')"
        return (
            f"case when regexp_full_match({cleaned}, '[+-]?\\d+') "
            f"then try_cast({cleaned} as bigint) end"
        )
    if column.type == "timestamp":
        return (
            f"case when regexp_full_match({v}, {_literal(_TIMESTAMP_RE)}) "
            f"then try_cast(regexp_replace({v}, '\\s+(Z|[+-])', '\\1') as timestamptz) end"
        )
    if column.type == "date":
        return (
            f"case when regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
            f"then try_cast({v} as date) end"
        )
    if column.type == "period":
        return (
            f"case when regexp_full_match({v}, '\\d{{4}}-\\d{{2}}') "
            f"then try_cast({v} || '-01' as date) end"
        )
    if column.type == "boolean":
        values = ", ".join(_literal(b) for b in _BOOLEAN_VALUES)
        return f"case when lower({v}) in ({values}) then lower({v}) end"
    if column.type == "enum":
        values = ", ".join(_literal(x) for x in column.values)
        return f"case when lower({v}) in ({values}) then lower({v}) end"
    return v


def _typed_name(column: Column) -> str:
    return quote(f"__typed_{column.name}")


def _validated(entity: Entity) -> list[Column]:
    return [c for c in entity.columns if c.type not in ("text", "id", "phone")]


def _rule_exprs(entity: Entity) -> list[str]:
    """One SQL expression per column and rule, each the reason text or null.

    They read the typed values computed once per row by `checked_select` (`__typed_<column>`).
    """
    rules: list[str] = []
    for column in entity.columns:
        name, typed = quote(column.name), _typed_name(column)
        checks = []
        if column.type not in ("text", "id", "phone"):
            kind = "invalid_enum" if column.type == "enum" else f"invalid_{column.type}"
            checks.append(f"when {typed} is null then '{kind}:{column.name}'")
        if column.min_value is not None:
            label = "negative" if column.min_value == 0 else "below_minimum"
            checks.append(f"when {typed} < {column.min_value} then '{label}:{column.name}'")
        if column.max_value is not None:
            checks.append(f"when {typed} > {column.max_value} then 'above_maximum:{column.name}'")
        missing = f"'missing_required:{column.name}'" if column.required else "null"
        if checks or column.required:
            rules.append(
                f"case when {name} is null then {missing} "
                f"else (case {' '.join(checks) or 'when false then null'} end) end"
            )
    typed_refs = {c.name: _typed_name(c) for c in _validated(entity)}
    for reason, condition in entity.extra_rules:
        rules.append(f"case when {condition.format(**typed_refs)} then '{reason}' end")
    for column, ref_entity, ref_column in entity.references:
        rules.append(
            f"case when {quote(column)} is not null and {quote(column)} not in "
            f"(select {quote(ref_column)} from raw.{quote(ref_entity)} "
            f"where {quote(ref_column)} is not null) then 'unknown_{column}' end"
        )
    return rules


def checked_select(entity: Entity, source_sql: str) -> str:
    """SQL selecting the rows of `source_sql` with `_reason`: the `; `-joined broken rules of
    each row, or null when it is valid. Typed values are computed once per row."""
    typed = ", ".join(f"{typed_expr(c)} as {_typed_name(c)}" for c in _validated(entity))
    hidden = ", ".join(_typed_name(c) for c in _validated(entity))
    reason = f"nullif(concat_ws('; ', {', '.join(_rule_exprs(entity))}), '')"
    return f"""
        with base as ({source_sql}),
        typed as materialized (select *{", " + typed if typed else ""} from base)
        select *{f" exclude ({hidden})" if hidden else ""}, {reason} as _reason
        from typed
    """


# --------------------------------------------------------------------------------- loading


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(inbox: Path, entity: Entity) -> list[Path]:
    """The entity's CSV files in name order (`*.csv`, any case)."""
    folder = inbox / entity.name
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_utcnow():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


# Files of one entity read together by one `read_csv`, up to this many bytes per read (D12).
BATCH_BYTES = 256 << 20
# the column `read_csv` adds with each row's file (not a contract column name)
_FILE_COLUMN = "_voronka_source_path"
_TEMP_TABLES = ("_stage", "_files", "_rejected", "_lines", "_bad", "_rejects", "_rejects_scan")


class _NotContiguous(Exception):
    """The rows of one file are not one run of `_stage` row ids (never seen; safety net)."""


@dataclass
class _Pending:
    """A new or changed file, sniffed and with a valid header, waiting to be read."""

    path: Path
    rel: str
    sha: str
    size: int
    started: datetime
    report: FileReport
    dialect: csv_sniff.CsvDialect
    header_line: bytes

    @property
    def batch_key(self) -> tuple | None:
        """Files with the same key can be read by one `read_csv` call; None: read it alone."""
        if self.dialect.needs_transcoding:
            return None
        return (self.dialect.encoding, self.dialect.delimiter, self.header_line)


def _first_line(path: Path, limit: int = 1 << 16) -> bytes:
    with path.open("rb") as handle:
        return handle.readline(limit)


class InboxLoader:
    """Loads inbox folders into one warehouse connection (the single DuckDB writer)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        inbox: Path,
        run_id: str | None = None,
        batch_bytes: int = BATCH_BYTES,
    ):
        self.con = con
        self.inbox = Path(inbox)
        self.run_id = run_id or _new_id("run")
        self.batch_bytes = batch_bytes

    # ---- public

    def load_entity(
        self, entity: Entity, progress: Callable[[FileReport], None] | None = None
    ) -> EntityReport:
        """Load every new or changed file of one entity; release late references.

        Consecutive files (in name order) written the same way (UTF-8, same delimiter, same
        header line) are read, checked and written together, up to `batch_bytes` per batch;
        each still gets its own report, batch id and `_load_log` row (D12).
        """
        ensure_tables(self.con, [entity])
        report = EntityReport(entity=entity.name, run_id=self.run_id)
        report.rows_released = self._release_orphans(entity)
        paths = list_files(self.inbox, entity)
        done: dict[str, FileReport] = {}

        def finished(file_reports: list[FileReport]) -> None:
            for file_report in file_reports:
                done[file_report.source_file] = file_report
                if progress:
                    progress(file_report)

        batch: list[_Pending] = []
        for path in paths:
            pending = self._prepare(entity, path)
            if isinstance(pending, FileReport):
                finished([pending])
                continue
            key = pending.batch_key
            size = sum(p.size for p in batch) + pending.size
            if batch and (key is None or key != batch[0].batch_key or size > self.batch_bytes):
                finished(self._load_batch(entity, batch))
                batch = []
            batch.append(pending)
            if key is None:
                finished(self._load_batch(entity, batch))
                batch = []
        if batch:
            finished(self._load_batch(entity, batch))
        report.files = [done[path.relative_to(self.inbox).as_posix()] for path in paths]
        return report

    # ---- one file: skip, sniff, check the header

    def _prepare(self, entity: Entity, path: Path) -> FileReport | _Pending:
        """A report for a file that is skipped or refused, else the file ready to be read."""
        rel = path.relative_to(self.inbox).as_posix()
        started = _utcnow()
        sha = file_sha256(path)
        size = path.stat().st_size
        previous = self.con.execute(
            """
            select sha256 from raw._load_log
            where entity = ? and source_file = ? and status in ('loaded', 'reloaded')
            order by finished_at desc limit 1
            """,
            [entity.name, rel],
        ).fetchone()
        if previous and previous[0] == sha:
            report = FileReport(entity.name, rel, "skipped_unchanged")
            self._log(report, sha, size, started)
            return report
        status = "reloaded" if previous else "loaded"
        batch_id = _new_id("batch")
        try:
            dialect = csv_sniff.sniff(path)
            self._check_header(entity, dialect)
        except csv_sniff.UnreadableFile as exc:
            return self._fail(entity, rel, sha, size, started, batch_id, str(exc))
        report = FileReport(
            entity.name,
            rel,
            status,
            encoding=dialect.encoding,
            delimiter=dialect.delimiter,
            decimal_comma=dialect.decimal_comma,
            batch_id=batch_id,
        )
        return _Pending(path, rel, sha, size, started, report, dialect, _first_line(path))

    def _fail(
        self,
        entity: Entity,
        rel: str,
        sha: str,
        size: int,
        started: datetime,
        batch_id: str,
        message: str,
    ) -> FileReport:
        """Log a file that cannot be loaded and record it in `quarantine.files`."""
        report = FileReport(entity.name, rel, "failed", message=message, batch_id=batch_id)
        self._log(report, sha, size, started)
        self.con.execute(
            "delete from quarantine.files where entity = ? and source_file = ?",
            [entity.name, rel],
        )
        self.con.execute(
            "insert into quarantine.files values (?, ?, ?, ?, ?, ?)",
            [entity.name, rel, sha, message, _utcnow(), batch_id],
        )
        log.error("%s not loaded: %s", rel, message)
        return report

    def _check_header(self, entity: Entity, dialect: csv_sniff.CsvDialect) -> None:
        header = set(dialect.header)
        if not header & set(entity.column_names):
            raise csv_sniff.UnreadableFile(
                f"no header row with {entity.name} columns (expected e.g. "
                f"{', '.join(entity.required_columns)}; found {', '.join(dialect.header[:6])})"
            )
        missing = [c for c in entity.required_columns if c not in header]
        if missing:
            raise csv_sniff.UnreadableFile(
                f"required column(s) missing from the header: {', '.join(missing)}"
            )

    # ---- a batch of files: read, check, write

    def _load_batch(self, entity: Entity, batch: list[_Pending]) -> list[FileReport]:
        """Load the files together; when DuckDB refuses the batch, load them one by one, so that
        only the file it cannot read fails."""
        try:
            return self._read_and_write(entity, batch)
        except (duckdb.Error, _NotContiguous) as exc:
            if len(batch) > 1:
                log.warning(
                    "%s: %d files could not be read together (%s); loading them one by one",
                    entity.name,
                    len(batch),
                    str(exc).splitlines()[0],
                )
                return [report for item in batch for report in self._load_batch(entity, [item])]
            item = batch[0]
            message = (
                f"{item.path.name}: DuckDB could not read it as CSV: {str(exc).splitlines()[0]}"
            )
            return [
                self._fail(
                    entity,
                    item.rel,
                    item.sha,
                    item.size,
                    item.started,
                    item.report.batch_id,
                    message,
                )
            ]

    def _read_and_write(self, entity: Entity, batch: list[_Pending]) -> list[FileReport]:
        try:
            with tempfile.TemporaryDirectory(prefix="voronka_") as tmp:
                readable = []
                for n, item in enumerate(batch):
                    path = item.path
                    if item.dialect.needs_transcoding:
                        path = Path(tmp) / f"utf8_{n}.csv"
                        csv_sniff.transcode_to_utf8(item.path, path, item.dialect.encoding)
                    readable.append(str(path))
                self._stage(readable, batch[0].dialect)
            self._write(entity, batch, readable)
        finally:
            self.con.execute("drop view if exists _checked")
            for table in _TEMP_TABLES:
                self.con.execute(f"drop table if exists {table}")
        return [item.report for item in batch]

    def _stage(self, paths: list[str], dialect: csv_sniff.CsvDialect) -> None:
        """Read the files as text into `_stage` (with each row's file in `_FILE_COLUMN`),
        keeping DuckDB's rejects in `_rejects` / `_rejects_scan`.

        Values are stored trimmed, empty strings as null (the raw layer's values), so that the
        check and the writes do not trim every value again (D13)."""
        options = f"""
            [{", ".join(_literal(p) for p in paths)}],
            all_varchar = true,
            header = true,
            delim = {_literal(dialect.delimiter)},
            quote = '"',
            escape = '"',
            ignore_errors = true,
            filename = {_literal(_FILE_COLUMN)}
        """
        columns = [
            row[0]
            for row in self.con.execute(f"describe select * from read_csv({options})").fetchall()
        ]
        values = [
            quote(name)
            if name == _FILE_COLUMN
            else f"nullif(trim({quote(name)}), '') as {quote(name)}"
            for name in columns
        ]
        self.con.execute(
            f"""
            create temp table _stage as
            select {", ".join(values)}
            from read_csv(
                {options},
                store_rejects = true,
                rejects_table = '_rejects',
                rejects_scan = '_rejects_scan'
            )
            """
        )

    def _write(self, entity: Entity, batch: list[_Pending], readable: list[str]) -> None:
        con = self.con
        staged = [row[0] for row in con.execute("describe _stage").fetchall()]
        # header cells are matched case-insensitively; duplicates after the first are ignored
        by_name: dict[str, str] = {}
        for name in staged:
            if name != _FILE_COLUMN:
                by_name.setdefault(name.strip().lower(), name)
        contract = entity.column_names
        reserved = {name for name, _ in META_COLUMNS} | {"_reason", "_raw_record"}
        extras = [n for n in by_name if n not in contract and n not in reserved]
        for name in extras:
            for schema in ("raw", "quarantine"):
                con.execute(
                    f"alter table {schema}.{quote(entity.name)} "
                    f"add column if not exists {quote(name)} varchar"
                )
        loaded_at = _utcnow()

        # one row per file: where its rows start in _stage, how many DuckDB kept and rejected
        con.execute(
            "create temp table _files (path varchar, rel varchar, batch_id varchar, "
            "reloaded boolean, n_good bigint, first_row bigint, n_rejected bigint)"
        )
        con.executemany(
            "insert into _files values (?, ?, ?, ?, 0, 0, 0)",
            [
                [path, item.rel, item.report.batch_id, item.report.status == "reloaded"]
                for path, item in zip(readable, batch, strict=True)
            ],
        )
        con.execute(
            """
            create temp table _rejected as
            select s.file_path as path, r.line, any_value(r.csv_line) as csv_line,
                string_agg(distinct r.error_message, ' | ') as message
            from _rejects r join _rejects_scan s using (scan_id, file_id)
            group by 1, 2
            """
        )
        counts = con.execute(
            f"""
            select {quote(_FILE_COLUMN)}, count(*), min(rowid), max(rowid)
            from _stage group by 1
            """
        ).fetchall()
        for path, n_good, first_row, last_row in counts:
            if last_row - first_row + 1 != n_good:
                raise _NotContiguous(f"rows of {path} are not contiguous in the stage table")
            con.execute(
                "update _files set n_good = ?, first_row = ? where path = ?",
                [n_good, first_row, path],
            )
        con.execute(
            "update _files set n_rejected = r.n "
            "from (select path, count(*) as n from _rejected group by 1) r "
            "where _files.path = r.path"
        )
        index = "(s.rowid - f.first_row)"
        line_expr, lines_join = f"{index} + 2", ""
        with_rejects = con.execute(
            "select path, n_good + n_rejected from _files where n_rejected > 0"
        ).fetchall()
        if with_rejects:
            # the good rows of such a file take the physical lines DuckDB did not reject, in order
            con.execute("create temp table _lines (path varchar, line bigint, idx bigint)")
            for path, total in with_rejects:
                con.execute(
                    f"""
                    insert into _lines
                    select ?, line, row_number() over (order by line) - 1
                    from range(2, {int(total) + 2}) as t(line)
                    where line not in (select line from _rejected where path = ?)
                    """,
                    [path, path],
                )
            line_expr = f"coalesce(l.line, {index} + 2)"
            lines_join = (
                f"left join _lines l on l.path = s.{quote(_FILE_COLUMN)} and l.idx = {index}"
            )

        values = {
            name: f"s.{quote(by_name[name])}" if name in by_name else "null::varchar"
            for name in contract + extras
        }
        # The contract check reads only the contract columns and keeps only the broken rows
        # (`_bad`: stage row id and reason); the rows are then written once, straight from
        # `_stage`, to raw or the quarantine (D13).
        check_sql = f"""
            select {", ".join(f"{values[n]} as {quote(n)}" for n in contract)}, s.rowid as _row
            from _stage s
        """
        con.execute(
            f"create temp table _bad as select _row, _reason "
            f"from ({checked_select(entity, check_sql)}) where _reason is not null"
        )
        con.execute(
            f"""
            create temp view _checked as
            select
                {", ".join(f"{v} as {quote(n)}" for n, v in values.items())},
                f.rel as _source_file,
                ({line_expr})::bigint as _source_line,
                {_literal(loaded_at.isoformat(sep=" "))}::timestamp as _loaded_at,
                f.batch_id as _batch_id,
                b._reason
            from _stage s
            join _files f on f.path = s.{quote(_FILE_COLUMN)}
            {lines_join}
            left join _bad b on b._row = s.rowid
            """
        )
        quarantined = dict(
            con.execute(
                "select f.rel, count(*) from _bad b join _files f "
                "on b._row >= f.first_row and b._row < f.first_row + f.n_good group by 1"
            ).fetchall()
        )
        per_file = {
            rel: (n_good, n_rejected)
            for rel, n_good, n_rejected in con.execute(
                "select rel, n_good, n_rejected from _files"
            ).fetchall()
        }

        con.execute("begin transaction")
        try:
            self._replace_file_rows(entity, loaded_at)
            for item in batch:
                n_good, n_rejected = per_file[item.rel]
                n_bad = quarantined.get(item.rel, 0)
                item.report.rows_read = n_good + n_rejected
                item.report.rows_quarantined = n_bad + n_rejected
                item.report.rows_loaded = n_good - n_bad
                self._log(item.report, item.sha, item.size, item.started)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
        for item in batch:
            report = item.report
            log.info(
                "%s: %s rows, %s loaded, %s quarantined (%s, %r%s)",
                report.source_file,
                report.rows_read,
                report.rows_loaded,
                report.rows_quarantined,
                report.encoding,
                report.delimiter,
                ", decimal comma" if report.decimal_comma else "",
            )

    def _replace_file_rows(self, entity: Entity, loaded_at: datetime) -> None:
        """Replace the rows of the files in `_files` by those in `_checked` and `_rejected`."""
        con = self.con
        table = quote(entity.name)
        if con.execute("select count(*) from _files where reloaded").fetchone()[0]:
            # a file never loaded before has no rows yet: skip the scans of the whole tables
            for schema in ("raw", "quarantine"):
                con.execute(
                    f"delete from {schema}.{table} "
                    f"where _source_file in (select rel from _files where reloaded)"
                )
        con.execute(
            "delete from quarantine.files "
            "where entity = ? and source_file in (select rel from _files)",
            [entity.name],
        )
        con.execute(
            f"insert into raw.{table} by name "
            f"select * exclude (_reason) from _checked where _reason is null"
        )
        con.execute(
            f"insert into quarantine.{table} by name "
            f"select * from _checked where _reason is not null"
        )
        con.execute(
            f"""
            insert into quarantine.{table}
                (_source_file, _source_line, _loaded_at, _batch_id, _reason, _raw_record)
            select f.rel, r.line, ?, f.batch_id, 'malformed_row: ' || r.message, r.csv_line
            from _rejected r join _files f using (path)
            order by f.rel, r.line
            """,
            [loaded_at],
        )

    def _release_orphans(self, entity: Entity) -> int:
        """Move rows quarantined only for a missing reference into raw once it has arrived."""
        if not entity.references:
            return 0
        table = quote(entity.name)
        only_references = " or ".join(
            f"_reason = 'unknown_{column}'" for column, _, _ in entity.references
        )
        con = self.con
        candidates = (
            f"select * exclude (_reason, _raw_record) from quarantine.{table} "
            f"where ({only_references})"
        )
        con.execute(
            f"create temp table _released as select * exclude (_reason) "
            f"from ({checked_select(entity, candidates)}) where _reason is null"
        )
        released = con.execute("select count(*) from _released").fetchone()[0]
        if released:
            batch_id = _new_id("release")
            now = _utcnow()
            con.execute("begin transaction")
            con.execute(
                f"delete from quarantine.{table} q using _released r "
                f"where q._source_file = r._source_file and q._source_line = r._source_line"
            )
            con.execute(
                f"insert into raw.{table} by name select * replace "
                f"(?::timestamp as _loaded_at, ? as _batch_id) from _released",
                [now, batch_id],
            )
            con.execute(
                "insert into raw._load_log (run_id, batch_id, entity, source_file, status, "
                "rows_read, rows_loaded, rows_quarantined, message, started_at, finished_at) "
                "values (?, ?, ?, null, 'released', 0, ?, ?, ?, ?, ?)",
                [
                    self.run_id,
                    batch_id,
                    entity.name,
                    released,
                    -released,
                    "rows released from the quarantine: their reference has arrived",
                    now,
                    now,
                ],
            )
            con.execute("commit")
            log.info("%s: %s quarantined rows released (reference arrived)", entity.name, released)
        con.execute("drop table _released")
        return released

    def _log(self, report: FileReport, sha: str, size: int, started: datetime) -> None:
        self.con.execute(
            """
            insert into raw._load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                self.run_id,
                report.batch_id,
                report.entity,
                report.source_file,
                sha,
                size,
                report.status,
                report.rows_read,
                report.rows_loaded,
                report.rows_quarantined,
                report.encoding,
                report.delimiter,
                report.decimal_comma,
                report.message,
                started,
                _utcnow(),
            ],
        )


def load_inbox(
    inbox: Path,
    warehouse: Path,
    entities: list[str] | None = None,
    run_id: str | None = None,
    memory_limit: str | None = None,
) -> list[EntityReport]:
    """Load every entity of the inbox (in reference order) into the warehouse.

    Args:
        inbox: the inbox folder.
        warehouse: the DuckDB file (created if missing).
        entities: names to load; default all.
        run_id: id recorded in `raw._load_log`; default a new one.
        memory_limit: DuckDB memory limit, e.g. `2750MB`.
    """
    from dagster_project.lib.contract import load_order

    con = connect(warehouse, memory_limit)
    try:
        ensure_tables(con)
        loader = InboxLoader(con, inbox, run_id)
        return [
            loader.load_entity(entity)
            for entity in load_order()
            if entities is None or entity.name in entities
        ]
    finally:
        con.close()
