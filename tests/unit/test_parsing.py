"""The value rules of lib/parsing.py: the SQL the loader and the GE raw batches run gives what the
Python rules give, on hundreds of tricky values and on random ones (hypothesis); the dbt copy of
the rules is the generated one. The dbt macros themselves: tests/integration/test_parse_parity.py.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_project.lib import inbox_loader, parsing
from dagster_project.lib.contract import Column
from dagster_project.lib.ge_runner.raw import typed_expr
from tests.parsing_cases import ALL_VALUES, SEPARATORS

ZONES = ("Europe/Moscow", "America/St_Johns")  # fixed offset since 2014; -03:30 with DST
TYPES = ("decimal", "integer", "timestamp", "date", "period", "boolean")


def python_value(type_: str, text: str, zone: str, scale: int = 2):
    if type_ == "decimal":
        return parsing.parse_decimal(text, scale)
    if type_ == "integer":
        return parsing.parse_integer(text)
    if type_ == "timestamp":
        return parsing.parse_timestamp(text, zone)
    if type_ == "date":
        return parsing.parse_date(text)
    if type_ == "period":
        return parsing.parse_period(text)
    return parsing.parse_boolean(text)


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("create table v as select * from unnest(?::varchar[]) t(v)", [ALL_VALUES])
    yield con
    con.close()


def loader_values(con, type_: str, zone: str, scale: int = 2, table: str = "v") -> dict:
    column = Column("v", type_, scale=scale)
    sql = inbox_loader.typed_expr(column, business_timezone=zone)
    return dict(con.execute(f"select v, {sql} from {table}").fetchall())


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("type_", TYPES)
def test_the_loader_sql_parses_as_the_python_rules(con, type_, zone):
    got = loader_values(con, type_, zone)
    expected = {v: python_value(type_, v, zone) for v in ALL_VALUES}
    assert {v: got[v] for v in ALL_VALUES if got[v] != expected[v]} == {}
    assert sum(x is not None for x in got.values()) >= 1  # the table has accepted values


@pytest.mark.parametrize("type_", TYPES)
def test_the_ge_batches_parse_as_the_loader(con, type_):
    column = Column("v", type_)
    ge_sql = typed_expr(column, "Europe/Moscow")
    loaded = loader_values(con, type_, "Europe/Moscow")
    typed = dict(con.execute(f"select v, {ge_sql} from v").fetchall())
    for value in ALL_VALUES:
        expected = loaded[value]
        if isinstance(expected, Decimal | int) and not isinstance(expected, bool):
            expected = float(expected)
        elif isinstance(expected, date) and not isinstance(expected, datetime):
            expected = datetime(expected.year, expected.month, expected.day)
        assert typed[value] == expected, value


def test_scale_four_keeps_four_digits_and_its_own_bound(con):
    got = loader_values(con, "decimal", "UTC", scale=4)
    assert got["12.3456"] == Decimal("12.3456")
    assert got["9999999999.9999"] == Decimal("9999999999.9999")
    assert got["10000000000"] is None  # 1e10: the bound of scale 4 (D76)
    assert {v: got[v] for v in ALL_VALUES if got[v] != parsing.parse_decimal(v, 4)} == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,56", Decimal("1234.56")),
        ("1\u202f234,56", Decimal("1234.56")),  # narrow no-break space (issue 15)
        ("1\u00a0234.5", Decimal("1234.50")),
        ("1'234.5", Decimal("1234.50")),
        ("1.234.567,89", Decimal("1234567.89")),
        ("1,234,567.89", Decimal("1234567.89")),
        ("1,234", Decimal("1.23")),  # one separator: the decimal one
        ("\u22125", Decimal("-5.00")),
        ("-0", Decimal("0.00")),
        ("999999999999.99", Decimal("999999999999.99")),
        ("-999999999999.994", Decimal("-999999999999.99")),
        ("999999999999.995", None),  # rounds to 1e12: the bound of money (D76)
        ("9999999999999999.99", None),  # decimal(18,2) holds it, the marts' sums do not
        ("1.005", Decimal("1.01")),  # half away from zero, as DuckDB's cast
        ("inf", None),
        ("nan", None),
        ("1e30", None),
        ("1e3", None),  # no exponents: Excel writes them for numbers it has rounded
        ("9999999999999999.995", None),
        ("10000000000000000", None),
        ("1.234.567", None),
        ("1,23.5", None),
        ("100 ₽", None),
    ],
)
def test_decimals(text, expected):
    assert parsing.parse_decimal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T09:15:00+05:45", datetime(2026, 11, 1, 3, 30)),
        ("2026-11-01T09:15:00-09:30", datetime(2026, 11, 1, 18, 45)),
        ("2026-11-01 09:15 Z", datetime(2026, 11, 1, 9, 15)),
        ("2024-02-29", datetime(2024, 2, 28, 21, 0)),
        ("2023-02-29", None),
        ("2026-11-01T24:00", None),  # write 00:00 of the next day
        ("2026-11-01Z", None),  # an offset needs a time
        ("2026-11-01T09:15+15:00", None),
        ("1899-12-31", None),
        ("2200-01-01", None),
    ],
)
def test_timestamps(text, expected):
    assert parsing.parse_timestamp(text, "Europe/Moscow") == expected


@pytest.mark.parametrize(
    ("type_", "text", "reason"),
    [
        ("decimal", "1e30", "invalid"),
        ("decimal", "inf", "invalid"),
        ("decimal", "10000000000000000", "out_of_range"),
        ("decimal", "9999999999999999.99", "out_of_range"),
        ("decimal", "1000000000000", "out_of_range"),
        ("decimal", "9999999999999999.995", "out_of_range"),
        ("integer", "9223372036854775808", "out_of_range"),
        ("integer", "1.5", "invalid"),
        ("timestamp", "2200-01-01", "out_of_range"),
        ("timestamp", "0202-01-01T10:00", "out_of_range"),
        ("timestamp", "2026-02-30", "invalid"),
        ("date", "1899-12-31", "out_of_range"),
        ("period", "2200-01", "out_of_range"),
    ],
)
def test_the_loader_says_out_of_range_or_invalid(con, type_, text, reason):
    column = Column("v", type_)
    sql = inbox_loader._invalid_reason(column).replace('"v"', "v")
    got = con.execute(f"select {sql} from (select ? as v)", [text]).fetchone()[0]
    assert got == f"{reason}_{type_}:v"


def test_the_fast_path_agrees_with_the_patterns():
    """A value DuckDB writes back as it is skips the regular expression (D67); DuckDB's bare cast
    reads `1.5` as the integer 2, `.5` and `5.` as numbers: on every string of up to 6 digits, signs
    and points the result is the patterns' one."""
    import itertools

    values = ["".join(p) for n in range(1, 7) for p in itertools.product("+-.09", repeat=n)]
    con = duckdb.connect()
    con.execute("create table w as select * from unnest(?::varchar[]) t(v)", [values])
    for type_ in ("decimal", "integer"):
        got = loader_values(con, type_, "UTC", table="w")
        wrong = {v: got[v] for v in values if got[v] != python_value(type_, v, "UTC")}
        assert wrong == {}, type_


