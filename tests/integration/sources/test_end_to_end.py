"""End to end: a fake amoCRM and a fake Bitrix24 account plus the mini inbox through `voronka run`.

The marts must show the CRM deals and calls next to the inbox's, each fact keeping its
`source_system`, the API ids namespaced and the inbox ids unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dagster_project.cli import main
from tests.conftest import FIXTURES, query, write_inbox
from tests.integration.sources.fakes import FakeAmoCrm, FakeBitrix24, FakeMango

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def epoch(text: str) -> int:
    """Unix seconds of a UTC time `YYYY-MM-DD HH:MM`."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def amo_account() -> dict:
    """A small amoCRM account: one pipeline, two users, one contact, three leads (won, open,
    lost), the won lead's status history, a task and two logged calls (January 2026)."""

    def status(status_id: int, name: str, sort: int) -> dict:
        return {"id": status_id, "name": name, "sort": sort, "pipeline_id": 501, "type": 0}

    def lead(lead_id, status_id, price, created, updated, closed=None, channel=None, **extra):
        fields = []
        if channel:
            fields.append(
                {
                    "field_id": 77,
                    "field_name": "Канал",
                    "field_code": None,
                    "field_type": "select",
                    "values": [{"value": channel, "enum_id": 5}],
                }
            )
        return {
            "id": lead_id,
            "name": f"Сделка {lead_id}",
            "price": price,
            "responsible_user_id": 11,
            "status_id": status_id,
            "pipeline_id": 501,
            "created_at": epoch(created),
            "updated_at": epoch(updated),
            "closed_at": epoch(closed) if closed else None,
            "custom_fields_values": fields or None,
            "_embedded": {"contacts": [{"id": 5000, "is_main": True}], **extra},
        }

    def status_event(event_id, lead_id, before, after, at):
        return {
            "id": event_id,
            "type": "lead_status_changed",
            "entity_id": lead_id,
            "entity_type": "lead",
            "created_by": 11,
            "created_at": epoch(at),
            "value_before": [{"lead_status": {"id": before, "pipeline_id": 501}}],
            "value_after": [{"lead_status": {"id": after, "pipeline_id": 501}}],
        }

    def call_note(note_id, note_type, at, call_status, duration, uniq):
        return {
            "id": note_id,
            "entity_id": 5000,
            "created_at": epoch(at),
            "updated_at": epoch(at),
            "responsible_user_id": 11,
            "note_type": note_type,
            "params": {
                "uniq": uniq,
                "duration": duration,
                "source": "onlinepbx",
                "phone": "+7 916 555-00-01",
                "call_status": call_status,
            },
        }

    return {
        "pipelines": [
            {
                "id": 501,
                "name": "Продажи",  # the inbox's pipeline has the same name: no clash
                "sort": 1,
                "is_main": True,
                "_embedded": {
                    "statuses": [
                        status(1001, "Новая", 10),
                        status(1002, "Переговоры", 20),
                        status(142, "Успешно реализовано", 10000),
                        status(143, "Закрыто и не реализовано", 11000),
                    ]
                },
            }
        ],
        "users": [
            {"id": 11, "name": "Ирина Амосова", "email": "Irina@Example.ru"},
            {"id": 12, "name": "Олег Амосов", "email": "oleg@example.ru"},
        ],
        "contacts": [
            {
                "id": 5000,
                "name": "ООО Ромашка",
                "created_at": epoch("2026-01-08 07:00"),
                "updated_at": epoch("2026-01-08 07:00"),
                "custom_fields_values": [
                    {
                        "field_code": "PHONE",
                        "values": [{"value": "+7 (916) 555-00-01", "enum_code": "WORK"}],
                    }
                ],
            }
        ],
        "companies": [],
        "leads": [
            lead(
                1000,
                142,
                120000,
                "2026-01-08 07:30",
                "2026-01-22 12:00",
                "2026-01-22 12:00",
                channel="Яндекс.Директ",
            ),
            lead(1001, 1002, 50000, "2026-01-09 08:00", "2026-01-09 08:00"),
            lead(
                1002,
                143,
                30000,
                "2026-01-10 08:00",
                "2026-01-16 09:00",
                "2026-01-16 09:00",
                loss_reason=[{"id": 3, "name": "Дорого"}],
            ),
        ],
        "events": [
            status_event("ev1", 1000, 1001, 1002, "2026-01-12 10:00"),
            status_event("ev2", 1000, 1002, 142, "2026-01-22 12:00"),
        ],
        "tasks": [
            {
                "id": 9000,
                "entity_id": 1001,
                "entity_type": "leads",
                "responsible_user_id": 11,
                "task_type_id": 1,
                "is_completed": False,
                "complete_till": epoch("2026-01-20 09:00"),
                "created_at": epoch("2026-01-09 08:05"),
                "updated_at": epoch("2026-01-09 08:05"),
            }
        ],
        "notes": {
            "contacts": [
                call_note(70001, "call_out", "2026-01-15 10:00", 4, 240, "amo-call-1"),
                call_note(70002, "call_in", "2026-01-16 11:00", 6, 0, "amo-call-2"),
            ],
            "leads": [
                # the same call logged on the lead too: counted once
                call_note(70003, "call_out", "2026-01-15 10:00", 4, 240, "amo-call-1"),
            ],
            "companies": [],
        },
    }


