"""The inbox loader on hand-made files: quarantine reasons, nothing lost, idempotence."""

from __future__ import annotations

import pytest

from dagster_project.lib.contract import ENTITIES
from dagster_project.lib.inbox_loader import load_inbox
from tests.conftest import query, write_inbox

pytestmark = pytest.mark.integration

CLIENTS = """client_id,name,phone,created_at,updated_at
c1,ООО «Ромашка»,8 (916) 123-45-67,2026-01-01 10:00,2026-01-01 10:00
c2,ИП Иванов,+7 916 000 00 00,2026-01-02T10:00:00+03:00,2026-01-02T07:00:00Z
"""

DEALS = """deal_id,client_id,manager_id,pipeline,stage,status,amount,created_at,closed_at,updated_at
d1,c1,m1,Продажи,Успех,won,"1000,50",2026-01-05 10:00,2026-01-20 12:00,2026-01-20 12:00
d2,c9,m1,Продажи,Новый,open,500,2026-01-05 10:00,,2026-01-20 12:00
d3,c2,m1,Продажи,Успех,won,-5,2026-01-05 10:00,,2026-01-20 12:00
d4,c2,m1,Продажи,Успех,won,5,2026-01-05 10:00,2026-01-20,2026-01-20,one too many
d5,c2,m1,Продажи,Успех,WON,5,2026-13-05 10:00,2026-01-20,2026-01-20
d6,c2,,Продажи,Новый,open,5,2026-01-05 10:00,,2026-01-20
d7,c2,m1,Продажи,Новый,pending,5,2026-01-05 10:00,,2026-01-20
"""

CALLS = """call_id,started_at,direction,client_phone,manager_extension,status,ring_seconds,talk_seconds
k1,2026-01-01 10:00,inbound,9161234567,101,answered,5,60
k2,2026-01-01 10:05,inbound,9161234567,101,answered,-5,60
k3,2026-01-01 10:10,sideways,9161234567,101,answered,5,60
k4,2026-01-01 10:15,outbound,9161234567,101,answered,5,1.5
"""

SURVEYS = """response_id,survey_type,score,responded_at,client_phone
r1,nps,11,2026-01-01,89161234567
r2,csat,5,2026-01-01,89161234567
r3,csat,0,2026-01-01,89161234567
r4,nps,0,2026-01-01,89161234567
"""

EXPECTED_REASONS = {
    ("deals", "d2"): "unknown_client_id",
    ("deals", "d3"): "negative:amount; closed_at_required_when_closed",
    ("deals", "d5"): "invalid_timestamp:created_at",
    ("deals", "d6"): "missing_required:manager_id",
    ("deals", "d7"): "invalid_enum:status",
    ("calls", "k2"): "negative:ring_seconds",
    ("calls", "k3"): "invalid_enum:direction",
    ("calls", "k4"): "invalid_integer:talk_seconds",
    ("survey_responses", "r1"): "nps_score_out_of_range",
    ("survey_responses", "r3"): "csat_score_out_of_range",
}


@pytest.fixture
def inbox(tmp_path):
    return write_inbox(
        tmp_path / "inbox",
        {
            "clients/c.csv": CLIENTS,
            "deals/d.csv": DEALS,
            "calls/2026-01.csv": CALLS,
            "survey_responses/s.csv": SURVEYS,
            "marketing_spend/excel.csv": "period;channel;amount\n2026-01;Сайт;1 234,50\n".encode(
                "cp1251"
            ),
            "calls/broken.csv": b"\x00\x01 not a csv",
            "requests/no_header.csv": "1,2,3\n4,5,6\n",
        },
    )


def _keys(warehouse, schema, entity, key):
    return {r[0] for r in query(warehouse, f"select {key} from {schema}.{entity}")}


def test_every_bad_row_is_quarantined_with_its_reason(inbox, warehouse):
    load_inbox(inbox, warehouse)
    for (entity, key_value), reason in EXPECTED_REASONS.items():
        key = {"deals": "deal_id", "calls": "call_id", "survey_responses": "response_id"}[entity]
        rows = query(
            warehouse,
            f"select _reason, _source_line from quarantine.{entity} where {key} = '{key_value}'",
        )
        assert rows and rows[0][0] == reason, (entity, key_value, rows)
    # the row DuckDB could not split keeps its text and its physical line
    malformed = query(
        warehouse,
        "select _source_line, _raw_record, _reason from quarantine.deals where deal_id is null",
    )
    assert malformed[0][0] == 5
    assert malformed[0][1].startswith("d4,c2")
    assert malformed[0][2].startswith("malformed_row")
    # lines of the good and bad rows are the file's physical lines
    assert query(warehouse, "select _source_line from quarantine.deals where deal_id = 'd7'") == [
        (8,)
    ]
    assert query(warehouse, "select _source_line from raw.deals where deal_id = 'd1'") == [(2,)]


def test_nothing_is_lost(inbox, warehouse):
    reports = load_inbox(inbox, warehouse)
    by_entity = {r.entity: r for r in reports}
    assert (by_entity["deals"].rows_loaded, by_entity["deals"].rows_quarantined) == (1, 6)
    assert (by_entity["calls"].rows_loaded, by_entity["calls"].rows_quarantined) == (1, 3)
    for report in reports:
        for file in report.files:
            if file.status != "failed":
                assert file.rows_read == file.rows_loaded + file.rows_quarantined
    for entity in ("deals", "calls", "survey_responses", "clients"):
        raw = query(warehouse, f"select count(*) from raw.{entity}")[0][0]
        quarantined = query(warehouse, f"select count(*) from quarantine.{entity}")[0][0]
        source_rows = sum(
            len(p.read_text(encoding="utf-8").strip().splitlines()) - 1
            for p in (inbox / entity).glob("*.csv")
            if p.name not in ("broken.csv",)
        )
        assert raw + quarantined == source_rows, entity


