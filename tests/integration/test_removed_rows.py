"""Rows removed from raw leave the incremental facts and marts (issue 18, D204-D206).

Raw loses rows when a changed file is reloaded without some of them, and with `voronka
forget-file` (D73). A removed row brings no new load, so the load watermarks alone never see it:
the incremental facts (`fct_calls`, `fct_deal_stage_changes`, `fct_survey_responses`) and
`kpi_calls_hourly` kept the removed events. After either kind of removal the warehouse must
equal a fresh full run of the final inbox (core, marts, finance).

One module fixture: a fresh run of the reference inbox, and a first run of the mini inbox plus an
`extra.csv` per event entity holding one event also in the mini inbox and one new event. Each
case copies that warehouse, removes the new events and runs again. The reference inbox is the
mini inbox with the `extra.csv` files holding just the duplicates: the first loaded copy of an
event wins (macros/dedup.sql), and at the same load the file named first (`2026-02.csv`), so a
duplicate-only file changes no core or mart row; the forget case's final inbox has no extra file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.identical_marts import compare_warehouses
from dagster_project.cli import main
from dagster_project.lib import warehouse as wh
from dagster_project.lib.inbox_loader import forget_file, load_inbox
from tests import background
from tests.conftest import FIXTURES, query, write_inbox
from tests.dbt_cli import run_dbt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADERS = {
    "calls": "call_id,started_at,direction,client_phone,manager_extension,line,status,"
    "ring_seconds,talk_seconds",
    "deal_stage_changes": "change_id,deal_id,from_stage,to_stage,changed_at,manager_id",
    "survey_responses": "response_id,survey_type,score,responded_at,client_id,client_phone,"
    "client_email,deal_id,request_id,manager_id,comment",
}
# per entity: a copy of an event of the mini inbox (kept) and a new event (removed later)
DUPLICATES = {
    "calls": "k5,2026-02-01 09:35,outbound,7 926 111 22 33,104,74950000001,answered,4,600",
    "deal_stage_changes": "s7,d4,Новый лид,КП отправлено,2026-02-03 10:00,m1",
    "survey_responses": "r2,nps,6,2026-02-26 10:00,,+7 916 123-45-67,,,,,",
}
REMOVED = {
    "calls": "k77,2026-02-03 09:35,outbound,7 926 111 22 33,104,74950000001,answered,4,300",
    "deal_stage_changes": "s77,d4,КП отправлено,Переговоры,2026-02-10 10:00,m1",
    "survey_responses": "r77,nps,9,2026-02-22 10:00,,,,d4,,,",
}


def _extra(entity: str, removed: bool) -> str:
    lines = [HEADERS[entity], DUPLICATES[entity]] + ([REMOVED[entity]] if removed else [])
    return "\n".join(lines) + "\n"


def _run(inbox: Path, warehouse: Path) -> int:
    return main(["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"])


def _first_run(root: Path, removed: bool) -> list[background.Command]:
    shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
    write_inbox(root / "inbox", {f"{e}/extra.csv": _extra(e, removed) for e in HEADERS})
    where = ["--inbox", str(root / "inbox"), "--warehouse", str(root / "w" / "warehouse.duckdb")]
    return [background.voronka("run", *where, "--quiet")]


# the two first runs, started beside the tests before this module (D412)
background.job("removed_reference", "runs")(lambda root: _first_run(root, removed=False))
background.job("removed_start", "runs")(lambda root: _first_run(root, removed=True))


@pytest.fixture(scope="module")
def runs(background_runs) -> dict[str, Path]:
    """A fresh run of the reference inbox, and the first run of the removal cases' inbox."""
    reference, start = (background_runs.take(n) for n in ("removed_reference", "removed_start"))
    assert reference.code == 0, reference.output()
    assert start.code == 0, start.output()
    return {"reference": reference.root / "w" / "warehouse.duckdb", "start": start.root}


