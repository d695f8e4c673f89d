"""Parity of the three readers of the value rules (decision D75): the loader's acceptance SQL, the
GE typed raw batches and the dbt parse macros (compiled by dbt, run on DuckDB) give every tricky
value the same parsed value, or the loader quarantines it and the others give null. And an inbox
with the amounts of issue 15 (`inf`, `1e30`, 9999999999999999.99, `1 234,56` with U+202F)
loads, quarantines the bad ones with their file, line and reason, and dbt builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import inbox_loader
from dagster_project.lib.contract import Column
from dagster_project.lib.ge_runner.raw import typed_expr
from tests import background
from tests.conftest import FIXTURES, query, write_inbox
from tests.parsing_cases import ALL_VALUES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_models"
# (label, contract column, the dbt macro call on column `v`)
READERS = [
    ("decimal", Column("v", "decimal"), "parse_decimal('v')"),
    ("decimal4", Column("v", "decimal", scale=4), "parse_decimal('v', 18, 4)"),
    ("integer", Column("v", "integer"), "parse_integer('v')"),
    ("timestamp", Column("v", "timestamp"), "parse_timestamp_utc('v')"),
    ("date", Column("v", "date"), "parse_date('v')"),
    ("period", Column("v", "period"), "parse_period('v')"),
    ("boolean", Column("v", "boolean"), "parse_bool('v')"),
]
# the variants for raw inbox text, which only the loader's accepted values reach (D77)
VALIDATED = [
    ("integer_validated", "integer", "parse_integer('v', validated=true)"),
    ("timestamp_validated", "timestamp", "parse_timestamp_utc('v', validated=true)"),
]


def compile_dbt(sql: str, zone: str, target: Path) -> str:
    """The SQL dbt compiles from inline `sql` with var business_timezone = `zone`."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "compile",
            "--quiet",
            "--inline",
            sql,
            "--target-path",
            str(target / "dbt-target"),
        ],
        cwd=DBT_PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("VORONKA_")},
            "VORONKA_WAREHOUSE": str(target / "compile.duckdb"),
            "VORONKA_TIMEZONE": zone,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout.strip()


def as_ge(value):
    """A loader value as the GE batch types it: numbers as doubles, dates as timestamps."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/St_Johns"])
def test_loader_ge_and_dbt_parse_every_value_alike(zone, tmp_path):
    macros = [(label, m) for label, _, m in READERS] + [(label, m) for label, _, m in VALIDATED]
    inline = "select v, " + ", ".join(f"{{{{ {m} }}}} as {label}" for label, m in macros)
    dbt_sql = compile_dbt(inline + " from parity_values", zone, tmp_path)
    loader_sql = ", ".join(
        f"{inbox_loader.typed_expr(c, 'v', business_timezone=zone)} as {label}"
        for label, c, _ in READERS
    )
    ge_sql = ", ".join(f"{typed_expr(c, zone)} as {label}" for label, c, _ in READERS)

    con = duckdb.connect()
    con.execute(
        "create table parity_values as select * from unnest(?::varchar[]) t(v)", [ALL_VALUES]
    )
    by_dbt = {r[0]: r[1:] for r in con.execute(dbt_sql).fetchall()}
    by_loader = {
        r[0]: r[1:] for r in con.execute(f"select v, {loader_sql} from parity_values").fetchall()
    }
    by_ge = {r[0]: r[1:] for r in con.execute(f"select v, {ge_sql} from parity_values").fetchall()}

    differences = []
    for value in ALL_VALUES:
        for i, (label, _, _) in enumerate(READERS):
            loaded, built, typed = by_loader[value][i], by_dbt[value][i], by_ge[value][i]
            if built != loaded or typed != as_ge(loaded):
                differences.append((label, value, loaded, built, typed))
    labels = [label for label, _, _ in READERS]
    for j, (label, type_, _) in enumerate(VALIDATED):
        i = labels.index(type_)
        for value in ALL_VALUES:
            loaded, built = by_loader[value][i], by_dbt[value][len(READERS) + j]
            if loaded is not None and built != loaded:
                differences.append((label, value, loaded, built, None))
    assert differences == []
    accepted = {
        label: sum(by_loader[v][i] is not None for v in ALL_VALUES)
        for i, (label, _, _) in enumerate(READERS)
    }
    assert all(n > 0 for n in accepted.values()), accepted


ISSUE_15_DEALS = (
    "deal_id,client_id,manager_id,pipeline,stage,status,amount,currency,channel,created_at,"
    "closed_at,loss_reason,updated_at\n"
    "x1,c1,m1,Продажи,Успешно,won,inf,RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,2026-01-21 15:00\n"
    "x2,c1,m1,Продажи,Успешно,won,1e30,RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,2026-01-21 15:00\n"
    "x3,c1,m1,Продажи,Успешно,won,9999999999999999.99,RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,"
    "2026-01-21 15:00\n"
    'x4,c1,m1,Продажи,Успешно,won,"1\u202f234,56",RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,'
    "2026-01-21 15:00\n"
    "x5,c1,m1,Продажи,Успешно,won,10000000000000000,RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,"
    "2026-01-21 15:00\n"
    "x6,c1,m1,Продажи,Успешно,won,999 999 999 999.99,RUB,Сайт,2026-01-06 10:00,2026-01-21 15:00,,"
    "2026-01-21 15:00\n"
)


@background.job("issue_15", "issue_15_run")
def _issue_15_job(root: Path) -> list[background.Command]:
    shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
    write_inbox(root / "inbox", {"deals/issue15.csv": ISSUE_15_DEALS})
    where = ["--inbox", str(root / "inbox"), "--warehouse", str(root / "warehouse.duckdb")]
    return [background.voronka("run", *where, "--quiet")]


@pytest.fixture
def issue_15_run(background_runs) -> background.Done:
    """`voronka run` of the mini inbox with the deals of issue 15, started beside the tests
    before this one (D412)."""
    return background_runs.take("issue_15")


def test_issue_15_amounts_load_quarantine_and_build(issue_15_run):
    warehouse = issue_15_run.root / "warehouse.duckdb"

    assert issue_15_run.code == 0, issue_15_run.output()
    quarantined = query(
        warehouse,
        "select deal_id, _source_file, _source_line, _reason from quarantine.deals "
        "where _source_file = 'deals/issue15.csv' order by _source_line",
    )
    assert quarantined == [
        ("x1", "deals/issue15.csv", 2, "invalid_decimal:amount"),
        ("x2", "deals/issue15.csv", 3, "invalid_decimal:amount"),
        ("x3", "deals/issue15.csv", 4, "out_of_range_decimal:amount"),
        ("x5", "deals/issue15.csv", 6, "out_of_range_decimal:amount"),
    ]
    assert query(
        warehouse,
        "select deal_id, amount from staging.stg_inbox__deals where deal_id like 'x%' order by 1",
    ) == [("x4", Decimal("1234.56")), ("x6", Decimal("999999999999.99"))]
    # the largest amount the loader takes leaves the marts room for their sums (D76)
    revenue = query(warehouse, "select sum(revenue) from marts.kpi_company_monthly")[0][0]
    assert revenue > Decimal("1000000000000")
