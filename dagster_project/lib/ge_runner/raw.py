"""The raw layer: typed batches of ``raw.<entity>`` validated with the suite ``raw.<entity>``.

``raw.<entity>`` holds text (see ``docs/architecture.md``). The batch query adds one
``<column>__typed`` column per contract column that has a type to parse, by the value formats of
``lib/parsing.py`` (the loader's and the dbt macros' rules, D75; :func:`raw_select_sql`):
timestamps as naive UTC (naive text is read in the business time zone), dates and periods as
timestamps, decimals and integers as doubles, booleans as booleans, enums lowercased. A typed
value is null where the text does not parse, so "parses as its type" is
``expect_column_values_to_not_be_null`` on the typed column with a ``row_condition`` that the raw
column is not null, and ranges run on typed columns. The batch is the suite's ``meta.batch``:
``full``, or ``latest_load_run`` (the event tables and the versioned entities, whose expectations
judge each row alone, so the cost follows the new data, D380):
the rows of every batch loaded into the entity's raw table (``raw._load_log``) that the suite has
not validated yet, whoever loaded it and whatever crashed since (D82, :mod:`.batches`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dagster_project.lib import contract, parsing
from dagster_project.lib.ge_runner import reuse
from dagster_project.lib.ge_runner.batches import as_of_parameter, parse_as_of, pending_batches
from dagster_project.lib.ge_runner.chunks import validate_chunks
from dagster_project.lib.ge_runner.reading import (
    DEFAULT_CHUNK_ROWS,
    arrow_chunks,
    read_ahead,
    table_columns,
    to_pandas_types,
)
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.suites import AS_OF_PARAMETER, TYPED_SUFFIX, get_suite_file
from dagster_project.lib.settings import Settings
from dagster_project.lib.sql import identifier as quote

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

logger = logging.getLogger(__name__)


def typed_expr(column: contract.Column, business_timezone: str) -> str | None:
    """DuckDB SQL parsing a raw text column by the contract's value formats (lib/parsing.py, the
    loader's and the dbt macros' rules: D75); None for text-like types. Numbers as doubles and
    dates as timestamps, for pandas."""
    v = f"cast({quote(column.name)} as varchar)"
    if column.type == "enum":
        return parsing.enum_sql(v)
    if column.type not in parsing.PARSED_TYPES:
        return None
    parsed = parsing.parse_sql(
        column.type, v, scale=column.scale, business_timezone=business_timezone
    )
    if column.type in ("decimal", "integer"):
        return f"cast({parsed} as double)"
    if column.type in ("date", "period"):
        return f"cast({parsed} as timestamp)"
    return parsed


def typed_columns(entity: contract.Entity) -> list[str]:
    """Names of the ``__typed`` columns the batch query adds for an entity (contract order)."""
    return [f"{c.name}{TYPED_SUFFIX}" for c in entity.columns if typed_expr(c, "UTC")]


def raw_select_sql(
    entity: contract.Entity,
    present_columns: Sequence[str],
    source: str,
    *,
    where: str = "",
    business_timezone: str | None = None,
) -> str:
    """The batch query: every column of ``source`` plus the typed columns of ``entity``.

    Args:
        entity: the contract entity.
        present_columns: the columns ``source`` has; typed columns are added only for contract
            columns among them (a missing column is reported by the suite, not by a SQL error).
        source: a table or view name, already quoted if needed (e.g. ``raw."calls"``).
        where: an optional SQL condition selecting the batch.
        business_timezone: zone of naive timestamps (default: ``VORONKA_TIMEZONE``).
    """
    tz = business_timezone or Settings.from_env().business_timezone
    present = {c.lower() for c in present_columns}
    typed = [
        f"{expr} as {quote(c.name + TYPED_SUFFIX)}"
        for c in entity.columns
        if c.name in present and (expr := typed_expr(c, tz))
    ]
    select = ",\n    ".join(["*", *typed])
    sql = f"select\n    {select}\nfrom {source}"
    return f"{sql}\nwhere {where}" if where else sql


def type_raw_frame(
    entity: str, df: pd.DataFrame, *, business_timezone: str | None = None
) -> pd.DataFrame:
    """``df`` (text columns as in ``raw.<entity>``) plus its ``__typed`` columns.

    The same DuckDB query as for the warehouse, run on an in-memory connection, so tests and
    ad-hoc checks see exactly what the asset checks see.
    """
    import duckdb

    sql = raw_select_sql(
        contract.ENTITY_BY_NAME[entity],
        list(df.columns),
        "frame",
        business_timezone=business_timezone,
    )
    con = duckdb.connect()
    try:
        con.register("frame", df)
        return to_pandas_types(con.sql(sql).df())
    finally:
        con.close()


def validate_raw_frame(
    entity: str,
    df: pd.DataFrame,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate a raw-shaped DataFrame (text columns as in ``raw.<entity>``) with its suite.

    Args:
        entity: a contract entity, e.g. ``survey_responses``.
        df: its rows; ``_loaded_at`` is optional (it is the default ``as_of``).
        as_of: the as-of (ISO 8601 or datetime); default ``VORONKA_AS_OF``, then the latest
            ``_loaded_at``, then the latest typed timestamp of the frame.
        business_timezone: zone of naive timestamps (default ``VORONKA_TIMEZONE``).
        root: the expectations folder.
    """
    import pandas as pd

    settings = Settings.from_env()
    tz = business_timezone or settings.business_timezone
    typed = type_raw_frame(entity, df, business_timezone=tz)
    fallback = None
    if "_loaded_at" in typed.columns:
        fallback = pd.to_datetime(typed["_loaded_at"], errors="coerce").max()
    if fallback is None or pd.isna(fallback):
        stamps = [
            typed[c].max()
            for c in typed.columns
            if c.endswith(TYPED_SUFFIX) and pd.api.types.is_datetime64_any_dtype(typed[c].dtype)
        ]
        stamps = [s for s in stamps if not pd.isna(s)]
        fallback = max(stamps) if stamps else None
    parameters = {
        AS_OF_PARAMETER: as_of_parameter(parse_as_of(as_of or settings.as_of, tz), fallback)
    }
    key_columns = contract.ENTITY_BY_NAME[entity].key
    return validate_chunks(
        [typed], f"raw.{entity}", parameters=parameters, key_columns=key_columns, root=root
    )


