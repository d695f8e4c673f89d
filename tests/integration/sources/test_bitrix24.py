"""Bitrix24 extraction against a local fake of its REST API: id paging, batch, OAuth, limits."""

from __future__ import annotations

import json
import logging

import pytest

from dagster_project.lib.sources.bitrix24 import Bitrix24Extractor, Bitrix24Settings
from dagster_project.lib.sources.http import ApiError, AuthError, RetryPolicy
from dagster_project.lib.sources.state import RawWriter
from tests.integration.sources.conftest import SleepRecorder
from tests.integration.sources.fakes import make_bitrix_data

pytestmark = pytest.mark.integration

LIMIT = json.dumps({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})


def settings(server, tmp_path, oauth=False, batch_pages=1, **extra) -> Bitrix24Settings:
    env = {
        "VORONKA_TOKEN_STORE": str(tmp_path / "tokens.json"),
        "VORONKA_BITRIX24_BATCH_PAGES": str(batch_pages),
        **{f"VORONKA_BITRIX24_{k.upper()}": str(v) for k, v in extra.items()},
    }
    if oauth:
        env.update(
            VORONKA_BITRIX24_BASE_URL=server.url,
            VORONKA_BITRIX24_ACCESS_TOKEN="b24-access-AAAA",
            VORONKA_BITRIX24_REFRESH_TOKEN="b24-refresh-RRRR",
            VORONKA_BITRIX24_CLIENT_ID="app.1",
            VORONKA_BITRIX24_CLIENT_SECRET="b24-secret-SSSS",
            VORONKA_BITRIX24_OAUTH_URL=f"{server.url}/oauth/token/",
        )
    else:
        env["VORONKA_BITRIX24_WEBHOOK_URL"] = server.webhook_url
    return Bitrix24Settings.from_env(env)


def extract(server, tmp_path, con, name="deals", sleep=None, retry=None, **kw):
    sleep = sleep or SleepRecorder()
    extractor = Bitrix24Extractor(
        settings(server, tmp_path, **kw), sleep=sleep, retry=retry, monotonic=sleep.monotonic
    )
    try:
        return extractor.extract(RawWriter(con, "bitrix24"), name)
    finally:
        extractor.close()


def methods(server) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in server.requests]


def is_id_pass(params: dict) -> bool:
    """A list call of the deletion pass (`select: ['ID']`)."""
    select = params.get("select") or []
    return list(select.values() if isinstance(select, dict) else select) == ["ID"]


def list_calls(server, method: str) -> list[dict]:
    """The parameters of `method`'s calls that read records (not ids only)."""
    return [p for m, p in server.calls if m == method and not is_id_pass(p)]


@pytest.mark.parametrize("batch_pages", [1, 3])
def test_deals_are_paged_by_id_to_the_end(bitrix_server, tmp_path, con, batch_pages):
    bitrix_server.data = make_bitrix_data(n_deals=260)
    [report, *_] = extract(bitrix_server, tmp_path, con, batch_pages=batch_pages)
    assert report.rows_inserted == 260
    assert con.execute("select count(distinct id) from raw_bitrix24.deals").fetchone()[0] == 260
    calls = list_calls(bitrix_server, "crm.deal.list")
    assert len(calls) == 6  # 5 full pages and the short last one
    first = calls[0]
    assert first["order"] == {"ID": "ASC"} and first["start"] in (-1, "-1")
    assert first["filter"][">ID"] in (0, "0")
    assert [str(p["filter"][">ID"]) for p in calls[1:]] == ["50", "100", "150", "200", "250"]
    http = methods(bitrix_server)
    # the fields (for the multiple user fields), the pages, then the ids of the deletion pass
    # (6 pages; one batch of up to 50)
    assert http == ["crm.deal.fields"] + (
        ["crm.deal.list"] * 12 if batch_pages == 1 else ["batch", "batch", "batch"]
    )
    row = con.execute(
        "select title, opportunity, uf_crm_channel, date_modify, _source from raw_bitrix24.deals where id = '7'"
    ).fetchone()
    assert row == ("Сделка 6", "1006.00", "site", "2026-01-01T00:11:00+03:00", "crm.deal.list")