def bitrix_account() -> dict:
    """A small Bitrix24 account: the default pipeline with its stages and semantics, two users
    (one with an internal number), a contact, a won and an open deal with their stage history,
    two calls and an activity (January 2026, Moscow time)."""

    def stage(i, status_id, name, semantics):
        return {
            "ID": str(i),
            "ENTITY_ID": "DEAL_STAGE",
            "STATUS_ID": status_id,
            "NAME": name,
            "SORT": str(10 * i),
            "EXTRA": {"SEMANTICS": semantics, "COLOR": "#39A8EF"},
        }

    def history(i, deal_id, stage_id, at, semantic):
        return {
            "ID": str(i),
            "TYPE_ID": "2",
            "OWNER_ID": str(deal_id),
            "CREATED_TIME": at,
            "CATEGORY_ID": "0",
            "STAGE_SEMANTIC_ID": semantic,
            "STAGE_ID": stage_id,
        }

    return {
        "crm.category.list": [
            {"id": 0, "name": "Общая", "sort": 100, "entityTypeId": 2, "isDefault": "Y"}
        ],
        "crm.status.list": [
            stage(1, "NEW", "Новая", "process"),
            stage(2, "PREPARATION", "Подготовка", "process"),
            stage(3, "WON", "Сделка успешна", "success"),
            stage(4, "LOSE", "Сделка провалена", "failure"),
            {
                "ID": "20",
                "ENTITY_ID": "SOURCE",
                "STATUS_ID": "CALL",
                "NAME": "Звонок",
                "SORT": "10",
            },
        ],
        "user.get": [
            {
                "ID": "1",
                "ACTIVE": True,
                "NAME": "Пётр",
                "LAST_NAME": "Битриксов",
                "EMAIL": "petr@example.ru",
                "UF_PHONE_INNER": "201",
                "UF_DEPARTMENT": [5],
            },
            {
                "ID": "2",
                "ACTIVE": True,
                "NAME": "Мария",
                "LAST_NAME": "Битриксова",
                "EMAIL": "maria@example.ru",
                "UF_PHONE_INNER": "",
                "UF_DEPARTMENT": [5],
            },
        ],
        "crm.contact.list": [
            {
                "ID": "1",
                "NAME": "Семён",
                "LAST_NAME": "Клиентов",
                "DATE_CREATE": "2026-01-10T10:00:00+03:00",
                "DATE_MODIFY": "2026-01-10T10:00:00+03:00",
                "PHONE": [
                    {
                        "ID": "100",
                        "VALUE_TYPE": "WORK",
                        "VALUE": "8 926 777-00-01",
                        "TYPE_ID": "PHONE",
                    }
                ],
            }
        ],
        "crm.company.list": [],
        "crm.deal.list": [
            {
                "ID": "1",
                "TITLE": "Поставка",
                "CATEGORY_ID": "0",
                "STAGE_ID": "WON",
                "STAGE_SEMANTIC_ID": "S",
                "OPPORTUNITY": "80000.00",
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": "1",
                "CONTACT_ID": "1",
                "COMPANY_ID": "0",
                "DATE_CREATE": "2026-01-10T10:00:00+03:00",
                "DATE_MODIFY": "2026-01-25T12:00:00+03:00",
                "CLOSEDATE": "2026-01-25T12:00:00+03:00",
                "CLOSED": "Y",
                "SOURCE_ID": "CALL",
                "UF_CRM_BUDGET": "большой",
            },
            {
                "ID": "2",
                "TITLE": "Пилот",
                "CATEGORY_ID": "0",
                "STAGE_ID": "PREPARATION",
                "STAGE_SEMANTIC_ID": "P",
                "OPPORTUNITY": "15000.00",
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": "2",
                "CONTACT_ID": "1",
                "COMPANY_ID": "0",
                "DATE_CREATE": "2026-01-20T10:00:00+03:00",
                "DATE_MODIFY": "2026-01-21T10:00:00+03:00",
                "CLOSEDATE": "2026-02-28T10:00:00+03:00",
                "CLOSED": "N",
                "SOURCE_ID": "CALL",
                "UF_CRM_BUDGET": None,
            },
        ],
        "crm.stagehistory.list": [
            history(1, 1, "NEW", "2026-01-10T10:00:00+03:00", "P"),
            history(2, 1, "WON", "2026-01-25T12:00:00+03:00", "S"),
            history(3, 2, "NEW", "2026-01-20T10:00:00+03:00", "P"),
            history(4, 2, "PREPARATION", "2026-01-21T10:00:00+03:00", "P"),
        ],
        "crm.activity.list": [
            {
                "ID": "31",
                "OWNER_ID": "2",
                "OWNER_TYPE_ID": "2",
                "TYPE_ID": "2",
                "RESPONSIBLE_ID": "2",
                "COMPLETED": "Y",
                "CREATED": "2026-01-20T10:05:00+03:00",
                "DEADLINE": "2026-01-20T12:00:00+03:00",
                "LAST_UPDATED": "2026-01-20T10:30:00+03:00",
            }
        ],
        "voximplant.statistic.get": [
            {
                "ID": "1",
                "CALL_ID": "externalCall.a1",
                "PORTAL_USER_ID": "1",
                "PORTAL_NUMBER": "74959990000",
                "PHONE_NUMBER": "79267770001",
                "CALL_TYPE": "2",
                "CALL_DURATION": "120",
                "CALL_START_DATE": "2026-01-20T11:00:00+03:00",
                "CALL_FAILED_CODE": "200",
            },
            {
                "ID": "2",
                "CALL_ID": "externalCall.a2",
                "PORTAL_USER_ID": "2",
                "PORTAL_NUMBER": "74959990000",
                "PHONE_NUMBER": "79267770001",
                "CALL_TYPE": "1",
                "CALL_DURATION": "0",
                "CALL_START_DATE": "2026-01-20T11:30:00+03:00",
                "CALL_FAILED_CODE": "304",
            },
        ],
    }


