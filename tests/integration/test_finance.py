"""Finance end to end, from inbox files: the worked example, close, late data, adjustment,
re-run, `dbt build --full-refresh`, reopen; the exports a run writes.

The mini inbox plus March: m1 (sales) wins 160 deals against a plan of base 100, norm 150
(120 %), pool 20 000; the inbox's weights give deals won 0.4 (0.5 from April) and its bands are
the source documents' (a different set from April) -> coefficient 1.1 -> 8 800.00
(kpi-definitions, worked example [003:L269-273]).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.cli import main
from dagster_project.lib.finance_ledger import detect_adjustments, run_as_of
from tests import background
from tests.conftest import FIXTURES, query, write_inbox
from tests.dbt_cli import run_dbt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)

MARCH_DEALS = (
    "deal_id,client_id,manager_id,pipeline,stage,status,amount,currency,channel,created_at,closed_at,loss_reason,updated_at\n"
    + "".join(
        f"w{i:03d},c1,m1,Продажи,Успешно,won,1000,RUB,Сайт,2026-03-02 10:00,2026-03-10 12:00,,2026-03-10 12:00\n"
        for i in range(160)
    )
)
MARCH_FILES = {
    "deals/2026-03-won.csv": MARCH_DEALS,
    "sales_plans/2026-03.csv": "period,manager_id,kpi_code,base,norm\n2026-03,m1,deals_won,100,150\n",
    "bonus_pools/2026-03.csv": "period,manager_id,pool_amount\n2026-03,m1,20000\n",
    "kpi_weights/weights.csv": (
        "valid_from,role,kpi_code,weight\n2026-01,sales,deals_won,0.4\n2026-04,sales,deals_won,0.5\n"
    ),
    "premium_coefficients/bands.csv": (
        "valid_from,lower_pct,upper_pct,coefficient\n"
        ",-1000000000,70,0\n,70,100,0.9\n,100,110,1.0\n,110,,1.1\n"
        "2026-04,0,100,0.5\n2026-04,100,,1.5\n"
    ),
}
# a correction replaces the file (a changed file is reloaded); a second file with another
# value for the same key would be a conflict, held back (D86, step 6)
LATE_POOL = {"bonus_pools/2026-03.csv": "period,manager_id,pool_amount\n2026-03,m1,25000\n"}
STRAY_PLAN = {
    "sales_plans/2026-03-stray.csv": "period,manager_id,kpi_code,base,norm\n2026-03,m1,deals_won,100,120\n"
}

MARCH_LINE = """
    select fact, base, norm, kpi_pct, band_lower_pct, band_upper_pct, premium_coefficient,
        weight, pool_amount, bonus_amount, reason, period_status
    from finance.bonus_lines where month = '2026-03-01' and manager_id = 'm1'
"""
MARCH_STATEMENT = """
    select lines, bonus_amount, period_status, closed_at is not null
    from finance.bonus_statements where month = '2026-03-01' and manager_id = 'm1'
"""
ADJUSTMENTS = """
    select month_affected, manager_id, kpi_code, paid_amount, recomputed_amount, delta,
        payable_month
    from finance.bonus_adjustments order by detected_at
"""


def run(inbox: Path, warehouse: Path) -> int:
    return main(["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"])


def dbt(warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    return run_dbt(warehouse, *args, target_path="target/finance-it")


@background.job("finance", "finance_warehouse")
def _first_run(root: Path) -> list[background.Command]:
    """Step 1's `voronka run`, started beside the tests before this module (D412)."""
    inbox = root / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    write_inbox(inbox, MARCH_FILES)
    where = ["--inbox", str(inbox), "--warehouse", str(root / "warehouse.duckdb")]
    return [background.voronka("run", *where, "--quiet")]


@pytest.fixture(scope="module")
def finance_warehouse(background_runs):
    """The inbox, the warehouse and the first run's outcome (its output as text)."""
    done = background_runs.take("finance")
    return done.root / "inbox", done.root / "warehouse.duckdb", done.results[0]


