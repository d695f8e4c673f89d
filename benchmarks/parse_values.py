"""Benchmark the parsing of raw values: the SQL of the dbt parse macros and of the loader, before
and after the one parsing module (lib/parsing.py, D75), on synthetic columns of a few million
values shaped like the demo's (plain integers, money with two decimals and some thousands
separators, naive and offset timestamps).

"Before" is the SQL of commit 52ea172 (the dbt macros compiled then, the loader's typed_expr then),
copied here; "after" is compiled by dbt from today's macros and built by today's loader. Each
expression is aggregated over the column (so that it is evaluated on every value), best of
`--repeat` runs, on one DuckDB thread (the machine is shared: compare figures of one run).

    .venv/bin/python benchmarks/parse_values.py [--rows 3000000] [--repeat 3] [--threads 1]

Not a test. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib import inbox_loader  # noqa: E402
from dagster_project.lib.contract import Column  # noqa: E402

_SPACES = "[[:space:]\u00a0\u202f]"
_FIXED = (
    "(case when cast({x} as timestamp) >= cast('2014-11-02 00:00:00' as timestamp) then "
    "(cast({x} as timestamp) + cast(-10800 as bigint) * interval 1 second) else "
    "cast((cast({x} as timestamp) at time zone 'Europe/Moscow') at time zone 'UTC' "
    "as timestamp) end)"
)
BEFORE_DBT = {
    "integer": (
        f"coalesce(try_cast(v as bigint), cast(regexp_replace(v, '{_SPACES}', '', 'g') as bigint))"
    ),
    "decimal": (
        "coalesce(try_cast(v as decimal(18,2)), "
        f"cast(replace(regexp_replace(v, '{_SPACES}', '', 'g'), ',', '.') as decimal(18,2)))"
    ),
    "timestamp": (
        "case when (v like '%Z' or v like '%+%' or substr(v, 17) like '%-%') and "
        "regexp_matches(v, '[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"
        "[[:space:]]*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$') "
        "then cast(cast(regexp_replace(v, '[[:space:]]+(Z|[+-])', '\\1') as timestamptz) "
        "at time zone 'UTC' as timestamp) else " + _FIXED.format(x="cast(v as timestamp)") + " end"
    ),
}
_TIMESTAMP_RE = (
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?"
)
BEFORE_LOADER = {
    "integer": (
        "case when regexp_full_match(regexp_replace(v, '[\\s\u00a0]', '', 'g'), '[+-]?\\d+') "
        "then try_cast(regexp_replace(v, '[\\s\u00a0]', '', 'g') as bigint) end"
    ),
    "decimal": "try_cast(replace(regexp_replace(v, '[\\s\u00a0]', '', 'g'), ',', '.') as double)",
    "timestamp": (
        f"case when regexp_full_match(v, '{_TIMESTAMP_RE}') "
        "then try_cast(regexp_replace(v, '\\s+(Z|[+-])', '\\1') as timestamptz) end"
    ),
}
MACROS = {
    "integer": "parse_integer('v')",
    "decimal": "parse_decimal('v')",
    "timestamp": "parse_timestamp_utc('v')",
    # the variants for raw inbox text the loader checked (D77; stg_inbox__calls)
    "integer validated": "parse_integer('v', validated=true)",
    "timestamp validated": "parse_timestamp_utc('v', validated=true)",
}


def compile_after(workdir: Path) -> dict[str, str]:
    """Today's dbt macros, compiled by dbt in one call (expressions split at a marker)."""
    marker = "/*--next--*/"
    inline = marker.join(f"{{{{ {m} }}}}" for m in MACROS.values())
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "compile",
            "--quiet",
            "--inline",
            inline,
            "--target-path",
            str(workdir / "target"),
        ],
        cwd=ROOT / "dbt_models",
        env={
            **os.environ,
            "VORONKA_WAREHOUSE": str(workdir / "compile.duckdb"),
            "VORONKA_TIMEZONE": "Europe/Moscow",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return dict(zip(MACROS, out.split(marker), strict=True))


def columns(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Synthetic columns shaped like the demo's values (high cardinality, few odd ones)."""
    con.execute(f"""
        create table integer_values as
        select case when i % 50 = 0 then '1 ' || lpad((i % 1000)::varchar, 3, '0')
                    else (i % 3600)::varchar end as v
        from range({rows}) t(i)
    """)
    con.execute(f"""
        create table decimal_values as
        select case when i % 10 = 0 then replace(format('{{:,.2f}}', x), ',', ' ')
                    when i % 10 = 1 then replace(format('{{:.2f}}', x), '.', ',')
                    else format('{{:.2f}}', x) end as v
        from (select i, (i % 10000000) / 7.0 as x from range({rows}) t(i))
    """)
    con.execute(f"""
        create table timestamp_values as
        select case when i % 4 = 0 then strftime(ts, '%Y-%m-%dT%H:%M:%S') || '+03:00'
                    when i % 4 = 1 then strftime(ts, '%Y-%m-%dT%H:%M:%S') || 'Z'
                    else strftime(ts, '%Y-%m-%d %H:%M:%S') end as v
        from (select i, timestamp '2025-01-01' + to_seconds(i * 7) as ts from range({rows}) t(i))
    """)


def timed(con: duckdb.DuckDBPyConnection, expr: str, table: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        con.execute(f"select count({expr}) from {table}").fetchall()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        after_dbt = compile_after(Path(tmp))
    types = ("integer", "decimal", "timestamp")
    after_loader = {
        t: inbox_loader.typed_expr(Column("v", t), "v", business_timezone="Europe/Moscow")
        for t in types
    }
    con = duckdb.connect()
    con.execute(f"set threads = {args.threads}")
    columns(con, args.rows)
    print(f"{args.rows:,} values per column, {args.threads} thread(s), best of {args.repeat}\n")
    print(
        "| type | dbt macro before | dbt macro after | after, validated=true "
        "| loader before | loader after |"
    )
    print("|---|---|---|---|---|---|")
    for type_ in types:
        table = f"{type_}_values"
        validated = after_dbt.get(f"{type_} validated")
        figures = [
            timed(con, BEFORE_DBT[type_], table, args.repeat),
            timed(con, after_dbt[type_], table, args.repeat),
            timed(con, validated, table, args.repeat) if validated else None,
            timed(con, BEFORE_LOADER[type_], table, args.repeat),
            timed(con, after_loader[type_], table, args.repeat),
        ]
        cells = ["-" if f is None else f"{f:.2f} s" for f in figures]
        print(f"| {type_} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
