"""Parsing of inbox timestamps (ISO 8601), the Python twin of the dbt macro
`parse_timestamp_utc`: a timestamp with an offset or `Z` is taken as given, a naive one is read
in the business time zone. Used for `--as-of` and by Python-side sources.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
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
    value = value.replace(" ", "T", 1) if len(value) > 10 else value
    value = re.sub(r"\s+(?=(?:Z|[+-]\d{2}(?::?\d{2})?)$)", "", value)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(business_timezone))
    return parsed.astimezone(UTC).replace(tzinfo=None)
