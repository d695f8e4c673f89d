"""Every other layer (staging, core, marts, finance): tables as dbt built them, and the suites'
query-defined batches.

:func:`validate_layer_table` reads the table (the whole table, or the rows of the batches not
validated yet, by ``_last_loaded_at``) and the suite's query-defined batches (``meta.queries``:
DuckDB queries whose result DataFrames are validated by the expectations naming them in
``meta.query``; see :class:`~.suites.Query`). A finance table that does not exist yet is skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib import warehouse as wh
from dagster_project.lib.ge_runner import gx_engine, reuse
from dagster_project.lib.ge_runner.batches import as_of_parameter, parse_as_of, pending_batches
from dagster_project.lib.ge_runner.chunks import SOURCE_COLUMNS, new_result, validate_chunks
from dagster_project.lib.ge_runner.reading import (
    DEFAULT_CHUNK_ROWS,
    TIMESTAMP_CLIP,
    arrow_chunks,
    chain,
    read_ahead,
    read_whole,
    table_column_types,
    table_columns,
    table_frames,
)
from dagster_project.lib.ge_runner.results import ExpectationResult, SuiteResult
from dagster_project.lib.ge_runner.suites import (
    AS_OF_PARAMETER,
    OPTIONAL_LAYERS,
    Query,
    SuiteFile,
    get_suite_file,
)
from dagster_project.lib.settings import Settings
from dagster_project.lib.sql import identifier as quote

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

_EPOCH = "1970-01-01T00:00:00"
KEPT_SUFFIX = "__staging_seen"  # the table a union keeps its staging view's state in (D408)
_NEVER = TIMESTAMP_CLIP[1] + "T00:00:00"


def warehouse_as_of(con: duckdb.DuckDBPyConnection, as_of: str | datetime | None = None) -> str:
    """The as-of of a validation of the modelled layers, naive UTC ISO text.

    ``as_of`` (or ``VORONKA_AS_OF``) when given, else the as-of dbt used
    (``intermediate.int_as_of.as_of_at``: the var, else the latest event), else a far-future
    bound (nothing is late against it).
    """
    settings = Settings.from_env()
    given = parse_as_of(as_of or settings.as_of, settings.business_timezone)
    fallback = None
    if given is None and table_columns(con, "intermediate", "int_as_of"):
        rows = con.execute("select max(as_of_at) from intermediate.int_as_of").fetchall()
        fallback = rows[0][0] if rows else None
    return as_of_parameter(given, fallback)


def _batch_since(
    con: duckdb.DuckDBPyConnection, suite_file: SuiteFile
) -> tuple[str, str, list[str]]:
    """(``$batch_since``, note, batch ids): where the suite's batch starts in ``_loaded_at``.

    ``full``: the epoch. ``latest_load_run``: the earliest ``_loaded_at`` of the rows of the
    batches of ``meta.entity`` the suite has not validated yet (:func:`pending_batches`), so a
    model row belongs to the batch when its ``loaded_column`` (``_last_loaded_at`` of
    incremental facts: the newest load of any of its versions) is at or after it. Nothing
    pending: a far-future bound, the batch is empty.
    """
    if suite_file.batch == "full":
        return _EPOCH, "", []
    entity = suite_file.meta["entity"]
    batch_ids, problem = pending_batches(con, entity, suite_file.name)
    if problem:
        return _EPOCH, f"{problem}; validated the whole table", []
    if not batch_ids:
        return _NEVER, f"every loaded batch of {entity} has been validated already", []
    marks = ", ".join("?" for _ in batch_ids)
    [(since,)] = con.execute(
        f"select min(_loaded_at) from raw.{quote(entity)} where _batch_id in ({marks})", batch_ids
    ).fetchall()
    if since is None:
        return _NEVER, f"the {entity} batches not validated yet left no rows in raw", batch_ids
    since_text = since.isoformat(timespec="microseconds")
    note = f"{len(batch_ids)} {entity} batch(es) not validated before: loaded since {since_text}"
    return since_text, note, batch_ids


def _query_parameters(query: Query, values: Mapping[str, str]) -> dict[str, str]:
    return {name: values[name] for name in query.parameters}


def _failed_query_results(
    specs: Sequence[tuple[int, Mapping[str, Any]]], query: str, message: str
) -> dict[int, ExpectationResult]:
    results = {}
    for i, spec in specs:
        result = new_result(spec)
        result.success = False
        result.exception = message
        result.query = query
        results[i] = result
    return results


def _part(
    suite_file: SuiteFile, query_name: str | None, specs: Sequence[tuple[int, Mapping[str, Any]]]
) -> SuiteFile:
    """The suite's expectations on one batch: the table's (``query_name`` None) or a query's."""
    return replace(
        suite_file,
        name=suite_file.name if query_name is None else f"{suite_file.name}.{query_name}",
        expectations=tuple(spec for _, spec in specs),
    )


