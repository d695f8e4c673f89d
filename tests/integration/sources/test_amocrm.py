"""amoCRM extraction against a local fake of API v4: paging, refresh, back-off, resume."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from dagster_project.lib.sources.amocrm import AmoCrmExtractor, AmoCrmSettings
from dagster_project.lib.sources.http import ApiError, AuthError, RetryPolicy
from dagster_project.lib.sources.state import RawWriter
from tests.integration.sources.conftest import SleepRecorder
from tests.integration.sources.fakes import make_amo_data

pytestmark = pytest.mark.integration


def settings(server, tmp_path, oauth=True, **extra) -> AmoCrmSettings:
    env = {
        "VORONKA_AMOCRM_BASE_URL": server.url,
        "VORONKA_TOKEN_STORE": str(tmp_path / "cfg" / "tokens.json"),
    }
    if oauth:
        env.update(
            VORONKA_AMOCRM_ACCESS_TOKEN="access-token-AAAA",
            VORONKA_AMOCRM_REFRESH_TOKEN="refresh-token-RRRR",
            VORONKA_AMOCRM_CLIENT_ID="client-id-1",
            VORONKA_AMOCRM_CLIENT_SECRET="client-secret-SSSS",
            VORONKA_AMOCRM_REDIRECT_URI="https://example.org/oauth",
        )
    else:
        env["VORONKA_AMOCRM_LONG_LIVED_TOKEN"] = "access-token-AAAA"
    env.update(extra)
    return AmoCrmSettings.from_env(env)


def extract(server, tmp_path, con, name="leads", sleep=None, retry=None, **kw):
    sleep = sleep or SleepRecorder()
    extractor = AmoCrmExtractor(
        settings(server, tmp_path, **kw), sleep=sleep, retry=retry, monotonic=sleep.monotonic
    )
    try:
        return extractor.extract(RawWriter(con, "amocrm"), name)
    finally:
        extractor.close()


BASE = 1_767_225_600


def lead_windows(server) -> list[int | None]:
    """The `filter[updated_at][from]` of every leads request (None: from the start)."""
    return [
        int(r.params["filter[updated_at][from]"][0])
        if "filter[updated_at][from]" in r.params
        else None
        for r in server.requests
        if r.path == "/api/v4/leads"
    ]


def after_page(k: int) -> int:
    """The key after page `k` of `make_amo_data` leads: the updated_at of its last lead (each
    page after the first starts with the last lead of the one before: the key is inclusive)."""
    return BASE + 249 * k * 60 + 30


def key_fault(k: int) -> str:
    """A fault's `contains` matching the request of page `k + 1` (read by key, D97)."""
    return f"filter[updated_at][from]={after_page(k)}&"


def test_leads_are_paged_to_the_end_and_land_flattened(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=600, n_contacts=5)
    [report] = extract(amo_server, tmp_path, con)
    assert report.pages == 3 and report.rows_inserted == 600
    # read by key in updated_at order (D97), never by page number
    assert lead_windows(amo_server) == [None, after_page(1), after_page(2)]
    first = amo_server.requests[0].params
    assert first["limit"] == ["250"] and first["order[updated_at]"] == ["asc"]
    assert first["page"] == ["1"] and "order[id]" not in first
    assert first["with"] == ["contacts,loss_reason,source_id"]
    row = con.execute(
        "select id, price, is_deleted, custom_fields_values, _embedded, _source, _batch_id "
        "from raw_amocrm.leads where id = '1001'"
    ).fetchone()
    assert row[:3] == ("1001", "10001", "false")
    assert json.loads(row[3])[0]["field_id"] == 77  # custom fields kept as JSON text
    assert json.loads(row[4])["contacts"][0]["id"] == 5001
    assert row[5] == "GET /api/v4/leads" and row[6].startswith("page_")
    state = RawWriter(con, "amocrm").get_state("leads")
    assert state["status"] == "complete" and state["hwm"] == 1_767_225_600 + 599 * 60 + 30