BITRIX_JANUARY_BONUS = {
    "sales_plans/2026-01-bitrix24.csv": (
        "period,manager_id,kpi_code,base,norm\n2026-01,bitrix24:1,deals_won,0,1\n"
    ),
    "bonus_pools/2026-01-bitrix24.csv": "period,manager_id,pool_amount\n2026-01,bitrix24:1,10000\n",
}


AMOCRM_JANUARY_BONUS = {
    # a January plan and pool of the amoCRM manager: a bonus line that a deletion can move
    "sales_plans/2026-01-amocrm.csv": (
        "period,manager_id,kpi_code,base,norm\n2026-01,amocrm:11,deals_won,1,2\n"
    ),
    "bonus_pools/2026-01-amocrm.csv": "period,manager_id,pool_amount\n2026-01,amocrm:11,30000\n",
}

MANGO_LINE = "74950001111"


def mango_calls() -> list[dict]:
    """Two inbound calls on the Mango line (January 2026, UTC): one waited 40 s in the voice
    menu and the queue, then an employee answered; one was abandoned in the queue before any
    employee rang (no extension on any leg): a missed call the old staging dropped (D95)."""

    def leg(entry, start, finish, answer=0, to_extension=""):
        return {
            "records": "",
            "start": start,
            "finish": finish,
            "answer": answer,
            "from_extension": "",
            "from_number": "79165550001",
            "to_extension": to_extension,
            "to_number": MANGO_LINE,
            "disconnect_reason": "1100",
            "line_number": MANGO_LINE,
            "location": "ivr" if not to_extension else "abonent",
            "create": start,
            "entry_id": entry,
        }

    t1, t2 = epoch("2026-01-21 07:00"), epoch("2026-01-21 08:00")
    return [
        leg("QUEUE-ANSWERED", t1, t1 + 40),
        leg("QUEUE-ANSWERED", t1 + 40, t1 + 200, answer=t1 + 50, to_extension="103"),
        leg("QUEUE-ABANDONED", t2, t2 + 75),
    ]


