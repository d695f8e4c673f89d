"""The finance ledger on a tiny fixture schema (no dbt): close, reopen, adjustments.

`intermediate.int_bonus_lines_computed` is a plain table the tests write ("the data"); the
finance tables are views over it, as dbt builds them for open months.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dagster_project.lib.finance_ledger import (
    LedgerError,
    close_period,
    detect_adjustments,
    ensure_ledger,
    parse_month,
    reopen_period,
)

JAN, FEB, MAR, APR = (date(2026, m, 1) for m in (1, 2, 3, 4))
T0 = datetime(2026, 5, 1, 9, 0)


def fixture_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute("create schema intermediate")
    con.execute("create schema finance")
    con.execute(
        """
        create table intermediate.int_bonus_lines_computed (
            month date, manager_id varchar, kpi_code varchar, role varchar,
            fact decimal(24,6), base decimal(18,4), norm decimal(18,4), kpi_pct decimal(18,6),
            band_lower_pct decimal(18,4), band_upper_pct decimal(18,4),
            premium_coefficient decimal(18,4), weight decimal(18,4), pool_amount decimal(18,2),
            bonus_amount decimal(18,2), reason varchar, manager_name varchar, team varchar,
            hold_reason varchar
        )
        """
    )
    con.execute(
        """
        create view finance.bonus_lines as
        select * exclude (manager_name, team), 'open' as period_status
        from intermediate.int_bonus_lines_computed
        """
    )
    con.execute(
        """
        create view finance.bonus_statements as
        select month, manager_id, manager_name, team, cast(count(*) as integer) as lines,
            cast(sum(bonus_amount) as decimal(18,2)) as bonus_amount
        from intermediate.int_bonus_lines_computed group by all
        """
    )
    ensure_ledger(con)
    return con


def set_line(con, month, manager_id, kpi_code, amount):
    """Write what the data gives for one line (None: the line no longer exists)."""
    con.execute(
        "delete from intermediate.int_bonus_lines_computed "
        "where month = ? and manager_id = ? and kpi_code = ?",
        [month, manager_id, kpi_code],
    )
    if amount is not None:
        con.execute(
            """
            insert into intermediate.int_bonus_lines_computed
                (month, manager_id, kpi_code, role, premium_coefficient, weight, pool_amount,
                 bonus_amount, manager_name, team)
            values (?, ?, ?, 'sales', 1.0, 0.4, 20000, ?, 'Анна', 'Москва-1')
            """,
            [month, manager_id, kpi_code, amount],
        )


def hold_line(con, month, manager_id, kpi_code, hold_reason):
    """The line's input rows conflict (D86): no amount, held with a reason."""
    con.execute(
        "update intermediate.int_bonus_lines_computed "
        "set bonus_amount = null, reason = 'conflicting_rows', hold_reason = ? "
        "where month = ? and manager_id = ? and kpi_code = ?",
        [hold_reason, month, manager_id, kpi_code],
    )


def test_held_lines_block_the_close_and_are_not_adjusted_while_held():
    con = fixture_warehouse()
    set_line(con, JAN, "m1", "deals_won", 8800)
    hold_line(con, JAN, "m1", "deals_won", "sales_plans/a.csv line 2; sales_plans/b.csv line 2")
    with pytest.raises(LedgerError, match="2026-01 has 1 bonus line.* held back .*a.csv line 2"):
        close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    # paid, closed, then a conflicting row arrives: nothing is adjusted from a guess ...
    set_line(con, JAN, "m1", "deals_won", 8800)
    close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    hold_line(con, JAN, "m1", "deals_won", "rows")
    assert detect_adjustments(con, T0) == 0
    # ... until the rows agree again
    set_line(con, JAN, "m1", "deals_won", 8000)
    assert detect_adjustments(con, T0) == 1
    assert adjustments(con)[0][4:7] == (Decimal("8800.00"), Decimal("8000.00"), Decimal("-800.00"))


def adjustments(con):
    return con.execute(
        """
        select month_affected, manager_id, kpi_code, detected_at, paid_amount,
            recomputed_amount, delta, payable_month
        from finance_ledger.bonus_adjustments where voided_at is null order by detected_at
        """
    ).fetchall()