def test_running_twice_loads_nothing_twice(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=300)
    extract(amo_server, tmp_path, con)
    [again] = extract(amo_server, tmp_path, con)
    assert again.rows_inserted == 0
    # the second run re-reads only the overlap window, not everything
    window = [r.params for r in amo_server.requests if r.path == "/api/v4/leads"][-1]
    assert int(window["filter[updated_at][from]"][0]) == again.window_from
    assert con.execute("select count(*), count(distinct id) from raw_amocrm.leads").fetchone() == (
        300,
        300,
    )


def test_a_changed_lead_adds_a_version(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=10)
    extract(amo_server, tmp_path, con)
    lead = amo_server.data["leads"][3]
    lead.update(price=99999, updated_at=lead["updated_at"] + 100_000)
    [report] = extract(amo_server, tmp_path, con)
    assert report.rows_inserted == 1
    versions = con.execute(
        "select price from raw_amocrm.leads where id = '1003' order by updated_at"
    ).fetchall()
    assert versions == [("10003",), ("99999",)]


def test_an_expired_token_is_refreshed_once_and_persisted(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=300)
    amo_server.fail(
        "/api/v4/leads",
        401,
        json.dumps({"title": "Unauthorized", "status": 401}),
        contains=key_fault(1),
    )
    amo_server.expire_tokens()  # the environment's access token is already dead
    [report] = extract(amo_server, tmp_path, con)
    assert report.rows_inserted == 300
    assert amo_server.refreshes == 2  # once for the dead token, once for the 401 on page 2
    store = tmp_path / "cfg" / "tokens.json"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.parent).st_mode) == 0o700
    saved = json.loads(store.read_text())[f"amocrm:{amo_server.url.split('//')[1]}"]
    assert saved["refresh_token"] == "refresh-token-N002"
    # the next run uses the stored pair: the environment's refresh token is single-use and dead
    amo_server.expire_tokens()
    [again] = extract(amo_server, tmp_path, con)
    assert again.rows_inserted == 0 and amo_server.refreshes == 3


def test_a_refused_refresh_fails_clearly(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=5)
    amo_server.expire_tokens()
    amo_server.refresh_tokens = set()
    with pytest.raises(ApiError) as error:
        extract(amo_server, tmp_path, con)
    assert "POST /oauth2/access_token" in str(error.value)


def test_long_lived_token_401_is_an_auth_error(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=5)
    amo_server.expire_tokens()
    with pytest.raises(AuthError, match="GET /api/v4/leads.*refused the credentials"):
        extract(amo_server, tmp_path, con, oauth=False)
    assert amo_server.refreshes == 0


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_back_off_then_succeed(amo_server, tmp_path, con, sleep, status):
    amo_server.data = make_amo_data(n_leads=300)
    amo_server.fail(
        "/api/v4/leads", status, b"", times=2, contains=key_fault(1), headers={"Retry-After": "7"}
    )
    [report] = extract(amo_server, tmp_path, con, sleep=sleep)
    assert report.rows_inserted == 300
    assert lead_windows(amo_server) == [None] + [after_page(1)] * 3
    assert len(sleep.backoffs) == 2 and all(s >= 7 for s in sleep.backoffs)  # Retry-After honoured


def test_a_500_is_retried_then_fails_naming_the_endpoint(amo_server, tmp_path, con, sleep):
    amo_server.data = make_amo_data(n_leads=600)
    amo_server.fail(
        "/api/v4/leads", 500, "Internal error <b>oops</b>", times=100, contains=key_fault(1)
    )
    with pytest.raises(ApiError) as error:
        extract(amo_server, tmp_path, con, sleep=sleep, retry=RetryPolicy(max_attempts=4))
    message = str(error.value)
    assert "amocrm GET /api/v4/leads failed after 4 attempts: HTTP 500" in message
    assert lead_windows(amo_server) == [None] + [after_page(1)] * 4
    assert [round(s) for s in sleep.backoffs] and max(sleep.backoffs) <= 60
    # page 1 is committed; the state points at page 2
    assert con.execute("select count(*) from raw_amocrm.leads").fetchone()[0] == 250
    state = RawWriter(con, "amocrm").get_state("leads")
    assert state["status"] == "in_progress" and state["page_token"]["from"] == after_page(1)


