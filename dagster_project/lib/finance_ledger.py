"""The finance ledger: closing and reopening months, and the adjustments found after a close.

The ledger (schema `finance_ledger`) holds what no inbox file can give back: the bonus lines and
statements of a month as they were when finance closed it, every close and reopen (who, when,
why), and every adjustment found since. dbt never rebuilds it (it is a dbt source, not a model:
`dbt build --full-refresh` leaves it alone); its DDL is the dbt macro
`dbt_models/macros/finance_ledger.sql`, rendered here with Jinja so there is one definition.

Invariant, per line (month, manager_id, kpi_code) of a closed month: the frozen amount plus the
deltas of its adjustments in force equals what the current data gives
(`intermediate.int_bonus_lines_computed`) once `detect_adjustments` has run. Detection appends
only the difference still missing, so running it again records nothing.

All bulk work is DuckDB SQL; the functions take an open connection and commit their own
transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import jinja2

log = logging.getLogger("voronka.finance")

LEDGER_MACRO = Path(__file__).resolve().parents[2] / "dbt_models" / "macros" / "finance_ledger.sql"

COMPUTED_LINES = "intermediate.int_bonus_lines_computed"
AS_OF = "intermediate.int_as_of"
LINES = "finance.bonus_lines"
STATEMENTS = "finance.bonus_statements"
ADJUSTMENTS = "finance.bonus_adjustments"
# the adjustments in force, as the dbt model finance.bonus_adjustments reads them (D230)
ADJUSTMENTS_IN_FORCE = "staging.stg_finance_ledger__bonus_adjustments"

LINE_COLUMNS = (
    "month, manager_id, kpi_code, role, fact, base, norm, kpi_pct, band_lower_pct, "
    "band_upper_pct, premium_coefficient, weight, pool_amount, bonus_amount, reason"
)
STATEMENT_COLUMNS = "month, manager_id, manager_name, team, lines, bonus_amount"


class LedgerError(Exception):
    """A request the ledger refuses, with a message for the user (e.g. closing a closed month)."""


@dataclass(frozen=True)
class ClosedPeriod:
    """What a close froze."""

    month: date
    event_id: int
    lines: int
    statements: int
    bonus_amount: float
    closed_at: datetime


@dataclass(frozen=True)
class ReopenedPeriod:
    """What a reopen undid."""

    month: date
    event_id: int
    voided_adjustments: int


def parse_month(text: str) -> date:
    """`YYYY-MM` -> the month's first day; ValueError with a readable message otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month: expected YYYY-MM, e.g. 2026-03")
    return date(int(match.group(1)), int(match.group(2)), 1)


def ledger_ddl() -> list[str]:
    """The ledger's DDL statements, from the dbt macro (the single definition)."""
    template = jinja2.Environment().from_string(LEDGER_MACRO.read_text(encoding="utf-8"))
    sql = str(template.module.finance_ledger_ddl())
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger's schema and tables if missing (idempotent)."""
    for statement in ledger_ddl():
        con.execute(statement)


def _relation_exists(con: duckdb.DuckDBPyConnection, relation: str, base_table: bool = False):
    schema, name = relation.split(".")
    kinds = "('BASE TABLE')" if base_table else "('BASE TABLE', 'VIEW')"
    row = con.execute(
        f"""
        select count(*) from information_schema.tables
        where table_catalog = current_database() and table_schema = ? and table_name = ?
            and table_type in {kinds}
        """,
        [schema, name],
    ).fetchone()
    return row[0] > 0


def period_status(con: duckdb.DuckDBPyConnection, month: date) -> tuple[str, dict | None]:
    """('open' | 'closed', the latest period_log event of the month or None)."""
    row = con.execute(
        """
        select event_id, action, acted_by, acted_at, reason from finance_ledger.period_log
        where month = ? order by event_id desc limit 1
        """,
        [month],
    ).fetchone()
    if row is None:
        return "open", None
    event = dict(zip(("event_id", "action", "acted_by", "acted_at", "reason"), row, strict=True))
    return ("closed" if event["action"] == "close" else "open"), event


def as_of_month(con: duckdb.DuckDBPyConnection, timezone: str) -> date | None:
    """The business-time-zone month of the warehouse's as-of time (of its last dbt build)."""
    if not _relation_exists(con, AS_OF):
        return None
    row = con.execute(f"select as_of_at from {AS_OF}").fetchone()
    if row is None or row[0] is None:
        return None
    local = row[0].replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return date(local.year, local.month, 1)


