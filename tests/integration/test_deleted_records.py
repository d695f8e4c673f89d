"""Deleted records end to end (inbox contract v1.1 `deleted_at`, kpi-definitions "Deleted
records", docs/decisions.md D85), from inbox files through `voronka run`.

The mini inbox plus March: m1 wins 160 deals against a plan of base 50, norm 150 (110 %: the
band from 110 %, coefficient 1.1), pool 20 000, weight 0.4 -> 8 800.00. March is closed. Then a
later file version deletes one March win (w000), a February win with stage changes (d4) and an
activity (a1): every mart equals that of an inbox where they never existed, the incremental
facts equal a full refresh, March stays paid at 8 800.00 and the difference (159 wins: 109 %,
coefficient 1.0, 8 000.00) is an adjustment. A still later version restores them: the marts
are those of the first run again and a second adjustment pays the 800.00 back.
"""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.cli import main
from tests import background
from tests.conftest import FIXTURES, query, write_inbox
from tests.dbt_cli import dbt_command, run_dbt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)

DEALS_HEADER = (
    "deal_id,client_id,manager_id,pipeline,stage,status,amount,currency,channel,"
    "created_at,closed_at,loss_reason,updated_at"
)
MARCH_WIN = "w{:03d},c1,m1,Продажи,Успешно,won,1000,RUB,Сайт,2026-03-02 10:00,2026-03-10 12:00,,"
D4 = 'd4,c4,m2,Продажи,Успешно,won,"75 000,50",RUB,Сайт,2026-02-01 09:30,2026-02-20 16:00,,'
A1 = "a1,meeting,m1,d1,c1,2026-01-06 10:00,2026-01-08 10:00,2026-01-08 11:00,positive,"
ACTIVITIES_HEADER = (
    "activity_id,activity_type,manager_id,deal_id,client_id,created_at,due_at,completed_at,"
    "outcome,updated_at"
)

MARCH_FILES = {
    "deals/2026-03-won.csv": DEALS_HEADER
    + "\n"
    + "".join(MARCH_WIN.format(i) + "2026-03-10 12:00\n" for i in range(160)),
    "sales_plans/2026-03.csv": "period,manager_id,kpi_code,base,norm\n2026-03,m1,deals_won,50,150\n",
    "bonus_pools/2026-03.csv": "period,manager_id,pool_amount\n2026-03,m1,20000\n",
    "kpi_weights/weights.csv": "valid_from,role,kpi_code,weight\n2026-01,sales,deals_won,0.4\n",
}
# the later versions: deleted (ties on updated_at go to the later load), then restored
DELETIONS = {
    "deals/2026-04-deleted.csv": DEALS_HEADER
    + ",deleted_at\n"
    + MARCH_WIN.format(0)
    + "2026-03-10 12:00,2026-03-10 12:00\n"
    + D4
    + "2026-03-01 10:00,2026-03-01 10:00\n",
    "activities/2026-04-deleted.csv": ACTIVITIES_HEADER
    + ",deleted_at\n"
    + A1
    + "2026-03-01 10:00,2026-03-01 10:00\n",
}
RESTORATIONS = {
    "deals/2026-05-restored.csv": DEALS_HEADER
    + ",deleted_at\n"
    + MARCH_WIN.format(0)
    + "2026-03-10 12:00,\n"
    + D4
    + "2026-03-05 10:00,\n",
    "activities/2026-05-restored.csv": ACTIVITIES_HEADER + "\n" + A1 + "2026-03-05 10:00\n",
}

MARCH_AMOUNT = """
    select bonus_amount, period_status from finance.bonus_lines
    where month = '2026-03-01' and manager_id = 'm1' and kpi_code = 'deals_won'
"""
ADJUSTMENTS = """
    select month_affected, manager_id, kpi_code, paid_amount, recomputed_amount, delta,
        payable_month
    from finance.bonus_adjustments order by detected_at, paid_amount
"""
INCREMENTAL_FACTS = ["fct_calls", "fct_deal_stage_changes", "fct_survey_responses"]
WAREHOUSE = "warehouse.duckdb"


def run(inbox: Path, warehouse: Path) -> None:
    assert main(["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"]) == 0


