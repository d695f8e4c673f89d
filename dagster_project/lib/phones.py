"""Phone normalisation (Russian rules), the Python twin of the dbt macro `normalize_phone`.

The warehouse normalises phones in SQL (staging); this function serves Python code that needs
the same key (API extractors, survey-export mappers) and pins the rules in unit tests.
"""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D+")


def normalize_phone(raw: str | None) -> str | None:
    """Return the phone as E.164 digits without `+`, or None when there are no digits.

    `8 (916) 123-45-67`, `+7 916 123 45 67` and `9161234567` all give `79161234567`: a leading 8
    of an 11-digit number becomes 7; a 10-digit number gets 7 in front; other numbers keep
    their digits as they are.
    """
    if raw is None:
        return None
    digits = _NON_DIGITS.sub("", raw)
    if not digits:
        return None
    if len(digits) == 11 and digits.startswith("8"):
        return "7" + digits[1:]
    if len(digits) == 10:
        return "7" + digits
    return digits