def _next_event_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        "select coalesce(max(event_id), 0) + 1 from finance_ledger.period_log"
    ).fetchone()[0]


def _label(month: date) -> str:
    return month.strftime("%Y-%m")


def close_period(
    con: duckdb.DuckDBPyConnection,
    month: date,
    closed_by: str,
    closed_at: datetime,
    latest_month: date | None = None,
) -> ClosedPeriod:
    """Freeze a month: copy its current bonus lines and statements into the ledger.

    From then on finance.bonus_lines / bonus_statements show these rows for the month, whatever
    data arrives later (differences go to bonus_adjustments). The finance tables are marked
    closed in place, so they are right before the next pipeline run.

    Args:
        con: the warehouse, open for writing.
        month: the month's first day.
        closed_by: who closes it (recorded in period_log).
        closed_at: when (UTC, naive).
        latest_month: the as-of month: later months cannot be closed (None: no check).

    Raises:
        LedgerError: the month is closed already, lies after latest_month, the finance tables
            are not built, the month has no bonus lines, or some are held back by conflicting
            input rows (D86).
    """
    ensure_ledger(con)
    status, event = period_status(con, month)
    if status == "closed":
        raise LedgerError(
            f"{_label(month)} is already closed (by {event['acted_by']} at "
            f"{event['acted_at']:%Y-%m-%d %H:%M} UTC); to close it again, reopen it first: "
            f"voronka reopen-period {_label(month)} --reason TEXT"
        )
    if latest_month is not None and month > latest_month:
        raise LedgerError(
            f"{_label(month)} is after the warehouse's as-of month {_label(latest_month)}: "
            "a month can be closed once it has started"
        )
    if not (_relation_exists(con, LINES) and _relation_exists(con, STATEMENTS)):
        raise LedgerError(
            "the finance tables are not built in this warehouse: run the pipeline first "
            "(voronka run)"
        )
    lines = con.execute(f"select count(*) from {LINES} where month = ?", [month]).fetchone()[0]
    if lines == 0:
        raise LedgerError(
            f"{_label(month)} has no bonus lines (no sales plan, bonus pool or weight that "
            "month): nothing to close"
        )
    # D86: a held line has no amount to freeze; closing would pay it from a guess or not at all
    # (a warehouse last built before D86 has no hold_reason and no held lines)
    has_holds = con.execute(
        "select count(*) from information_schema.columns "
        "where table_schema = 'finance' and table_name = 'bonus_lines' "
        "and column_name = 'hold_reason'"
    ).fetchone()[0]
    held = (0, None)
    if has_holds:
        held = con.execute(
            f"select count(*), min(hold_reason) from {LINES} "
            "where month = ? and hold_reason is not null",
            [month],
        ).fetchone()
    if held[0]:
        raise LedgerError(
            f"{_label(month)} has {held[0]} bonus line(s) held back by conflicting input rows "
            f"(finance.bonus_lines.hold_reason), e.g. {held[1]}; fix the files and run the "
            "pipeline, then close"
        )
    con.execute("begin transaction")
    try:
        event_id = _next_event_id(con)
        con.execute(
            "insert into finance_ledger.period_log values (?, ?, 'close', ?, ?, null)",
            [event_id, month, closed_by, closed_at],
        )
        con.execute(
            f"""
            insert into finance_ledger.closed_bonus_lines
                ({LINE_COLUMNS}, close_event_id, closed_at, superseded_at)
            select {LINE_COLUMNS}, ?, ?, null from {LINES} where month = ?
            """,
            [event_id, closed_at, month],
        )
        con.execute(
            f"""
            insert into finance_ledger.closed_bonus_statements
                ({STATEMENT_COLUMNS}, close_event_id, closed_at, superseded_at)
            select {STATEMENT_COLUMNS}, ?, ?, null from {STATEMENTS} where month = ?
            """,
            [event_id, closed_at, month],
        )
        _mark_finance_tables(con, month, "closed", closed_at)
        statements, amount = con.execute(
            """
            select count(*), coalesce(sum(bonus_amount), 0)
            from finance_ledger.closed_bonus_statements
            where close_event_id = ?
            """,
            [event_id],
        ).fetchone()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    log.info("closed %s: %d lines, %d statements", _label(month), lines, statements)
    return ClosedPeriod(month, event_id, lines, statements, float(amount), closed_at)