def test_malformed_json_is_retried_then_fails(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=10)
    amo_server.fail(
        "/api/v4/leads",
        200,
        b'{"_embedded": {"leads": [',
        times=10,
        headers={"Content-Type": "application/hal+json"},
    )
    with pytest.raises(ApiError, match="malformed JSON"):
        extract(amo_server, tmp_path, con, retry=RetryPolicy(max_attempts=3))
    assert con.execute("select count(*) from raw_amocrm.leads").fetchone()[0] == 0


def test_an_empty_account_gives_empty_tables(amo_server, tmp_path, con):
    amo_server.data = make_amo_data()
    for name in ("leads", "events", "contacts", "users", "tasks", "call_notes"):
        extract(amo_server, tmp_path, con, name=name)
    assert con.execute("select count(*) from raw_amocrm.leads").fetchone()[0] == 0
    assert con.execute("select count(*) from raw_amocrm.contact_channels").fetchone()[0] == 0
    states = con.execute("select object, status from raw_amocrm._state order by 1").fetchall()
    assert all(status == "complete" for _, status in states) and len(states) == 9


def test_a_failed_run_resumes_from_the_last_committed_page(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=1100)  # 5 pages
    amo_server.fail("/api/v4/leads", 502, b"bad gateway", times=3, contains=key_fault(3))
    with pytest.raises(ApiError):
        extract(amo_server, tmp_path, con, retry=RetryPolicy(max_attempts=3))
    assert con.execute("select count(*) from raw_amocrm.leads").fetchone()[0] == 748
    before = len(amo_server.requests)
    [report] = extract(amo_server, tmp_path, con)
    assert report.resumed and report.pages == 2
    assert lead_windows(amo_server)[-2:] == [after_page(3), after_page(4)]
    assert len(amo_server.requests) - before == 2
    assert con.execute("select count(*), count(distinct id) from raw_amocrm.leads").fetchone() == (
        1100,
        1100,
    )
    assert RawWriter(con, "amocrm").get_state("leads")["status"] == "complete"


def test_reference_objects_events_notes_and_channels(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=120, n_contacts=30)
    for name in ("pipelines", "users", "events", "contacts", "call_notes", "tasks"):
        extract(amo_server, tmp_path, con, name=name)
    assert con.execute("select count(*) from raw_amocrm.pipelines").fetchone()[0] == 1
    assert con.execute(
        "select pipeline_id, id, name from raw_amocrm.statuses order by sort::int limit 1"
    ).fetchone() == ("501", "1001", "Новая")
    assert con.execute("select count(*) from raw_amocrm.events").fetchone()[0] == 120
    events = [r for r in amo_server.requests if r.path == "/api/v4/events"]
    assert events[0].params["limit"] == ["100"] and len(events) == 2
    assert events[0].params["filter[type]"][0].split(",") == [
        "lead_status_changed",
        "entity_responsible_changed",
        "lead_deleted",
        "lead_restored",
        "contact_deleted",
        "contact_restored",
        "company_deleted",
        "company_restored",
    ]
    assert events[0].params["filter[entity][]"] == ["lead", "contact", "company"]
    phones = con.execute(
        "select value, value_normalized from raw_amocrm.contact_channels "
        "where channel = 'phone' and entity_id = '5003'"
    ).fetchone()
    assert phones == ("8 (916) 000-03-03", "79160000303")
    notes = con.execute(
        "select entity_type, note_type, params from raw_amocrm.call_notes where id = '70001'"
    ).fetchone()
    assert (
        notes[0] == "contacts" and notes[1] == "call_in" and json.loads(notes[2])["duration"] == 61
    )
    note_requests = [r for r in amo_server.requests if r.path.endswith("/notes")]
    assert {r.path for r in note_requests} == {
        "/api/v4/leads/notes",
        "/api/v4/contacts/notes",
        "/api/v4/companies/notes",
        "/api/v4/customers/notes",  # 402 here: the account has no customers, no notes
    }
    assert note_requests[0].params["filter[note_type][]"] == ["call_in", "call_out"]
    # snapshots: a second run inserts nothing unchanged
    [users] = extract(amo_server, tmp_path, con, name="users")
    assert users.rows_inserted == 0


