"""Mango Office call statistics against a local fake of the VPBX API (signed request/result)."""

from __future__ import annotations

import json
import logging

import pytest

from dagster_project.lib.sources.http import ApiError, AuthError, RetryPolicy
from dagster_project.lib.sources.mango import MangoExtractor, MangoSettings
from dagster_project.lib.sources.state import RawWriter
from tests.integration.sources.conftest import SleepRecorder
from tests.integration.sources.fakes import make_mango_calls

pytestmark = pytest.mark.integration

START = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86400


def settings(server, salt=None) -> MangoSettings:
    return MangoSettings.from_env(
        {
            "VORONKA_MANGO_API_KEY": server.api_key,
            "VORONKA_MANGO_API_SALT": salt or server.api_salt,
            "VORONKA_MANGO_BASE_URL": server.base_url,
            "VORONKA_MANGO_START_DATE": "2026-01-01",
            "VORONKA_TIMEZONE": "UTC",
        }
    )


def extract(server, con, now, name="calls", salt=None, retry=None, sleep=None):
    sleep = sleep or SleepRecorder()
    extractor = MangoExtractor(
        settings(server, salt),
        sleep=sleep,
        retry=retry,
        clock=lambda: now,
        monotonic=sleep.monotonic,
    )
    try:
        return extractor.extract(RawWriter(con, "mango"), name)
    finally:
        extractor.close()


def test_calls_are_read_window_by_window(mango_server, con):
    mango_server.calls = make_mango_calls(300, start=START, every=600)  # ~2.1 days
    sleep = SleepRecorder()
    [report] = extract(mango_server, con, now=START + 3 * DAY, sleep=sleep)
    assert report.pages == 3 and report.rows_inserted == 300
    windows = [(int(r["date_from"]), int(r["date_to"])) for r in mango_server.stats_requests]
    assert windows == [
        (START, START + DAY),
        (START + DAY, START + 2 * DAY),
        (START + 2 * DAY, START + 3 * DAY),
    ]
    assert mango_server.stats_requests[0]["fields"].startswith("records,start,finish,answer")
    assert sleep.calls.count(5.0) == 3  # one poll wait per report (204 once, then ready)
    row = con.execute(
        "select start, answer, from_extension, to_number, entry_id, _source from raw_mango.calls where entry_id = 'MTox00000002'"
    ).fetchone()
    assert row == (
        str(START + 1200),
        str(START + 1210),
        "101",
        "79160000002",
        "MTox00000002",
        "POST stats/request",
    )


def test_rerun_loads_only_new_lines(mango_server, con):
    mango_server.calls = make_mango_calls(100, start=START, every=600)
    extract(mango_server, con, now=START + DAY)
    [again] = extract(mango_server, con, now=START + DAY)
    assert again.rows_inserted == 0
    mango_server.calls += make_mango_calls(50, start=START + DAY + 60, every=600)
    [more] = extract(mango_server, con, now=START + 2 * DAY)
    assert more.rows_inserted == 50
    # the next window starts one hour (the overlap) before the previous run's end
    assert int(mango_server.stats_requests[-2]["date_from"]) == START + DAY - 3600
    assert con.execute("select count(*) from raw_mango.calls").fetchone()[0] == 150


def test_a_wrong_salt_is_an_auth_error(mango_server, con):
    with pytest.raises(AuthError, match="POST stats/request"):
        extract(mango_server, con, now=START + DAY, salt="wrong-salt-0000")


def test_an_expired_key_is_requested_again(mango_server, con):
    mango_server.calls = make_mango_calls(10, start=START)
    mango_server.fail("/vpbx/stats/result", 404, b"", times=1)
    [report] = extract(mango_server, con, now=START + DAY)
    assert report.rows_inserted == 10 and len(mango_server.stats_requests) == 2


def test_a_failed_window_resumes(mango_server, con):
    mango_server.calls = make_mango_calls(400, start=START, every=600)
    mango_server.fail(
        "/vpbx/stats/request", 500, b"oops", times=3, contains='"date_from":"1767398400"'
    )  # day 3
    with pytest.raises(
        ApiError, match="mango POST stats/request failed after 3 attempts: HTTP 500"
    ):
        extract(mango_server, con, now=START + 3 * DAY, retry=RetryPolicy(max_attempts=3))
    assert con.execute("select count(*) from raw_mango.calls").fetchone()[0] == 288
    [report] = extract(mango_server, con, now=START + 3 * DAY)
    assert report.resumed and report.pages == 1
    assert con.execute("select count(*) from raw_mango.calls").fetchone()[0] == 400


def test_an_error_code_is_reported(mango_server, con):
    mango_server.fail(
        "/vpbx/stats/request", 200, json.dumps({"result": 3100, "message": "bad params"})
    )
    with pytest.raises(ApiError, match="3100: bad params"):
        extract(mango_server, con, now=START + DAY)


def test_no_calls_and_users(mango_server, con, caplog):
    caplog.set_level(logging.DEBUG)
    [report] = extract(mango_server, con, now=START + DAY)
    assert report.rows_inserted == 0
    [users] = extract(mango_server, con, now=START + DAY, name="users")
    assert users.rows_inserted == 3
    assert con.execute(
        "select extension, name from raw_mango.users order by 1 limit 1"
    ).fetchone() == ("101", "Менеджер 0")
    assert mango_server.api_salt not in caplog.text and mango_server.api_key not in caplog.text


def test_the_start_date_is_midnight_in_the_business_time_zone(mango_server):
    env = {
        "VORONKA_MANGO_API_KEY": mango_server.api_key,
        "VORONKA_MANGO_API_SALT": mango_server.api_salt,
        "VORONKA_MANGO_START_DATE": "2026-01-01",
    }
    assert MangoSettings.from_env(env).start_from == START - 3 * 3600  # Moscow, the default
    env["VORONKA_TIMEZONE"] = "Europe/Kaliningrad"
    assert MangoSettings.from_env(env).start_from == START - 2 * 3600