def reopen_period(
    con: duckdb.DuckDBPyConnection,
    month: date,
    reason: str,
    reopened_by: str,
    reopened_at: datetime,
) -> ReopenedPeriod:
    """Reopen a closed month, recorded in period_log with who, when and why.

    The frozen rows are kept for the audit but superseded; the month's adjustments not yet paid
    are voided (the month is recomputed from the data again at the next run, which includes
    them). Refused while one of its adjustments was paid, i.e. is payable in a closed month:
    reopen that month first.

    Raises:
        LedgerError: no reason, the month is not closed, or one of its adjustments was paid.
    """
    if not reason or not reason.strip():
        raise LedgerError("a reopen needs a reason: --reason TEXT")
    ensure_ledger(con)
    status, _event = period_status(con, month)
    if status != "closed":
        raise LedgerError(f"{_label(month)} is not closed: nothing to reopen")
    paid = con.execute(
        """
        with latest as (
            select month, action
            from (
                select
                    month,
                    action,
                    row_number() over (partition by month order by event_id desc) as n
                from finance_ledger.period_log
            ) as events
            where n = 1
        )
        select distinct adjustments.payable_month
        from finance_ledger.bonus_adjustments as adjustments
        inner join latest
            on adjustments.payable_month = latest.month and latest.action = 'close'
        where adjustments.month_affected = ? and adjustments.voided_at is null
        order by 1
        """,
        [month],
    ).fetchall()
    if paid:
        months = ", ".join(_label(row[0]) for row in paid)
        raise LedgerError(
            f"{_label(month)} has adjustments already paid with the closed month(s) {months}: "
            "reopen those first"
        )
    con.execute("begin transaction")
    try:
        event_id = _next_event_id(con)
        con.execute(
            "insert into finance_ledger.period_log values (?, ?, 'reopen', ?, ?, ?)",
            [event_id, month, reopened_by, reopened_at, reason.strip()],
        )
        for table in ("closed_bonus_lines", "closed_bonus_statements"):
            con.execute(
                f"""
                update finance_ledger.{table} set superseded_at = ?
                where month = ? and superseded_at is null
                """,
                [reopened_at, month],
            )
        voided = len(
            con.execute(
                """
                update finance_ledger.bonus_adjustments set voided_at = ?
                where month_affected = ? and voided_at is null
                returning 1
                """,
                [reopened_at, month],
            ).fetchall()
        )
        _mark_finance_tables(con, month, "open", None)
        refresh_adjustments(con)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    log.info("reopened %s (%s); %d adjustments voided", _label(month), reason, voided)
    return ReopenedPeriod(month, event_id, int(voided))


def _mark_finance_tables(
    con: duckdb.DuckDBPyConnection, month: date, status: str, closed_at: datetime | None
) -> None:
    """Set period_status (and closed_at) of the month in the built finance tables, if built."""
    if _relation_exists(con, LINES, base_table=True):
        con.execute(f"update {LINES} set period_status = ? where month = ?", [status, month])
    if _relation_exists(con, STATEMENTS, base_table=True):
        con.execute(
            f"update {STATEMENTS} set period_status = ?, closed_at = ? where month = ?",
            [status, closed_at, month],
        )


def refresh_adjustments(con: duckdb.DuckDBPyConnection) -> int | None:
    """Put the adjustments in force into the table finance.bonus_adjustments again, in place:
    its rows deleted and inserted in the caller's transaction (D171, D230), so that a reader
    sees the old rows or the new ones whole and never waits (on PostgreSQL the statements take
    row locks only; on DuckDB readers open the published file). The rows are those of the dbt
    model's own input, the staging view of the ledger; the table's columns cast them as dbt
    does. Nothing to do before dbt has built the table (or on a warehouse whose
    finance.bonus_adjustments is still the view it once was: it reads the ledger itself).

    Returns:
        The rows now in the table, or None when there is no such table.
    """
    if not (
        _relation_exists(con, ADJUSTMENTS, base_table=True)
        and _relation_exists(con, ADJUSTMENTS_IN_FORCE)
    ):
        return None
    columns = ", ".join(
        row[0]
        for row in con.execute(
            """
            select column_name from information_schema.columns
            where table_catalog = current_database() and table_schema = ? and table_name = ?
            order by ordinal_position
            """,
            ADJUSTMENTS.split("."),
        ).fetchall()
    )
    con.execute(f"delete from {ADJUSTMENTS}")
    con.execute(
        f"insert into {ADJUSTMENTS} ({columns}) select {columns} from {ADJUSTMENTS_IN_FORCE}"
    )
    return con.execute(f"select count(*) from {ADJUSTMENTS}").fetchone()[0]