def test_values_are_kept_as_loaded(inbox, warehouse):
    load_inbox(inbox, warehouse)
    assert query(warehouse, "select amount from raw.deals") == [("1000,50",)]
    assert query(warehouse, "select channel, amount from raw.marketing_spend") == [
        ("Сайт", "1 234,50")
    ]
    log = query(
        warehouse,
        "select encoding, delimiter, decimal_comma from raw._load_log "
        "where source_file = 'marketing_spend/excel.csv'",
    )
    assert log == [("cp1251", ";", True)]


def test_unreadable_files_are_reported_and_the_others_load(inbox, warehouse):
    reports = {r.entity: r for r in load_inbox(inbox, warehouse)}
    failed = {f.source_file: f.message for r in reports.values() for f in r.failed_files}
    assert set(failed) == {"calls/broken.csv", "requests/no_header.csv"}
    assert "broken.csv" in failed["calls/broken.csv"] and "binary" in failed["calls/broken.csv"]
    assert "header" in failed["requests/no_header.csv"]
    assert query(warehouse, "select count(*) from quarantine.files") == [(2,)]
    assert query(warehouse, "select count(*) from raw.calls") == [(1,)]


def test_every_raw_table_exists_even_without_files(inbox, warehouse):
    load_inbox(inbox, warehouse)
    tables = {
        r[0]
        for r in query(
            warehouse, "select table_name from information_schema.tables where table_schema = 'raw'"
        )
    }
    assert {e.name for e in ENTITIES} <= tables


def test_reloading_is_a_no_op(inbox, warehouse):
    load_inbox(inbox, warehouse)
    snapshot = {
        e.name: sorted(map(str, query(warehouse, f"select * from raw.{e.name}"))) for e in ENTITIES
    }
    quarantine = query(warehouse, "select count(*) from quarantine.deals")
    reports = load_inbox(inbox, warehouse)
    statuses = {f.status for r in reports for f in r.files}
    assert statuses <= {"skipped_unchanged", "failed"}
    for entity in ENTITIES:
        rows = sorted(map(str, query(warehouse, f"select * from raw.{entity.name}")))
        assert rows == snapshot[entity.name]
    assert query(warehouse, "select count(*) from quarantine.deals") == quarantine
    assert query(warehouse, "select count(*) from quarantine.files") == [(2,)]


def test_a_changed_file_replaces_its_rows(inbox, warehouse):
    load_inbox(inbox, warehouse)
    (inbox / "calls/2026-01.csv").write_text(
        CALLS.splitlines()[0] + "\nk9,2026-01-02 10:00,outbound,9161234567,101,answered,1,10\n",
        encoding="utf-8",
    )
    reports = {r.entity: r for r in load_inbox(inbox, warehouse)}
    assert [f.status for f in reports["calls"].files if f.source_file.endswith("2026-01.csv")] == [
        "reloaded"
    ]
    assert _keys(warehouse, "raw", "calls", "call_id") == {"k9"}
    assert query(warehouse, "select count(*) from quarantine.calls") == [(0,)]


def test_a_late_client_releases_its_quarantined_deal(inbox, warehouse):
    load_inbox(inbox, warehouse)
    assert "d2" in _keys(warehouse, "quarantine", "deals", "deal_id")
    write_inbox(
        inbox,
        {"clients/late.csv": "client_id,created_at,updated_at\nc9,2026-01-03,2026-01-03\n"},
    )
    reports = {r.entity: r for r in load_inbox(inbox, warehouse)}
    assert reports["deals"].rows_released == 1
    assert "d2" in _keys(warehouse, "raw", "deals", "deal_id")
    assert "d2" not in _keys(warehouse, "quarantine", "deals", "deal_id")
    # released rows keep their file and line
    assert query(
        warehouse, "select _source_file, _source_line from raw.deals where deal_id = 'd2'"
    ) == [("deals/d.csv", 3)]
    # and a third load changes nothing
    load_inbox(inbox, warehouse)
    assert query(warehouse, "select count(*) from raw.deals") == [(2,)]


def test_money_in_another_currency_is_quarantined_until_a_rate_table_exists(tmp_path, warehouse):
    """kpi-definitions: revenue is RUB; other currencies are converted with a rate table when
    present, otherwise quarantined (the inbox has no rate table: decisions D10)."""
    header = DEALS.splitlines()[0] + ",currency"
    won = "c1,m1,Продажи,Успех,won,10,2026-01-05 10:00,2026-01-20 12:00,2026-01-20 12:00"
    inbox = write_inbox(
        tmp_path / "inbox",
        {
            "clients/c.csv": CLIENTS,
            "deals/d.csv": f"{header}\nd8,{won},USD\nd9,{won},rub\nd10,{won},\n",
            "marketing_spend/s.csv": "period,channel,amount,currency\n"
            "2026-01,Сайт,100,EUR\n2026-02,Сайт,100,RUB\n",
        },
    )
    load_inbox(inbox, warehouse)
    assert _keys(warehouse, "raw", "deals", "deal_id") == {"d9", "d10"}
    assert query(warehouse, "select deal_id, _reason from quarantine.deals") == [
        ("d8", "unconverted_currency")
    ]
    assert query(warehouse, "select period, _reason from quarantine.marketing_spend") == [
        ("2026-01", "unconverted_currency")
    ]
