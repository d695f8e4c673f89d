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


def settings(server, tmp_path, oauth=False, batch_pages=1) -> Bitrix24Settings:
    env = {
        "VORONKA_TOKEN_STORE": str(tmp_path / "tokens.json"),
        "VORONKA_BITRIX24_BATCH_PAGES": str(batch_pages),
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


@pytest.mark.parametrize("batch_pages", [1, 3])
def test_deals_are_paged_by_id_to_the_end(bitrix_server, tmp_path, con, batch_pages):
    bitrix_server.data = make_bitrix_data(n_deals=260)
    [report] = extract(bitrix_server, tmp_path, con, batch_pages=batch_pages)
    assert report.rows_inserted == 260
    assert con.execute("select count(distinct id) from raw_bitrix24.deals").fetchone()[0] == 260
    calls = [(m, p) for m, p in bitrix_server.calls if m == "crm.deal.list"]
    assert len(calls) == 6  # 5 full pages and the short last one
    first = calls[0][1]
    assert first["order"] == {"ID": "ASC"} and first["start"] in (-1, "-1")
    assert first["filter"][">ID"] in (0, "0")
    assert [str(p["filter"][">ID"]) for _, p in calls[1:]] == ["50", "100", "150", "200", "250"]
    http = methods(bitrix_server)
    assert http == (["crm.deal.list"] * 6 if batch_pages == 1 else ["batch", "batch"])
    row = con.execute(
        "select title, opportunity, uf_crm_channel, date_modify, _source from raw_bitrix24.deals where id = '7'"
    ).fetchone()
    assert row == ("Сделка 6", "1006.00", "site", "2026-01-01T00:11:00+03:00", "crm.deal.list")


def test_running_twice_loads_nothing_twice_and_windows_on_date_modify(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    extract(bitrix_server, tmp_path, con, batch_pages=2)
    [again] = extract(bitrix_server, tmp_path, con, batch_pages=2)
    assert again.rows_inserted == 0
    last = [p for m, p in bitrix_server.calls if m == "crm.deal.list"][-1]
    assert last["filter"][">=DATE_MODIFY"].endswith("+00:00")  # ISO 8601 window start


def test_query_limit_exceeded_backs_off_then_succeeds(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=120)
    bitrix_server.fail(
        "/crm.deal.list", 503, LIMIT, times=3, headers={"Content-Type": "application/json"}
    )
    [report] = extract(bitrix_server, tmp_path, con, sleep=sleep)
    assert report.rows_inserted == 120
    assert len(sleep.backoffs) == 3
    assert sleep.backoffs == sorted(sleep.backoffs)  # exponential


def test_a_plain_503_is_retried_too(bitrix_server, tmp_path, con, sleep):
    bitrix_server.data = make_bitrix_data(n_deals=10)
    bitrix_server.fail("/batch", 503, "Service Unavailable", times=1)
    [report] = extract(bitrix_server, tmp_path, con, sleep=sleep, batch_pages=5)
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
    [report] = extract(bitrix_server, tmp_path, con)
    assert report.resumed
    assert [str(p["filter"][">ID"]) for _, p in bitrix_server.calls[before:]] == ["150", "200"]
    assert con.execute(
        "select count(*), count(distinct id) from raw_bitrix24.deals"
    ).fetchone() == (230, 230)


def test_oauth_expired_token_is_refreshed_once(bitrix_server, tmp_path, con):
    bitrix_server.data = make_bitrix_data(n_deals=60)
    bitrix_server.access_tokens = set()  # expired
    [report] = extract(bitrix_server, tmp_path, con, oauth=True)
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
    extract(bitrix_server, tmp_path, con, name="deal_stage_history", batch_pages=2)
    extract(bitrix_server, tmp_path, con, name="calls")
    assert con.execute("select count(*) from raw_bitrix24.deal_stage_history").fetchone()[0] == 70
    assert con.execute("select count(*) from raw_bitrix24.calls").fetchone()[0] == 55
    more = make_bitrix_data(n_deals=5, n_history=75, n_calls=60)
    bitrix_server.data.update(
        {k: more[k] for k in ("crm.stagehistory.list", "voximplant.statistic.get")}
    )
    before = len(bitrix_server.calls)
    [history] = extract(bitrix_server, tmp_path, con, name="deal_stage_history", batch_pages=2)
    [calls] = extract(bitrix_server, tmp_path, con, name="calls")
    assert history.rows_inserted == 5 and calls.rows_inserted == 5
    params = {}
    for method, call_params in bitrix_server.calls[before:]:
        params.setdefault(method, call_params)
    assert str(params["crm.stagehistory.list"]["filter"][">ID"]) == "70"
    assert params["crm.stagehistory.list"]["entityTypeId"] in (2, "2")
    vox = params["voximplant.statistic.get"]
    assert str(vox["FILTER"][">ID"]) == "55" and vox["SORT"] == "ID" and vox["ORDER"] == "ASC"


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