def run(inbox, warehouse) -> int:
    # the mini inbox's as-of, so that the CRM data does not move it
    return main(
        [
            "run",
            "--inbox",
            str(inbox),
            "--warehouse",
            str(warehouse),
            "--as-of",
            "2026-02-26T10:00:00+03:00",
            "--quiet",
        ]
    )


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """The fake accounts, the environment that enables them, the inbox and the warehouse."""
    root = tmp_path_factory.mktemp("sources_e2e")
    inbox = root / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    # a January plan and pool of the Bitrix24 manager, for the bonus month closed below
    write_inbox(inbox, BITRIX_JANUARY_BONUS)
    write_inbox(inbox, AMOCRM_JANUARY_BONUS)
    amo = FakeAmoCrm(amo_account()).start()
    bitrix = FakeBitrix24(bitrix_account()).start()
    mango = FakeMango(mango_calls(), polls_before_ready=0).start()
    # `voronka run` exports its settings (VORONKA_*): restore them all for the next modules (the
    # per-test guard in tests/conftest.py runs after this module-scoped fixture)
    saved = {k: v for k, v in os.environ.items() if k.startswith("VORONKA_")}
    os.environ.update(
        {
            "VORONKA_AMOCRM_BASE_URL": amo.url,
            "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "access-token-AAAA",
            "VORONKA_AMOCRM_CHANNEL_FIELD": "Канал",
            "VORONKA_BITRIX24_WEBHOOK_URL": bitrix.webhook_url,
            "VORONKA_TOKEN_STORE": str(root / "tokens.json"),
            "VORONKA_MANGO_API_KEY": mango.api_key,
            "VORONKA_MANGO_API_SALT": mango.api_salt,
            "VORONKA_MANGO_BASE_URL": mango.base_url,
            "VORONKA_MANGO_START_DATE": "2026-01-01",
            "VORONKA_MANGO_WINDOW_HOURS": "17520",
            "VORONKA_MANGO_RPS": "1000",
        }
    )
    try:
        yield inbox, root / "warehouse.duckdb", amo, bitrix
    finally:
        for key in [k for k in os.environ if k.startswith("VORONKA_")]:
            del os.environ[key]
        os.environ.update(saved)
        amo.stop()
        bitrix.stop()
        mango.stop()


@pytest.fixture(scope="module")
def built(accounts):
    inbox, warehouse, _, _ = accounts
    return warehouse, run(inbox, warehouse)


def test_run_succeeds(built):
    _, code = built
    assert code == 0


def test_deals_of_every_source_with_namespaced_ids(built):
    warehouse, _ = built
    deals = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select deal_id, source_system, client_id, manager_id, pipeline, stage, status, "
            "channel, amount from core.fct_deals",
        )
    }
    # the inbox's deals keep their ids
    assert {d for d in deals if ":" not in d} == {"d1", "d2", "d3", "d4", "d5"}
    assert deals["d1"][0] == "inbox"
    assert deals["amocrm:1000"] == (
        "amocrm",
        "amocrm:contact:5000",
        "amocrm:11",
        "amocrm:Продажи",
        "Успешно реализовано",
        "won",
        "Яндекс.Директ",  # the custom field named by VORONKA_AMOCRM_CHANNEL_FIELD
        Decimal("120000.00"),
    )
    assert deals["amocrm:1001"][5] == "open" and deals["amocrm:1002"][5] == "lost"
    assert deals["bitrix24:1"] == (
        "bitrix24",
        "bitrix24:contact:1",
        "bitrix24:1",
        "bitrix24:Общая",
        "Сделка успешна",
        "won",
        "Звонок",  # SOURCE_ID CALL, by its name
        Decimal("80000.00"),
    )
    assert deals["bitrix24:2"][5] == "open"
    custom = query(
        warehouse, "select custom_fields from core.fct_deals where deal_id = 'bitrix24:1'"
    )[0][0]
    assert '"uf_crm_budget":"большой"' in custom.replace(" ", "")


