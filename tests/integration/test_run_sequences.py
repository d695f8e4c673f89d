"""After any sequence of `voronka run`s the core, marts and finance tables are those of a fresh
full run of the same inbox, byte for byte (issue 18, D92, D150).

The mini inbox is run, then changed twice and run after each change: late calls, activities
and a won deal of an old month, a changed file (a deal's amount corrected in place), a new
manager version, a deleted deal and a deleted client; then a deleted record, a client's new phone, a deal moved
to another client, a deleted activity, a deleted client, the deal and client deleted before restored, versions of a deal and a
client older than their newest loaded late, a
late stage change of an old deal and a new day (a deal that moves stage in a new version
reassigning it, a new deal, a call of the next month that moves the as-of into it). The deals'
first responses and won numbers change with no load of the deal: a late call becomes a deal's
first response, a deal loses its first call to a new client's phone, a deal loses its first
activity to the activity's new version, a late won deal renumbers its client's. A last run with
nothing new is skipped (D150). A fresh
warehouse built from the final inbox in one run is the reference; every table of core, marts
and finance, and of intermediate but for what the incremental models keep about their last
build, must equal it (rows ordered by every column, as CSV; load-time columns `_...`
left out).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from benchmarks.identical_marts import compare_warehouses
from dagster_project.cli import main
from dagster_project.defs.transform.dbt import dbt_folder
from dagster_project.lib.ge_runner.layers import kept_rows, validate_layer_table
from dagster_project.lib.ge_runner.reading import read_only_warehouse, table_columns
from dagster_project.lib.ge_runner.suites import get_suite_file
from tests import background
from tests.conftest import FIXTURES, query, write_inbox
from tests.dbt_cli import run_dbt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEALS_HEADER = (
    "deal_id,client_id,manager_id,pipeline,stage,status,amount,currency,channel,created_at,"
    "closed_at,loss_reason,updated_at"
)
ACTIVITIES_HEADER = (
    "activity_id,activity_type,manager_id,deal_id,client_id,created_at,due_at,completed_at,"
    "outcome,updated_at"
)
CLIENTS_HEADER = (
    "client_id,client_type,name,phone,email,segment,acquisition_channel,created_at,updated_at"
)
LATE_CHANGED_NEW_VERSION = {
    # late data for an old month: January calls arriving in March
    "calls/2026-01-late.csv": (
        "call_id,started_at,direction,client_phone,manager_extension,line,status,"
        "ring_seconds,talk_seconds\n"
        "k7,2026-01-21 14:00,outbound,+79161234567,101,74950000001,answered,4,240\n"
        "k8,2026-01-22 09:10,inbound,+79035556677,103,74950000002,missed,25,0\n"
    ),
    # a new version of a manager: m1 moves to another team
    "managers/2026-02-20-changes.csv": (
        "manager_id,full_name,team,role,extension,email,hired_on,left_on,updated_at\n"
        "m1,Анна Петрова,Москва-2,sales,101,anna@example.ru,2025-03-01,,"
        "2026-02-20T09:00:00+03:00\n"
    ),
    # late activities of old deals, built before the next run changes what they count for
    # (D300): a4 takes its deal d5's client, a5's deal d2 and a6's own client c5 are deleted next
    "activities/2026-01-late.csv": (
        ACTIVITIES_HEADER + "\n"
        "a4,call,m1,d5,,2026-02-12 10:00,,2026-02-12 10:30,neutral,2026-02-12 10:30\n"
        "a5,email,m2,d2,,2026-01-25 12:00,,2026-01-25 12:05,negative,2026-01-25 12:05\n"
        "a6,meeting,m1,d1,c5,2026-01-15 10:00,,2026-01-15 11:00,positive,2026-01-15 11:00\n"
    ),
    "clients/2026-01-late.csv": (
        CLIENTS_HEADER
        + "\nc5,person,Смирнова Ольга,,,Частные,Сайт,2026-01-14 10:00,2026-01-14 10:00\n"
        "c7,person,Козлов Иван,+7 916 000 11 22,,Частные,Сайт,2026-02-05 09:00,2026-02-05 09:00\n"
    ),
    # first responses (D350): d10 (a new client c7) answered by k11; a late call k12 becomes
    # d4's first response (built the run before, untouched otherwise); d11 answered by a8
    "deals/2026-02-late.csv": (
        DEALS_HEADER + "\n"
        "d10,c7,m1,Продажи,Переговоры,open,10000,RUB,Сайт,2026-02-05 10:00,,,2026-02-05 10:00\n"
        "d11,c4,m2,Продажи,Переговоры,open,20000,RUB,Сайт,2026-02-02 12:00,,,2026-02-02 12:00\n"
    ),
    "calls/2026-02-late.csv": (
        "call_id,started_at,direction,client_phone,manager_extension,line,status,"
        "ring_seconds,talk_seconds\n"
        "k11,2026-02-05 10:20,outbound,+79160001122,101,74950000001,answered,4,60\n"
        "k12,2026-02-01 09:32,outbound,79261112233,104,74950000001,no_answer,20,0\n"
    ),
    "activities/2026-02-late.csv": (
        ACTIVITIES_HEADER + "\n"
        "a8,call,m2,d11,,2026-02-02 12:10,,2026-02-02 12:20,neutral,2026-02-02 12:20\n"
    ),
    # a late won deal of an old month: c1's January rows and first won deal change (D360, D361)
    "deals/2026-01-late.csv": (
        DEALS_HEADER + "\n"
        "d7,c1,m1,Продажи,Успешно,won,40000,RUB,Сайт,2026-01-03 10:00,2026-01-28 12:00,,"
        "2026-01-28 12:00\n"
    ),
    # a deal deleted in its source, restored by the next run's new version (D85; that run ranks
    # only the deals and clients it loads, D340)
    "deals/2026-02-22.csv": (
        DEALS_HEADER + ",deleted_at\n"
        "d4,c4,m2,Продажи,Успешно,won,75000.50,RUB,Сайт,2026-02-01 09:30,2026-02-20 16:00,,"
        "2026-02-22 10:00,2026-02-22 10:00\n"
    ),
    # clients deleted in their source, restored in the next run (D85, D361): c6 has no deals;
    # c3's deal d3 counts in that run with no client (fct_deals.client_id null, D85), as if c3
    # had never existed
    "clients/clients-c6-deleted.csv": (
        CLIENTS_HEADER + ",deleted_at\n"
        "c6,company,ООО «Север»,+7 812 555 66 77,,SMB,Сайт,2026-02-18 10:00,"
        "2026-02-20 10:00,2026-02-20 10:00\n"
        "c3,person,Иванов Пётр,9035556677,,Частные,Рекомендация,2026-01-12 12:00,"
        "2026-02-20 10:00,2026-02-20 10:00\n"
    ),
}
DELETED_AND_NEW_DAY = {
    # a deleted record: the lost deal d2 deleted in its source
    "deals/deals-deleted.csv": (
        DEALS_HEADER + ",deleted_at\n"
        "d2,c2,m2,Продажи,Отказ,lost,250000,RUB,Выставка,2026-01-10 11:30,2026-01-31 23:30,"
        "Дорого,2026-02-21 10:00,2026-02-21 10:00\n"
    ),
    # a client's new phone: c2's calls (k2) are credited again, now to nobody (D200)
    "clients/clients-update.csv": (
        "client_id,client_type,name,phone,email,segment,acquisition_channel,created_at,"
        "updated_at\n"
        "c2,company,АО «Вектор»,+7 495 111 22 33,office@vector.ru,Enterprise,,"
        "2026-01-10 11:00,2026-02-21 12:00\n"
    ),
    # an existing deal moved to another client: d5 (won) now c2's; a4 follows it (D300)
    "deals/deals-moved.csv": (
        DEALS_HEADER + "\n"
        "d5,c2,m1,Продажи,Успешно,won,120000,RUB,Сайт,2026-02-10 10:00,2026-02-25 12:00,,"
        "2026-02-26 12:00\n"
    ),
    # a deleted activity (a2), and a late one of an old deal (a7, January's d1)
    "activities/2026-02-21.csv": (
        ACTIVITIES_HEADER + ",deleted_at\n"
        "a2,proposal,m2,d4,c4,2026-02-02 10:00,2026-02-03 10:00,2026-02-03 09:00,positive,"
        "2026-02-21 13:00,2026-02-21 13:00\n"
        "a7,demo,m1,d1,,2026-01-12 15:00,,2026-01-12 16:00,positive,2026-01-12 16:00,\n"
    ),
    # a deleted client: a6 now takes its deal d1's client (D85, D300)
    "clients/clients-deleted.csv": (
        CLIENTS_HEADER + ",deleted_at\n"
        "c5,person,Смирнова Ольга,,,Частные,Сайт,2026-01-14 10:00,2026-02-21 14:00,"
        "2026-02-21 14:00\n"
    ),
    # a late stage change of an old deal, in a run without removals (a removal rebuilds
    # the per-deal tables in full, D205): d1 (won in January) was in "КП отправлено" from
    # 10 January, under m2 (its stages entered and manager periods change, D310)
    "deal_stage_changes/2026-01-late.csv": (
        "change_id,deal_id,from_stage,to_stage,changed_at,manager_id\n"
        "s10,d1,Переговоры,КП отправлено,2026-01-10 10:00,m2\n"
    ),
    # a new day: d3 moves back to "Переговоры" under m1, in a new version of the deal that
    # reassigns it to m1, and d6 is created with no stage change (D310)
    "deals/2026-02-27.csv": (
        DEALS_HEADER + "\n"
        "d3,c3,m1,Продажи,Переговоры,open,55000,,Рекомендация,2026-01-12 12:30,,,"
        "2026-02-27 09:00\n"
        "d6,c4,m2,Продажи,Переговоры,open,30000,RUB,Сайт,2026-02-27 09:30,,,2026-02-27 09:30\n"
    ),
    # d4 restored by a newer version; versions of d1 and c1 older than their newest, loaded
    # late: ranked with the versions loaded before, they lose (D340)
    "deals/2026-02-23.csv": (
        DEALS_HEADER + ",deleted_at\n"
        "d4,c4,m2,Продажи,Успешно,won,75000.50,RUB,Сайт,2026-02-01 09:30,2026-02-20 16:00,,"
        "2026-02-23 10:00,\n"
        "d1,c1,m1,Продажи,Переговоры,open,90000,RUB,Сайт,2026-01-05 10:30,,,2026-01-18 10:00,\n"
    ),
    "clients/2026-02-23.csv": (
        CLIENTS_HEADER + ",deleted_at\n"
        "c1,company,ООО «Ромашка»,8 (916) 000-00-00,old@romashka.ru,SMB,Сайт,2026-01-05 10:00,"
        "2026-01-05 09:00,\n"
    ),
    "deal_stage_changes/2026-02-27.csv": (
        "change_id,deal_id,from_stage,to_stage,changed_at,manager_id\n"
        "s11,d3,КП отправлено,Переговоры,2026-02-27 09:00,m1\n"
    ),
    # first responses and won numbers lost with no load of the deal (D350, D351): c8, created
    # before c7 with c7's phone, takes k11 from d10; a8 in a new version moves to d3 and leaves
    # d11 unanswered; d12, a late won deal of c4 closed before d4, makes d4 c4's second
    "clients/2026-02-21-c8.csv": (
        CLIENTS_HEADER + "\n"
        "c8,person,Козлова Анна,89160001122,,Частные,Сайт,2026-02-01 08:00,2026-02-21 15:00\n"
    ),
    "activities/2026-02-21-moved.csv": (
        ACTIVITIES_HEADER + "\n"
        "a8,call,m2,d3,,2026-02-02 12:10,,2026-02-02 12:20,neutral,2026-02-21 16:00\n"
    ),
    "deals/2026-02-21-late.csv": (
        DEALS_HEADER + "\n"
        "d12,c4,m2,Продажи,Успешно,won,40000,RUB,Сайт,2026-02-03 10:00,2026-02-15 12:00,,"
        "2026-02-15 12:00\n"
    ),
    "calls/2026-02-27.csv": (
        "call_id,started_at,direction,client_phone,manager_extension,line,status,"
        "ring_seconds,talk_seconds\n"
        "k9,2026-02-27 10:00,inbound,+79161234567,101,74950000002,answered,6,420\n"
        # the as-of moves into a new month: every client's February ends and March begins (D360)
        "k10,2026-03-02 11:30,outbound,84952223344,104,74950000001,answered,3,95\n"
    ),
    # copies of events loaded by the first run (D402): k2 with another status, s6 naming another
    # stage, r1 with another score; the first loaded copy wins, and the run groups only the keys
    # it loaded to find them loaded more than once. Named after the files of the first copies:
    # a fresh run loads them together and ranks copies of one load by file name
    "calls/later-copies.csv": (
        "call_id,started_at,direction,client_phone,manager_extension,line,status,"
        "ring_seconds,talk_seconds\n"
        "k2,2026-01-10 11:35,outbound,84952223344,102,74950000001,missed,5,0\n"
    ),
    "deal_stage_changes/later-copies.csv": (
        "change_id,deal_id,from_stage,to_stage,changed_at,manager_id\n"
        "s6,d3,Переговоры,Отказ,2026-02-01 10:00,m3\n"
    ),
    "survey_responses/later-copies.csv": (
        "response_id,survey_type,score,responded_at,client_id,client_phone,client_email,deal_id,"
        "request_id,manager_id,comment\n"
        "r1,nps,3,2026-02-21 10:00,,,,d4,,,Плохо\n"
    ),
    # the deleted clients c6 and c3 restored
    "clients/clients-c6-restored.csv": (
        CLIENTS_HEADER + ",deleted_at\n"
        "c6,company,ООО «Север»,+7 812 555 66 77,,SMB,Сайт,2026-02-18 10:00,"
        "2026-02-27 08:00,\n"
        "c3,person,Иванов Пётр,9035556677,,Частные,Рекомендация,2026-01-12 12:00,"
        "2026-02-27 08:00,\n"
    ),
}


def run(inbox: Path, warehouse: Path) -> int:
    return main(["run", "--inbox", str(inbox), "--warehouse", str(warehouse), "--quiet"])


# the inbox staging view read for some keys only (D340)
PER_KEY = re.compile(r'"stg_inbox__(deals|clients)"\s+where ')


def unions_built_per_key(warehouse: Path) -> dict[str, bool]:
    """Whether the newest build ranked only the keys loaded since (D340) or every key."""
    newest = max(dbt_folder(warehouse).glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    results = json.loads(newest.read_text(encoding="utf-8"))["results"]
    return {
        item["unique_id"].split(".")[-1]: bool(PER_KEY.search(item["compiled_code"]))
        for item in results
        if item["unique_id"].endswith((".int_deals__unioned", ".int_clients__unioned"))
    }


STAGING_KEPT = ("staging.stg_inbox__clients", "staging.stg_inbox__deals")


def staging_suites_read_from_the_unions(warehouse: Path) -> dict[str, tuple[bool, int, list]]:
    """D408, per staging suite of a union: (its rows are read from the union, the rows in which
    the view and the union's inbox rows differ, the fields in which its validation from the
    union differs from a validation of the view)."""
    found = {}
    with read_only_warehouse(warehouse) as con:
        for name in STAGING_KEPT:
            suite = get_suite_file(name)
            union = suite.meta["rows_kept_in"]
            columns = ", ".join(table_columns(con, suite.layer, suite.table))
            inbox_rows = f"select {columns} from {union} where source_system = 'inbox'"
            [(differing,)] = con.execute(
                f"select count(*) from ((select {columns} from {name} except all {inbox_rows})"
                f" union all ({inbox_rows} except all select {columns} from {name}))"
            ).fetchall()
            kept = validate_layer_table(con, suite)
            from_view = validate_layer_table(
                con,
                replace(suite, meta={k: v for k, v in suite.meta.items() if k != "rows_kept_in"}),
            )
            ours, theirs = outcome(kept), outcome(from_view)
            unlike = [key for key in ours if ours[key] != theirs[key]]
            found[name] = (kept_rows(con, suite) is not None, differing, unlike)
    return found


def outcome(result) -> dict:
    """A result without its time and note, its samples in one order: a view's rows come in no
    order of their own, and a sample shows the offending rows in the order read (D330)."""
    found = {k: v for k, v in result.to_dict().items() if k not in ("duration_seconds", "note")}
    for expectation in found["expectations"]:
        if expectation.get("sample"):
            expectation["sample"] = sorted(expectation["sample"], key=json.dumps)
    return found


# the inbox tables whose keys with several rows stg_inbox__duplicated_event_keys keeps: the event
# tables, deduplicated by the first loaded copy (D402), and the activities' versions (D416)
EVENT_KEYS = {
    "calls": "call_id",
    "deal_stage_changes": "change_id",
    "survey_responses": "response_id",
    "activities": "activity_id",
}


def duplicated_keys(warehouse: Path) -> dict[str, tuple[list, list, list]]:
    """Per table of EVENT_KEYS: the keys stg_inbox__duplicated_event_keys holds (each row), the
    keys raw holds more than once, and whether each of its rows without a key holds the newest
    load of the raw table."""
    found = {}
    for table, key in EVENT_KEYS.items():
        model = "staging.stg_inbox__duplicated_event_keys"
        kept = query(
            warehouse,
            f"select event_key from {model} "
            f"where event_table = '{table}' and event_key is not null order by 1",
        )
        loaded = query(
            warehouse,
            f"select {key} from raw.{table} group by 1 having count(*) > 1 order by 1",
        )
        newest = query(
            warehouse,
            f"select loaded_until = (select max(_loaded_at) from raw.{table}) from {model} "
            f"where event_table = '{table}' and event_key is null",
        )
        found[table] = ([k for (k,) in kept], [k for (k,) in loaded], [n for (n,) in newest])
    return found


def duplicated_keys_grouped_per_key(warehouse: Path) -> bool | None:
    """Whether the newest build of stg_inbox__duplicated_event_keys grouped only the keys loaded
    since (D402) or every raw row; None when it did not run."""
    newest = max(dbt_folder(warehouse).glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    results = json.loads(newest.read_text(encoding="utf-8"))["results"]
    for item in results:
        if item["unique_id"].endswith(".stg_inbox__duplicated_event_keys"):
            return "_loaded_at >" in item["compiled_code"]
    return None


def calls_fingerprinted_now(warehouse: Path) -> dict:
    """The calls' count and hash sum per month kept by int_months_fingerprinted, and those of
    every call of fct_calls now (D415)."""
    return {
        "kept": query(
            warehouse,
            "select month, calls_row_count, calls_hash_sum from intermediate.int_months_fingerprinted "
            "where calls_row_count > 0 order by month",
        ),
        "all": query(
            warehouse,
            "select cast(date_trunc('month', started_at) as date) as month, count(*), "
            "sum(hash(calls)) from core.fct_calls as calls where started_at is not null "
            "group by 1 order by 1",
        ),
    }


def calls_fingerprinted(warehouse: Path) -> dict:
    """D415: the calls' count and hash sum per month that int_months_fingerprinted kept, those of
    every call of fct_calls now, and whether the build hashed only some months again (its
    compiled SQL read the sums it had kept)."""
    newest = max(dbt_folder(warehouse).glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    compiled = next(newest.parent.glob("compiled/**/int_months_fingerprinted.sql")).read_text()
    return {
        **calls_fingerprinted_now(warehouse),
        "from_kept_sums": '"intermediate"."int_months_fingerprinted"' in compiled,
    }


def change_a_file_in_place(inbox: Path) -> None:
    """d1's amount corrected in deals.csv itself (the file is reloaded and replaces its rows)."""
    path = inbox / "deals" / "deals.csv"
    text = path.read_text(encoding="utf-8")
    assert "100000.00" in text
    path.write_text(text.replace("100000.00", "120000.00"), encoding="utf-8")