def test_parse_month():
    assert parse_month("2026-03") == MAR
    for bad in ("2026-3", "2026-13", "March", "2026-03-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)


def test_close_freezes_and_refuses_twice_empty_and_future_months():
    con = fixture_warehouse()
    set_line(con, JAN, "m1", "deals_won", Decimal("8800.00"))
    closed = close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    assert (closed.lines, closed.statements, closed.bonus_amount) == (1, 1, 8800.0)
    with pytest.raises(LedgerError, match="already closed .*reopen-period 2026-01"):
        close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    with pytest.raises(LedgerError, match="2026-02 has no bonus lines"):
        close_period(con, FEB, "Ольга", T0, latest_month=MAR)
    set_line(con, APR, "m1", "deals_won", Decimal("1.00"))
    with pytest.raises(LedgerError, match="after the warehouse's as-of month 2026-03"):
        close_period(con, APR, "Ольга", T0, latest_month=MAR)
    log = con.execute("select event_id, month, action, acted_by from finance_ledger.period_log")
    assert log.fetchall() == [(1, JAN, "close", "Ольга")]


def test_late_data_gives_one_adjustment_payable_in_the_first_open_month_and_no_duplicate():
    con = fixture_warehouse()
    set_line(con, JAN, "m1", "deals_won", Decimal("8800.00"))
    set_line(con, FEB, "m1", "deals_won", Decimal("100.00"))
    close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    close_period(con, FEB, "Ольга", T0, latest_month=MAR)
    assert detect_adjustments(con, T0) == 0
    set_line(con, JAN, "m1", "deals_won", Decimal("11000.00"))  # a late pool correction
    set_line(con, JAN, "m2", "nps", Decimal("5.00"))  # a line the close did not have
    assert detect_adjustments(con, T0) == 2
    assert detect_adjustments(con, T0) == 0  # the same data again: nothing new
    rows = {(r[1], r[2]): r for r in adjustments(con)}
    assert rows[("m1", "deals_won")][4:] == (
        Decimal("8800.00"),
        Decimal("11000.00"),
        Decimal("2200.00"),
        MAR,  # January and February are closed
    )
    assert rows[("m2", "nps")][4:7] == (Decimal("0.00"), Decimal("5.00"), Decimal("5.00"))
    # the data changes again under the same as-of: a second row, a microsecond later
    set_line(con, JAN, "m1", "deals_won", Decimal("8800.00"))
    assert detect_adjustments(con, T0) == 1
    last = adjustments(con)[-1]
    assert last[3] == T0 + timedelta(microseconds=1)
    assert last[4:7] == (Decimal("11000.00"), Decimal("8800.00"), Decimal("-2200.00"))
    # the frozen statement never changed
    frozen = con.execute(
        "select bonus_amount from finance_ledger.closed_bonus_statements where month = ?", [JAN]
    ).fetchall()
    assert frozen == [(Decimal("8800.00"),)]


def test_reopen_needs_a_reason_voids_unpaid_adjustments_and_refuses_paid_ones():
    con = fixture_warehouse()
    set_line(con, JAN, "m1", "deals_won", Decimal("8800.00"))
    set_line(con, FEB, "m1", "deals_won", Decimal("100.00"))
    with pytest.raises(LedgerError, match="not closed"):
        reopen_period(con, JAN, "typo", "Ольга", T0)
    close_period(con, JAN, "Ольга", T0, latest_month=MAR)
    with pytest.raises(LedgerError, match="needs a reason"):
        reopen_period(con, JAN, "  ", "Ольга", T0)
    set_line(con, JAN, "m1", "deals_won", Decimal("11000.00"))
    assert detect_adjustments(con, T0) == 1  # payable in February, open
    close_period(con, FEB, "Ольга", T0, latest_month=MAR)  # February pays it
    with pytest.raises(LedgerError, match="already paid with the closed month.* 2026-02"):
        reopen_period(con, JAN, "plan typo", "Ольга", T0)
    reopen_period(con, FEB, "late deals", "Пётр", T0 + timedelta(hours=1))
    reopened = reopen_period(con, JAN, "plan typo", "Пётр", T0 + timedelta(hours=2))
    assert reopened.voided_adjustments == 1
    assert adjustments(con) == []
    log = con.execute(
        "select month, action, acted_by, reason from finance_ledger.period_log order by event_id"
    ).fetchall()
    assert log[-2:] == [(FEB, "reopen", "Пётр", "late deals"), (JAN, "reopen", "Пётр", "plan typo")]
    # closed again: frozen at the amount the data gives now, nothing to adjust
    close_period(con, JAN, "Ольга", T0 + timedelta(hours=3), latest_month=MAR)
    assert detect_adjustments(con, T0 + timedelta(hours=3)) == 0
    active = con.execute(
        "select bonus_amount from finance_ledger.closed_bonus_lines "
        "where month = ? and superseded_at is null",
        [JAN],
    ).fetchall()
    assert active == [(Decimal("11000.00"),)]


MONTHS = [JAN, FEB, MAR]
KEYS = [(month, manager, "k") for month in (JAN, FEB) for manager in ("m1", "m2")]
amounts = st.one_of(st.none(), st.decimals(min_value=0, max_value=50000, places=2, allow_nan=False))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.sampled_from(KEYS), amounts),
        st.tuples(st.just("close"), st.sampled_from(MONTHS)),
        st.tuples(st.just("reopen"), st.sampled_from(MONTHS)),
        st.tuples(st.just("run")),
    ),
    min_size=4,
    max_size=30,
)
LATE_DATA_TWICE = [
    ("close", JAN),
    ("load", (JAN, "m1", "k"), Decimal("10.00")),
    ("run",),
    ("load", (JAN, "m2", "k"), None),
    ("close", FEB),
    ("run",),
    ("reopen", FEB),
    ("load", (FEB, "m1", "k"), Decimal("3.00")),
    ("close", FEB),
    ("load", (JAN, "m1", "k"), Decimal("7.50")),
    ("run",),
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), amounts), operations)
@example({key: Decimal("100.00") for key in KEYS}, LATE_DATA_TWICE)
def test_closed_statements_never_change_and_paid_plus_adjustments_equals_recomputed(first, ops):
    """Random late data, closes, reopens and pipeline runs (detection) after a first load."""
    con = fixture_warehouse()
    for (month, manager, kpi), amount in first.items():
        set_line(con, month, manager, kpi, amount)
    frozen_at_close: dict[date, list] = {}
    now = T0
    for op in ops:
        now += timedelta(minutes=1)
        if op[0] == "load":
            _, (month, manager, kpi), amount = op
            set_line(con, month, manager, kpi, amount)
        elif op[0] == "close":
            try:
                close_period(con, op[1], "tester", now, latest_month=MAR)
            except LedgerError:
                continue
            frozen_at_close[op[1]] = statements_of(con, op[1])
        elif op[0] == "reopen":
            try:
                reopen_period(con, op[1], "property test", "tester", now)
            except LedgerError:
                continue
            frozen_at_close.pop(op[1])
        else:
            detect_adjustments(con, now)
            assert detect_adjustments(con, now) == 0, "a re-run recorded an adjustment again"
            assert_paid_plus_adjustments_equal_recomputed(con)
        for month, statements in frozen_at_close.items():
            assert statements_of(con, month) == statements, f"closed {month} changed"
    detect_adjustments(con, now + timedelta(minutes=1))
    assert_paid_plus_adjustments_equal_recomputed(con)
    keys = con.execute(
        """
        select count(*) = count(distinct (month_affected, manager_id, kpi_code, detected_at))
        from finance_ledger.bonus_adjustments
        """
    ).fetchone()
    assert keys == (True,)