def test_calls_of_every_source(built):
    warehouse, _ = built
    calls = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select call_id, source_system, manager_id, client_id, direction, status, "
            "talk_seconds from core.fct_calls",
        )
    }
    assert {c for c in calls if ":" not in c} == {"k1", "k2", "k3", "k4", "k5", "k6"}
    # one amoCRM call logged on the contact and on the lead counts once
    assert calls["amocrm:amo-call-1"] == (
        "amocrm",
        "amocrm:11",
        "amocrm:contact:5000",
        "outbound",
        "answered",
        240,
    )
    assert calls["amocrm:amo-call-2"][4] == "missed"
    # Bitrix24: credited through the user's internal number, matched to the contact by phone
    assert calls["bitrix24:externalCall.a1"] == (
        "bitrix24",
        "bitrix24:1",
        "bitrix24:contact:1",
        "inbound",
        "answered",
        120,
    )
    assert calls["bitrix24:externalCall.a2"][1:5] == (
        "bitrix24:2",
        "bitrix24:contact:1",
        "outbound",
        "no_answer",
    )
    assert len([c for c in calls if c.startswith("amocrm:")]) == 2


def test_stage_changes_and_pipelines(built):
    warehouse, _ = built
    changes = dict(
        query(
            warehouse,
            "select change_id, from_stage || ' -> ' || to_stage || ' ' || to_stage_type "
            "from core.fct_deal_stage_changes where source_system <> 'inbox'",
        )
    )
    assert changes["amocrm:ev2"] == "Переговоры -> Успешно реализовано won"
    assert changes["bitrix24:2"] == "Новая -> Сделка успешна won"
    stages = query(
        warehouse,
        "select pipeline, count(*) from core.dim_pipeline_stages group by 1 order by 1",
    )
    assert stages == [("amocrm:Продажи", 4), ("bitrix24:Общая", 4), ("Продажи", 5)]


def test_marts_show_crm_deals_and_calls_next_to_the_inbox(built):
    warehouse, _ = built
    managers = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select manager_id, manager_name, deals_created, deals_won, revenue, "
            "calls_outbound, calls_inbound from marts.kpi_manager_monthly "
            "where month = date '2026-01-01'",
        )
    }
    assert managers["m1"][2:4] == (1, Decimal("100000.00"))  # the inbox's, unchanged
    assert managers["amocrm:11"] == ("Ирина Амосова", 3, 1, Decimal("120000.00"), 1, 1)
    assert managers["bitrix24:1"] == ("Пётр Битриксов", 1, 1, Decimal("80000.00"), 0, 1)
    assert managers["bitrix24:2"][1:] == (1, 0, Decimal("0.00"), 1, 0)
    company = query(
        warehouse,
        "select deals_won, revenue from marts.kpi_company_monthly where month = date '2026-01-01'",
    )
    assert company == [(3, Decimal("300000.00"))]  # 100 000 inbox + 120 000 + 80 000
    hourly = query(
        warehouse,
        "select offered, answered from marts.kpi_calls_hourly "
        "where line = '74959990000' and call_date = date '2026-01-20' and call_hour = 11",
    )
    assert hourly == [(1, 1)]  # the Bitrix24 inbound call at 11:00 Moscow time


MARTS_AND_FINANCE = """
    select table_schema, table_name from information_schema.tables
    where table_schema in ('core', 'marts', 'finance') and table_type = 'BASE TABLE'
    order by 1, 2
"""


def dump(warehouse) -> dict:
    return {
        (schema, table): query(warehouse, f"select * from {schema}.{table} order by all")
        for schema, table in query(warehouse, MARTS_AND_FINANCE)
    }


@pytest.fixture(scope="module")
def unchanged_rerun(built, accounts):
    """A second run while no account changed: the APIs are asked, land nothing new, and dbt,
    the checks and the exports are skipped (D221)."""
    from dagster_project.defs.transform.dbt import dbt_folder

    inbox, warehouse, _, _ = accounts
    before = dump(warehouse)
    builds = sorted(p.name for p in dbt_folder(warehouse).iterdir())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(inbox, warehouse)
    return warehouse, code, out.getvalue(), before, builds