def test_running_twice_loads_nothing_twice_and_windows_on_date_modify(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    extract(bitrix_server, tmp_path, con, batch_pages=2)
    [again, *_] = extract(bitrix_server, tmp_path, con, batch_pages=2)
    assert again.rows_inserted == 0
    last = list_calls(bitrix_server, "crm.deal.list")[-1]
    assert last["filter"][">=DATE_MODIFY"].endswith("+00:00")  # ISO 8601 window start


def test_query_limit_exceeded_backs_off_then_succeeds(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    bitrix_server.fail(
        "/crm.deal.list", 503, LIMIT, times=3, headers={"Content-Type": "application/json"}
    )
    [report, *_] = extract(bitrix_server, tmp_path, con, sleep=sleep)
    assert report.rows_inserted == 120
    assert len(sleep.backoffs) == 3
    assert sleep.backoffs == sorted(sleep.backoffs)  # exponential


def test_a_plain_503_is_retried_too(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=10)
    bitrix_server.fail("/batch", 503, "Service Unavailable", times=1)
    [report, *_] = extract(bitrix_server, tmp_path, con, sleep=sleep, batch_pages=5)
    assert report.rows_inserted == 10 and len(sleep.backoffs) == 1


def test_a_500_is_retried_then_fails_naming_the_method(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    error_body = json.dumps(
        {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
    )
    bitrix_server.fail("/crm.deal.list", 500, error_body, times=50, contains='">ID": 100')
    with pytest.raises(ApiError) as error:
        extract(bitrix_server, tmp_path, con, sleep=sleep, retry=RetryPolicy(max_attempts=3))
    assert "bitrix24 crm.deal.list failed after 3 attempts" in str(error.value)
    assert "INTERNAL_SERVER_ERROR" in str(error.value)
    assert con.execute("select count(*) from raw_bitrix24.deals").fetchone()[0] == 100


def test_a_non_retryable_error_fails_at_once(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=5)
    bitrix_server.fail(
        "/crm.deal.list",
        403,
        json.dumps(
            {
                "error": "ACCESS_DENIED",
                "error_description": "REST API is available only on commercial plans",
            }
        ),
    )
    with pytest.raises(ApiError, match="ACCESS_DENIED"):
        extract(bitrix_server, tmp_path, con, sleep=sleep)
    assert not sleep.backoffs


def test_malformed_json_is_retried_then_fails(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=5)
    bitrix_server.fail("/crm.deal.list", 200, b'{"result": [{"ID": "1"', times=5)
    with pytest.raises(ApiError, match="crm.deal.list.*malformed JSON"):
        extract(bitrix_server, tmp_path, con, retry=RetryPolicy(max_attempts=3))


def test_an_empty_account(bitrix_server, tmp_path, con):
    bitrix_server.data = {k: [] for k in make_bitrix_data()}
    for name in (
        "deals",
        "deal_stage_history",
        "contacts",
        "users",
        "statuses",
        "deal_categories",
        "calls",
        "activities",
        "companies",
    ):
        extract(bitrix_server, tmp_path, con, name=name, batch_pages=3)
    tables = con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw_bitrix24' order by 1"
    ).fetchall()
    assert ("deals",) in tables and ("contact_channels",) in tables
    assert con.execute("select count(*) from raw_bitrix24.deals").fetchone()[0] == 0
    assert {s for (s,) in con.execute("select status from raw_bitrix24._state").fetchall()} == {
        "complete"
    }


def test_a_failed_run_resumes_from_the_last_committed_page(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=230)
    bitrix_server.fail("/crm.deal.list", 500, "boom", times=3, contains='">ID": 150')
    with pytest.raises(ApiError):
        extract(bitrix_server, tmp_path, con, retry=RetryPolicy(max_attempts=3))
    assert con.execute("select count(*) from raw_bitrix24.deals").fetchone()[0] == 150
    state = RawWriter(con, "bitrix24").get_state("deals")
    assert state["status"] == "in_progress" and state["page_token"] == 150
    before = len(bitrix_server.calls)
    [report, _] = extract(bitrix_server, tmp_path, con)
    assert report.resumed
    resumed = [p for m, p in bitrix_server.calls[before:] if m == "crm.deal.list"]
    assert [str(p["filter"][">ID"]) for p in resumed if not is_id_pass(p)] == ["150", "200"]
    assert con.execute(
        "select count(*), count(distinct id) from raw_bitrix24.deals"
    ).fetchone() == (230, 230)


def test_oauth_expired_token_is_refreshed_once(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    bitrix_server.access_tokens = set()  # expired
    [report, *_] = extract(bitrix_server, tmp_path, con, oauth=True)
    assert report.rows_inserted == 60 and bitrix_server.refreshes == 1
    token_request = next(r for r in bitrix_server.requests if r.path == "/oauth/token/")
    assert token_request.params["grant_type"] == ["refresh_token"]
    saved = json.loads((tmp_path / "tokens.json").read_text())
    assert next(iter(saved.values()))["access_token"] == "b24-access-N001"


def test_a_wrong_webhook_is_an_auth_error(bitrix_server, tmp_path, con):
    extractor = Bitrix24Extractor(settings(bitrix_server, tmp_path), sleep=SleepRecorder())
    bitrix_server.webhook_code = "another-code-XXXX9999"  # the webhook was deleted and re-created
    with pytest.raises(AuthError, match="NO_AUTH_FOUND"):
        extractor.extract(RawWriter(con, "bitrix24"), "deals")


def test_stage_history_and_calls_continue_after_the_last_id(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=5, n_history=70, n_calls=55)
    extract(bitrix_server, tmp_path, con, name="deal_stage_history", batch_pages=2, overlap_ids=10)
    extract(bitrix_server, tmp_path, con, name="calls", overlap_ids=10)
    assert con.execute("select count(*) from raw_bitrix24.deal_stage_history").fetchone()[0] == 70
    assert con.execute("select count(*) from raw_bitrix24.calls").fetchone()[0] == 55
    more = make_bitrix_data(n_deals=5, n_history=75, n_calls=60)
    bitrix_server.data.update(
        {k: more[k] for k in ("crm.stagehistory.list", "voximplant.statistic.get")}
    )
    before = len(bitrix_server.calls)
    [history] = extract(
        bitrix_server, tmp_path, con, name="deal_stage_history", batch_pages=2, overlap_ids=10
    )
    [calls] = extract(bitrix_server, tmp_path, con, name="calls", overlap_ids=10)
    assert history.rows_inserted == 5 and calls.rows_inserted == 5
    params = {}
    for method, call_params in bitrix_server.calls[before:]:
        params.setdefault(method, call_params)
    # 10 ids below the last one read (the overlap for rows committed out of id order)
    assert str(params["crm.stagehistory.list"]["filter"][">ID"]) == "60"
    assert params["crm.stagehistory.list"]["entityTypeId"] in (2, "2")
    vox = params["voximplant.statistic.get"]
    assert str(vox["FILTER"][">ID"]) == "45" and vox["SORT"] == "ID" and vox["ORDER"] == "ASC"
    assert con.execute(
        "select count(*), count(distinct id) from raw_bitrix24.calls"
    ).fetchone() == (60, 60)


def test_reference_lists_users_and_contact_channels(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=1)
    for name in ("statuses", "deal_categories", "users", "contacts"):
        extract(bitrix_server, tmp_path, con, name=name)
    assert con.execute(
        "select status_id from raw_bitrix24.statuses order by sort::int"
    ).fetchall() == [("NEW",), ("PREPARATION",), ("WON",), ("LOSE",)]
    assert con.execute("select count(*) from raw_bitrix24.deal_categories").fetchone()[0] == 2
    assert con.execute(
        "select active, uf_phone_inner from raw_bitrix24.users where id = '3'"
    ).fetchone() == ("false", "103")
    assert con.execute(
        "select value_normalized from raw_bitrix24.contact_channels where entity_id = '2' and channel = 'phone'"
    ).fetchone() == ("79160000101",)
    select = next(p for m, p in bitrix_server.calls if m == "crm.contact.list")["select"]
    assert {"PHONE", "EMAIL", "UF_*"} <= set(select)


def test_the_webhook_secret_is_never_logged(bitrix_server, tmp_path, con, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    bitrix_server.data = make_bitrix_data(n_deals=60)
    bitrix_server.fail("/crm.deal.list", 503, LIMIT, times=1)
    extract(bitrix_server, tmp_path, con)
    bitrix_server.fail("/crm.deal.list", 500, f"trace: {bitrix_server.webhook_url}", times=5)
    with pytest.raises(ApiError) as error:
        extract(bitrix_server, tmp_path, con, retry=RetryPolicy(max_attempts=2))
    s = settings(bitrix_server, tmp_path)
    for text in (caplog.text, str(error.value), repr(s), repr(Bitrix24Extractor(s))):
        assert bitrix_server.webhook_code not in text
    assert "127.0.0.1" in caplog.text or "crm.deal.list" in caplog.text


# ------------------------------------------------------------------ issue 16


def deletions(con) -> list[tuple[str, str]]:
    return con.execute(
        "select id, event from raw_bitrix24.deals_deletions order by observed_at, id::int"
    ).fetchall()


def test_a_deleted_and_a_merged_deal_are_marked_deleted_and_a_restored_one_comes_back(
    bitrix_server, tmp_path, con
):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    [_, first] = extract(bitrix_server, tmp_path, con, batch_pages=3)
    assert first.rows_inserted == 0 and deletions(con) == []
    deals = bitrix_server.data["crm.deal.list"]
    deleted = next(d for d in deals if d["ID"] == "7")
    # deal 8 merged into deal 9: Bitrix24 deletes the merged-away deal and updates the other
    deals[:] = [d for d in deals if d["ID"] not in ("7", "8")]
    next(d for d in deals if d["ID"] == "9")["DATE_MODIFY"] = "2026-01-02T09:00:00+03:00"
    before = len(bitrix_server.requests)
    [changes, second] = extract(bitrix_server, tmp_path, con, batch_pages=3)
    assert changes.rows_inserted == 1  # deal 9's new version
    assert sorted(deletions(con)) == [("7", "deleted"), ("8", "deleted")]
    assert second.rows_inserted == 2
    id_pass = [r for r in bitrix_server.requests[before:] if "ID" in r.body.decode()]
    assert len(id_pass) >= 1
    # running again changes nothing
    [_, third] = extract(bitrix_server, tmp_path, con, batch_pages=3)
    assert third.rows_inserted == 0
    # deal 7 is restored from the recycle bin: listed again, it is restored
    deals.append(deleted)
    [_, fourth] = extract(bitrix_server, tmp_path, con, batch_pages=3)
    assert fourth.rows_inserted == 1
    latest = dict(
        con.execute(
            "select id, arg_max(event, observed_at) from raw_bitrix24.deals_deletions group by id"
        ).fetchall()
    )
    assert latest == {"7": "restored", "8": "deleted"}
    state = RawWriter(con, "bitrix24").get_state("deals:deletions")
    assert (state["live"], state["known"], state["deleted"], state["restored"]) == (119, 120, 0, 1)
    assert state["requests"] == 1  # 119 ids: one batch of up to 50 pages


def test_a_pass_that_would_delete_most_deals_is_refused(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    extract(bitrix_server, tmp_path, con, batch_pages=2)
    bitrix_server.data["crm.deal.list"] = bitrix_server.data["crm.deal.list"][:5]
    with pytest.raises(ApiError, match="55 of the 60 deals .* no longer listed"):
        extract(bitrix_server, tmp_path, con, batch_pages=2)
    assert deletions(con) == []
    [_, allowed] = extract(bitrix_server, tmp_path, con, batch_pages=2, max_deleted_share=1)
    assert allowed.rows_inserted == 55


def test_contacts_companies_and_activities_are_reconciled_too(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=1)
    bitrix_server.data["crm.activity.list"] = [
        {
            "ID": str(i),
            "OWNER_ID": "1",
            "OWNER_TYPE_ID": "2",
            "LAST_UPDATED": "2026-01-02T10:00:00+03:00",
        }
        for i in (1, 2)
    ]
    for name in ("contacts", "companies", "activities"):
        extract(bitrix_server, tmp_path, con, name=name)
    bitrix_server.data["crm.contact.list"].pop(0)  # contact 1 merged into another
    bitrix_server.data["crm.activity.list"].pop()
    for name in ("contacts", "companies", "activities"):
        extract(bitrix_server, tmp_path, con, name=name)
    assert con.execute("select id, event from raw_bitrix24.contacts_deletions").fetchall() == [
        ("1", "deleted")
    ]
    assert con.execute("select id from raw_bitrix24.activities_deletions").fetchall() == [("2",)]
    assert con.execute("select count(*) from raw_bitrix24.companies_deletions").fetchone() == (0,)


def test_multiple_user_fields_are_selected_by_name(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=3)
    for deal in bitrix_server.data["crm.deal.list"]:
        deal["UF_CRM_LEAD_CHANNELS"] = ["site", "expo"]  # a multi-select list field
    extract(bitrix_server, tmp_path, con, batch_pages=2)
    assert con.execute(
        "select uf_crm_lead_channels, uf_crm_channel from raw_bitrix24.deals where id = '2'"
    ).fetchone() == ('["site","expo"]', "site")
    select = list_calls(bitrix_server, "crm.deal.list")[0]["select"]
    assert set(select.values() if isinstance(select, dict) else select) == {
        "*",
        "UF_*",
        "UF_CRM_LEAD_CHANNELS",
    }
    assert methods(bitrix_server).count("crm.deal.fields") == 1


def test_operation_time_limit_waits_for_the_reset_then_succeeds(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    bitrix_server.operating["crm.deal.list"] = 12.5  # reported with a reset 30 s ahead
    sleep = SleepRecorder()
    extractor = Bitrix24Extractor(
        settings(bitrix_server, tmp_path), sleep=sleep, monotonic=sleep.monotonic
    )
    try:
        writer = RawWriter(con, "bitrix24")
        original = extractor.call

        def call(method, params, budget_of=None):
            data = original(method, params, budget_of)
            if method == "crm.deal.list" and not is_id_pass(params):
                bitrix_server.time_limit("crm.deal.list", 1)  # the next call is blocked once
            return data

        extractor.call = call
        [report, _] = extractor.extract(writer, "deals")
    finally:
        extractor.close()
    assert report.rows_inserted == 120
    waits = [s for s in sleep.calls if s > 5]
    # every block waited for the reset the last answer announced (30 s ahead), not a back-off
    assert waits and all(25 <= s <= 32 for s in waits)
    assert extractor.client.stats.retries == 0


def test_operation_time_limit_on_the_first_command_of_a_batch_does_not_fail_the_run(
    bitrix_server, tmp_path, con
):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    bitrix_server.time_limit("crm.deal.list", 1)
    sleep = SleepRecorder()
    [report, *_] = extract(bitrix_server, tmp_path, con, sleep=sleep, batch_pages=3)
    assert report.rows_inserted == 120
    assert 60 in sleep.calls  # no reset known yet: one basket's minute


def test_a_retryable_error_on_the_first_command_of_a_batch_is_retried(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    real = bitrix_server._call
    failures = [2]

    def flaky(method, params):
        first = str((params.get("filter") or {}).get(">ID")) == "0"
        if method == "crm.deal.list" and first and failures[0]:
            failures[0] -= 1  # the batch's first command, twice
            return {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        return real(method, params)

    bitrix_server._call = flaky
    sleep = SleepRecorder()
    extractor = Bitrix24Extractor(
        settings(bitrix_server, tmp_path, batch_pages=3), sleep=sleep, monotonic=sleep.monotonic
    )
    try:
        [report, _] = extractor.extract(RawWriter(con, "bitrix24"), "deals")
        assert extractor.client.stats.retries == 2
    finally:
        extractor.close()
    assert report.rows_inserted == 60


def test_a_method_near_its_time_budget_waits_for_the_reset(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    bitrix_server.operating["crm.deal.list"] = 450.0  # above the 420 s budget
    sleep = SleepRecorder()
    extract(bitrix_server, tmp_path, con, sleep=sleep, reconcile=0)
    assert [s for s in sleep.calls if s > 5] and all(25 <= s <= 32 for s in sleep.calls if s > 5)


def test_the_oauth_client_endpoint_becomes_the_rest_base(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    bitrix_server.access_tokens = set()  # expired
    port = bitrix_server.server.server_port
    bitrix_server.client_endpoint = f"http://localhost:{port}/rest/"  # the portal's new address
    extract(bitrix_server, tmp_path, con, oauth=True)
    refresh = next(i for i, r in enumerate(bitrix_server.requests) if r.path == "/oauth/token/")
    after = [r.headers.get("Host") for r in bitrix_server.requests[refresh + 1 :]]
    assert after and set(after[1:]) == {f"localhost:{port}"}
    # kept with the pair in the token store: the next run calls it from its first request
    saved = json.loads((tmp_path / "tokens.json").read_text())
    assert next(iter(saved.values()))["rest_url"] == f"http://localhost:{port}/rest"
    before = len(bitrix_server.requests)
    extract(bitrix_server, tmp_path, con, oauth=True, name="users")
    hosts = {r.headers.get("Host") for r in bitrix_server.requests[before:]}
    assert hosts == {f"localhost:{port}"} and bitrix_server.refreshes == 1


def test_a_row_committed_out_of_id_order_is_picked_up(bitrix_server, tmp_path, con):
    data = make_bitrix_data(n_deals=5, n_history=75, n_calls=75)
    late = {}
    for method in ("crm.stagehistory.list", "voximplant.statistic.get"):
        rows = data[method]
        late[method] = next(r for r in rows if r["ID"] == "68")
        bitrix_server.data[method] = [r for r in rows if r["ID"] not in ("68", "71", "72")]
    extract(bitrix_server, tmp_path, con, name="deal_stage_history", batch_pages=2)
    extract(bitrix_server, tmp_path, con, name="calls")
    # id 68 was taken before 69-70 but committed after they were read
    for method in late:
        bitrix_server.data[method] = [*bitrix_server.data[method], late[method]]
    for name, table in (("deal_stage_history", "deal_stage_history"), ("calls", "calls")):
        [report] = extract(bitrix_server, tmp_path, con, name=name, batch_pages=2)
        assert report.rows_inserted == 1
        assert con.execute(
            f"select count(*), count(distinct id) from raw_bitrix24.{table}"
        ).fetchone() == (73, 73)


def test_the_start_date_is_midnight_in_the_business_time_zone(bitrix_server, tmp_path):
    s = settings(bitrix_server, tmp_path, start_date="2026-01-01")
    assert s.start_from == 1_767_214_800  # 2026-01-01 00:00 Moscow = 2025-12-31 21:00 UTC