def statements_of(con, month):
    return con.execute(
        """
        select manager_id, lines, bonus_amount from finance_ledger.closed_bonus_statements
        where month = ? and superseded_at is null order by manager_id
        """,
        [month],
    ).fetchall()


def assert_paid_plus_adjustments_equal_recomputed(con):
    mismatches = con.execute(
        """
        with closed as (
            select month from finance_ledger.period_log
            group by month having arg_max(action, event_id) = 'close'
        ),
        paid as (
            select month, manager_id, kpi_code, bonus_amount as amount
            from finance_ledger.closed_bonus_lines where superseded_at is null
            union all
            select month_affected, manager_id, kpi_code, delta
            from finance_ledger.bonus_adjustments where voided_at is null
        ),
        paid_total as (
            select month, manager_id, kpi_code, sum(amount) as amount from paid group by all
        ),
        recomputed as (
            select month, manager_id, kpi_code, bonus_amount as amount
            from intermediate.int_bonus_lines_computed
            where month in (select month from closed)
        )
        select *
        from paid_total full outer join recomputed using (month, manager_id, kpi_code)
        where coalesce(paid_total.amount, 0) <> coalesce(recomputed.amount, 0)
        """
    ).fetchall()
    assert mismatches == []
    open_adjustments = con.execute(
        """
        select count(*) from finance_ledger.bonus_adjustments
        where voided_at is null and month_affected not in (
            select month from finance_ledger.period_log
            group by month having arg_max(action, event_id) = 'close'
        )
        """
    ).fetchone()
    assert open_adjustments == (0,)