def test_close_late_data_adjustment_rerun_full_refresh_reopen(finance_warehouse, capsys):
    inbox, warehouse, first = finance_warehouse

    # 1. the worked example, from inbox files
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert query(warehouse, MARCH_LINE) == [
        (
            Decimal("160"),
            Decimal("100"),
            Decimal("150"),
            Decimal("120"),
            Decimal("110"),
            None,
            Decimal("1.1"),
            Decimal("0.4"),
            Decimal("20000"),
            Decimal("8800.00"),
            None,
            "open",
        )
    ]
    assert query(warehouse, MARCH_STATEMENT) == [(1, Decimal("8800.00"), "open", False)]
    out = first.stdout
    exports = warehouse.parent / "exports"
    assert f"Finance exports (csv with ';' and decimal comma, xlsx): {exports}" in out
    statements_csv = (exports / "finance.bonus_statements.csv").read_bytes()
    assert statements_csv.startswith("\ufeffmonth;manager_id;".encode())
    assert "2026-03-01;m1;Анна Петрова;Москва-1;1;8800,00;open;" in statements_csv.decode(
        "utf-8-sig"
    )
    assert (exports / "finance.xlsx").exists()

    # 2. close March; refusals
    assert main(["close-period", "2026-03", "--by", "Ольга", "--warehouse", str(warehouse)]) == 0
    assert main(["close-period", "2026-03", "--warehouse", str(warehouse)]) == 2
    assert main(["close-period", "2026-04", "--warehouse", str(warehouse)]) == 2
    assert "after the warehouse's as-of month 2026-03" in capsys.readouterr().err
    assert query(warehouse, MARCH_STATEMENT) == [(1, Decimal("8800.00"), "closed", True)]

    # 3. a late pool correction: March stays as paid, the difference is an adjustment
    write_inbox(inbox, LATE_POOL)
    assert run(inbox, warehouse) == 0
    assert query(warehouse, MARCH_STATEMENT) == [(1, Decimal("8800.00"), "closed", True)]
    assert query(warehouse, MARCH_LINE)[0][8:] == (
        Decimal("20000"),
        Decimal("8800.00"),
        None,
        "closed",
    )
    assert query(warehouse, ADJUSTMENTS) == [
        (
            MARCH,
            "m1",
            "deals_won",
            Decimal("8800.00"),
            Decimal("11000.00"),
            Decimal("2200.00"),
            APRIL,
        )
    ]

    # 4. re-run after a full refresh of every dbt model: the ledger survives, nothing repeats
    dbt(warehouse, "build", "--full-refresh", "--exclude-resource-type", "unit_test")
    con = duckdb.connect(str(warehouse))
    try:
        assert detect_adjustments(con, run_as_of(con)) == 0
    finally:
        con.close()
    assert query(warehouse, MARCH_STATEMENT) == [(1, Decimal("8800.00"), "closed", True)]
    assert len(query(warehouse, ADJUSTMENTS)) == 1

    # 5. reopen: recorded, the unpaid adjustment voided, March recomputed by the next build
    assert (
        main(
            [
                "reopen-period",
                "2026-03",
                "--reason",
                "pool corrected",
                "--by",
                "Ольга",
                "--warehouse",
                str(warehouse),
            ]
        )
        == 0
    )
    assert query(
        warehouse,
        "select month, action, acted_by, reason from finance_ledger.period_log order by event_id",
    ) == [
        (MARCH, "close", "Ольга", None),
        (MARCH, "reopen", "Ольга", "pool corrected"),
    ]
    assert query(warehouse, ADJUSTMENTS) == []
    dbt(
        warehouse,
        "build",
        "--select",
        "int_finance_periods_classified+",
        "--exclude-resource-type",
        "unit_test",
    )
    assert query(warehouse, MARCH_STATEMENT) == [(1, Decimal("11000.00"), "open", False)]

    # 6. a stray plan row for the same key with other values: never resolved silently (D86)
    write_inbox(inbox, STRAY_PLAN)
    assert run(inbox, warehouse) == 0
    [(amount, reason, hold_reason, base)] = query(
        warehouse,
        "select bonus_amount, reason, hold_reason, base from finance.bonus_lines "
        "where month = '2026-03-01' and manager_id = 'm1'",
    )
    assert (amount, reason, base) == (None, "conflicting_rows", None)
    assert "sales_plans/2026-03.csv line 2" in hold_reason
    assert "sales_plans/2026-03-stray.csv line 2" in hold_reason
    assert query(
        warehouse,
        "select bonus_amount, hold_reason from finance.bonus_statements "
        "where month = '2026-03-01' and manager_id = 'm1'",
    ) == [
        (
            None,
            "1 of its lines held back by conflicting input rows (finance.bonus_lines.hold_reason)",
        )
    ]
    capsys.readouterr()
    assert main(["close-period", "2026-03", "--warehouse", str(warehouse)]) == 2
    assert "held back by conflicting input rows" in capsys.readouterr().err