def _kept_state(con: duckdb.DuckDBPyConnection, kept_in: str) -> tuple | None:
    """The one row ``keep_staging_seen`` kept beside the table ``kept_in``, or None."""
    schema, table = kept_in.split(".", 1)
    if not table_columns(con, schema, table + KEPT_SUFFIX):
        return None
    rows = con.execute(
        "select staging_schema, staging_table, staging_sql, source_system, raw_schema,"
        " raw_table, raw_rows, raw_loaded_until, removals_logged"
        f" from {quote(schema)}.{quote(table + KEPT_SUFFIX)}"
    ).fetchall()
    return rows[0] if len(rows) == 1 else None


def _raw_state(con: duckdb.DuckDBPyConnection, relation: str) -> tuple | None:
    """A raw table's state as a union's build follows it (D340): (rows, newest ``_loaded_at``,
    removals logged in ``raw._removals``, D204); None when it cannot be read."""
    try:
        [(rows, loaded_until)] = con.execute(
            f"select count(*), max(_loaded_at) from {relation}"
        ).fetchall()
        removals = 0
        if table_columns(con, "raw", "_removals"):
            [(removals,)] = con.execute("select count(*) from raw._removals").fetchall()
    except wh.database_errors():
        return None
    return rows, loaded_until, removals


def kept_rows(con: duckdb.DuckDBPyConnection, suite_file: SuiteFile) -> str | None:
    """The SQL of the rows of a staging view as a table already holds them (D408), or None:
    read the view.

    A suite's ``meta.rows_kept_in`` names a union (``intermediate.int_clients__unioned``) whose
    rows of one source are the view's rows: the union builds them from the view (D340), and its
    post-hook ``keep_staging_seen`` keeps, in ``<union>__staging_seen``, the view they are the
    rows of, the view's SQL and the state of the view's raw table when it built them (rows,
    newest load, removals logged: what D340's build follows). The rows are taken from the union
    only while all of that holds now: the same view with the same SQL (a code change or a view
    the build did not reach since reads the view), the same raw state (a load or a removal
    since, a failed or skipped build of the union after them: the view), and the same columns
    with the same types in the union. Only on DuckDB (PostgreSQL keeps nothing: the view)."""
    kept_in = suite_file.meta.get("rows_kept_in")
    if not kept_in or getattr(con, "engine", None) != "duckdb":
        return None
    state = _kept_state(con, kept_in)
    if state is None:
        return None
    view_schema, view, view_sql, system, raw_schema, raw_table, *raw_then = state
    now = con.execute(
        "select sql from duckdb_views() where schema_name = ? and view_name = ?",
        [view_schema, view],
    ).fetchall()
    schema, table = kept_in.split(".", 1)
    view_columns = table_column_types(con, view_schema, view)
    in_table = dict(table_column_types(con, schema, table))
    if (
        (view_schema, view) != (suite_file.layer, suite_file.table)
        or view_sql is None
        or now != [(view_sql,)]
        or not view_columns
        or any(in_table.get(name) != kind for name, kind in view_columns)
        or _raw_state(con, f"{quote(raw_schema)}.{quote(raw_table)}") != tuple(raw_then)
    ):
        return None
    selected = ", ".join(quote(name) for name, _ in view_columns)
    system_literal = "'" + str(system).replace("'", "''") + "'"
    return (
        f"(select {selected} from {quote(schema)}.{quote(table)}"
        f" where source_system = {system_literal})"
    )


def _in_place_of(sql: str, suite_file: SuiteFile, rows: str | None) -> str:
    """A query of the suite with its table (``<layer>.<table>``) read as ``rows`` (D408)."""
    if rows is None:
        return sql
    name = rf"(?<![\w.\"]){re.escape(suite_file.layer)}\.{re.escape(suite_file.table)}(?![\w.])"
    return re.sub(name, lambda _: rows, sql)