def test_new_fields_become_new_columns(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=3)
    extract(amo_server, tmp_path, con)
    amo_server.data["leads"][0].update(score=5, updated_at=BASE + 10**6)
    extract(amo_server, tmp_path, con)
    assert con.execute("select score from raw_amocrm.leads where score is not null").fetchall() == [
        ("5",)
    ]


def test_a_next_link_to_another_host_is_refused(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=3)
    body = {
        "_links": {"next": {"href": "https://evil.example.com/api/v4/tasks?page=2"}},
        "_embedded": {"tasks": amo_server.data["tasks"]},
    }
    amo_server.fail(
        "/api/v4/tasks", 200, json.dumps(body), headers={"Content-Type": "application/hal+json"}
    )
    with pytest.raises(ApiError, match="another host"):
        extract(amo_server, tmp_path, con, name="tasks")


def test_secrets_never_reach_logs_errors_or_reprs(amo_server, tmp_path, con, caplog):
    secrets = [
        "access-token-AAAA",
        "refresh-token-RRRR",
        "client-secret-SSSS",
        "access-token-N001",
        "refresh-token-N001",
    ]
    amo_server.data = make_amo_data(n_leads=300)
    amo_server.expire_tokens()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    extract(amo_server, tmp_path, con)
    amo_server.fail(
        "/api/v4/leads", 500, "echo: Bearer access-token-N001 client-secret-SSSS", times=10
    )
    with pytest.raises(ApiError) as error:
        extract(amo_server, tmp_path, con, retry=RetryPolicy(max_attempts=2))
    s = settings(amo_server, tmp_path)
    texts = [
        caplog.text,
        str(error.value),
        repr(error.value),
        repr(s),
        str(s),
        repr(AmoCrmExtractor(s)),
        json.dumps(RawWriter(con, "amocrm").get_state("leads")),
    ]
    texts += [str(row) for row in con.execute("select * from raw_amocrm._state").fetchall()]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "***" in str(error.value)  # the echoed token was redacted, not dropped silently


# ------------------------------------------------------------------ issue 16: real accounts


def test_a_lead_deleted_mid_run_does_not_hide_its_neighbour(amo_server, tmp_path, con):
    """Page numbers shift when a lead on an earlier page is deleted between two pages: the
    lead at the boundary was never read (until it changed again). Read by key, it is (D97)."""
    amo_server.data = make_amo_data(n_leads=600)

    def delete_one_after_the_first_page(server, request):
        if request.params.get("with", [""])[0].startswith("contacts") and server.data["leads"]:
            if any(lead["id"] == 1010 for lead in server.data["leads"]):
                server.data["leads"] = [r for r in server.data["leads"] if r["id"] != 1010]

    amo_server.after_page.append(delete_one_after_the_first_page)
    [report] = extract(amo_server, tmp_path, con)
    ids = {row[0] for row in con.execute("select id from raw_amocrm.leads").fetchall()}
    assert len(ids) == 600 and "1250" in ids  # 1010 was read before it went, 1250 after
    assert report.rows_inserted == 600


