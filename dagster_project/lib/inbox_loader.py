"""Load inbox CSV files into the raw layer, accounting for every physical line.

For one entity (`inbox/<entity>/*.csv`), every file is

1. skipped when a load with the same sha256 is already in `raw._load_log` (idempotence);
2. scanned once (`csv_sniff.scan`: encoding, and its physical lines counted by us: a line ends
   at LF, CRLF or a lone CR) and sniffed (delimiter, header); a header with a reserved or
   repeated column name refuses the file;
3. read by DuckDB's `read_csv` with explicit settings (never a path pattern: each file is read
   through a link with a plain name), together with the next files of the entity written the
   same way; a file where DuckDB did not give exactly one record per line after the header is
   read again line by line (`csv_lines`): blank lines are counted, multi-line quoted fields
   joined, and a line that cannot be split is quarantined alone with its raw text (D70, D71);
4. checked against the contract in one SQL pass (required, enums, types, ranges, references),
   which keeps the broken rows' `_reason`;
5. written in one transaction per batch: the files' previous rows (a changed file) are deleted
   from raw and quarantine, valid rows go to `raw.<entity>`, the others to
   `quarantine.<entity>`, and each file's load is logged with its own batch id and counts,
   after checking `lines = 1 (header) + blank + continuation lines + rows`, and
   `rows = loaded + quarantined`.

A file that cannot be read at all is logged as `failed` and recorded in `quarantine.files`, with
a message saying what, where and what to do; the other files still load. Anything else in the
inbox (an unknown folder, a workbook, a link to nothing) is logged as `ignored` or `failed`.
A file loaded before and no longer in the inbox is logged as `vanished` (its rows stay);
`forget_file` removes its rows on purpose (D73). See docs/architecture.md for the tables'
shape, docs/decisions.md D12-D14 for the batches.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from dagster_project.lib import csv_lines, csv_sniff, parsing
from dagster_project.lib import warehouse as wh
from dagster_project.lib.contract import ENTITIES, ENTITY_BY_NAME, META_COLUMNS, Column, Entity
from dagster_project.lib.settings import Settings

if TYPE_CHECKING:
    from dagster_project.lib.run_inputs import FileHashes

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
    finished_at timestamp,
    lines_read bigint,
    lines_blank bigint,
    lines_continued bigint
)
"""
# columns added to `raw._load_log` after its first version (added to older warehouses)
_LOAD_LOG_ADDED = ("lines_read", "lines_blank", "lines_continued")

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

# Raw rows removed on purpose or by a reload (D204): one row per file and event, written in the
# transaction that deletes them. The incremental facts rebuild in full after a removal they have
# not seen (dbt macros/removals.sql); rows a reload brings back are not counted as removed, so a
# file that only grows never triggers it.
REMOVALS_DDL = """
create table if not exists raw._removals (
    source_table varchar,
    source_file varchar,
    rows_removed bigint,
    removed_at timestamp,
    batch_id varchar
)
"""


def record_removal(
    con, source_table: str, source_file: str, rows: int, removed_at: datetime, batch_id: str | None
) -> None:
    """Log in `raw._removals` that `rows` rows of `source_file` left `source_table` (D204);
    nothing when none did. Call it in the transaction that deletes them."""
    if rows:
        con.execute(
            "insert into raw._removals values (?, ?, ?, ?, ?)",
            [source_table, source_file, rows, removed_at, batch_id],
        )


# Column names the loader writes itself: a file with one of them in its header is refused (D72).
RESERVED_COLUMNS = frozenset([name for name, _ in META_COLUMNS] + ["_reason", "_raw_record"])


@dataclass
class FileReport:
    """What happened to one file (or other inbox entry).

    `status`: loaded, reloaded, skipped_unchanged, failed (a CSV file that cannot be read),
    ignored (not a CSV file of the contract), vanished (loaded before, gone from the inbox; its
    rows stay) or forgotten (its rows removed by `forget_file`). For a loaded file,
    `lines_read = 1 + lines_blank + lines_continued + rows_read` and
    `rows_read = rows_loaded + rows_quarantined`.
    """

    entity: str | None
    source_file: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    encoding: str | None = None
    delimiter: str | None = None
    decimal_comma: bool | None = None
    message: str | None = None
    batch_id: str | None = None
    lines_read: int | None = None
    lines_blank: int | None = None
    lines_continued: int | None = None


@dataclass
class EntityReport:
    """What happened to one entity's folder in one run."""

    entity: str
    run_id: str
    files: list[FileReport] = field(default_factory=list)
    rows_released: int = 0
    # entries of the folder that are not CSV files, and inbox-level entries logged by this load
    others: list[FileReport] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files) + self.rows_released

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files) - self.rows_released

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files + self.others if f.status == "failed"]

    @property
    def ignored(self) -> list[FileReport]:
        return [f for f in self.others if f.status == "ignored"]

    @property
    def vanished(self) -> list[FileReport]:
        return [f for f in self.others if f.status == "vanished"]

    def count(self, status: str) -> int:
        return sum(1 for f in self.files + self.others if f.status == status)


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def raw_value_sql(v: str, wide_spaces: bool = True) -> str:
    """DuckDB: the raw layer's value of a field `v` as read: trimmed, empty as null (D13), which
    is `nullif(trim(v), '')`. `trim` removes the space separators (Unicode Zs), decoding every
    value. `wide_spaces` False: the file holds no space separator but U+0020 (the scan found
    none, `csv_sniff.WIDE_SPACES`), so only a value that begins or ends with a space is trimmed
    (D405)."""
    trimmed = f"nullif(trim({v}), '')"
    if wide_spaces:
        return trimmed
    return f"case when prefix({v}, ' ') or suffix({v}, ' ') then {trimmed} else nullif({v}, '') end"


def connect(warehouse: Path | wh.PostgresTarget, memory_limit: str | None = None) -> wh.Connection:
    """Open the warehouse for writing, creating its folder and file if needed (D180)."""
    return wh.connect(warehouse, memory_limit=memory_limit)


