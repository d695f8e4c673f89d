from datetime import datetime, timedelta

import pytest

from dagster_project.lib.timestamps import fixed_offset_since, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T09:15:00+03:00", datetime(2026, 11, 1, 6, 15)),
        ("2026-11-01T06:15:00Z", datetime(2026, 11, 1, 6, 15)),
        ("2026-11-01 09:15:00", datetime(2026, 11, 1, 6, 15)),  # naive: business zone
        ("2026-01-31 23:30", datetime(2026, 1, 31, 20, 30)),  # last day of month, Moscow
        ("2026-11-01", datetime(2026, 10, 31, 21, 0)),
        ("2026-11-01T09:15:00.5+0300", datetime(2026, 11, 1, 6, 15, 0, 500000)),
        ("2026-11-01 09:15:00 +03:00", datetime(2026, 11, 1, 6, 15)),
        ("2026-11-01T09:15:00 +03:00", datetime(2026, 11, 1, 6, 15)),  # was misread before
    ],
)
def test_parses_to_naive_utc(text, expected):
    assert parse_timestamp(text) == expected


def test_naive_uses_the_given_zone():
    assert parse_timestamp("2026-07-01 12:00", "Asia/Yekaterinburg") == datetime(2026, 7, 1, 7, 0)


@pytest.mark.parametrize(
    "text", ["01.11.2026 09:15", "2026-13-01", "yesterday", "2026-11-01T25:00"]
)
def test_rejects_non_iso(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Moscow", (datetime(2014, 11, 2), 10800)),  # +04:00 until 26 Oct 2014
        ("Asia/Yekaterinburg", (datetime(2014, 11, 2), 18000)),
        ("UTC", (datetime(2000, 1, 2), 0)),
        ("Europe/Berlin", None),  # daylight saving time: no fixed offset
        ("America/New_York", None),
    ],
)
def test_fixed_offset_since(zone, expected):
    assert fixed_offset_since(zone) == expected


@pytest.mark.parametrize("zone", ["Europe/Moscow", "Asia/Yekaterinburg", "UTC"])
def test_the_fixed_offset_agrees_with_the_zone_rules_after_its_start(zone):
    since, seconds = fixed_offset_since(zone)
    for text in (f"{since:%Y-%m-%d} 00:00", "2020-03-29 02:30", "2026-10-25 02:30", "2036-07-01"):
        expected = parse_timestamp(text, zone)
        assert expected == datetime.fromisoformat(text) - timedelta(seconds=seconds)