def test_a_run_with_no_new_api_rows_skips_dbt_checks_and_exports(unchanged_rerun):
    from dagster_project.defs.transform.dbt import dbt_folder
    from dagster_project.lib import warehouse as wh

    warehouse, code, out, before, builds = unchanged_rerun
    assert code == 0
    assert "No new rows from amocrm, bitrix24, mango, and nothing else changed" in out
    assert "(D221)" in out
    assert sorted(p.name for p in dbt_folder(warehouse).iterdir()) == builds  # no dbt build
    assert dump(warehouse) == before
    # published with its inputs: the extraction's state is what readers see, and the next
    # unchanged run may skip again
    state = wh.read_state(warehouse)
    assert state["dirty"] is None and state[wh.RUN_RECORD_KEY]["inputs"]["sources"]["api"] == [
        "amocrm",
        "bitrix24",
        "mango",
    ]


@pytest.fixture(scope="module")
def rebuilt(built, unchanged_rerun, accounts):
    """A second run after the open amoCRM lead was won: the incremental facts pick it up."""
    inbox, warehouse, amo, _ = accounts
    lead = next(r for r in amo.data["leads"] if r["id"] == 1001)
    lead.update(
        status_id=142, updated_at=epoch("2026-01-28 09:00"), closed_at=epoch("2026-01-28 09:00")
    )
    amo.data["events"].append(
        {
            "id": "ev3",
            "type": "lead_status_changed",
            "entity_id": 1001,
            "entity_type": "lead",
            "created_by": 11,
            "created_at": epoch("2026-01-28 09:00"),
            "value_before": [{"lead_status": {"id": 1002, "pipeline_id": 501}}],
            "value_after": [{"lead_status": {"id": 142, "pipeline_id": 501}}],
        }
    )
    return warehouse, run(inbox, warehouse)


def test_a_second_run_picks_up_changes_incrementally(rebuilt):
    warehouse, code = rebuilt
    assert code == 0
    assert query(warehouse, "select status from core.fct_deals where deal_id = 'amocrm:1001'") == [
        ("won",)
    ]
    assert query(
        warehouse,
        "select to_stage from core.fct_deal_stage_changes where change_id = 'amocrm:ev3'",
    ) == [("Успешно реализовано",)]
    # nothing was loaded twice
    counts = query(
        warehouse,
        "select source_system, count(*) from core.fct_calls group by 1 order by 1",
    )
    assert counts == [("amocrm", 2), ("bitrix24", 2), ("inbox", 6), ("mango", 2)]
    company = query(
        warehouse,
        "select deals_won, revenue from marts.kpi_company_monthly where month = date '2026-01-01'",
    )
    assert company == [(4, Decimal("350000.00"))]


JANUARY_LINE = """
    select bonus_amount, period_status from finance.bonus_lines
    where month = date '2026-01-01' and manager_id = 'bitrix24:1' and kpi_code = 'deals_won'
"""


AMOCRM_JANUARY_BONUS_LINE = """
    select kpi_code, fact, bonus_amount from finance.bonus_lines
    where month = date '2026-01-01' and manager_id = 'amocrm:11'
"""


@pytest.fixture(scope="module")
def deleted_after_close(rebuilt, accounts):
    """January is closed with the won Bitrix24 deal 1 and the won amoCRM deals paid; then the
    Bitrix24 deal is deleted (the next run learns it from the live-id pass) and so is the amoCRM
    deal won in January, amocrm:1000 (120 000): gone from the leads list, a `lead_deleted`
    event, and in the trash (D96)."""
    inbox, warehouse, amo, bitrix = accounts
    paid = query(warehouse, JANUARY_LINE)
    assert main(["close-period", "2026-01", "--by", "Тест", "--warehouse", str(warehouse)]) == 0
    amo_closed = query(warehouse, AMOCRM_JANUARY_BONUS_LINE)
    bitrix.data["crm.deal.list"] = [d for d in bitrix.data["crm.deal.list"] if d["ID"] != "1"]
    lead = next(r for r in amo.data["leads"] if r["id"] == 1000)
    amo.data["leads"] = [r for r in amo.data["leads"] if r["id"] != 1000]
    amo.data["deleted_leads"] = [{**lead, "is_deleted": True}]
    amo.data["events"].append(
        {
            "id": "ev-del-1000",
            "type": "lead_deleted",
            "entity_id": 1000,
            "entity_type": "lead",
            "created_by": 11,
            "created_at": epoch("2026-02-10 09:00"),
            "value_before": [],
            "value_after": [],
        }
    )
    return warehouse, paid, run(inbox, warehouse), amo_closed