def ensure_tables(con: duckdb.DuckDBPyConnection, entities: list[Entity] | None = None) -> None:
    """Create the raw and quarantine tables of the given entities (default: all) if missing."""
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists quarantine")
    con.execute(LOAD_LOG_DDL)
    con.execute(REMOVALS_DDL)
    for name in _LOAD_LOG_ADDED:
        con.execute(f"alter table raw._load_log add column if not exists {name} bigint")
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


def typed_expr(
    column: Column, value: str | None = None, business_timezone: str | None = None
) -> str:
    """DuckDB expression giving the typed value of a raw text column, null when it does not parse.

    These are the loader's acceptance rules: the value formats of lib/parsing.py, which the dbt
    parse macros and the GE raw batches run too (docs/inbox-contract.md, D75).
    """
    v = value or quote(column.name)
    if column.type in parsing.PARSED_TYPES:
        zone = business_timezone or Settings.from_env().business_timezone
        return parsing.parse_sql(column.type, v, scale=column.scale, business_timezone=zone)
    if column.type == "enum":
        values = ", ".join(_literal(x) for x in column.values)
        return f"case when {parsing.enum_sql(v)} in ({values}) then {parsing.enum_sql(v)} end"
    return v


def _invalid_reason(column: Column) -> str:
    """SQL for the reason of a value that did not parse: out of range (it has the type's shape
    but the staging type cannot hold it) or invalid."""
    kind = "invalid_enum" if column.type == "enum" else f"invalid_{column.type}"
    out_of_range = parsing.out_of_range_sql(column.type, quote(column.name))
    if out_of_range is None:
        return f"'{kind}:{column.name}'"
    return (
        f"(case when {out_of_range} then 'out_of_range_{column.type}:{column.name}' "
        f"else '{kind}:{column.name}' end)"
    )


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
            checks.append(f"when {typed} is null then {_invalid_reason(column)}")
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
    """The entity's CSV files in name order (`*.csv`, any case; links to files included)."""
    folder = inbox / entity.name
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file())


_WORKBOOKS = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".numbers")
_ARCHIVES = (".zip", ".gz", ".7z", ".rar", ".bz2", ".xz", ".tar", ".tgz")


NOT_REGULAR = "not a regular file (a pipe, socket or device): copy the data into a file"


def not_a_file(path: Path, folder: str) -> str | None:
    """Why an entry named like a data file cannot be read as one (a broken link, a folder, a
    pipe ...), or None for a file or a link to one; `folder` is where it lies (D74). The file
    sources say the same (sources/files.py)."""
    if path.is_symlink() and not path.exists():
        return (
            f"a link to {os.readlink(path)}, which does not exist: put the file itself "
            f"(or a working link) in {folder}/"
        )
    if path.is_dir():
        kind = path.suffix.lstrip(".").upper()
        return (
            f"a folder named like a {kind} file: the loader reads files only; move the {kind} "
            f"files inside it up into {folder}/"
        )
    if not path.is_file():
        return NOT_REGULAR
    return None


# complexity (PLR0911): one return per kind of inbox entry (D74)
def _other_entry(path: Path, folder: str) -> tuple[str, str]:  # noqa: PLR0911
    """(status, message) of an entity folder's entry that is not a readable CSV file."""
    name, suffix = path.name, path.suffix.lower()
    if suffix == ".csv":
        return "failed", not_a_file(path, folder) or NOT_REGULAR
    if name.startswith((".", "~$")):
        return "ignored", "a hidden or temporary file (left by an editor or a file manager)"
    if path.is_dir():
        return "ignored", (
            f"a subfolder: the loader reads {folder}/*.csv only; move its CSV files up into "
            f"{folder}/"
        )
    if suffix in _WORKBOOKS:
        return "ignored", (
            "a spreadsheet workbook: the inbox reads CSV text only; in Excel use "
            f"File → Save As → 'CSV UTF-8' and put the .csv file in {folder}/"
        )
    if suffix in _ARCHIVES:
        return "ignored", f"a compressed archive: unpack its CSV files into {folder}/"
    if suffix in (".txt", ".tsv", ".tab", ""):
        return "ignored", (
            f"not named .csv: if it is CSV text, rename it to {path.stem or name}.csv"
        )
    return "ignored", f"not a .csv file: the loader reads {folder}/*.csv only"


def folder_others(inbox: Path, entity: Entity) -> list[tuple[str, str, str]]:
    """(relative path, status, message) of every entry of the entity's folder that is not a
    CSV file the loader reads (D74), in name order."""
    folder = inbox / entity.name
    if not folder.is_dir():
        return []
    readable = set(list_files(inbox, entity))
    others = []
    for path in sorted(folder.iterdir()):
        if path in readable:
            continue
        status, message = _other_entry(path, entity.name)
        rel = path.relative_to(inbox).as_posix() + ("/" if path.is_dir() else "")
        others.append((rel, status, message))
    return others


def inbox_others(inbox: Path) -> list[tuple[str, str, str]]:
    """(relative path, status, message) of every inbox entry that is not an entity folder."""
    if not inbox.is_dir():
        return []
    names = [e.name for e in ENTITIES]
    others = []
    for path in sorted(inbox.iterdir()):
        if path.name in ENTITY_BY_NAME and path.is_dir():
            continue
        if path.name.startswith("."):
            message = "a hidden entry at the top of the inbox; not read"
        elif path.is_dir():
            close = difflib.get_close_matches(path.name.lower(), names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}/?)" if close else ""
            message = (
                f"not an inbox folder{hint}: the loader reads the folders "
                f"{', '.join(n + '/' for n in names)}; rename the folder or move its files"
            )
        else:
            message = (
                "a file at the top of the inbox: the loader reads <entity>/*.csv only; move it "
                "into its entity's folder (e.g. calls/)"
            )
        rel = path.name + ("/" if path.is_dir() else "")
        others.append((rel, "ignored", message))
    return others


