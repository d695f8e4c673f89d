"""Inbox timestamps on the Python side (``--as-of``): the rule of lib/parsing.py (the loader's, the
GE batches' and the dbt macro ``parse_timestamp_utc``'s, docs/inbox-contract.md), with an error a
person can act on; and the business zone's fixed offset that the SQL conversions share.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dagster_project.lib import parsing


def parse_timestamp(text: str, business_timezone: str = "Europe/Moscow") -> datetime:
    """Parse an ISO 8601 timestamp into a naive UTC datetime.

    Args:
        text: `2026-11-01T09:15:00+03:00`, `2026-11-01T06:15:00Z`, `2026-11-01 09:15` or a date
            (surrounding spaces ignored).
        business_timezone: the zone of naive timestamps.

    Raises:
        ValueError: the text is not a timestamp of the contract (the message quotes it).
    """
    parsed = parsing.parse_timestamp(text.strip(), business_timezone)
    if parsed is None:
        raise ValueError(
            f"not an ISO 8601 timestamp: {text!r} (expected e.g. 2026-11-01T09:15:00, "
            f"years {parsing.YEAR_MIN}-{parsing.YEAR_MAX})"
        )
    return parsed


@lru_cache(maxsize=16)
def fixed_offset_since(zone: str) -> tuple[datetime, int] | None:
    """When the zone's UTC offset stopped changing: ``(since, offset_seconds)`` or None.

    The twin of the dbt macro ``business_fixed_offset`` (macros/parse.sql), by the same
    sampling: noon on the 1st and 15th of every month, back from 2037, until the offset differs
    from 2037's. ``since`` is the day after the first sample with the final offset, at 00:00:
    past the change both as UTC and as wall time, so a timestamp at or after it converts by
    plain arithmetic. None for a zone with daylight saving time (or any change ahead).
    Europe/Moscow: ``(2014-11-02 00:00, 10800)``.
    """
    tz = ZoneInfo(zone)
    last = since = None
    for year in range(2037, 1999, -1):
        for month in range(12, 0, -1):
            for day in (15, 1):
                moment = datetime(year, month, day, 12)
                offset = moment.replace(tzinfo=tz).utcoffset()
                if last is None:
                    last = offset
                elif offset != last:
                    return _since(since, last)
                else:
                    since = moment
    return _since(since, last)


def _since(since: datetime | None, offset: timedelta | None) -> tuple[datetime, int] | None:
    if since is None or offset is None or since.year >= 2037:
        return None
    start = (since + timedelta(days=1)).replace(hour=0)
    return start, int(offset.total_seconds())