_NUMBER_ALPHABET = "0123456789+-.,eE" + "".join(SEPARATORS) + "\u2212"
_MEMORY = duckdb.connect()


def _sql_values(type_: str, texts: list[str], zone: str) -> list:
    sql = inbox_loader.typed_expr(Column("v", type_), value="v", business_timezone=zone)
    query = f"select {sql} from unnest(?::varchar[]) with ordinality t(v, i) order by i"
    return [row[0] for row in _MEMORY.execute(query, [texts]).fetchall()]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=_NUMBER_ALPHABET, max_size=24), min_size=1, max_size=100))
def test_random_numbers_parse_alike(texts):
    for type_ in ("decimal", "integer"):
        expected = [python_value(type_, text, "UTC") for text in texts]
        assert _sql_values(type_, texts, "UTC") == expected, type_


_TIMESTAMP_TEXTS = st.builds(
    lambda moment, sep, time_format, offset: (
        moment.strftime("%Y-%m-%d")
        + (sep + moment.strftime(time_format) + offset if time_format else "")
    ),
    st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(2210, 12, 31)),
    st.sampled_from(["T", " "]),
    st.sampled_from(["%H:%M", "%H:%M:%S", "%H:%M:%S.%f", ""]),
    st.sampled_from(["", "Z", "+03:00", "-0930", "+05", " +05:45", "-12:00"]),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(_TIMESTAMP_TEXTS, min_size=1, max_size=100))
def test_random_timestamps_parse_alike(texts):
    for zone in ZONES:
        expected = [parsing.parse_timestamp(text, zone) for text in texts]
        assert _sql_values("timestamp", texts, zone) == expected, zone


def test_the_dbt_rules_macro_is_the_generated_one():
    """dbt_models/macros/parse_rules.sql is written by `python -m dagster_project.lib.parsing`."""
    assert parsing.DBT_RULES_PATH.read_text(encoding="utf-8") == parsing.dbt_rules_macro(), (
        "dbt_models/macros/parse_rules.sql is stale: run `python -m dagster_project.lib.parsing`"
    )
