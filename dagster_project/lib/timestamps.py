"""Parsing of inbox timestamps (ISO 8601), the Python twin of the dbt macro
`parse_timestamp_utc`: a timestamp with an offset or `Z` is taken as given, a naive one is read
in the business time zone. Used for `--as-of` and by Python-side sources.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}"  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"  # optional time
    r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$"  # optional offset
)


def parse_timestamp(text: str, business_timezone: str = "Europe/Moscow") -> datetime:
    """Parse an ISO 8601 timestamp into a naive UTC datetime.

    Args:
        text: `2026-11-01T09:15:00+03:00`, `2026-11-01T06:15:00Z`, `2026-11-01 09:15` or a date.
        business_timezone: the zone of naive timestamps.

    Raises:
        ValueError: the text is not ISO 8601 (the message quotes it).
    """
    value = text.strip()
    if not ISO_TIMESTAMP.match(value):
        raise ValueError(f"not an ISO 8601 timestamp: {text!r} (expected e.g. 2026-11-01T09:15:00)")
    # the date-time separator only: "…T23:30:15.5 +0300" keeps its space before the offset
    value = value[:10] + "T" + value[11:] if len(value) > 10 and value[10] == " " else value
    value = re.sub(r"\s+(?=(?:Z|[+-]\d{2}(?::?\d{2})?)$)", "", value)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(business_timezone))
    return parsed.astimezone(UTC).replace(tzinfo=None)


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