@background.job("sequence_fresh", "sequence")
def _fresh_run(root: Path) -> list[background.Command]:
    """The reference: the final inbox (the mini inbox and both deliveries) in one run, started
    beside the tests before this module (D412); the sequence checks it holds its own inbox."""
    inbox = root / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    write_inbox(inbox, LATE_CHANGED_NEW_VERSION)
    change_a_file_in_place(inbox)
    write_inbox(inbox, DELETED_AND_NEW_DAY)
    where = ["--inbox", str(inbox), "--warehouse", str(root / "warehouse.duckdb")]
    return [background.voronka("run", *where, "--quiet")]


def inbox_files(inbox: Path) -> dict[str, bytes]:
    return {
        p.relative_to(inbox).as_posix(): p.read_bytes() for p in inbox.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def sequence(tmp_path_factory, mini_run, background_runs):
    root = tmp_path_factory.mktemp("sequence")
    # the first run: a copy of the session's run of the mini inbox (tests/conftest.py, D280)
    first = mini_run.copy_to(root / "runs")
    inbox, warehouse = first.inbox, first.warehouse
    codes = [first.code]
    write_inbox(inbox, LATE_CHANGED_NEW_VERSION)
    change_a_file_in_place(inbox)
    codes.append(run(inbox, warehouse))
    calls = [calls_fingerprinted(warehouse)]
    per_key = [unions_built_per_key(warehouse)]
    staging_kept = [staging_suites_read_from_the_unions(warehouse)]
    grouped_per_key = [duplicated_keys_grouped_per_key(warehouse)]
    write_inbox(inbox, DELETED_AND_NEW_DAY)
    codes.append(run(inbox, warehouse))
    calls.append(calls_fingerprinted(warehouse))
    per_key.append(unions_built_per_key(warehouse))
    staging_kept.append(staging_suites_read_from_the_unions(warehouse))
    grouped_per_key.append(duplicated_keys_grouped_per_key(warehouse))
    duplicated = duplicated_keys(warehouse)
    inputs_seen = query(
        warehouse,
        "select (select loaded_until from intermediate.fct_calls__inputs_seen), "
        "(select max(_loaded_at) from (select _loaded_at from intermediate.int_clients__unioned "
        "union all select _loaded_at from intermediate.int_managers__unioned))",
    )[0]
    activities = query(
        warehouse,
        "select activity_id, deal_id, client_id from core.fct_activities order by activity_id",
    )
    responses = query(
        warehouse,
        "select deal_id, first_call_id, first_activity_id "
        "from intermediate.int_deal_first_responses_found "
        "where deal_id in ('d4', 'd10', 'd11') order by deal_id",
    )
    won_numbers = query(
        warehouse,
        "select deal_id, client_won_deal_number from core.fct_deals "
        "where client_id = 'c4' and is_won order by deal_id",
    )
    published = warehouse.stat()
    codes.append(run(inbox, warehouse))  # nothing new: skipped
    skipped = warehouse.stat().st_ino == published.st_ino

    fresh = background_runs.take("sequence_fresh")
    assert inbox_files(fresh.root / "inbox") == inbox_files(inbox)  # the same final inbox
    codes.append(fresh.code)
    report = compare_warehouses(
        fresh.root / "warehouse.duckdb",
        warehouse,
        schemas=("core", "marts", "finance", "intermediate"),
    )
    return {
        "codes": codes,
        "skipped": skipped,
        "report": report,
        "inputs_seen": inputs_seen,
        "activities": activities,
        "responses": responses,
        "won_numbers": won_numbers,
        "per_key": per_key,
        "staging_kept": staging_kept,
        "grouped_per_key": grouped_per_key,
        "duplicated": duplicated,
        "calls": calls,
    }


def test_every_run_succeeds_and_the_last_is_skipped(sequence):
    assert sequence["codes"] == [0, 0, 0, 0, 0]
    assert sequence["skipped"]


# what an incremental model keeps about its last build (load times, removal counts, the as-of,
# the fingerprints of the months it was built from and the fingerprints themselves, which hash
# rows with their load times; D11, D201, D205, D310), not data
BUILD_BOOKKEEPING = (
    "_seen",
    "__built_fingerprints",
    ".int_months_fingerprinted",
    "__months_written",
)


def test_tables_equal_a_fresh_full_run(sequence):
    report = {
        name: entry
        for name, entry in sequence["report"].items()
        if not name.endswith(BUILD_BOOKKEEPING)
    }
    assert {
        "core.fct_calls",
        "core.dim_managers",
        "marts.kpi_manager_monthly",
        "intermediate.int_deal_stages_entered",
        "intermediate.int_deal_manager_periods",
    } <= set(report)
    assert report["core.fct_calls"]["rows_a"] == 12  # the mini inbox's 6 and 6 new calls
    assert report["core.dim_managers"]["rows_a"] == 5  # m1 in a second version
    differing = {name: entry for name, entry in report.items() if not entry.get("identical")}
    assert not differing, differing


def test_built_activities_follow_their_deals_and_clients(sequence):
    """D300: the last incremental run computed a4, a5 and a6 again from their own rows (built the
    run before), and removed the deleted a2; equal to the fresh run (above) and as intended."""
    assert sequence["activities"] == [
        ("a1", "d1", "c1"),
        ("a3", "d3", "c3"),
        ("a4", "d5", "c2"),  # d5 moved to c2
        ("a5", None, None),  # d2 deleted: no deal, no client from it
        ("a6", "d1", "c1"),  # its own client c5 deleted: d1's client
        ("a7", "d1", "c1"),  # late, of an old deal
        ("a8", "d3", "c3"),  # moved from d11 by its new version (D350)
    ]


def test_built_deals_follow_their_calls_and_won_deals(sequence):
    """D350, D351: rows built by an earlier run, whose deal was not loaded again, computed again
    by the last incremental run; equal to the fresh run (above) and as intended."""
    assert sequence["responses"] == [
        ("d10", None, None),  # k11 now c8's: c8 was created before c7 with its phone
        ("d11", None, None),  # a8's new version names d3
        ("d4", "k12", None),  # the late k12 (the run before); its first activity a2 deleted
    ]
    assert sequence["won_numbers"] == [("d12", 1), ("d4", 2)]  # d12 closed before d4


def test_the_unions_rank_only_the_keys_loaded_since_unless_rows_were_removed(sequence):
    """D340: the run after a changed file (a removal, D205) builds the unions in full, the next
    one ranks only the keys it loaded (a deletion, a restoration, a late older version); both
    equal a fresh run (above)."""
    both = {"int_deals__unioned", "int_clients__unioned"}
    assert sequence["per_key"] == [dict.fromkeys(both, False), dict.fromkeys(both, True)]


def test_fct_calls_keeps_the_newest_input_load_it_was_built_from(sequence):
    """D201: the next run counts a client or manager as new only when loaded after this build,
    not after the newest call (the loads of a run come one after another)."""
    seen, newest = sequence["inputs_seen"]
    assert seen is not None and seen == newest


def test_the_staging_suites_read_the_rows_the_unions_hold(sequence):
    """D408: after the run that builds the unions in full and after the one that builds them per
    key, the inbox rows of each union are the rows of its staging view, column for column, and
    the view's suite reads them there with the verdict, counts and samples of a validation of
    the view."""
    for found in sequence["staging_kept"]:
        assert found == dict.fromkeys(STAGING_KEPT, (True, 0, []))


def test_the_keys_loaded_more_than_once_are_all_found_grouping_only_those_loaded_since(sequence):
    """D402: the run after a changed file (a removal, D205) groups every raw row, the next one
    only the keys it loaded (copies of a call, a stage change and a response loaded by the first
    run; new versions of two activities, D416); the model then holds every key raw holds more
    than once, once each (a missed key would give two rows of it in staging: the fresh run's
    tables, above, would differ), and the newest load of each raw table, after which its readers
    rank every key loaded."""
    assert sequence["grouped_per_key"] == [False, True]
    assert sequence["duplicated"] == {
        "calls": (["k2", "k4"], ["k2", "k4"], [True]),
        "deal_stage_changes": (["s6", "s9"], ["s6", "s9"], [True]),
        "survey_responses": (["r1"], ["r1"], [True]),
        # a2's deleted version and a8's new one (D416)
        "activities": (["a2", "a8"], ["a2", "a8"], [True]),
    }


def test_the_calls_fingerprints_hash_again_only_the_months_changed_and_equal_a_full_pass(
    sequence,
):
    """D415: each incremental run's month fingerprints kept the calls' sums of the months no
    call entered or left and hashed the others again; the sums equal those of every call
    (late calls of an old month, a client's new phone re-matching built calls, deleted ones)."""
    for calls in sequence["calls"]:
        assert calls["from_kept_sums"]
        assert calls["kept"] == calls["all"]


def test_a_month_that_only_loses_calls_is_hashed_again(mini_run, tmp_path):
    """D415 (a): a call removed by `fct_calls`' pre-hook (a deleted call) is written nowhere, so
    only the month's count tells; the month is hashed again and its sums equal a full pass."""
    warehouse = mini_run.copy_to(tmp_path / "run").warehouse
    con = duckdb.connect(str(warehouse))
    try:
        month, call_id = con.execute(
            "select cast(date_trunc('month', started_at) as date), min(call_id) "
            "from core.fct_calls group by 1 order by 1 limit 1"
        ).fetchone()
        con.execute("delete from core.fct_calls where call_id = ?", [call_id])
    finally:
        con.close()
    run_dbt(warehouse, "run", "-s", "int_months_fingerprinted", target_path=tmp_path / "target")
    compiled = next((tmp_path / "target").glob("compiled/**/int_months_fingerprinted.sql"))
    sql = compiled.read_text()
    assert '"intermediate"."int_months_fingerprinted"' in sql
    assert f"started_at >= cast('{month}' as timestamp)" in sql
    calls = calls_fingerprinted_now(warehouse)
    assert calls["kept"] == calls["all"]
