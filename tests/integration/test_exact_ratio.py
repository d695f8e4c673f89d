"""safe_ratio, exact_ratio and exact_mean (macros/aggregates.sql, D290) divide exactly and round
once, half away from zero, on DuckDB and PostgreSQL alike: the values of hand-made rows against
Python's Decimal arithmetic. DuckDB divides decimals in DOUBLE (1911750.90 / 12 is
159312.57499999998, cast to 159312.57); PostgreSQL's numeric gives 159312.58."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import duckdb
import pytest

from tests.integration.test_parse_parity import compile_dbt
from tests.integration.test_postgres_dbt import dbt, pg_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# (id, integer numerator, integer denominator, decimal numerator, decimal denominator)
ROWS = [
    (1, 1911750, 12, Decimal("1911750.90"), Decimal("12")),  # the medium demo's avg_check
    (2, -1911750, 12, Decimal("-1911750.90"), Decimal("12")),
    (3, 2675, 1000, Decimal("2.675"), Decimal("1")),  # 2.67499... as a double
    (4, -2675, 1000, Decimal("2.675"), Decimal("-1")),
    (5, 1, 8, Decimal("1.0000005"), Decimal("1")),  # a half at the 6th decimal
    (6, 2, 3, Decimal("-2"), Decimal("3")),
    (7, -1, -3, Decimal("-1"), Decimal("-3")),
    (8, 5, 0, Decimal("5.5"), Decimal("0")),  # a zero denominator: null, never 0
    (9, None, 3, None, Decimal("3")),
    (10, 3, None, Decimal("3"), None),
    (11, 0, 7, Decimal("0"), Decimal("7.25")),
    (12, 92233720368547758, 10**12, Decimal("84999999999999999999.999999999"), Decimal("7e10")),
    (13, 10**11, 3, Decimal("0.000000001"), Decimal("0.000000002")),  # 0.5 exactly
    (14, 7, 2, Decimal("1234567.125"), Decimal("0.25")),
]
# (column, numerator, denominator, data_type); n/d_int are bigint, n/d_dec decimal(38, 9)
COLUMNS = [
    ("dec_2", "n_dec", "d_dec", "decimal(18, 2)"),
    ("dec_int_2", "n_dec", "d_int", "decimal(18, 2)"),
    ("int_6", "n_int", "d_int", "decimal(18,6)"),
    ("dec_6", "n_dec", "d_dec", "decimal(18, 6)"),
    ("int_0", "n_int", "d_int", "decimal(38, 0)"),
    ("dec_9", "n_dec", "d_dec", "decimal(38, 9)"),
    ("hundred_6", "100 * n_int", "d_int", "decimal(38, 6)"),
]
RATIO_SQL = "select id, {} from ratio_cases".format(
    ", ".join(f"{{{{ safe_ratio('{n}', '{d}', '{t}') }}}} as {c}" for c, n, d, t in COLUMNS)
)
# exact_mean: its values cast to decimal(38, 2) one by one, summed, divided by their count
MEAN_SQL = (
    "select grp, {{ exact_mean('x', 2, 'decimal(18, 2)') }} as mean from mean_cases group by grp"
)
MEAN_ROWS = [
    ("avg_check", Decimal("1911750.90")),
    *[("avg_check", Decimal("0")) for _ in range(11)],
    ("negative", Decimal("-0.01")),
    ("negative", Decimal("-0.02")),
    ("nulls", None),
    ("third", Decimal("1")),
    ("third", Decimal("0")),
    ("third", Decimal("0")),
    ("third", None),
]


def exact_quotient(n, d, scale: int) -> Decimal | None:
    """n / d rounded half away from zero to `scale` decimals; null on a null or a zero."""
    if n is None or d is None or d == 0:
        return None
    with localcontext() as context:
        context.prec = 200
        return (Decimal(n) / Decimal(d)).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP)


def expected_ratios() -> dict:
    by_id = {}
    for row_id, n_int, d_int, n_dec, d_dec in ROWS:
        values = {"n_int": n_int, "d_int": d_int, "n_dec": n_dec, "d_dec": d_dec}
        expected = []
        for _, n, d, data_type in COLUMNS:
            numerator = values[n.split()[-1]]
            if numerator is not None and n.startswith("100 * "):
                numerator = 100 * numerator
            scale = int(data_type.replace(" ", "").rstrip(")").split(",")[1])
            expected.append(exact_quotient(numerator, values[d], scale))
        by_id[row_id] = tuple(expected)
    return by_id


def expected_means() -> dict:
    groups: dict[str, list] = {}
    for grp, x in MEAN_ROWS:
        if x is not None:
            x = x.quantize(Decimal("0.01"), ROUND_HALF_UP)  # exact_sum's cast of each value
        groups.setdefault(grp, []).append(x)
    means = {}
    for grp, xs in groups.items():
        present = [x for x in xs if x is not None]
        means[grp] = exact_quotient(sum(present), len(present), 2) if present else None
    return means


def _duckdb_tables(con, rows=ROWS) -> None:
    con.execute(
        "create table ratio_cases (id integer, n_int bigint, d_int bigint, "
        "n_dec decimal(38, 9), d_dec decimal(38, 9))"
    )
    con.executemany("insert into ratio_cases values (?, ?, ?, ?, ?)", rows)
    con.execute("create table mean_cases (grp varchar, x decimal(38, 9))")
    con.executemany("insert into mean_cases values (?, ?)", MEAN_ROWS)


def test_the_old_double_division_rounds_the_half_down():
    """Why D290: DuckDB's decimal division is a DOUBLE, the cast then rounds 159312.57499..."""
    con = duckdb.connect()
    got = con.execute(
        "select cast(1.0 * cast(1911750.90 as decimal(38, 9)) / 12 as decimal(18, 2))"
    ).fetchone()[0]
    assert got == Decimal("159312.57")


