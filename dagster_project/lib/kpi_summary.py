"""The short KPI summary of the latest full month that `voronka run` prints.

Reads the marts read-only; every part is skipped when its table is not built (yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.lib import warehouse as wh

COMPANY_MEASURES = (
    ("revenue", "Revenue, RUB", "money"),
    ("deals_won", "Deals won", "int"),
    ("win_rate", "Win rate", "share"),
    ("nps", "NPS", "number"),
    ("churn_rate", "Churn rate", "share"),
    ("service_level", "Service level", "share"),
)


@dataclass(frozen=True)
class Ranked:
    """A manager's place in the bonus scheme for a month.

    Attributes:
        name: the manager's name (the id when the name is unknown).
        coefficient: the weighted premium coefficient, sum of weight x premium_coefficient over
            the manager's bonus lines (1.0 = every KPI in the full band; lines without a KPI %
            count as 0, as they pay).
        amount: the statement's bonus amount, RUB.
    """

    name: str
    coefficient: float
    amount: float


@dataclass
class KpiSummary:
    """Company figures of one month and the managers at the top and bottom of the bonus scheme."""

    as_of: str | None = None
    month: date | None = None
    company: dict[str, float | None] = field(default_factory=dict)
    top: list[Ranked] = field(default_factory=list)
    bottom: list[Ranked] = field(default_factory=list)


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def latest_full_month(con: duckdb.DuckDBPyConnection, timezone: str) -> tuple[str, date] | None:
    """The as-of time and the latest month that ended at or before it (business time zone)."""
    if not _exists(con, "intermediate", "int_as_of"):
        return None
    row = con.execute(
        """
        with local as (
            select as_of_at, timezone(?, as_of_at::timestamp at time zone 'UTC') as local_at
            from intermediate.int_as_of
        )
        select
            as_of_at,
            cast(
                date_trunc('month', local_at + interval '1 microsecond') - interval '1 month'
                as date
            )
        from local
        """,
        [timezone],
    ).fetchall()
    if not row or row[0][0] is None:
        return None
    return row[0][0].strftime("%Y-%m-%d %H:%M UTC"), row[0][1]


def kpi_summary(warehouse: Path, timezone: str = "Europe/Moscow", top_n: int = 3) -> KpiSummary:
    """Read the summary from the marts of a warehouse."""
    summary = KpiSummary()
    if not wh.exists(warehouse):
        return summary
    con = wh.connect(warehouse, read_only=True)
    try:
        found = latest_full_month(con, timezone)
        if found is None:
            return summary
        summary.as_of, summary.month = found
        if _exists(con, "marts", "kpi_company_monthly"):
            columns = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_name = 'kpi_company_monthly'"
                ).fetchall()
            }
            wanted = [m for m, _, _ in COMPANY_MEASURES if m in columns]
            if wanted:
                rows = con.execute(
                    f"select {', '.join(wanted)} from marts.kpi_company_monthly where month = ?",
                    [summary.month],
                ).fetchall()
                if rows:
                    summary.company = dict(zip(wanted, rows[0], strict=True))
        if _exists(con, "finance", "bonus_lines") and _exists(con, "finance", "bonus_statements"):
            summary.top, summary.bottom = _ranking(con, summary.month, top_n)
    finally:
        con.close()
    return summary


def _ranking(con: duckdb.DuckDBPyConnection, month: date, top_n: int):
    """Managers by the bonus scheme (D109): weighted premium coefficient, then bonus amount.

    Not a mean of raw KPI %: that is unclamped, so one line far below base (a speed-to-lead of
    -1 520 %) sank a manager whose bonus was otherwise full; the coefficient is what the scheme
    pays for.
    """
    rows = con.execute(
        """
        with lines as (
            select manager_id, sum(weight * premium_coefficient) as coefficient
            from finance.bonus_lines
            where month = ?
            group by manager_id
        )

        select
            coalesce(statements.manager_name, statements.manager_id) as name,
            coalesce(lines.coefficient, 0) as coefficient,
            statements.bonus_amount
        from finance.bonus_statements as statements
        left join lines on lines.manager_id = statements.manager_id
        where statements.month = ?
        order by coefficient desc, statements.bonus_amount desc, name
        """,
        [month, month],
    ).fetchall()
    ranked = [Ranked(name, float(coefficient), float(amount)) for name, coefficient, amount in rows]
    return ranked[:top_n], ranked[::-1][:top_n]


def format_value(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "money":
        return f"{float(value):,.2f}".replace(",", " ")
    if kind == "share":
        return f"{100 * float(value):.1f} %"
    if kind == "int":
        return f"{int(value):,}".replace(",", " ")
    return f"{float(value):.1f}"


def _ranked(ranked: Ranked) -> str:
    return f"{ranked.name} x{ranked.coefficient:.2f} ({format_value(ranked.amount, 'money')})"


def format_summary(summary: KpiSummary) -> list[str]:
    """The summary as printable lines (empty when there is nothing to say)."""
    if summary.month is None:
        return []
    lines = [f"KPI summary of {summary.month:%Y-%m} (latest full month; as-of {summary.as_of}):"]
    for measure, label, kind in COMPANY_MEASURES:
        if measure in summary.company:
            lines.append(f"  {label:<16} {format_value(summary.company[measure], kind):>16}")
    if summary.top:
        lines.append("  Bonus scheme (weighted premium coefficient, bonus RUB):")
        for label, ranked in (("top:   ", summary.top), ("bottom:", summary.bottom)):
            lines.append(f"    {label} " + ", ".join(_ranked(r) for r in ranked))
    return lines
