"""Pure functions of the API sources: back-off, Retry-After, secrets, tokens, flattening, signing."""

from __future__ import annotations

import hashlib
import logging
import os
import stat

import pytest

from dagster_project.lib.sources.amocrm import AmoCrmSettings
from dagster_project.lib.sources.bitrix24 import (
    Bitrix24Settings,
    body_check,
    client_endpoint,
    command,
    epoch,
    iso,
    php_query,
)
from dagster_project.lib.sources.engine import date_to_epoch
from dagster_project.lib.sources.http import RateLimiter, RetryPolicy, parse_retry_after
from dagster_project.lib.sources.mango import MangoSettings, parse_stats, sign
from dagster_project.lib.sources.secrets import Secret, install_log_redaction, redact, register
from dagster_project.lib.sources.state import TableSpec, as_text, column_name, flatten
from dagster_project.lib.sources.tokens import TokenPair, TokenStore, current_pair, fingerprint


def test_backoff_is_exponential_jittered_and_capped():
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert [policy.backoff(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_retry_policy_from_env():
    policy = RetryPolicy.from_env(
        {"VORONKA_HTTP_MAX_ATTEMPTS": "3", "VORONKA_HTTP_BACKOFF_SECONDS": "0.5"}
    )
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (3, 0.5, 60.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after(header, seconds):
    now = 1445412480.0  # 07:28:00 GMT
    assert parse_retry_after(header, now=now) == seconds


def test_rate_limiter_spaces_requests():
    clock = [0.0]
    waits = []

    def sleep(s):
        waits.append(round(s, 3))
        clock[0] += s

    limiter = RateLimiter(2.0, sleep=sleep, clock=lambda: clock[0])
    for _ in range(4):
        limiter.wait()
    assert waits == [0.5, 0.5, 0.5]


def test_secret_never_prints_and_redact_scrubs_registered_values():
    token = Secret("very-secret-token-1")
    assert str(token) == "***" and "very" not in repr(token) and f"{token}" == "***"
    assert token.reveal() == "very-secret-token-1"
    register("https://portal.bitrix24.ru/rest/1/abcdefgh123456/")
    text = "POST https://portal.bitrix24.ru/rest/1/abcdefgh123456/crm.deal.list with very-secret-token-1"
    assert "abcdefgh123456" not in redact(text) and "very-secret" not in redact(text)
    assert redact("/rest/1/abcdefgh123456/crm.deal.list") == "/rest/1/***/crm.deal.list"


def test_log_redaction_filter(caplog):
    install_log_redaction()
    register("log-secret-value-42")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug(
        '"GET /x?auth=%s HTTP/1.1" 200', "log-secret-value-42"
    )
    assert "log-secret-value-42" not in caplog.text and "auth=***" in caplog.text


def test_token_store_is_private_and_prefers_the_pair_of_the_same_seed(tmp_path):
    store = TokenStore(tmp_path / "voronka" / "tokens.json")
    env_pair = TokenPair(Secret("env-access-1"), Secret("env-refresh-1"))
    assert current_pair(store, "k", env_pair) is env_pair  # nothing stored yet
    store.save(
        "k",
        TokenPair(
            Secret("new-access-2"),
            Secret("new-refresh-2"),
            123.0,
            seed=fingerprint("env-refresh-1"),
        ),
    )
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert (
        current_pair(
            store, "k", TokenPair(Secret("env-access-1"), Secret("env-refresh-1"))
        ).access_token.reveal()
        == "new-access-2"
    )
    # re-authorised: the environment has a new refresh token, which wins
    reseeded = TokenPair(Secret("env-access-3"), Secret("env-refresh-3"))
    assert current_pair(store, "k", reseeded) is reseeded
    assert "new-access" not in repr(store.load("k"))


def test_flatten_keeps_scalars_as_text_and_nested_values_as_json():
    row = flatten(
        {
            "ID": 5,
            "price": 1.5,
            "ok": True,
            "name": "Сделка",
            "none": None,
            "custom_fields_values": [{"field_id": 1}],
            "_embedded": {"tags": []},
            "_source": "x",
        }
    )
    assert (
        row["id"] == "5"
        and row["price"] == "1.5"
        and row["ok"] == "true"
        and row["name"] == "Сделка"
    )
    assert row["none"] is None and row["custom_fields_values"] == '[{"field_id":1}]'
    assert (
        row["_embedded"] == '{"tags":[]}'
        and row["api_source"] == "x"
        and len(row["_row_hash"]) == 32
    )
    assert (
        as_text(10**20) == "100000000000000000000" and column_name("DATE_MODIFY") == "date_modify"
    )
    assert TableSpec("calls", ("_row_hash",), None).dedupe_columns == ("_row_hash",)


def test_php_query_and_batch_commands():
    pairs = php_query(
        {
            "filter": {">ID": 5, ">=DATE_MODIFY": "2026-01-01T00:00:00+00:00"},
            "select": ["*", "UF_*"],
            "start": -1,
        }
    )
    assert pairs == [
        "filter[%3EID]=5",
        "filter[%3E%3DDATE_MODIFY]=2026-01-01T00%3A00%3A00%2B00%3A00",
        "select[0]=%2A",
        "select[1]=UF_%2A",
        "start=-1",
    ]
    assert (
        command("crm.deal.list", {"filter": {">ID": "$result[p0][49][ID]"}})
        == "crm.deal.list?filter[%3EID]=$result[p0][49][ID]"
    )


def test_bitrix_times_and_errors():
    assert (
        epoch("2026-01-01T03:00:00+03:00") == 1_767_225_600
        and iso(1_767_225_600) == "2026-01-01T00:00:00+00:00"
    )
    assert epoch("") is None and epoch("garbage") is None
    assert body_check(
        503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    ) == ("QUERY_LIMIT_EXCEEDED", "Too many requests", True)
    assert body_check(503, {"error": "OVERLOAD_LIMIT"})[2] is False
    assert body_check(400, {"error": "ACCESS_DENIED"})[2] is False
    assert body_check(200, {"result": []}) is None


def test_mango_sign_and_report_parsing():
    assert sign("key", '{"a":1}', "salt") == hashlib.sha256(b'key{"a":1}salt').hexdigest()
    rows = parse_stats(
        "[r1];1700000000;1700000090;1700000010;101;;;79160000000;1100;74950000000;abonent;1700000000;MTox1\r\n\r\n"
    )
    assert len(rows) == 1 and rows[0]["records"] == "[r1]" and rows[0]["from_number"] is None
    assert rows[0]["entry_id"] == "MTox1" and len(rows[0]["_row_hash"]) == 32


def test_settings_are_read_from_the_environment_and_hide_secrets():
    assert (
        AmoCrmSettings.from_env({}) is None
        and Bitrix24Settings.from_env({}) is None
        and MangoSettings.from_env({}) is None
    )
    amo = AmoCrmSettings.from_env(
        {
            "VORONKA_AMOCRM_BASE_URL": "https://acme.amocrm.ru/",
            "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "llt-secret-1",
            "VORONKA_AMOCRM_START_DATE": "2026-01-01",
            "VORONKA_TOKEN_STORE": "/tmp/t.json",
        }
    )
    # the start date is midnight in Moscow (the default business zone); 6 of amoCRM's 7 rps
    assert (
        amo.host == "acme.amocrm.ru"
        and amo.start_from == 1_767_225_600 - 3 * 3600
        and amo.per_second == 6.0
    )
    assert "llt-secret-1" not in repr(amo)
    b24 = Bitrix24Settings.from_env(
        {
            "VORONKA_BITRIX24_WEBHOOK_URL": "https://acme.bitrix24.ru/rest/1/hookcode1234/",
            "VORONKA_BITRIX24_BATCH_PAGES": "99",
        }
    )
    assert (
        b24.host == "acme.bitrix24.ru" and b24.batch_pages == 50 and "hookcode1234" not in repr(b24)
    )
    assert b24.origin == "https://acme.bitrix24.ru"


def test_a_start_date_is_midnight_in_the_business_time_zone(monkeypatch):
    monkeypatch.delenv("VORONKA_TIMEZONE", raising=False)
    assert date_to_epoch("2026-01-01") == 1_767_214_800  # 2025-12-31 21:00 UTC
    assert date_to_epoch("2026-01-01", "Asia/Yekaterinburg") == 1_767_207_600
    assert date_to_epoch("2026-07-01", "Europe/Berlin") == 1_782_856_800  # summer time
    assert date_to_epoch("2026-01-01T00:00:00+00:00", "Europe/Moscow") == 1_767_225_600
    monkeypatch.setenv("VORONKA_TIMEZONE", "UTC")
    assert date_to_epoch("2026-01-01") == 1_767_225_600
    assert date_to_epoch("") is None and date_to_epoch(None) is None


def test_the_oauth_client_endpoint_is_taken_only_on_the_portals_scheme():
    answer = {"client_endpoint": "https://new.bitrix24.ru/rest/"}
    assert client_endpoint(answer, "https://old.bitrix24.ru") == "https://new.bitrix24.ru/rest"
    assert client_endpoint(answer, "http://127.0.0.1:8080") is None  # never a scheme change
    plain = {"client_endpoint": "http://new.bitrix24.ru/rest/"}
    assert client_endpoint(plain, "https://old.bitrix24.ru") is None  # a token never goes plain
    assert client_endpoint({"client_endpoint": "not a url"}, "https://a.bitrix24.ru") is None
    assert client_endpoint({}, "https://a.bitrix24.ru") is None
    assert client_endpoint(None, "https://a.bitrix24.ru") is None