def validate_raw_table(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
    results: Path | None = None,
) -> SuiteResult:
    """Validate ``raw.<entity>`` of a warehouse with the suite ``raw.<entity>``.

    The batch is the suite's ``meta.batch``: ``full``, or ``latest_load_run`` (rows whose
    ``_batch_id`` is a loaded batch the suite has not validated yet, :func:`pending_batches`;
    the result's ``batch_ids`` name them for :func:`record_validated`). When every batch has
    been validated, nothing is and the result passes with a note. Rows are read ``chunk_rows``
    at a time.

    Args:
        con: an open DuckDB connection (read-only is enough); the caller closes it.
        entity: a contract entity, e.g. ``calls``.
        as_of: see :mod:`.batches`; default ``VORONKA_AS_OF``, else the batch's latest
            ``_loaded_at``.
        business_timezone: zone of naive timestamps (default ``VORONKA_TIMEZONE``).
        chunk_rows: the most rows held in memory at once.
        root: the expectations folder.
        results: the folder of the results that may be given again (``reuse.results_folder``,
            D330); None: validate whatever was validated before.
    """
    started = time.perf_counter()
    settings = Settings.from_env()
    tz = business_timezone or settings.business_timezone
    ent = contract.ENTITY_BY_NAME[entity]
    suite_file = get_suite_file(f"raw.{entity}", root)
    columns = table_columns(con, "raw", entity)

    def nothing(note: str, success: bool = True) -> SuiteResult:
        logger.info("raw.%s: nothing validated: %s", entity, note)
        return SuiteResult(
            suite_name=suite_file.name,
            success=success,
            note=note,
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    if not columns:
        if ent.optional:
            return nothing(f"raw.{entity} does not exist (optional entity, no files loaded)")
        return nothing(f"raw.{entity} does not exist: run its load first", success=False)

    where, params, note, batch_ids = "", [], "", []
    if suite_file.batch == "latest_load_run":
        batch_ids, problem = pending_batches(con, entity, suite_file.name)
        if problem:
            note = f"{problem}; validated the whole table"
            logger.warning("raw.%s: %s", entity, note)
        elif not batch_ids:
            return nothing(f"every loaded batch of {entity} has been validated already")
        elif "_batch_id" in columns:
            where = f"_batch_id in ({', '.join('?' for _ in batch_ids)})"
            params = batch_ids
            note = f"{len(batch_ids)} file load(s) not validated before"
        else:
            note = "raw table has no _batch_id column; validated the whole table"
            batch_ids = []

    source = f"raw.{quote(entity)}"
    loaded_at = "max(_loaded_at)" if "_loaded_at" in columns else "null"
    count_sql = f"select count(*), {loaded_at} from {source}" + (f" where {where}" if where else "")
    [(total, latest_loaded_at)] = con.execute(count_sql, params).fetchall()
    parameters = {
        AS_OF_PARAMETER: as_of_parameter(parse_as_of(as_of or settings.as_of, tz), latest_loaded_at)
    }
    # the same rows, suite and code as the stored result's: that result again (D330)
    rows_sql = f"select * from {source}" + (f" where {where}" if where else "")
    fingerprint = None
    if results is not None:
        fingerprint = reuse.fingerprint(
            con,
            suite_file,
            [reuse.Batch(None, rows_sql, params, rows=total)],
            parameters=parameters,
            chunk_rows=chunk_rows,
            extra={"timezone": tz, "batch_ids": batch_ids, "note": note},
        )
    again = reuse.stored(
        results,
        suite_file.name,
        fingerprint,
        started=started,
        as_of=parameters[AS_OF_PARAMETER],
        batch_ids=batch_ids,
    )
    if again is not None:
        return again
    sql = raw_select_sql(ent, columns, source, where=where, business_timezone=tz)
    logger.debug("raw.%s: validating %s rows with\n%s", entity, f"{total:,}", sql)
    reader = con
    if con.engine != "duckdb":
        # the rows come out as text; their typed columns are the same DuckDB SQL, run in
        # memory on each chunk (one set of parsing rules, D75, D187)
        reader = _RawTyping(con, raw_select_sql(ent, columns, "frame", business_timezone=tz))
        sql = rows_sql
    result = validate_chunks(
        read_ahead(arrow_chunks(reader, sql, params, chunk_rows)),
        suite_file,
        parameters=parameters,
        key_columns=ent.key,
        note=note,
    )
    result.batch_ids = list(batch_ids)
    result.fingerprint = fingerprint
    result.duration_seconds = round(time.perf_counter() - started, 3)
    return result


class _RawTyping:
    """A warehouse that is not DuckDB (PostgreSQL): its raw rows stream out as they are, and
    each chunk gets its typed columns from `typed_sql` (over a relation named ``frame``) in an
    in-memory DuckDB, so the raw suites check exactly what they check on DuckDB (D187)."""

    def __init__(self, con, typed_sql: str) -> None:
        self.con = con
        self.typed_sql = typed_sql

    def arrow_reader(self, sql: str, params, batch_rows: int):
        import duckdb
        import pyarrow as pa

        rows = self.con.arrow_reader(sql, params, batch_rows)
        local = duckdb.connect()
        local.register("frame", pa.Table.from_batches([], rows.schema))
        schema = local.sql(self.typed_sql).fetch_arrow_table().schema
        local.unregister("frame")

        def typed():
            try:
                for batch in rows:
                    local.register("frame", pa.Table.from_batches([batch]))
                    table = local.sql(self.typed_sql).fetch_arrow_table()
                    local.unregister("frame")
                    yield from table.cast(schema).to_batches()
            finally:
                local.close()

        return pa.RecordBatchReader.from_batches(schema, typed())
