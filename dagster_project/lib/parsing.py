"""The value formats of the inbox contract, defined once (docs/inbox-contract.md, "Value formats").

Every rule lives here as data (separators, patterns, bounds, words) and as the one DuckDB SQL
expression built from it. Three readers use the same expressions, so a value is accepted by all
of them with the same parsed value, or by none (decision D75):

- the loader's acceptance check (``inbox_loader.typed_expr``): a row whose value does not parse
  goes to the quarantine as ``invalid_<type>:<column>``, one that parses but does not fit its
  staging type as ``out_of_range_<type>:<column>``;
- the Great Expectations typed raw batches (``ge_runner.raw.raw_select_sql``);
- the dbt parse macros (``dbt_models/macros/parse.sql``), which read the generated
  ``dbt_models/macros/parse_rules.sql``: ``python -m dagster_project.lib.parsing`` writes it, and a
  unit test fails while it differs from what this module generates.

The Python functions (``parse_decimal`` ...) are the same rules for Python-side values (``--as-of``,
tests); ``tests/unit/test_parsing.py`` pins them against the SQL.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster_project.lib.sql import literal as _lit

# ------------------------------------------------------------------------------------ the rules

# Thousands separators people type, removed anywhere in a number: space, no-break space (Excel in
# Russian locales), narrow no-break space (Excel and macOS since 2019), thin space, figure space,
# apostrophe and right single quotation mark (Swiss style).
GROUP_SEPARATORS: tuple[str, ...] = (" ", "\u00a0", "\u202f", "\u2009", "\u2007", "'", "\u2019")
# Minus signs read as `-` (U+2212 MINUS SIGN, as word processors write it).
MINUS_SIGNS: tuple[str, ...] = ("\u2212",)

# Decimals are decimal(18, s) in staging: money has scale 2, weights, plans and coefficients scale
# 4 (contract.Column). A value must leave the marts room for their sums and products: it is read
# as decimal(18 - 4, s), |x| < 1e12 for money, so that the sum of 10 000 such values still fits
# decimal(18, s). One amount of 9999999999999999.99, which decimal(18,2) holds, made the revenue
# and CLV marts fail their casts (D76).
DECIMAL_PRECISION = 18
DECIMAL_HEADROOM_DIGITS = 4
DECIMAL_SCALE = 2
# Whole numbers are bigint in staging.
INTEGER_SQL_TYPE = "bigint"
INTEGER_MIN, INTEGER_MAX = -(2**63), 2**63 - 1
# Timestamps, dates and periods: the year as written, 1900-2199 (a typo like 0202 or 20266 is not a
# date anyone meant; pandas and the marts need no more).
YEAR_MIN, YEAR_MAX = 1900, 2199

TRUE_WORDS: tuple[str, ...] = ("true", "1", "yes", "да")
FALSE_WORDS: tuple[str, ...] = ("false", "0", "no", "нет")


def _year_pattern(low: int, high: int) -> str:
    """`(19|20|21)[0-9]{2}` for 1900-2199: the bounds must be whole centuries."""
    if low % 100 or (high + 1) % 100:
        raise ValueError("YEAR_MIN and YEAR_MAX+1 must be whole centuries")
    return "(" + "|".join(str(c) for c in range(low // 100, (high + 1) // 100)) + ")[0-9]{2}"


# POSIX-style patterns without backslashes, anchored: the same text runs on DuckDB (RE2), on
# PostgreSQL and in Python's `re`.
DECIMAL_PATTERNS: dict[str, str] = {
    # one `.` or `,`: the decimal separator (`1234,56`, `1234.56`, `,5`, `5.`)
    "plain": "^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$",
    # both: the last one is the decimal separator, the other one separates groups of three
    "dot_groups": "^[+-]?[0-9]{1,3}([.][0-9]{3})+,[0-9]*$",  # 1.234.567,89
    "comma_groups": "^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]*$",  # 1,234,567.89
}
INTEGER_PATTERN = "^[+-]?[0-9]+$"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?"
_OFFSET = "(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
_MONTH_DAY = "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"


def _timestamp_pattern(year: str) -> str:
    return f"^{year}{_MONTH_DAY}([T ]{_TIME}( *{_OFFSET})?)?$"


TIMESTAMP_PATTERN = _timestamp_pattern(_year_pattern(YEAR_MIN, YEAR_MAX))
DATE_PATTERN = f"^{_year_pattern(YEAR_MIN, YEAR_MAX)}{_MONTH_DAY}$"
PERIOD_PATTERN = f"^{_year_pattern(YEAR_MIN, YEAR_MAX)}-(0[1-9]|1[0-2])$"
# the same shapes with any four-digit year: a value matching these but not the above is out of range
_ANY_YEAR = "[0-9]{4}"
_SHAPE_PATTERNS = {
    "timestamp": _timestamp_pattern(_ANY_YEAR),
    "date": f"^{_ANY_YEAR}{_MONTH_DAY}$",
    "period": f"^{_ANY_YEAR}-(0[1-9]|1[0-2])$",
}

# the three decimal shapes in one pattern (each alternative anchored)
_DECIMAL_PATTERN = "|".join(DECIMAL_PATTERNS.values())

PARSED_TYPES = ("decimal", "integer", "timestamp", "date", "period", "boolean")


def decimal_limit(scale: int = DECIMAL_SCALE) -> Decimal:
    """The smallest magnitude a decimal of this scale may not have: 1e12 for money."""
    return Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_HEADROOM_DIGITS - scale)


# --------------------------------------------------------------------------------- Python side


def _strip_separators(text: str) -> str:
    for sep in GROUP_SEPARATORS:
        text = text.replace(sep, "")
    for minus in MINUS_SIGNS:
        text = text.replace(minus, "-")
    return text


def _match(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def decimal_text(text: str) -> str | None:
    """The number in `text` written with `.` and no separators, or None when it is no number."""
    value = _strip_separators(text)
    if _match(DECIMAL_PATTERNS["plain"], value):
        return value.replace(",", ".")
    if _match(DECIMAL_PATTERNS["dot_groups"], value):
        return value.replace(".", "").replace(",", ".")
    if _match(DECIMAL_PATTERNS["comma_groups"], value):
        return value.replace(",", "")
    return None


def parse_decimal(text: str, scale: int = DECIMAL_SCALE) -> Decimal | None:
    """`text` as decimal(18, scale), rounded half away from zero as DuckDB casts, or None when it
    is no number or out of range."""
    number = decimal_text(text)
    if number is None:
        return None
    with localcontext() as context:  # room for every digit written
        context.prec = len(number) + scale + 2
        value = Decimal(number).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if abs(value) >= decimal_limit(scale):
        return None
    return abs(value) if value.is_zero() else value  # -0 is 0


def parse_integer(text: str) -> int | None:
    """`text` as a bigint, or None when it is no whole number or out of range."""
    value = _strip_separators(text)
    if not _match(INTEGER_PATTERN, value):
        return None
    number = int(value)
    return number if INTEGER_MIN <= number <= INTEGER_MAX else None


def parse_boolean(text: str) -> bool | None:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def parse_timestamp(text: str, business_timezone: str) -> datetime | None:
    """`text` as a naive UTC datetime (a naive value is wall time in `business_timezone`), or None
    when it is no timestamp of the contract."""
    if not _match(TIMESTAMP_PATTERN, text):
        return None
    # on a value of the pattern, a space is the date-time separator or stands before the offset
    value = text[:10] + "T" + text[11:].replace(" ", "") if len(text) > 10 else text
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # a day the month does not have
        return None
    if parsed.tzinfo is None:
        # as DuckDB's ICU reads wall time: of a time that occurs twice (clocks back) the later
        # instant, a time that does not exist (clocks forward) with the offset before the change;
        # both are the later of the two folds
        zone = ZoneInfo(business_timezone)
        parsed = max(parsed.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    return parsed.astimezone(UTC).replace(tzinfo=None)


def parse_date(text: str) -> date | None:
    if not _match(DATE_PATTERN, text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_period(text: str) -> date | None:
    return parse_date(text + "-01") if _match(PERIOD_PATTERN, text) else None


# ------------------------------------------------------------------------------------- SQL side


def _strip_sql(v: str) -> str:
    for sep in GROUP_SEPARATORS:
        v = f"replace({v}, {_lit(sep)}, '')"
    for minus in MINUS_SIGNS:
        v = f"replace({v}, {_lit(minus)}, '-')"
    return v


def _matches(v: str, pattern: str) -> str:
    return f"regexp_matches({v}, {_lit(pattern)})"


def decimal_sql(v: str, scale: int | str = DECIMAL_SCALE) -> str:
    """DuckDB: the text `v` as decimal(18, scale), null when it is no number or out of range."""
    return _decimal_sql(
        v,
        f"decimal({DECIMAL_PRECISION - DECIMAL_HEADROOM_DIGITS},{scale})",
        f"decimal({DECIMAL_PRECISION},{scale})",
    )


def _decimal_sql(v: str, sql_type: str, result_type: str) -> str:
    """Read as `sql_type` (the bound), given as `result_type` (the staging type).

    A value DuckDB writes back as it is (`1234.50`) is taken from the plain cast (D67); the others
    go through the patterns. Of a matching value, the last separator is the decimal one: reversed,
    it is the first, marked `#` while the others are removed. The stripped value appears once, so
    that DuckDB does not compute it for every row as a common subexpression.
    """
    plain = f"try_cast({v} as {sql_type})"
    number = f"regexp_extract({_strip_sql(v)}, {_lit(_DECIMAL_PATTERN)})"
    marked = f"regexp_replace(reverse({number}), '[.,]', '#')"
    normal = f"reverse(replace(regexp_replace({marked}, '[.,]', '', 'g'), '#', '.'))"
    return (
        f"cast(coalesce(case when cast({plain} as varchar) = {v} then {plain} end,"
        f" try_cast({normal} as {sql_type})) as {result_type})"
    )


def integer_sql(v: str, validated: bool = False) -> str:
    """DuckDB: the text `v` as bigint, null when it is no whole number or out of range (D6).

    A value DuckDB writes back as it is takes the plain cast (D67; the bare cast alone would read
    `1.5` as 2), the others the pattern. `validated`: `v` is known to follow the rule (raw inbox
    text, which the loader checked with this expression), so any value the bare cast reads is
    taken from it, the same value at less cost (D77)."""
    plain = f"try_cast({v} as {INTEGER_SQL_TYPE})"
    number = f"regexp_extract({_strip_sql(v)}, {_lit(INTEGER_PATTERN)})"
    fast = plain if validated else f"case when cast({plain} as varchar) = {v} then {plain} end"
    return f"coalesce({fast}, try_cast({number} as {INTEGER_SQL_TYPE}))"


def boolean_sql(v: str) -> str:
    true = ", ".join(_lit(w) for w in TRUE_WORDS)
    false = ", ".join(_lit(w) for w in FALSE_WORDS)
    return f"case when lower({v}) in ({true}) then true when lower({v}) in ({false}) then false end"


def date_sql(v: str) -> str:
    return f"case when {_matches(v, DATE_PATTERN)} then try_cast({v} as date) end"


def period_sql(v: str) -> str:
    return f"case when {_matches(v, PERIOD_PATTERN)} then try_cast({v} || '-01' as date) end"


def _timestamp_parts(v: str, validated: bool = False) -> tuple[str, str, str]:
    """(head, wall, tail): head + <wall time in the business zone to UTC>(wall) + tail.
    `validated`: `v` is known to match the pattern (raw inbox text), which is then not tested."""
    # on a value of the pattern, only an offset puts a Z, a + or a - after the date
    has_offset = f"({v} like '%Z' or {v} like '%+%' or substr({v}, 11) like '%-%')"
    instant = f"try_cast(regexp_replace({v}, ' +(Z|[+-])', {_lit(chr(92) + '1')}) as timestamptz)"
    head = f"case when {has_offset} then timezone('UTC', {instant}) else "
    if validated:
        return head, f"try_cast({v} as timestamp)", " end"
    head = f"case when {_matches(v, TIMESTAMP_PATTERN)} then {head}"
    return head, f"try_cast({v} as timestamp)", " end end"


def business_to_utc_sql(wall: str, business_timezone: str) -> str:
    """DuckDB: a wall-time timestamp of the business zone as a UTC timestamp (the twin of the dbt
    macro from_business_time: plain arithmetic once the zone's offset stopped changing)."""
    from dagster_project.lib.timestamps import fixed_offset_since

    by_rules = f"timezone('UTC', timezone({_lit(business_timezone)}, {wall}))"
    fixed = fixed_offset_since(business_timezone)
    if fixed is None:
        return by_rules
    since, seconds = fixed
    return (
        f"case when {wall} >= timestamp '{since:%Y-%m-%d %H:%M:%S}'"
        f" then {wall} - to_seconds({seconds}) else {by_rules} end"
    )


def timestamp_sql(v: str, business_timezone: str) -> str:
    """DuckDB: the text `v` as a UTC timestamp, null when it is no timestamp of the contract."""
    head, wall, tail = _timestamp_parts(v)
    return head + business_to_utc_sql(wall, business_timezone) + tail


def enum_sql(v: str) -> str:
    """DuckDB: the text `v` of an enum as compared with the contract's values (any case is
    accepted: lowercased)."""
    return f"lower({v})"


def parse_sql(type_: str, v: str, *, scale: int = DECIMAL_SCALE, business_timezone: str) -> str:
    """DuckDB: the parsed value of a raw text `v` of a contract type, null when it does not parse
    or does not fit (see the functions per type)."""
    if type_ == "decimal":
        return decimal_sql(v, scale)
    if type_ == "integer":
        return integer_sql(v)
    if type_ == "timestamp":
        return timestamp_sql(v, business_timezone)
    if type_ == "date":
        return date_sql(v)
    if type_ == "period":
        return period_sql(v)
    if type_ == "boolean":
        return boolean_sql(v)
    raise ValueError(f"no parsing rule for type {type_!r}")


def out_of_range_sql(type_: str, v: str) -> str | None:
    """DuckDB: true when `v`, whose parse is null, has the type's shape but does not fit its SQL
    type (decimal(18,s), bigint, years 1900-2199); None for types without bounds."""
    if type_ == "decimal":
        return _matches(_strip_sql(v), _DECIMAL_PATTERN)
    if type_ == "integer":
        return _matches(_strip_sql(v), INTEGER_PATTERN)
    if type_ in _SHAPE_PATTERNS:
        return (
            f"({_matches(v, _SHAPE_PATTERNS[type_])}"
            f" and not (substr({v}, 1, 4) between '{YEAR_MIN}' and '{YEAR_MAX}'))"
        )
    return None


# ----------------------------------------------------------------------- PostgreSQL side (D167)
#
# The same rules as PostgreSQL expressions for the dbt macros' postgres__ versions. PostgreSQL has
# no safe cast, so no cast may meet a value it cannot hold: every cast runs inside a CASE (whose
# branches PostgreSQL evaluates in order) after the tests that make it safe: the pattern, the
# length (`numeric` takes 16 383 digits after the point), the day of the month, the bound.

# a text longer than this is no number of ours (and could overflow `numeric` itself)
PG_MAX_NUMBER_LENGTH = 1000


def _pg_matches(v: str, pattern: str) -> str:
    return f"({v} ~ {_lit(pattern)})"


def _pg_number_text(v: str) -> str:
    """The number in text `v` written with `.` and no separators, null when it is none (the twin
    of decimal_text)."""
    s = _strip_sql(v)
    return (
        f"case when {_pg_matches(s, DECIMAL_PATTERNS['plain'])} then replace({s}, ',', '.')"
        f" when {_pg_matches(s, DECIMAL_PATTERNS['dot_groups'])}"
        f" then replace(replace({s}, '.', ''), ',', '.')"
        f" when {_pg_matches(s, DECIMAL_PATTERNS['comma_groups'])} then replace({s}, ',', '') end"
    )


def pg_decimal_sql(v: str, scale: int | str, result_type: str) -> str:
    """PostgreSQL: the text `v` as `result_type` (decimal(18, scale)), null when it is no number
    or its value rounded to `scale` is 10^(18 - 4 - scale) or more (D76). `scale` may be a
    placeholder: the bound is then computed in SQL."""
    number = f"({_pg_number_text(v)})"
    bound = f"power(10::numeric, {DECIMAL_PRECISION - DECIMAL_HEADROOM_DIGITS} - {scale})"
    return (
        f"case when length({number}) <= {PG_MAX_NUMBER_LENGTH} then"
        f" case when abs(round(cast({number} as numeric), {scale})) < {bound}"
        f" then cast(cast({number} as numeric) as {result_type}) end end"
    )


def pg_integer_sql(v: str) -> str:
    """PostgreSQL: the text `v` as bigint, null when it is no whole number or out of range."""
    s = _strip_sql(v)
    return (
        f"case when {_pg_matches(s, INTEGER_PATTERN)} then"
        f" case when length({s}) <= {PG_MAX_NUMBER_LENGTH} then"
        f" case when cast({s} as numeric) between {INTEGER_MIN} and {INTEGER_MAX}"
        f" then cast({s} as {INTEGER_SQL_TYPE}) end end end"
    )


def _pg_lower_words(v: str, words: tuple[str, ...]) -> str:
    """`v` lowercased as Python's str.lower() lowercases it, for comparing with `words`: ASCII by
    lower() (any locale does that), the other letters of `words` by translate(), since lower()
    leaves Cyrillic as it is in a database of the C locale."""
    letters = sorted({c for w in words for c in w if not c.isascii() and c.upper() != c})
    if not letters:
        return f"lower({v})"
    upper = "".join(c.upper() for c in letters)
    return f"lower(translate({v}, {_lit(upper)}, {_lit(''.join(letters))}))"


def pg_boolean_sql(v: str) -> str:
    word = _pg_lower_words(v, TRUE_WORDS + FALSE_WORDS)
    true = ", ".join(_lit(w) for w in TRUE_WORDS)
    false = ", ".join(_lit(w) for w in FALSE_WORDS)
    return f"case when {word} in ({true}) then true when {word} in ({false}) then false end"


def _pg_day_exists(v: str) -> str:
    """True when the day of the date at the start of `v` (of DATE_PATTERN's shape) exists."""
    month_start = f"cast(substr({v}, 1, 7) || '-01' as date)"
    last_day = f"extract(day from {month_start} + interval '1 month' - interval '1 day')"
    return f"cast(substr({v}, 9, 2) as integer) <= {last_day}"


def pg_date_sql(v: str) -> str:
    return (
        f"case when {_pg_matches(v, DATE_PATTERN)} then"
        f" case when {_pg_day_exists(v)} then cast({v} as date) end end"
    )


def pg_period_sql(v: str) -> str:
    return f"case when {_pg_matches(v, PERIOD_PATTERN)} then cast({v} || '-01' as date) end"


def _pg_timestamp_parts(v: str) -> tuple[str, str, str]:
    """(head, wall, tail) as _timestamp_parts, for PostgreSQL. No `validated` variant: without a
    safe cast, a value the loader did not check (30 February, `0`) would fail the build."""
    has_offset = f"({v} like '%Z' or {v} like '%+%' or substr({v}, 11) like '%-%')"
    instant = f"cast(regexp_replace({v}, ' +(Z|[+-])', {_lit(chr(92) + '1')}) as timestamptz)"
    head = (
        f"case when {_pg_matches(v, TIMESTAMP_PATTERN)} then"
        f" case when {_pg_day_exists(v)} then"
        f" case when {has_offset} then cast({instant} at time zone 'UTC' as timestamp) else "
    )
    return head, f"cast({v} as timestamp)", " end end end"


# ------------------------------------------------------------------------------- dbt's copy

DBT_RULES_PATH = Path(__file__).resolve().parents[2] / "dbt_models" / "macros" / "parse_rules.sql"
_VALUE = "__value__"
_TYPE = "__type__"
_PARSE_TYPE = "__parse_type__"
_SCALE = "__scale__"


def dbt_rules() -> dict:
    """What the dbt macros read: the constants, and the DuckDB and PostgreSQL expressions with
    `__value__` (and for decimals `__parse_type__` and `__type__`, the bounding and the staging
    type, and on PostgreSQL `__scale__`) standing for the column."""
    head, wall, tail = _timestamp_parts(_VALUE)
    valid_head, _, valid_tail = _timestamp_parts(_VALUE, validated=True)
    pg_head, pg_wall, pg_tail = _pg_timestamp_parts(_VALUE)
    return {
        "group_separators": list(GROUP_SEPARATORS),
        "minus_signs": list(MINUS_SIGNS),
        "decimal_patterns": DECIMAL_PATTERNS,
        "integer_pattern": INTEGER_PATTERN,
        "timestamp_pattern": TIMESTAMP_PATTERN,
        "date_pattern": DATE_PATTERN,
        "period_pattern": PERIOD_PATTERN,
        "true_words": list(TRUE_WORDS),
        "false_words": list(FALSE_WORDS),
        "decimal_precision": DECIMAL_PRECISION,
        "decimal_headroom_digits": DECIMAL_HEADROOM_DIGITS,
        "integer_type": INTEGER_SQL_TYPE,
        "duckdb": {
            "decimal": _decimal_sql(_VALUE, _PARSE_TYPE, _TYPE),
            "integer": integer_sql(_VALUE),
            "integer_validated": integer_sql(_VALUE, validated=True),
            "boolean": boolean_sql(_VALUE),
            "date": date_sql(_VALUE),
            "period": period_sql(_VALUE),
            "timestamp_head": head,
            "timestamp_wall": wall,
            "timestamp_tail": tail,
            "timestamp_validated_head": valid_head,
            "timestamp_validated_tail": valid_tail,
        },
        "postgres": {
            "decimal": pg_decimal_sql(_VALUE, _SCALE, _TYPE),
            "integer": pg_integer_sql(_VALUE),
            "boolean": pg_boolean_sql(_VALUE),
            "date": pg_date_sql(_VALUE),
            "period": pg_period_sql(_VALUE),
            "timestamp_head": pg_head,
            "timestamp_wall": pg_wall,
            "timestamp_tail": pg_tail,
        },
    }


def dbt_rules_macro() -> str:
    """The text of dbt_models/macros/parse_rules.sql."""
    body = json.dumps(dbt_rules(), ensure_ascii=True, indent=4, sort_keys=True)
    return (
        "{#- GENERATED from dagster_project/lib/parsing.py by\n"
        "    `python -m dagster_project.lib.parsing`: do not edit (tests/unit/test_parsing.py\n"
        "    fails while this differs). The value formats: docs/inbox-contract.md. -#}\n"
        "{% macro parse_rules() -%}\n"
        f"{{{{ return({body}) }}}}\n"
        "{%- endmacro %}\n"
    )


def main() -> int:
    DBT_RULES_PATH.write_text(dbt_rules_macro(), encoding="utf-8")
    print(f"wrote {DBT_RULES_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