def table_rows(warehouse: Path, schema: str, table: str) -> list:
    """The rows of a table without its load-metadata columns (`_loaded_at`, ...), sorted."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = [
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            if not name.startswith("_")
        ]
        rows = con.execute(f'select {", ".join(columns)} from "{schema}"."{table}"').fetchall()
    finally:
        con.close()
    return sorted(rows, key=lambda row: tuple((value is None, str(value)) for value in row))


def marts(warehouse: Path) -> dict[str, list]:
    tables = query(
        warehouse,
        "select table_name from information_schema.tables "
        "where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1",
    )
    assert len(tables) >= 7, tables
    return {name: table_rows(warehouse, "marts", name) for (name,) in tables}


def without_lines(text: str, *starts: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith(starts))


def _march_inbox(inbox: Path) -> Path:
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    return write_inbox(inbox, MARCH_FILES)


# the jobs started beside the tests before this module (D412): the first run, and the reference
@background.job("deleted_first", "story")
def _first_run(root: Path) -> list[background.Command]:
    where = ["--inbox", str(_march_inbox(root / "inbox")), "--warehouse", str(root / WAREHOUSE)]
    return [background.voronka("run", *where, "--quiet")]


@background.job("deleted_never", "story")
def _never(root: Path) -> list[background.Command]:
    """The same inbox as if w000, d4 (and its stage changes) and a1 had never existed, loaded
    and built by dbt."""
    never = _march_inbox(root / "never")
    for rel, starts in {
        "deals/2026-03-won.csv": ("w000,",),
        "deals/deals.csv": ("d4,",),
        "deal_stage_changes/2026-02.csv": ("s7,", "s8,"),
        "activities/activities.csv": ("a1,",),
    }.items():
        path = never / rel
        path.write_text(without_lines(path.read_text(encoding="utf-8"), *starts), "utf-8")
    # records naming d4 name no deal (its activity a2, the survey response r1)
    for rel in ("activities/activities.csv", "survey_responses/2026-02.csv"):
        path = never / rel
        path.write_text(path.read_text(encoding="utf-8").replace(",d4,", ",,"), "utf-8")
    warehouse = root / "never.duckdb"
    build = ["build", "--exclude-resource-type", "test", "unit_test"]
    return [
        background.load(never, warehouse),
        dbt_command(warehouse, *build, target_path=root / "target"),
    ]


@pytest.fixture(scope="module")
def story(background_runs):
    first, never = (background_runs.take(n) for n in ("deleted_first", "deleted_never"))
    assert first.code == 0, first.output()
    assert never.code == 0, never.output()
    inbox, warehouse = first.root / "inbox", first.root / WAREHOUSE
    result = {"first": marts(warehouse), "first_amount": query(warehouse, MARCH_AMOUNT)}
    assert main(["close-period", "2026-03", "--warehouse", str(warehouse)]) == 0

    write_inbox(inbox, DELETIONS)
    run(inbox, warehouse)
    result["deleted"] = marts(warehouse)
    result["deleted_amount"] = query(warehouse, MARCH_AMOUNT)
    result["deleted_adjustments"] = query(warehouse, ADJUSTMENTS)
    result["deleted_core"] = {
        "deals": query(
            warehouse, "select deal_id from core.fct_deals where deal_id in ('w000', 'd4')"
        ),
        "changes": query(
            warehouse, "select change_id from core.fct_deal_stage_changes where deal_id = 'd4'"
        ),
        "activities": query(
            warehouse, "select activity_id from core.fct_activities where activity_id = 'a1'"
        ),
        "won_in_march": query(
            warehouse,
            "select count(*) from core.fct_deals where is_won and closed_month = '2026-03-01'",
        ),
    }
    result["never"] = marts(never.root / "never.duckdb")
    result["incremental_facts"] = {t: table_rows(warehouse, "core", t) for t in INCREMENTAL_FACTS}
    dbt(warehouse, "build", "--full-refresh", "--exclude-resource-type", "test", "unit_test")
    result["full_facts"] = {t: table_rows(warehouse, "core", t) for t in INCREMENTAL_FACTS}
    result["full_marts"] = marts(warehouse)

    write_inbox(inbox, RESTORATIONS)
    run(inbox, warehouse)
    result["restored"] = marts(warehouse)
    result["restored_adjustments"] = query(warehouse, ADJUSTMENTS)
    result["restored_changes"] = query(
        warehouse,
        "select change_id from core.fct_deal_stage_changes where deal_id = 'd4' order by 1",
    )
    return result


def dbt(warehouse: Path, *args: str) -> None:
    run_dbt(warehouse, *args, target_path="target/deleted-it")


def test_deleted_records_leave_core(story):
    core = story["deleted_core"]
    assert core["deals"] == [] and core["changes"] == [] and core["activities"] == []
    assert core["won_in_march"] == [(159,)]


def test_every_mart_is_as_if_the_deleted_records_never_existed(story):
    assert story["deleted"] != story["first"]
    for name, rows in story["never"].items():
        assert story["deleted"][name] == rows, name


def test_incremental_run_after_a_deletion_equals_a_full_refresh(story):
    for name, rows in story["full_facts"].items():
        assert story["incremental_facts"][name] == rows, name
    assert story["full_marts"] == story["deleted"]


def test_a_closed_month_is_adjusted_not_changed(story):
    assert story["first_amount"] == [(Decimal("8800.00"), "open")]
    assert story["deleted_amount"] == [(Decimal("8800.00"), "closed")]
    assert story["deleted_adjustments"] == [
        (
            MARCH,
            "m1",
            "deals_won",
            Decimal("8800.00"),
            Decimal("8000.00"),
            Decimal("-800.00"),
            APRIL,
        )
    ]


def test_a_later_version_without_deleted_at_restores(story):
    assert story["restored_changes"] == [("s7",), ("s8",)]
    assert story["restored"] == story["first"]
    assert story["restored_adjustments"][1:] == [
        (MARCH, "m1", "deals_won", Decimal("8000.00"), Decimal("8800.00"), Decimal("800.00"), APRIL)
    ]
