from datetime import datetime

import pytest

from dagster_project.lib.timestamps import parse_timestamp


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