@pytest.mark.parametrize("how", ["changed", "forget"])
def test_removed_events_leave_the_warehouse(runs, tmp_path, how):
    # the first run's warehouse (and its dbt state beside it) and inbox, copied for this case
    shutil.copytree(runs["start"], tmp_path, dirs_exist_ok=True)
    inbox, warehouse = tmp_path / "inbox", tmp_path / "w" / "warehouse.duckdb"
    assert query(warehouse, "select count(*) from raw._removals") == [(0,)]
    if how == "changed":
        write_inbox(inbox, {f"{e}/extra.csv": _extra(e, False) for e in HEADERS})
    else:
        for entity in HEADERS:
            (inbox / entity / "extra.csv").unlink()
            where = ["--inbox", str(inbox), "--warehouse", str(warehouse)]
            assert main(["forget-file", f"{entity}/extra.csv", *where]) == 0
    assert _run(inbox, warehouse) == 0
    # one removal logged per file: the new event (a reload keeps the duplicate)
    assert query(
        warehouse, "select source_table, source_file, rows_removed from raw._removals order by 1"
    ) == [
        ("raw.calls", "calls/extra.csv", 1 if how == "changed" else 2),
        ("raw.deal_stage_changes", "deal_stage_changes/extra.csv", 1 if how == "changed" else 2),
        ("raw.survey_responses", "survey_responses/extra.csv", 1 if how == "changed" else 2),
    ]
    report = compare_warehouses(runs["reference"], warehouse, schemas=("core", "marts", "finance"))
    differing = {name: entry for name, entry in report.items() if not entry.get("identical")}
    assert not differing, differing
    for table, key in (
        ("fct_calls", "call_id"),
        ("fct_deal_stage_changes", "change_id"),
        ("fct_survey_responses", "response_id"),
    ):
        assert query(warehouse, f"select count(*) from core.{table} where {key} like '_77'") == [
            (0,)
        ]


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_file_that_only_grows_logs_no_removal(tmp_path, request, engine):
    """A changed file whose old rows all come back logs nothing (the incremental facts stay
    incremental); one that drops a row logs that row, with the reload's batch, and forget-file
    the rows it removes, with its own (both engines: the loader deletes and logs in the
    warehouse, D184)."""
    inbox = tmp_path / "inbox"
    target = tmp_path / "w.duckdb" if engine == "duckdb" else request.getfixturevalue("pg_url")
    header, kept, dropped = HEADERS["calls"], DUPLICATES["calls"], REMOVED["calls"]

    def load(*rows: str) -> list[tuple]:
        write_inbox(inbox, {"calls/a.csv": "\n".join([header, *rows]) + "\n"})
        load_inbox(inbox, target, entities=["calls"])
        with wh.open_warehouse(target) as con:
            return con.execute(
                "select r.source_file, r.rows_removed, r.batch_id = l.batch_id "
                "from raw._removals as r join raw._load_log as l "
                "on l.source_file = r.source_file and l.status = 'reloaded' "
                "and l.finished_at = (select max(finished_at) from raw._load_log)"
            ).fetchall()

    assert load(kept) == []
    assert load(kept, dropped) == []  # grown
    assert load(dropped) == [("calls/a.csv", 1, True)]  # k5 dropped
    # forget-file logs the file's rows left, with its own batch, in the same warehouse
    (inbox / "calls" / "a.csv").unlink()
    forgotten = forget_file(target, inbox, "calls/a.csv")
    with wh.open_warehouse(target) as con:
        assert con.execute(
            "select rows_removed from raw._removals where batch_id = ?", [forgotten.batch_id]
        ).fetchall() == [(1,)]


def test_a_build_without_the_model_of_duplicated_keys_ranks_the_keys_loaded_since(runs, tmp_path):
    """D402: a build of a selection without stg_inbox__duplicated_event_keys after a load (`dbt run
    --select fct_calls`; a Dagster subset) ranks every call loaded since the model's last build:
    k1 loaded a second time since keeps its first copy, once (the model's keys alone gave both
    copies as single ones, two rows of k1)."""
    shutil.copytree(runs["reference"].parents[1], tmp_path, dirs_exist_ok=True)
    inbox, warehouse = tmp_path / "inbox", tmp_path / "w" / "warehouse.duckdb"
    calls = "select call_id, status, talk_seconds from core.fct_calls order by 1, 2, 3"
    before = query(warehouse, calls)
    copy = "k1,2026-01-05T10:40:00+03:00,outbound,+7 916 123 45 67,101,74950000001,missed,3,0"
    write_inbox(inbox, {"calls/later.csv": f"{HEADERS['calls']}\n{copy}\n"})
    load_inbox(inbox, warehouse, entities=["calls"])
    run_dbt(warehouse, "run", "--select", "fct_calls", target_path=tmp_path / "target")
    assert query(
        warehouse,
        "select max(loaded_until) < (select max(_loaded_at) from raw.calls) "
        "from staging.stg_inbox__duplicated_event_keys where event_table = 'calls'",
    ) == [(True,)]  # the model was not built after the load
    assert query(warehouse, calls) == before