def test_a_won_bitrix24_deal_deleted_later_leaves_the_marts_and_adjusts_a_closed_month(
    deleted_after_close,
):
    warehouse, paid, code, _ = deleted_after_close
    assert code == 0
    assert paid == [(Decimal("4000.00"), "open")]  # 10 000 x 0.4 x 1.0 for 1 of 1 deal won
    assert query(
        warehouse,
        "select id, event from raw_bitrix24.deals_deletions",
    ) == [("1", "deleted")]
    assert query(warehouse, "select count(*) from core.fct_deals where deal_id = 'bitrix24:1'") == [
        (0,)
    ]
    won = query(
        warehouse,
        "select coalesce(sum(deals_won), 0), coalesce(sum(revenue), 0) from marts.kpi_manager_monthly "
        "where manager_id = 'bitrix24:1' and month = date '2026-01-01'",
    )
    assert won == [(0, Decimal("0"))]
    # the closed month stays as paid; the difference is an adjustment payable in February
    assert query(warehouse, JANUARY_LINE) == [(Decimal("4000.00"), "closed")]
    assert query(
        warehouse,
        "select month_affected, kpi_code, paid_amount, recomputed_amount, delta, payable_month "
        "from finance.bonus_adjustments where manager_id = 'bitrix24:1'",
    ) == [
        (
            date(2026, 1, 1),
            "deals_won",
            Decimal("4000.00"),
            Decimal("0.00"),
            Decimal("-4000.00"),
            date(2026, 2, 1),
        )
    ]


def test_mango_calls_abandoned_in_the_queue_are_missed_calls_on_the_line(built):
    warehouse, _ = built
    calls = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select call_id, direction, status, manager_id, ring_seconds, talk_seconds "
            "from core.fct_calls where source_system = 'mango'",
        )
    }
    # the queue's 40 s count in the ring time (10 s more on the extension until the answer)
    assert calls["mango:QUEUE-ANSWERED"] == ("inbound", "answered", "m3", 50, 150)
    assert calls["mango:QUEUE-ABANDONED"] == ("inbound", "missed", None, 75, 0)
    hourly = query(
        warehouse,
        "select call_hour, offered, answered from marts.kpi_calls_hourly "
        f"where line = '{MANGO_LINE}' order by call_hour",
    )
    assert hourly == [(10, 1, 1), (11, 1, 0)]  # Moscow time


def test_a_deleted_amocrm_deal_leaves_the_marts_and_adjusts_the_closed_bonus(
    deleted_after_close,
):
    warehouse, _, code, closed = deleted_after_close
    assert code == 0
    assert query(
        warehouse, "select count(*) from core.fct_deals where deal_id = 'amocrm:1000'"
    ) == [(0,)]
    # January: 350 000 less the deleted amoCRM 120 000 and the deleted Bitrix24 80 000
    company = query(
        warehouse,
        "select deals_won, revenue from marts.kpi_company_monthly where month = date '2026-01-01'",
    )
    assert company == [(2, Decimal("150000.00"))]
    manager = query(
        warehouse,
        "select deals_won, revenue from marts.kpi_manager_monthly "
        "where month = date '2026-01-01' and manager_id = 'amocrm:11'",
    )
    assert manager == [(1, Decimal("50000.00"))]
    # the closed month does not change; the difference is an adjustment
    assert closed and closed[0][1] == 2  # two amoCRM deals won in January when it closed
    assert query(warehouse, AMOCRM_JANUARY_BONUS_LINE) == closed
    adjustments = query(
        warehouse,
        "select month_affected, manager_id, kpi_code, paid_amount, recomputed_amount, delta "
        "from finance.bonus_adjustments where manager_id = 'amocrm:11'",
    )
    assert len(adjustments) == 1
    month, manager_id, kpi, paid, recomputed, delta = adjustments[0]
    assert (month, manager_id, kpi) == (date(2026, 1, 1), "amocrm:11", "deals_won")
    assert paid == closed[0][2] and delta == recomputed - paid and delta < 0