def test_duckdb_divides_exactly(tmp_path: Path):
    ratio_sql = compile_dbt(RATIO_SQL, "Europe/Moscow", tmp_path)
    mean_sql = compile_dbt(MEAN_SQL, "Europe/Moscow", tmp_path)
    con = duckdb.connect()
    _duckdb_tables(con)
    got = {r[0]: r[1:] for r in con.execute(ratio_sql).fetchall()}
    assert got == expected_ratios()
    assert dict(con.execute(mean_sql).fetchall()) == expected_means()
    assert got[1][0] == Decimal("159312.58") and got[3][0] == Decimal("2.68")

    # the bound: 2 |n| 10^(9 + s) must fit a HUGEINT; above it an error, never a wrong value
    over = duckdb.connect()
    _duckdb_tables(over, [(1, 0, 10**12, Decimal("85100000000000000000"), Decimal("1e12"))])
    with pytest.raises(duckdb.OutOfRangeException, match="Overflow"):
        over.execute(ratio_sql).fetchall()


def test_postgres_divides_alike(pg_server, pg_url, tmp_path: Path):
    database = pg_url.rsplit("/", 1)[1]
    env = pg_env(pg_server, database)
    compiled = []
    for sql in (RATIO_SQL, MEAN_SQL):
        result = dbt(["compile", "--quiet", "--inline", sql], env, tmp_path)
        assert result.returncode == 0, result.stdout[-4000:]
        compiled.append(result.stdout.strip())
    with pg_server.connect(database=database) as con:
        con.execute(
            "create table ratio_cases (id integer, n_int bigint, d_int bigint, "
            "n_dec decimal(38, 9), d_dec decimal(38, 9))"
        )
        with con.cursor() as cur:
            cur.executemany("insert into ratio_cases values (%s, %s, %s, %s, %s)", ROWS)
            con.execute("create table mean_cases (grp text, x decimal(38, 9))")
            cur.executemany("insert into mean_cases values (%s, %s)", MEAN_ROWS)
        got = {r[0]: r[1:] for r in con.execute(compiled[0]).fetchall()}
        means = dict(con.execute(compiled[1]).fetchall())
    assert got == expected_ratios()
    assert means == expected_means()