def inbox_problem(inbox: Path) -> str | None:
    """Why the inbox cannot be loaded (missing, or no CSV file in any entity folder), or None."""
    if not inbox.is_dir():
        return (
            f"The inbox folder {inbox} does not exist. Write the demo inbox with `voronka demo "
            f"--out {inbox}`, or point --inbox (or VORONKA_INBOX) at a folder laid out as in the "
            "README's inbox contract."
        )
    if not any(list_files(inbox, entity) for entity in ENTITIES):
        return (
            f"The inbox folder {inbox} holds no CSV file in any entity folder "
            f"({', '.join(e.name for e in ENTITIES)}): nothing to load. Put the files there "
            "(README, inbox contract), or point --inbox (or VORONKA_INBOX) at the right folder."
        )
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_utcnow():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


# Files of one entity read together by one `read_csv`, up to this many bytes per read (D12).
BATCH_BYTES = 256 << 20
_TEMP_TABLES = ("_stage", "_files", "_malformed", "_bad", "_line_text", "_split")
# the stage's own columns besides the file's fields (`c1`, `c2`, ...)
_PATH, _LINE = "_voronka_path", "_voronka_line"


class LoadError(Exception):
    """A file cannot be loaded; the message says what, where and what to do."""


@dataclass
class _Pending:
    """A new or changed file, scanned, with a valid header, waiting to be read."""

    path: Path
    rel: str
    scan: csv_sniff.FileScan
    started: datetime
    report: FileReport
    dialect: csv_sniff.CsvDialect
    header: list[str]  # normalized column names, in file order ('' for an unnamed column)

    @property
    def rewrite(self) -> bool:
        """Read from a UTF-8 copy with LF line ends: another encoding, or lone CRs."""
        counts = self.scan.counts
        return self.dialect.needs_transcoding or counts is None or counts.lone_cr > 0

    @property
    def batch_key(self) -> tuple | None:
        """Files with the same key can be read by one `read_csv` call; None: read it alone."""
        counts = self.scan.counts
        if self.rewrite or counts is None or counts.newline is None:
            return None
        if self.dialect.header_line != 1:
            return None
        return (
            self.dialect.encoding,
            self.dialect.delimiter,
            self.dialect.header_text,
            counts.newline,
        )


def plain_link(path: Path, folder: Path, n: int = 0) -> Path:
    """`path` under a plain name in `folder`: a symbolic link `f<n>.csv` to it. DuckDB's readers
    expand `*`, `?`, `[...]` and `{...}` in every path they are given, so a file is never read
    by its own name (D74): `deals[1].csv` would read `deals1.csv`."""
    target = folder / f"f{n:05d}.csv"
    os.symlink(os.path.abspath(path), target)
    return target


@dataclass
class _Readable:
    """A pending file as DuckDB reads it: a link with a plain name, or a UTF-8 copy."""

    item: _Pending
    path: str
    counts: csv_sniff.LineCounts
    trailing_blank: int = 0  # blank lines at the end of the file

    @property
    def fast(self) -> bool:
        return self.item.dialect.header_line == 1 and self.counts.newline is not None


def parse_header(dialect: csv_sniff.CsvDialect) -> list[str]:
    """The header's column names, stripped and lowercased, in file order.

    Raises:
        csv_sniff.UnreadableFile: an unclosed quote in the header.
    """
    text = dialect.header_text
    if text.count('"') % 2:
        raise csv_sniff.UnreadableFile(
            f"line {dialect.header_line} (the header): a quote is never closed; fix the header "
            "row so that each column name is plain or quoted whole"
        )
    cells = next(csv.reader([text], delimiter=dialect.delimiter))
    return [cell.strip().strip('"').strip().lower() for cell in cells]