def _table_batch(
    suite_file: SuiteFile,
    part: SuiteFile,
    columns: Sequence[str],
    since: str,
    rows: str | None = None,
) -> tuple[str, dict[str, str] | None]:
    """The SQL (and its parameters) of the suite's table batch: the columns the expectations of
    ``part`` read (all when a table-shape expectation needs them), of the whole table or of the
    rows loaded since ``since`` (``latest_load_run``); of ``rows`` (:func:`kept_rows`) in
    place of the table when given."""
    key_columns = tuple(suite_file.meta.get("key_columns", ()))
    prepared = gx_engine.prepared_suite(part)
    wanted = ["*"]
    if prepared.shape is None and prepared.row_columns is not None:
        keep = prepared.row_columns | set(key_columns) | set(SOURCE_COLUMNS)
        wanted = [quote(c) for c in columns if c in keep] or ["1 as _row"]
    where = ""
    if suite_file.batch == "latest_load_run":
        loaded = suite_file.meta.get("loaded_column") or (
            "_last_loaded_at" if "_last_loaded_at" in columns else "_loaded_at"
        )
        where = f" where {quote(loaded)} >= cast($batch_since as timestamp)"
    relation = rows or f"{quote(suite_file.layer)}.{quote(suite_file.table)}"
    sql = f"select {', '.join(wanted)} from {relation}{where}"
    return sql, ({"batch_since": since} if where else None)


def _is_view(con: duckdb.DuckDBPyConnection, layer: str, table: str) -> bool:
    rows = con.execute(
        "select table_type from information_schema.tables"
        " where table_schema = ? and table_name = ?",
        [layer, table],
    ).fetchall()
    return bool(rows) and rows[0][0] == "VIEW"


def _read_once(
    con: duckdb.DuckDBPyConnection,
    suite_file: SuiteFile,
    batches: list[reuse.Batch],
    chunk_rows: int,
    kept: bool,
) -> list[reuse.Batch]:
    """The batches whose rows cost a computation, read into Arrow before the fingerprint (D390):
    every query-defined batch, and the table's batch when the table is a view (a staging
    model) read as the view, not from the union that holds its rows (``kept``, D408). The
    fingerprint hashes those rows and the validation, if any, judges them, so the query or the
    view runs once instead of twice. A table's batch (or a view's kept rows) is hashed where it
    lies (a result given again reads nothing into Python); a batch larger than one chunk, or
    whose SQL fails, is left to be read as before (no fingerprint; the validation reports the
    failure)."""
    if getattr(con, "engine", None) != "duckdb":
        return batches  # no fingerprint: nothing to share
    view = not kept and _is_view(con, suite_file.layer, suite_file.table)
    out = []
    for batch in batches:
        if batch.name is not None or view:
            try:
                batch = replace(batch, data=read_whole(con, batch.sql, batch.params, chunk_rows))
            except wh.database_errors() as err:
                logger.debug("%s: %s not read ahead: %s", suite_file.name, batch.name, err)
        out.append(batch)
    return out


