"""The raw writer of the API sources: page rows and extraction state, one transaction per page.

Every source writes into its own schema `raw_<source>`:

- `raw_<source>.<object>`: append-only, the API payload flattened one level: every top-level
  field is a `varchar` column (names lowercased; scalars as text, `true`/`false` for booleans,
  nested objects and lists (custom fields, `_embedded`, multi-fields) as JSON text), plus
  `_loaded_at` (UTC), `_batch_id` (one per page write), `_source` (the endpoint) and
  `_row_hash` (md5 of the record's canonical JSON). A field that appears later becomes a new
  column (schema evolution by `alter table ... add column`).
- `raw_<source>._state`: one row per extracted object: its state as JSON (cursor, page token,
  window, status), written in the same transaction as the page's rows.

A row is inserted only when its key and version (`updated_at`, or `_row_hash` for objects
without one) are not in the table yet, so a page read twice (a resumed run, the incremental
overlap) loads nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from dagster_project.lib import warehouse as wh
from dagster_project.lib.phones import normalize_phone
from dagster_project.lib.sql import identifier as quote

log = logging.getLogger("voronka.sources.state")

META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_loaded_at", "timestamp"),
    ("_batch_id", "varchar"),
    ("_source", "varchar"),
    ("_row_hash", "varchar"),
)
_RESERVED = {name for name, _ in META_COLUMNS}

STATE_DDL = """
create table if not exists {schema}._state (
    object varchar primary key,
    status varchar,
    state varchar,
    rows_loaded bigint,
    batch_id varchar,
    updated_at timestamp
)
"""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_batch_id(prefix: str = "page") -> str:
    return f"{prefix}_{utcnow():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


def column_name(key: str) -> str:
    """The raw column of an API field: lowercased; a name clashing with ours gets `api_`."""
    name = str(key).strip().lower()
    return f"api{name}" if name in _RESERVED else name


def as_text(value: Any) -> str | None:
    """A field value as raw text: scalars as text, nested values as compact JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def row_hash(record: Any) -> str:
    canonical = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.md5(canonical.encode()).hexdigest()


def flatten(record: dict[str, Any]) -> dict[str, str | None]:
    """One API record as a raw row: top-level fields as text columns, plus `_row_hash`."""
    row: dict[str, str | None] = {}
    for key, value in record.items():
        name = column_name(key)
        if name not in row:
            row[name] = as_text(value)
    row["_row_hash"] = row_hash(record)
    return row


def channel_row(
    entity_type: str,
    entity_id: str,
    channel: str,
    value: str,
    extra: tuple[str, Any],
    updated_at: str | None,
) -> dict[str, str | None]:
    """One phone or e-mail of a CRM contact/company as a `*_channels` row with its `_row_hash`:
    `value_normalized` is the normalised phone or the lowercased e-mail; `extra` is the
    source's own (column, value), e.g. amoCRM's `enum_code` (WORK, MOB)."""
    row = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "channel": channel,
        "value": value,
        "value_normalized": normalize_phone(value) if channel == "phone" else value.lower(),
        extra[0]: extra[1],
        "updated_at": updated_at,
    }
    return {**row, "_row_hash": row_hash(row)}


@dataclass(frozen=True)
class TableSpec:
    """A raw table: its name, the columns that identify an object, and its version column.

    Attributes:
        name: table name in `raw_<source>`.
        key: columns identifying one object (e.g. `("id",)`).
        version: the column of the object's version (`updated_at`); None: `_row_hash`.
    """

    name: str
    key: tuple[str, ...] = ("id",)
    version: str | None = "updated_at"

    @property
    def dedupe_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.key, self.version or "_row_hash")))


@dataclass
class WriteResult:
    received: int
    inserted: int