class InboxLoader:
    """Loads inbox folders into one warehouse connection (the single writer).

    Files are read and checked in a DuckDB scratch (`self.con`), and their rows reach the
    warehouse (`self.target`) through a sink (`lib/sink.py`, D184): on DuckDB the scratch is the
    warehouse connection itself, on PostgreSQL a private DuckDB whose rows go over by COPY.
    Call `close()` at the end (it drops the scratch of a PostgreSQL load).
    """

    def __init__(
        self,
        con: wh.Connection,
        inbox: Path,
        run_id: str | None = None,
        batch_bytes: int = BATCH_BYTES,
        hashes: FileHashes | None = None,
        memory_limit: str | None = None,
    ):
        self.target = con
        self.inbox = Path(inbox)
        self.run_id = run_id or _new_id("run")
        self.batch_bytes = batch_bytes
        # a file whose stat did not change since it was hashed is not read again (D151)
        self.hashes = hashes
        self.memory_limit = memory_limit
        self._sink = None

    @property
    def sink(self):
        if self._sink is None:
            from dagster_project.lib.sink import sink_for

            self._sink = sink_for(self.target, self.memory_limit)
        return self._sink

    @property
    def con(self) -> wh.Connection:
        """The DuckDB scratch where files are read and checked (the warehouse on DuckDB)."""
        return self.sink.scratch

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    # ---- public

    # complexity (C901): the batch loop with its fallback to single files and the accounting (D12,
    # D70)
    def load_entity(  # noqa: C901
        self, entity: Entity, progress: Callable[[FileReport], None] | None = None
    ) -> EntityReport:
        """Load every new or changed file of one entity; release late references; log the
        folder's other entries, the inbox's unknown entries (once per run) and the files that
        vanished.

        Consecutive files (in name order) written the same way (UTF-8, same delimiter, same
        header line, same line ends) are read, checked and written together, up to
        `batch_bytes` per batch; each still gets its own report, batch id and `_load_log` row
        (D12).
        """
        ensure_tables(self.target, [entity])
        report = EntityReport(entity=entity.name, run_id=self.run_id)
        report.rows_released = self._release_orphans(entity)
        for other in self._log_inbox_others():
            report.others.append(other)
            if progress:
                progress(other)
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
            size = sum(p.scan.size for p in batch) + pending.scan.size
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
        for rel, status, message in folder_others(self.inbox, entity):
            other = self._log_other(entity.name, rel, status, message)
            report.others.append(other)
            if progress:
                progress(other)
        present = {f.source_file for f in report.files}
        present |= {o.source_file for o in report.others if o.entity == entity.name}
        self._forget_refusals(entity.name, present)
        for other in self._log_vanished(entity, present):
            report.others.append(other)
            if progress:
                progress(other)
        return report

    # ---- entries that are not loaded

    def _log_other(self, entity: str | None, rel: str, status: str, message: str) -> FileReport:
        """Log an inbox entry that is not loaded (`ignored` or `failed`), and record it in
        `quarantine.files` (the run summary lists them)."""
        report = FileReport(entity, rel, status, message=message)
        self._log(report, None, None, _utcnow())
        self.target.execute(
            "delete from quarantine.files where entity is not distinct from ? and source_file = ?",
            [entity, rel],
        )
        self.target.execute(
            "insert into quarantine.files values (?, ?, null, ?, ?, null)",
            [entity, rel, message, _utcnow()],
        )
        if status == "failed":
            log.error("%s not loaded: %s", rel, message)
        else:
            log.warning("%s ignored: %s", rel, message)
        return report

    def _log_inbox_others(self) -> list[FileReport]:
        """The inbox's entries that are not entity folders, logged once per run."""
        already = self.target.execute(
            "select count(*) from raw._load_log where run_id = ? and entity is null",
            [self.run_id],
        ).fetchone()[0]
        if already:
            return []
        others = inbox_others(self.inbox)
        self._forget_refusals(None, {rel for rel, _, _ in others})
        return [self._log_other(None, rel, status, message) for rel, status, message in others]

    def _forget_refusals(self, entity: str | None, present: set[str]) -> None:
        """Drop the `quarantine.files` rows of entries that are no longer in the inbox."""
        rows = self.target.execute(
            "select source_file from quarantine.files where entity is not distinct from ?",
            [entity],
        ).fetchall()
        for (rel,) in rows:
            if rel not in present:
                self.target.execute(
                    "delete from quarantine.files "
                    "where entity is not distinct from ? and source_file = ?",
                    [entity, rel],
                )

    def _log_vanished(self, entity: Entity, present: set[str]) -> list[FileReport]:
        """Files whose rows are in the warehouse but which are no longer in the inbox: a log
        line and a `vanished` load-log row each; their rows stay (D73)."""
        loaded = self.target.execute(
            """
            select source_file, rows_loaded, rows_quarantined from (
                select source_file, status, rows_loaded, rows_quarantined, row_number() over (
                    partition by source_file order by finished_at desc) as n
                from raw._load_log
                where entity = ? and status in ('loaded', 'reloaded', 'forgotten')
            ) as latest
            where n = 1 and status <> 'forgotten'
            order by source_file
            """,
            [entity.name],
        ).fetchall()
        reports = []
        for rel, rows_loaded, rows_quarantined in loaded:
            if rel in present:
                continue
            message = (
                f"loaded before ({rows_loaded} rows to raw, {rows_quarantined} quarantined at "
                "its last load), no longer in the inbox: its rows stay in the warehouse; "
                f"`voronka forget-file {rel}` removes them"
            )
            report = FileReport(entity.name, rel, "vanished", message=message)
            self._log(report, None, None, _utcnow())
            log.warning("%s vanished: %s", rel, message)
            reports.append(report)
        return reports

    # ---- one file: skip, scan, check the header

    def _prepare(self, entity: Entity, path: Path) -> FileReport | _Pending:
        """A report for a file that is skipped or refused, else the file ready to be read."""
        rel = path.relative_to(self.inbox).as_posix()
        started = _utcnow()
        batch_id = _new_id("batch")
        try:
            sha = self.hashes.sha256(path) if self.hashes else file_sha256(path)
        except OSError as exc:
            message = f"cannot be read ({exc.strerror}); check that the file is readable"
            return self._fail(entity, rel, None, None, started, batch_id, message)
        previous = self.target.execute(
            """
            select status, sha256 from raw._load_log
            where entity = ? and source_file = ? and status in ('loaded', 'reloaded', 'forgotten')
            order by finished_at desc limit 1
            """,
            [entity.name, rel],
        ).fetchone()
        loaded_before = previous is not None and previous[0] != "forgotten"
        if loaded_before and previous[1] == sha:
            report = FileReport(entity.name, rel, "skipped_unchanged")
            self._log(report, sha, path.stat().st_size, started)
            return report
        status = "reloaded" if loaded_before else "loaded"
        try:
            scan = csv_sniff.scan(path, sha256=sha)
        except OSError as exc:
            message = f"cannot be read ({exc.strerror}); check that the file is readable"
            return self._fail(entity, rel, sha, None, started, batch_id, message)
        except csv_sniff.UnreadableFile as exc:
            return self._fail(entity, rel, sha, path.stat().st_size, started, batch_id, str(exc))
        try:
            dialect = csv_sniff.sniff(path, encoding=scan.encoding)
            header = parse_header(dialect)
            self._check_header(entity, dialect, header)
            if scan.counts is not None and scan.counts.free_byte is None:
                raise csv_sniff.UnreadableFile(
                    "holds the control characters 0x1C-0x1F, which CSV text never does: "
                    "export the data as CSV text again"
                )
        except csv_sniff.UnreadableFile as exc:
            lines = scan.counts.lines if scan.counts else None
            return self._fail(
                entity, rel, scan.sha256, scan.size, started, batch_id, str(exc), lines=lines
            )
        report = FileReport(
            entity.name,
            rel,
            status,
            encoding=dialect.encoding,
            delimiter=dialect.delimiter,
            decimal_comma=dialect.decimal_comma,
            batch_id=batch_id,
        )
        return _Pending(path, rel, scan, started, report, dialect, header)

    def _fail(
        self,
        entity: Entity,
        rel: str,
        sha: str | None,
        size: int | None,
        started: datetime,
        batch_id: str | None,
        message: str,
        lines: int | None = None,
    ) -> FileReport:
        """Log a file that cannot be loaded and record it in `quarantine.files`."""
        name = Path(rel).name
        if not message.startswith(name):
            message = f"{name}: {message}"
        report = FileReport(
            entity.name, rel, "failed", message=message, batch_id=batch_id, lines_read=lines
        )
        self._log(report, sha, size, started)
        self.target.execute(
            "delete from quarantine.files where entity = ? and source_file = ?",
            [entity.name, rel],
        )
        self.target.execute(
            "insert into quarantine.files values (?, ?, ?, ?, ?, ?)",
            [entity.name, rel, sha, message, _utcnow(), batch_id],
        )
        log.error("%s not loaded: %s", rel, message)
        return report

    def _check_header(
        self, entity: Entity, dialect: csv_sniff.CsvDialect, header: list[str]
    ) -> None:
        where = f"line {dialect.header_line} (the header)"
        names = set(header)
        if not names & set(entity.column_names):
            raise csv_sniff.UnreadableFile(
                f"{where} has no {entity.name} columns (expected e.g. "
                f"{', '.join(entity.required_columns)}; found {', '.join(header[:6])}): the "
                "first line that is not blank must name the columns"
            )
        missing = [c for c in entity.required_columns if c not in names]
        if missing:
            raise csv_sniff.UnreadableFile(
                f"{where}: required column(s) missing: {', '.join(missing)}; add them "
                "(README: inbox contract)"
            )
        reserved = [name for name in header if name in RESERVED_COLUMNS]
        if reserved:
            raise csv_sniff.UnreadableFile(
                f"{where}: column(s) {', '.join(reserved)} are reserved for the loader's own "
                "bookkeeping (every raw row gets them); rename or delete these columns"
            )
        seen: dict[str, int] = {}
        for position, name in enumerate(header, start=1):
            if name and name in seen:
                raise csv_sniff.UnreadableFile(
                    f"{where}: columns {seen[name]} and {position} are both named {name!r}; "
                    "rename or delete one of them"
                )
            seen[name] = position

    # ---- a batch of files: read, check, write

    def _load_batch(self, entity: Entity, batch: list[_Pending]) -> list[FileReport]:
        """Load the files together; when that fails, load them one by one, so that only the
        file that cannot be read fails."""
        try:
            with tempfile.TemporaryDirectory(prefix="voronka_") as tmp:
                readable = [self._readable(item, Path(tmp), n) for n, item in enumerate(batch)]
                return self._read_and_write(entity, readable)
        except (duckdb.Error, LoadError, csv_sniff.UnreadableFile) as exc:
            if len(batch) > 1:
                log.warning(
                    "%s: %d files could not be loaded together (%s); loading them one by one",
                    entity.name,
                    len(batch),
                    str(exc).splitlines()[0],
                )
                return [report for item in batch for report in self._load_batch(entity, [item])]
            item = batch[0]
            return [
                self._fail(
                    entity,
                    item.rel,
                    item.scan.sha256,
                    item.scan.size,
                    item.started,
                    item.report.batch_id,
                    _explain(exc),
                    lines=item.scan.counts.lines if item.scan.counts else None,
                )
            ]

    def _readable(self, item: _Pending, tmp: Path, n: int) -> _Readable:
        """The file under a plain name in `tmp` (paths are never patterns, D74): a link, or a
        UTF-8 copy with LF line ends."""
        if not item.rewrite:
            target = plain_link(item.path, tmp, n)
            counts = item.scan.counts
            trailing = csv_sniff.trailing_blank_lines(target, counts.lines)
            return _Readable(item, str(target), counts, trailing)
        target = tmp / f"f{n:05d}.csv"
        csv_sniff.transcode_to_utf8(
            item.path, target, item.dialect.encoding, normalize_newlines=True
        )
        counts = csv_sniff.count_lines(target)
        if item.scan.counts is not None and counts.lines != item.scan.counts.lines:
            raise LoadError(
                f"{counts.lines} lines after conversion to UTF-8, {item.scan.counts.lines} "
                "counted in the file (a loader bug: please report it with the file)"
            )
        if counts.free_byte is None:
            raise csv_sniff.UnreadableFile(
                "holds the control characters 0x1C-0x1F, which CSV text never does: export "
                "the data as CSV text again"
            )
        return _Readable(
            item, str(target), counts, csv_sniff.trailing_blank_lines(target, counts.lines)
        )

    def _read_and_write(self, entity: Entity, batch: list[_Readable]) -> list[FileReport]:
        try:
            n_fields = len(batch[0].item.header)
            fields = ", ".join(f"c{i} varchar" for i in range(1, n_fields + 1))
            self.con.execute(
                f"create temp table _stage ({_PATH} varchar, {_LINE} bigint, {fields})"
            )
            self.con.execute(
                "create temp table _malformed (path varchar, line bigint, raw varchar, "
                "reason varchar)"
            )
            self.con.execute(
                "create temp table _files (path varchar, rel varchar, batch_id varchar, "
                "reloaded boolean, first_row bigint, last_row bigint, n_good bigint, "
                "n_malformed bigint, "
                "lines bigint, blank bigint, continued bigint)"
            )
            self.con.executemany(
                "insert into _files values (?, ?, ?, ?, null, null, 0, 0, ?, 0, 0)",
                [
                    [
                        r.path,
                        r.item.rel,
                        r.item.report.batch_id,
                        r.item.report.status == "reloaded",
                        r.counts.lines,
                    ]
                    for r in batch
                ],
            )
            slow = self._stage_fast(batch, n_fields)
            for readable in slow:
                self._stage_slow(readable, n_fields)
            self._write(entity, batch)
        finally:
            self.con.execute("drop view if exists _checked")
            self.con.execute("drop view if exists _lines")
            for table in _TEMP_TABLES:
                self.con.execute(f"drop table if exists {table}")
        return [r.item.report for r in batch]

    def _stage_fast(self, batch: list[_Readable], n_fields: int) -> list[_Readable]:
        """Read the files with DuckDB's CSV reader into `_stage`; keep a file's rows only when
        they are exactly one record per line after the header. Return the other files (D70).

        Values are stored trimmed, empty strings as null (the raw layer's values), so that the
        check and the writes do not trim every value again (D13)."""
        fast = [r for r in batch if r.fast]
        if not fast:
            return list(batch)
        dialect = fast[0].item.dialect
        columns = ", ".join(f"'c{i}': 'varchar'" for i in range(1, n_fields + 1))
        wide = any(r.item.scan.wide_spaces for r in fast)
        values = ", ".join(raw_value_sql(f"c{i}", wide) for i in range(1, n_fields + 1))
        try:
            self.con.execute(
                f"""
                insert into _stage
                select filename, null, {values}
                from read_csv(
                    [{", ".join(_literal(r.path) for r in fast)}],
                    columns = {{{columns}}},
                    header = false,
                    skip = 1,
                    auto_detect = false,
                    delim = {_literal(dialect.delimiter)},
                    quote = '"',
                    escape = '"',
                    new_line = {_literal(fast[0].counts.newline.encode("unicode_escape").decode())},
                    max_line_size = {csv_lines.MAX_LINE_BYTES},
                    ignore_errors = true,
                    filename = true
                )
                """
            )
        except duckdb.Error as exc:
            log.info("reading line by line after DuckDB's reader stopped: %s", _first_line(exc))
            self.con.execute("delete from _stage")
            return list(batch)
        counts = {
            path: (n, first, last)
            for path, n, first, last in self.con.execute(
                f"select {_PATH}, count(*), min(rowid), max(rowid) from _stage group by 1"
            ).fetchall()
        }
        slow = [r for r in batch if not r.fast]
        for readable in fast:
            n, first, last = counts.get(readable.path, (0, None, None))
            # one record per line after the header, but for blank lines at the end
            expected = readable.counts.lines - 1 - readable.trailing_blank
            whole = n == expected and (n == 0 or last - first + 1 == n)
            if whole:
                self.con.execute(
                    "update _files set n_good = ?, first_row = ?, last_row = ?, blank = ? "
                    "where path = ?",
                    [n, first, last, readable.trailing_blank, readable.path],
                )
            else:
                self.con.execute(f"delete from _stage where {_PATH} = ?", [readable.path])
                slow.append(readable)
        return slow

    def _stage_slow(self, readable: _Readable, n_fields: int) -> None:
        """Read one file line by line (`csv_lines`) into `_stage` and `_malformed`."""
        item, con = readable.item, self.con
        con.execute("drop view if exists _lines")
        for table in ("_line_text", "_split"):
            con.execute(f"drop table if exists {table}")
        try:
            lines = csv_lines.read_lines(con, readable.path, readable.counts.free_byte)
        except duckdb.Error as exc:
            if "maximum line size" in str(exc).lower():
                raise LoadError(
                    f"a line is longer than {csv_lines.MAX_LINE_BYTES >> 20} MiB: not CSV "
                    "text the inbox can take; split the value or export the data again"
                ) from exc
            raise
        if lines != readable.counts.lines:
            raise LoadError(
                f"{lines} lines read, {readable.counts.lines} counted when the file was "
                "scanned: was it changed during the load? Load again; if it was not, this is "
                "a loader bug (please report it with the file)"
            )
        counts = csv_lines.split_lines(
            con,
            header_line=item.dialect.header_line,
            delimiter=item.dialect.delimiter,
            n_fields=n_fields,
        )
        values = ", ".join(
            raw_value_sql(f"fields[{i}]", item.scan.wide_spaces) for i in range(1, n_fields + 1)
        )
        con.execute(
            f"insert into _stage select ?, ln, {values} from _split where reason is null "
            "order by ln",
            [readable.path],
        )
        con.execute(
            "insert into _malformed select ?, ln, text, reason from _split "
            "where reason <> 'blank' order by ln",
            [readable.path],
        )
        first, last, n = con.execute(
            f"select min(rowid), max(rowid), count(*) from _stage where {_PATH} = ?",
            [readable.path],
        ).fetchone()
        if n and last - first + 1 != n:
            raise LoadError(f"{item.rel}: its rows are not one run in the stage (a loader bug)")
        con.execute(
            "update _files set n_good = ?, n_malformed = ?, blank = ?, continued = ?, "
            "first_row = ?, last_row = ? where path = ?",
            [
                counts.records,
                counts.malformed,
                counts.blank,
                counts.continued,
                first,
                last,
                readable.path,
            ],
        )
        if counts.blank or counts.continued or counts.malformed:
            log.info(
                "%s: read line by line: %s blank line(s), %s line(s) inside multi-line "
                "values, %s malformed",
                item.rel,
                counts.blank,
                counts.continued,
                counts.malformed,
            )

    def _write(self, entity: Entity, batch: list[_Readable]) -> None:
        con = self.con
        header = batch[0].item.header
        contract = entity.column_names
        by_name: dict[str, str] = {}
        unnamed: list[tuple[str, str]] = []
        for position, name in enumerate(header, start=1):
            if name:
                by_name[name] = f"c{position}"
            else:
                unnamed.append((f"unnamed_{position}", f"c{position}"))
        if unnamed:
            # a column without a name is kept when it holds a value, ignored when empty (D72)
            filled = con.execute(
                f"select {', '.join(f'count({c})' for _, c in unnamed)} from _stage"
            ).fetchone()
            by_name.update({name: c for (name, c), n in zip(unnamed, filled, strict=True) if n})
        extras = [n for n in by_name if n not in contract]
        for name in extras:
            for schema in ("raw", "quarantine"):
                self.target.execute(
                    f"alter table {schema}.{quote(entity.name)} "
                    f"add column if not exists {quote(name)} varchar"
                )
        self._mirror_references(entity)
        loaded_at = _utcnow()

        values = {
            name: f"s.{quote(by_name[name])}" if name in by_name else "null::varchar"
            for name in contract + extras
        }
        # The contract check reads only the contract columns and keeps only the broken rows
        # (`_bad`: stage row id, file and reason); the rows are then written once, straight
        # from `_stage`, to raw or the quarantine (D13).
        check_sql = f"""
            select {", ".join(f"{values[n]} as {quote(n)}" for n in contract)},
                s.rowid as _row
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
                coalesce(s.{_LINE}, s.rowid - f.first_row + 2)::bigint as _source_line,
                {_literal(loaded_at.isoformat(sep=" "))}::timestamp as _loaded_at,
                f.batch_id as _batch_id,
                b._reason
            from _stage s
            join _files f on f.path = s.{_PATH}
            left join _bad b on b._row = s.rowid
            """
        )
        # a file's rows are one run of stage row ids (checked when staged)
        quarantined = dict(
            con.execute(
                "select f.path, count(*) from _bad b join _files f "
                "on b._row between f.first_row and f.last_row group by 1"
            ).fetchall()
        )
        per_file = {
            row[0]: row[1:]
            for row in con.execute(
                "select path, n_good, n_malformed, lines, blank, continued from _files"
            ).fetchall()
        }
        for readable in batch:
            n_good, n_malformed, lines, blank, continued = per_file[readable.path]
            report = readable.item.report
            report.rows_read = n_good + n_malformed
            report.rows_quarantined = quarantined.get(readable.path, 0) + n_malformed
            report.rows_loaded = n_good - quarantined.get(readable.path, 0)
            report.lines_read, report.lines_blank, report.lines_continued = lines, blank, continued
            # every physical line is the header, blank, part of a row, or a row (D70)
            if lines != 1 + blank + continued + report.rows_read:
                raise LoadError(
                    f"{lines} lines but 1 header + {blank} blank + {continued} continuation "
                    f"+ {report.rows_read} rows (a loader bug: please report it with the file)"
                )

        self.target.execute("begin transaction")
        try:
            self._replace_file_rows(entity, loaded_at)
            for readable in batch:
                item = readable.item
                self._log(item.report, item.scan.sha256, item.scan.size, item.started)
        except BaseException:
            self.target.execute("rollback")
            raise
        self.target.execute("commit")
        for readable in batch:
            report = readable.item.report
            log.info(
                "%s: %s lines, %s rows, %s loaded, %s quarantined (%s, %r%s)",
                report.source_file,
                report.lines_read,
                report.rows_read,
                report.rows_loaded,
                report.rows_quarantined,
                report.encoding,
                report.delimiter,
                ", decimal comma" if report.decimal_comma else "",
            )

    def _replace_file_rows(self, entity: Entity, loaded_at: datetime) -> None:
        """Replace the rows of the files in `_files` by those in `_checked` and `_malformed`
        (the scratch's), in the warehouse (the sink, D184)."""
        target, table = self.target, quote(entity.name)
        files = self.con.execute("select rel, reloaded from _files order by rel").fetchall()
        reloaded = [rel for rel, again in files if again]
        placeholders = ", ".join("?" for _ in reloaded)
        columns = ", ".join(["_source_file", *(quote(c.name) for c in entity.columns)])
        if reloaded:
            # the reloaded files' rows as they were, to find those the new versions drop (D204)
            target.execute(
                f"create temp table _replaced as select {columns} from raw.{table} "
                f"where _source_file in ({placeholders})",
                reloaded,
            )
            # a file never loaded before has no rows yet: skip the scans of the whole tables
            for schema in ("raw", "quarantine"):
                target.execute(
                    f"delete from {schema}.{table} where _source_file in ({placeholders})",
                    reloaded,
                )
        target.execute(
            "delete from quarantine.files "
            f"where entity = ? and source_file in ({', '.join('?' for _ in files)})",
            [entity.name, *(rel for rel, _ in files)],
        )
        self.sink.append(
            f"raw.{table}", "select * exclude (_reason) from _checked where _reason is null"
        )
        self.sink.append(f"quarantine.{table}", "select * from _checked where _reason is not null")
        self.sink.append(
            f"quarantine.{table}",
            f"""
            select f.rel as _source_file, m.line as _source_line,
                {_literal(loaded_at.isoformat(sep=" "))}::timestamp as _loaded_at,
                f.batch_id as _batch_id, m.reason as _reason, m.raw as _raw_record
            from _malformed m join _files f using (path)
            order by f.rel, m.line
            """,
        )
        if reloaded:
            removed = target.execute(
                f"select _source_file, count(*) from (select {columns} from _replaced "
                f"except select {columns} from raw.{table} where _source_file in ({placeholders})"
                ") as dropped group by 1 order by 1",
                reloaded,
            ).fetchall()
            batches = dict(self.con.execute("select rel, batch_id from _files").fetchall())
            for rel, rows in removed:
                record_removal(target, f"raw.{entity.name}", rel, rows, loaded_at, batches[rel])
            target.execute("drop table _replaced")

    def _mirror_references(self, entity: Entity) -> None:
        """On PostgreSQL, copy the ids the contract's references are checked against into the
        scratch (`raw.<entity>` there holds just those columns), as they are in the warehouse
        now; on DuckDB the scratch reads the warehouse's own tables (D184)."""
        if self.sink.same or not entity.references:
            return
        self.con.execute("create schema if not exists raw")
        columns: dict[str, list[str]] = {}
        for _, ref_entity, ref_column in entity.references:
            columns.setdefault(ref_entity, [])
            if ref_column not in columns[ref_entity]:
                columns[ref_entity].append(ref_column)
        for ref_entity, names in columns.items():
            ensure_tables(self.target, [ENTITY_BY_NAME[ref_entity]])
            self.sink.pull(
                f"raw.{quote(ref_entity)}",
                f"select {', '.join(quote(n) for n in names)} from raw.{quote(ref_entity)}",
            )

    def _release_orphans(self, entity: Entity) -> int:
        """Move rows quarantined only for a missing reference into raw once it has arrived."""
        if not entity.references:
            return 0
        table = quote(entity.name)
        only_references = " or ".join(
            f"_reason = 'unknown_{column}'" for column, _, _ in entity.references
        )
        con, target = self.con, self.target
        candidates = (
            f"select * exclude (_reason, _raw_record) from quarantine.{table} "
            f"where ({only_references})"
        )
        if not self.sink.same:
            # the quarantined rows that may be released, and the ids they need, into the
            # scratch, where the contract's SQL runs (D184)
            self.sink.pull(
                "_quarantined", f"select * from quarantine.{table} where ({only_references})"
            )
            candidates = (
                f"select * exclude (_reason, _raw_record) from _quarantined "
                f"where ({only_references})"
            )
            self._mirror_references(entity)
        con.execute(
            f"create temp table _released as select * exclude (_reason) "
            f"from ({checked_select(entity, candidates)}) where _reason is null"
        )
        released = con.execute("select count(*) from _released").fetchone()[0]
        if released:
            batch_id = _new_id("release")
            now = _utcnow()
            target.execute("begin transaction")
            if self.sink.same:
                target.execute(
                    f"delete from quarantine.{table} q using _released r "
                    f"where q._source_file = r._source_file and q._source_line = r._source_line"
                )
            else:
                target.execute(
                    "create temp table _released (_source_file text, _source_line bigint) "
                    "on commit drop"
                )
                self.sink.append("_released", "select _source_file, _source_line from _released")
                target.execute(
                    f"delete from quarantine.{table} q using _released r "
                    f"where q._source_file = r._source_file and q._source_line = r._source_line"
                )
            self.sink.append(
                f"raw.{table}",
                f"select * replace ({_literal(now.isoformat(sep=' '))}::timestamp as _loaded_at, "
                f"{_literal(batch_id)} as _batch_id) from _released",
            )
            target.execute(
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
            target.execute("commit")
            log.info("%s: %s quarantined rows released (reference arrived)", entity.name, released)
        con.execute("drop table _released")
        if not self.sink.same:
            con.execute("drop table _quarantined")
        return released

    def _log(
        self, report: FileReport, sha: str | None, size: int | None, started: datetime
    ) -> None:
        self.target.execute(
            """
            insert into raw._load_log (
                run_id, batch_id, entity, source_file, sha256, bytes, status, rows_read,
                rows_loaded, rows_quarantined, encoding, delimiter, decimal_comma, message,
                started_at, finished_at, lines_read, lines_blank, lines_continued
            ) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
                report.lines_read,
                report.lines_blank,
                report.lines_continued,
            ],
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _explain(exc: BaseException) -> str:
    """A person's message for a file that could not be read."""
    if isinstance(exc, LoadError | csv_sniff.UnreadableFile):
        return str(exc)
    return (
        "could not be read as CSV text; check that it is a CSV export (DuckDB said: "
        f"{_first_line(exc)})"
    )


def forget_file(warehouse: Path, inbox: Path, source_file: str) -> FileReport:
    """Remove a file's rows from raw and the quarantine on purpose, and log it (`forgotten`).

    `source_file` is the path as the load log and `_source_file` give it
    (`calls/2026-01.csv`), or a path to it under the inbox. After this, the file's rows, good
    and bad, are gone from every check; if the file comes back, it loads as a new file.

    Raises:
        LoadError: the file is still in the inbox, or the warehouse holds nothing of it.
    """
    rel = source_file.replace("\\", "/")
    candidate = Path(source_file)
    if candidate.is_absolute() or candidate.exists():
        try:
            rel = candidate.resolve().relative_to(inbox.resolve()).as_posix()
        except ValueError:
            pass
    if rel.startswith("./"):
        rel = rel[2:]
    entity_name = rel.split("/", 1)[0]
    entity = ENTITY_BY_NAME.get(entity_name)
    if entity is None or "/" not in rel:
        raise LoadError(
            f"{source_file}: not a path like <entity>/<file>.csv (the load log's "
            "source_file, e.g. calls/2026-01.csv)"
        )
    if (inbox / rel).exists() or (inbox / rel).is_symlink():
        raise LoadError(
            f"{rel} is still in the inbox ({inbox / rel}): the next run would load it again; "
            "move it out of the inbox first"
        )
    con = connect(warehouse)
    try:
        ensure_tables(con, [entity])
        table = quote(entity.name)
        n_raw = con.execute(
            f"select count(*) from raw.{table} where _source_file = ?", [rel]
        ).fetchone()[0]
        n_quarantined = con.execute(
            f"select count(*) from quarantine.{table} where _source_file = ?", [rel]
        ).fetchone()[0]
        logged = con.execute(
            "select count(*) from raw._load_log where entity = ? and source_file = ?",
            [entity.name, rel],
        ).fetchone()[0]
        if not (n_raw or n_quarantined or logged):
            known = [
                r[0]
                for r in con.execute(
                    "select distinct source_file from raw._load_log where entity = ? "
                    "and source_file is not null order by 1",
                    [entity.name],
                ).fetchall()
            ]
            close = difflib.get_close_matches(rel, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise LoadError(f"{rel}: the warehouse {warehouse} holds no rows of it{hint}")
        now = _utcnow()
        report = FileReport(
            entity.name,
            rel,
            "forgotten",
            rows_loaded=-n_raw,
            rows_quarantined=-n_quarantined,
            message=(
                f"removed on purpose (voronka forget-file): {n_raw} rows from raw."
                f"{entity.name}, {n_quarantined} from quarantine.{entity.name}"
            ),
            batch_id=_new_id("forget"),
        )
        con.execute("begin transaction")
        try:
            for schema in ("raw", "quarantine"):
                con.execute(f"delete from {schema}.{table} where _source_file = ?", [rel])
            record_removal(con, f"raw.{entity.name}", rel, n_raw, now, report.batch_id)
            con.execute(
                "delete from quarantine.files where entity = ? and source_file = ?",
                [entity.name, rel],
            )
            InboxLoader(con, inbox, run_id=_new_id("forget"))._log(report, None, None, now)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    finally:
        con.close()
    log.info("%s: %s", rel, report.message)
    return report


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
    loader = InboxLoader(con, inbox, run_id, memory_limit=memory_limit)
    try:
        ensure_tables(con)
        return [
            loader.load_entity(entity)
            for entity in load_order()
            if entities is None or entity.name in entities
        ]
    finally:
        loader.close()
        con.close()