DETECT_SQL = f"""
insert into finance_ledger.bonus_adjustments
    (month_affected, manager_id, kpi_code, detected_at, paid_amount, recomputed_amount, delta,
     payable_month, voided_at)
with

latest_events as (
    select month, action
    from (
        select month, action, row_number() over (partition by month order by event_id desc) as n
        from finance_ledger.period_log
    ) as events
    where n = 1
),

closed_months as (
    select month from latest_events where action = 'close'
),

frozen as (
    select lines.month, lines.manager_id, lines.kpi_code, lines.bonus_amount
    from finance_ledger.closed_bonus_lines as lines
    inner join closed_months on lines.month = closed_months.month
    where lines.superseded_at is null
),

recorded as (
    select
        month_affected as month,
        manager_id,
        kpi_code,
        sum(delta) as deltas,
        max(detected_at) as last_detected_at
    from finance_ledger.bonus_adjustments
    where voided_at is null
    group by month_affected, manager_id, kpi_code
),

recomputed as (
    select
        computed.month,
        computed.manager_id,
        computed.kpi_code,
        computed.bonus_amount,
        computed.hold_reason is not null as is_held
    from {COMPUTED_LINES} as computed
    inner join closed_months on computed.month = closed_months.month
),

line_keys as (
    select month, manager_id, kpi_code from frozen
    union
    select month, manager_id, kpi_code from recomputed
),

compared as (
    select
        line_keys.month,
        line_keys.manager_id,
        line_keys.kpi_code,
        cast(coalesce(frozen.bonus_amount, 0) + coalesce(recorded.deltas, 0) as decimal(18,2))
            as paid_amount,
        cast(coalesce(recomputed.bonus_amount, 0) as decimal(18,2)) as recomputed_amount,
        coalesce(recomputed.is_held, false) as is_held,
        recorded.last_detected_at
    from line_keys
    left join frozen using (month, manager_id, kpi_code)
    left join recomputed using (month, manager_id, kpi_code)
    left join recorded using (month, manager_id, kpi_code)
),

payable_candidates as (
    select cast(month + interval '1 month' as date) as candidate from closed_months
)

select
    compared.month,
    compared.manager_id,
    compared.kpi_code,
    case
        when compared.last_detected_at >= cast($detected_at as timestamp)
            then compared.last_detected_at + interval '1 microsecond'
        else cast($detected_at as timestamp)
    end,
    compared.paid_amount,
    compared.recomputed_amount,
    compared.recomputed_amount - compared.paid_amount,
    (
        select min(candidate)
        from (
            select cast(compared.month + interval '1 month' as date) as candidate
            union all
            select candidate from payable_candidates
        ) as candidates
        where candidate > compared.month
            and candidate not in (select month from closed_months)
    ),
    null
from compared
where compared.paid_amount <> compared.recomputed_amount
    -- a line held by conflicting input rows (D86) has no amount yet: detected once they agree
    and not compared.is_held
returning 1
"""


def detect_adjustments(con: duckdb.DuckDBPyConnection, detected_at: datetime) -> int:
    """Record, for every line of a closed month, the difference the current data makes.

    Compares `intermediate.int_bonus_lines_computed` with the frozen amount plus the deltas
    already recorded; appends one adjustment per line whose total differs (a line new since
    the close is paid 0 so far; a line gone is recomputed as 0). Idempotent: a second call on
    the same data finds nothing. payable_month: the first open month after the affected one.

    Returns:
        The number of adjustments recorded (0 when the computed lines are not built yet).
    """
    ensure_ledger(con)
    if not _relation_exists(con, COMPUTED_LINES):
        log.warning("%s is not built: no adjustments detected", COMPUTED_LINES)
        return 0
    con.execute("begin transaction")
    try:
        recorded = len(con.execute(DETECT_SQL, {"detected_at": detected_at}).fetchall())
        refresh_adjustments(con)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if recorded:
        log.info("recorded %d bonus adjustments of closed months", recorded)
    return int(recorded)


def run_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The as-of time (UTC, naive) of the warehouse's last dbt build; now when there is none."""
    if _relation_exists(con, AS_OF):
        row = con.execute(f"select as_of_at from {AS_OF}").fetchone()
        if row is not None and row[0] is not None:
            return row[0]
    return datetime.now(UTC).replace(tzinfo=None)