class RawWriter:
    """Writes pages of one source into `raw_<source>` (the warehouse's single writer
    connection, `lib/warehouse.py`): each page goes in as one Arrow table (`Connection.staged`:
    DuckDB reads it in place, PostgreSQL takes it by COPY, D184)."""

    def __init__(self, con: wh.Connection, source: str):
        self.con = con
        self.source = source
        self.schema = f"raw_{source}"
        self._columns: dict[str, set[str]] = {}
        con.execute(f"create schema if not exists {self.schema}")
        con.execute(STATE_DDL.format(schema=self.schema))

    # ------------------------------------------------------------------ state

    def get_state(self, obj: str) -> dict[str, Any] | None:
        row = self.con.execute(
            f"select state from {self.schema}._state where object = ?", [obj]
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def set_state(self, obj: str, state: dict[str, Any]) -> None:
        """Write the state alone (its own transaction)."""
        self.write(obj, {}, {}, state, endpoint="")

    # ------------------------------------------------------------------ writing

    def write(
        self,
        obj: str,
        tables: dict[str, list[dict[str, str | None]]],
        specs: dict[str, TableSpec],
        state: dict[str, Any] | None,
        endpoint: str,
    ) -> dict[str, WriteResult]:
        """Insert the new rows of each table and set `obj`'s state, in one transaction.

        Args:
            obj: the state's key (e.g. `leads`, `call_notes:contacts`).
            tables: flattened rows per table name (see `flatten`).
            specs: the `TableSpec` of each table in `tables`.
            state: the object's state after this page; None leaves it unchanged.
            endpoint: recorded in `_source`.
        """
        batch_id = new_batch_id()
        loaded_at = utcnow()
        frames = {name: _frame(rows, specs[name]) for name, rows in tables.items() if rows}
        results: dict[str, WriteResult] = {
            name: WriteResult(len(rows), 0) for name, rows in tables.items()
        }
        con = self.con
        con.execute("begin transaction")
        try:
            for name, frame in frames.items():
                spec = specs[name]
                self._ensure_table(spec, frame.column_names)
                view = f"_page_{uuid.uuid4().hex[:8]}"
                with con.staged(view, frame):
                    # the semi-join on the first key column keeps the anti-join's build side
                    # to the page's keys instead of the whole table
                    first = quote(spec.dedupe_columns[0])
                    dedupe = ", ".join(quote(c) for c in spec.dedupe_columns)
                    match = " and ".join(
                        f"t.{quote(c)} is not distinct from p.{quote(c)}"
                        for c in spec.dedupe_columns
                    )
                    names = ", ".join(quote(c) for c in frame.column_names)
                    inserted = con.changed(
                        f"""
                        insert into {self.schema}.{quote(name)}
                            ({names}, _loaded_at, _batch_id, _source)
                        select p.*, ?::timestamp as _loaded_at, ?::varchar as _batch_id,
                            ?::varchar as _source
                        from {view} as p
                        where not exists (
                            select 1 from (
                                select {dedupe} from {self.schema}.{quote(name)}
                                where {first} in (select {first} from {view})
                                    or {first} is null
                            ) as t
                            where {match}
                        )
                        """,
                        [loaded_at, batch_id, endpoint],
                    )
                results[name].inserted = int(inserted)
            if state is not None:
                con.execute(f"delete from {self.schema}._state where object = ?", [obj])
                con.execute(
                    f"insert into {self.schema}._state values (?, ?, ?, ?, ?, ?)",
                    [
                        obj,
                        state.get("status"),
                        json.dumps(state, ensure_ascii=False, default=str),
                        sum(r.inserted for r in results.values()),
                        batch_id,
                        loaded_at,
                    ],
                )
        except BaseException:
            con.execute("rollback")
            self._columns.clear()  # columns added in the rolled-back transaction are gone
            raise
        con.execute("commit")
        return results

    def row_count(self, table: str) -> int:
        if not self._table_exists(table):
            return 0
        return self.con.execute(f"select count(*) from {self.schema}.{quote(table)}").fetchone()[0]

    def ensure_empty_table(self, spec: TableSpec) -> None:
        """Create the table with its key and metadata columns if missing (an empty account)."""
        self._ensure_table(spec, [])

    # ------------------------------------------------------------------ DDL

    def _table_exists(self, table: str) -> bool:
        return bool(
            self.con.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [self.schema, table],
            ).fetchone()[0]
        )

    def _ensure_table(self, spec: TableSpec, columns: Iterable[str]) -> None:
        known = self._columns.get(spec.name)
        if known is None:
            key_columns = [c for c in spec.dedupe_columns if c not in _RESERVED]
            ddl = [f"{quote(c)} varchar" for c in key_columns]
            ddl += [f"{quote(n)} {t}" for n, t in META_COLUMNS]
            self.con.execute(
                f"create table if not exists {self.schema}.{quote(spec.name)} ({', '.join(ddl)})"
            )
            known = {
                row[0]
                for row in self.con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ?",
                    [self.schema, spec.name],
                ).fetchall()
            }
            self._columns[spec.name] = known
        for column in columns:
            if column not in known:
                self.con.execute(
                    f"alter table {self.schema}.{quote(spec.name)} "
                    f"add column if not exists {quote(column)} varchar"
                )
                known.add(column)


def _frame(rows: list[dict[str, str | None]], spec: TableSpec) -> pa.Table:
    """The page as an Arrow table of strings, without duplicates of the dedupe key."""
    seen: set[tuple] = set()
    unique: list[dict[str, str | None]] = []
    for row in rows:
        key = tuple(row.get(c) for c in spec.dedupe_columns)
        if key in seen:
            continue
        seen.add(key)
        unique.append(row)
    columns: dict[str, None] = {}
    for c in spec.dedupe_columns:
        columns.setdefault(c, None)
    for row in unique:
        for name in row:
            columns.setdefault(name, None)
    return pa.table(
        {name: pa.array([row.get(name) for row in unique], type=pa.string()) for name in columns}
    )