def test_a_bulk_update_in_one_second_is_read_whole(amo_server, tmp_path, con):
    """600 leads with one updated_at (a bulk update): that second is read by page number and
    id, then the key goes on; ties come in no useful order from the API."""
    amo_server.data = make_amo_data(n_leads=600)
    for lead in amo_server.data["leads"][:550]:
        lead["updated_at"] = BASE + 7
    [report] = extract(amo_server, tmp_path, con)
    assert con.execute("select count(distinct id) from raw_amocrm.leads").fetchone()[0] == 600
    block = [r.params for r in amo_server.requests if "order[id]" in r.params]
    assert [p["page"] for p in block] == [["1"], ["2"], ["3"]]
    assert all(p["filter[updated_at][to]"] == [str(BASE + 7)] for p in block)
    assert report.pages == len(lead_windows(amo_server))


def test_deletions_come_from_events_and_the_trash(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_leads=5, n_contacts=2)
    amo_server.data["events"] += [
        {
            "id": "del1",
            "type": "lead_deleted",
            "entity_id": 1003,
            "entity_type": "lead",
            "created_at": BASE + 5000,
            "value_before": [],
            "value_after": [],
        },
        {
            "id": "del2",
            "type": "contact_deleted",
            "entity_id": 5001,
            "entity_type": "contact",
            "created_at": BASE + 5001,
            "value_before": [],
            "value_after": [],
        },
    ]
    trashed = {**amo_server.data["leads"][4], "is_deleted": True, "updated_at": BASE + 6000}
    amo_server.data["deleted_leads"] = [trashed]
    extract(amo_server, tmp_path, con, name="events")
    [trash] = extract(amo_server, tmp_path, con, name="deleted_leads")
    assert trash.rows_inserted == 1
    trash_request = [r for r in amo_server.requests if "only_deleted" in r.query][0]
    assert trash_request.params["with"] == ["only_deleted"]
    assert con.execute("select id, is_deleted from raw_amocrm.deleted_leads").fetchall() == [
        ("1004", "true")
    ]
    deletions = con.execute(
        "select type, entity_type, entity_id from raw_amocrm.events "
        "where type like '%deleted' order by 1"
    ).fetchall()
    assert deletions == [("contact_deleted", "contact", "5001"), ("lead_deleted", "lead", "1003")]


def test_the_account_snapshot_gives_the_currency(amo_server, tmp_path, con):
    amo_server.data["account"] = {"id": 42, "name": "Kazakh", "currency": "KZT"}
    [report] = extract(amo_server, tmp_path, con, name="account")
    assert report.rows_inserted == 1
    assert con.execute("select id, currency from raw_amocrm.account").fetchall() == [("42", "KZT")]
    [again] = extract(amo_server, tmp_path, con, name="account")
    assert again.rows_inserted == 0


def test_customer_call_notes_are_read(amo_server, tmp_path, con):
    amo_server.data = make_amo_data(n_contacts=1)
    note = {**amo_server.data["notes"]["contacts"][0], "id": 80000, "entity_id": 3}
    amo_server.data["notes"]["customers"] = [note]
    reports = extract(amo_server, tmp_path, con, name="call_notes")
    assert [r.obj for r in reports][-1] == "call_notes:customers"
    assert con.execute(
        "select entity_type, entity_id from raw_amocrm.call_notes where id = '80000'"
    ).fetchall() == [("customers", "3")]


def test_rate_limit_leaves_headroom_and_start_date_is_local(amo_server, tmp_path):
    s = settings(amo_server, tmp_path, VORONKA_AMOCRM_START_DATE="2026-01-01")
    assert s.per_second == 6  # amoCRM documents 7 a second
    # midnight in Moscow (the default business time zone), not UTC midnight
    assert s.start_from == BASE - 3 * 3600
    s = settings(
        amo_server,
        tmp_path,
        VORONKA_AMOCRM_START_DATE="2026-01-01",
        VORONKA_TIMEZONE="Asia/Yekaterinburg",
    )
    assert s.start_from == BASE - 5 * 3600