def validate_layer_table(
    con: duckdb.DuckDBPyConnection,
    suite: str | SuiteFile,
    *,
    as_of: str | datetime | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
    results: Path | None = None,
) -> SuiteResult:
    """Validate a table of staging, core, marts or finance with its suite.

    The suite's expectations run on one of two kinds of batch:

    - the table itself (expectations without ``meta.query``): the whole table (``meta.batch``
      ``full``), or the rows of the batches not validated yet (``latest_load_run``: rows whose
      ``meta.loaded_column``, default ``_last_loaded_at`` else ``_loaded_at``, is at or after
      ``$batch_since``, see :func:`_batch_since`), read ``chunk_rows`` at a time and only the
      columns the expectations use;
    - a query-defined batch (``meta.query: <name>``): the DataFrame of the DuckDB query
      ``meta.queries.<name>.sql``, for cross-table rules (coverage, reconciliation, freshness,
      sums); see :class:`Query`.

    A staging view whose rows a union holds (``meta.rows_kept_in``) is read there, by both kinds
    of batch, while the union's kept state is the state now (:func:`kept_rows`, D408).

    A missing table is a failure (``error``), except in ``OPTIONAL_LAYERS`` (finance, built on
    another branch), where the result is skipped with the note "table missing". A query that
    fails (e.g. a table it reads is missing) fails its expectations with the error as exception.

    Args:
        con: an open DuckDB connection (read-only is enough); the caller closes it.
        suite: ``"<layer>.<table>"`` or a :class:`SuiteFile`.
        as_of: see :func:`warehouse_as_of`.
        chunk_rows: the most rows of the table held in memory at once.
        root: the expectations folder.
        results: the folder of the results that may be given again (``reuse.results_folder``,
            D330); None: validate whatever was validated before.

    Returns:
        One result for the suite, expectations in file order; ``duration_seconds`` covers
        reading and validating every batch.
    """

    started = time.perf_counter()
    suite_file = get_suite_file(suite, root)
    layer, table = suite_file.layer, suite_file.table
    columns = table_columns(con, layer, table)
    if not columns:
        optional = layer in OPTIONAL_LAYERS
        return SuiteResult(
            suite_name=suite_file.name,
            success=optional,
            skipped=optional,
            note=(
                f"table missing: {layer}.{table} does not exist"
                + (" (yet: its models are not built on this warehouse)" if optional else "")
            ),
            expectations=[]
            if optional
            else list(
                _failed_query_results(
                    list(enumerate(suite_file.expectations)), None, "table missing"
                ).values()
            ),
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    as_of_text = warehouse_as_of(con, as_of)
    since, note, batch_ids = _batch_since(con, suite_file)
    rows_sql = kept_rows(con, suite_file)
    if rows_sql is not None:
        kept_in = suite_file.meta["rows_kept_in"]
        read_from = f"the view's rows read from {kept_in}, which holds them (D408)"
        note = f"{note}; {read_from}" if note else read_from
    values = {"as_of": as_of_text, "batch_since": since}
    parameters = {AS_OF_PARAMETER: as_of_text}
    groups: dict[str | None, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, spec in enumerate(suite_file.expectations):
        groups.setdefault((spec.get("meta") or {}).get("query"), []).append((i, spec))
    queries = {
        name: replace(query, sql=_in_place_of(query.sql, suite_file, rows_sql))
        for name, query in suite_file.queries.items()
    }
    # the same rows of every batch, suite and code as the stored result's: that result (D330)
    batches = [
        reuse.Batch(
            None,
            *_table_batch(suite_file, _part(suite_file, None, specs), columns, since, rows_sql),
        )
        if name is None
        else reuse.Batch(name, queries[name].sql, _query_parameters(queries[name], values))
        for name, specs in groups.items()
    ]
    fingerprint = None
    if results is not None:
        batches = _read_once(con, suite_file, batches, chunk_rows, kept=rows_sql is not None)
        fingerprint = reuse.fingerprint(
            con,
            suite_file,
            batches,
            parameters=parameters,
            chunk_rows=chunk_rows,
            extra={"batch_ids": batch_ids, "note": note},
        )
    again = reuse.stored(
        results,
        suite_file.name,
        fingerprint,
        started=started,
        as_of=as_of_text,
        batch_ids=batch_ids,
    )
    if again is not None:
        return again
    results: dict[int, ExpectationResult] = {}
    rows = chunks = 0
    read = {batch.name: batch.data for batch in batches if batch.data is not None}
    for query_name, specs in groups.items():
        part = _part(suite_file, query_name, specs)
        if query_name is None:
            key_columns = tuple(suite_file.meta.get("key_columns", ()))
            sql, params = _table_batch(suite_file, part, columns, since, rows_sql)
            frames = (
                table_frames(read[None], chunk_rows)
                if None in read
                else read_ahead(arrow_chunks(con, sql, params, chunk_rows))
            )
        else:
            query = queries[query_name]
            key_columns = query.key_columns
            try:
                params = _query_parameters(query, values)
                frames = (
                    table_frames(read[query_name], chunk_rows)
                    if query_name in read
                    else read_ahead(arrow_chunks(con, query.sql, params, chunk_rows))
                )
                first = next(frames)
            except wh.database_errors() as err:
                message = f"query {query_name} failed: {err}"
                logger.warning("%s: %s", suite_file.name, message)
                results.update(_failed_query_results(specs, query_name, message))
                continue
            # a query selects what is worth seeing: samples show every column of its result
            key_columns = tuple(dict.fromkeys([*query.key_columns, *first.columns]))
            frames = chain(first, frames)
        part_result = validate_chunks(
            frames, part, parameters=parameters, key_columns=key_columns, root=root
        )
        if query_name is None:
            rows, chunks = part_result.rows_validated, part_result.chunks
        elif None not in groups:  # a suite of queries only: its largest batch
            rows = max(rows, part_result.rows_validated)
            chunks = max(chunks, part_result.chunks)
        for (i, _), result in zip(specs, part_result.expectations, strict=True):
            result.query = query_name
            results[i] = result
    ordered = [results[i] for i in range(len(suite_file.expectations))]
    outcome = SuiteResult(
        suite_name=suite_file.name,
        success=not any(r.severity == "error" and not r.success for r in ordered),
        rows_validated=rows,
        chunks=chunks,
        as_of=as_of_text,
        note=note,
        expectations=ordered,
        duration_seconds=round(time.perf_counter() - started, 3),
        batch_ids=batch_ids,
        fingerprint=fingerprint,
    )
    logger.info("%s in %.2fs", outcome.summary(), outcome.duration_seconds)
    return outcome
