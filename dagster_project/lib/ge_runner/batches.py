"""Which loaded batches a suite has still to validate, the record of those it validated (D82),
and the as-of of a validation.

A check records the batches it validated in ``raw._validated_batches`` (:func:`record_validated`);
a batch that failed a blocking suite is not recorded, so it is validated again, and blocks, until
its file is fixed.

The as-of (the suites' ``$PARAMETER`` ``as_of``), a naive UTC timestamp: the ``as_of`` argument,
else ``VORONKA_AS_OF`` (read in the business time zone when naive), else the latest
``_loaded_at`` of the batch, i.e. the moment the newest row of the batch was loaded (an event
cannot have happened after its file was loaded; the latest event of the batch would make the
bound hold by construction).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dagster_project.lib.ge_runner.reading import TIMESTAMP_CLIP, table_columns
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.suites import BLOCKING_LAYERS
from dagster_project.lib.sql import literal
from dagster_project.lib.timestamps import parse_timestamp

if TYPE_CHECKING:
    import duckdb

LOADED_STATUSES = ("loaded", "reloaded")


def parse_as_of(value: str | datetime | None, business_timezone: str) -> datetime | None:
    """A given as-of (ISO 8601 text, naive in the business time zone, or a datetime); None when
    none is given."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return parse_timestamp(str(value), business_timezone)


def as_of_parameter(as_of: datetime | None, fallback: Any) -> str:
    """The ``as_of`` expectation parameter as an ISO string GE parses into a datetime."""
    import pandas as pd

    value = as_of
    if value is None and fallback is not None and not pd.isna(fallback):
        value = pd.Timestamp(fallback).to_pydatetime()
    if value is None:
        # no timestamp at all in the batch: nothing to compare, any bound holds
        value = datetime.fromisoformat(TIMESTAMP_CLIP[1])
    return value.replace(tzinfo=None).isoformat(timespec="seconds")


VALIDATED_BATCHES = "_validated_batches"  # in schema raw, next to the load log
VALIDATED_BATCHES_DDL = f"""
create table if not exists raw.{VALIDATED_BATCHES} (
    suite varchar not null,      -- e.g. raw.calls, core.fct_calls
    batch_id varchar not null,   -- raw._load_log.batch_id
    outcome varchar not null,    -- passed, warn, error (error only for non-blocking layers)
    validated_at timestamp not null,  -- UTC
    run_id varchar
)
"""


def pending_batches(
    con: duckdb.DuckDBPyConnection, entity: str, suite: str
) -> tuple[list[str], str]:
    """The batches of an entity that `suite` has not validated yet: (batch ids, problem).

    Every ``loaded``/``reloaded`` batch of ``raw._load_log`` (a batch replaced since by a
    reload has no rows left and validates as empty) without a row for ``suite`` in
    ``raw._validated_batches``.
    """
    if not table_columns(con, "raw", "_load_log"):
        return [], "raw._load_log does not exist"
    statuses = ", ".join(literal(s) for s in LOADED_STATUSES)
    seen = ""
    if table_columns(con, "raw", VALIDATED_BATCHES):
        seen = (
            f" and batch_id not in (select batch_id from raw.{VALIDATED_BATCHES}"
            f" where suite = {literal(suite)})"
        )
    # fetchall, not fetchone: DuckDB refuses further work on a connection with a pending result
    rows = con.execute(
        f"select distinct batch_id from raw._load_log where entity = ? and status in ({statuses})"
        f" and batch_id is not null{seen} order by 1",
        [entity],
    ).fetchall()
    return [r[0] for r in rows], ""


def record_validated(
    con: duckdb.DuckDBPyConnection, result: SuiteResult, run_id: str | None = None
) -> int:
    """Record the batches a result validated, so that no later check validates them again.

    A failed ``error`` expectation of a blocking layer (raw, finance) records nothing: the
    batch stays pending and blocks every run until its file is fixed or forgotten. Returns the
    batches recorded.
    """
    if not result.batch_ids or result.skipped:
        return 0
    outcome = result.severity or "passed"
    if outcome == "error" and result.layer in BLOCKING_LAYERS:
        return 0
    con.execute("create schema if not exists raw")
    con.execute(VALIDATED_BATCHES_DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        f"insert into raw.{VALIDATED_BATCHES} select ?, ?, ?, ?, ? where not exists"
        f" (select 1 from raw.{VALIDATED_BATCHES} where suite = ? and batch_id = ?)",
        [
            [result.suite_name, batch, outcome, now, run_id, result.suite_name, batch]
            for batch in result.batch_ids
        ],
    )
    return len(result.batch_ids)
