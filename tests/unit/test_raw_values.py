"""The raw layer's values as the loader stages them: trimmed, empty as null (D13), with `trim`
left out where it cannot change a value (D405)."""

import duckdb
import pytest

from dagster_project.lib.csv_sniff import CHUNK, WIDE_SPACES, scan
from dagster_project.lib.inbox_loader import raw_value_sql


def test_trim_removes_the_space_and_the_wide_spaces_only():
    """What `raw_value_sql` assumes of DuckDB's `trim`: of all code points, it removes U+0020
    and `WIDE_SPACES`, nothing else (an upgrade that changed it fails here)."""
    con = duckdb.connect()
    removed = con.execute(
        """
        select list(code order by code) from (
            select code, chr(code::int) || 'x' || chr(code::int) as v
            from (select * from range(1, 55296) union all select * from range(57344, 1114112))
                as t(code)  -- every code point but the surrogates
        ) where trim(v) <> v
        """
    ).fetchone()[0]
    assert removed == sorted([0x20] + [ord(s.decode()) for s in WIDE_SPACES])


VALUES = [
    None,
    "",
    " ",
    "   ",
    "a",
    " a",
    "a ",
    "  a b  ",
    "a b",
    "\ta\t",
    "\t",
    "12",
    "1730408449.0",
    "2024-11-01 00:00:49",
    "Аноним",
    " Иван ",
    "«Ромашка»",
    "a\u2013b",
    "x\u0301",
    "\u00a0",
    "a\u00a0",
    "\u3000a",
    "\u2007 1 234\u2009",
    "a\u200bb",
    "\ufeffa",
]


@pytest.mark.parametrize("wide_spaces", [True, False])
def test_raw_value_is_trimmed_and_empty_is_null(wide_spaces):
    con = duckdb.connect()
    for value in VALUES:
        if not wide_spaces and value and any(s.decode() in value for s in WIDE_SPACES):
            continue  # a file that holds such a value is read with wide_spaces
        got, expected = con.execute(
            f"select {raw_value_sql('v', wide_spaces)}, nullif(trim(v), '') "
            "from (select ?::varchar as v)",
            [value],
        ).fetchone()
        assert got == expected, value


@pytest.mark.parametrize(
    ("data", "wide"),
    [
        (b"id,name\n1,abc\n", False),
        ("id,name\n1,Аноним\n2,«Ромашка» \u2013 ООО\n".encode(), False),
        ("id,name\n1,1\u00a0234\n".encode(), True),
        ("id,name\n1,a\u3000\n".encode(), True),
        # a wide space cut by the chunk boundary
        (b"id,name\n" + b"1" * (CHUNK - 9) + "\u2009".encode() + b"\n" + b"1,a\n" * 10, True),
        ("id,name\n1,a\u00a0\n".encode("cp1251"), True),
    ],
    ids=["ascii", "cyrillic-dash-quotes", "nbsp", "ideographic", "cut", "cp1251"],
)
def test_scan_finds_wide_spaces(tmp_path, data, wide):
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    assert scan(path).wide_spaces is wide
