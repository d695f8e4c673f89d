"""The same inbox gives the same marts, finance tables and checks on DuckDB and on PostgreSQL,
and the PostgreSQL password shows nowhere (issue 19).

One module-scoped pair of runs: the integration suite's mini inbox (tests/fixtures/mini_inbox)
goes through `voronka run` into a DuckDB file and into a PostgreSQL database
(a `voronka run` subprocess: the real path, the inbox landing by COPY, D184), with the same
as-of. Then:

- every table and view of `marts` and `finance` is compared, table by table: the same columns in
  the same order, the same rows;
- every Great Expectations suite of every layer has the same outcome on both (D188);
- the password the PostgreSQL run used (PGPASSWORD) is in none of its output, its local files
  (summary, validation page, report, exports), its Dagster instance (the event log and run
  databases, compute logs: asset metadata is stored there) or dbt's logs.

Normalisations, each a difference of representation, not of value:

- values are compared as Python values (psycopg's and DuckDB's), not as printed text, so a
  decimal `12.50` equals `12.5`;
- doubles are compared to 9 significant digits: a sum of doubles depends on the order the
  engine adds them in, which differs between engines in the last bits;
- rows are compared as sorted lists: neither engine promises an order without `order by`;
- load-time columns (`_last_loaded_at`, ...: when a row arrived, not what it says) are left
  out, as the fault tests do (D110).
"""

from __future__ import annotations

import math
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_project.lib import validation_report
from dagster_project.lib import warehouse as wh
from tests import background
from tests.conftest import FIXTURES, PG_MINI_AS_OF

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

AS_OF = PG_MINI_AS_OF
DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_models"


@background.job("parity_duckdb", "runs")
def _duckdb_run(root: Path) -> list[background.Command]:
    """The DuckDB run, started beside the tests before this module (D412)."""
    shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
    duck = root / "duckdb" / "warehouse.duckdb"
    duck.parent.mkdir()
    return [
        background.voronka(
            "run", "--inbox", str(root / "inbox"), "--warehouse", str(duck), "--as-of", AS_OF
        )
    ]


@pytest.fixture(scope="module")
def runs(background_runs, pg_mini_run):
    """The PostgreSQL run is the session's (tests/conftest.py, D281), read only here; both runs
    read a copy of tests/fixtures/mini_inbox."""
    done = background_runs.take("parity_duckdb")
    assert done.code == 0, done.output()
    duck = done.root / "duckdb" / "warehouse.duckdb"
    pg = pg_mini_run
    return duck, pg.url, pg.result, pg.root, pg.started


def test_the_postgresql_run_succeeds(runs):
    _, url, result, _, _ = runs
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, (out[-4000:], result.stderr.decode(errors="replace")[-4000:])
    assert f"Warehouse: {url} (PostgreSQL)" in out


def _normal(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else float(f"{value:.9g}")
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _relations(con, schema: str) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by 1",
        [schema],
    ).fetchall()
    # tables dbt builds beside a published one are not the warehouse's
    return [name for (name,) in rows if "__dbt_" not in name]


def _dump(con, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    columns = [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]
    kept = [c for c in columns if not c.startswith("_")]
    listed = ", ".join(f'"{c}"' for c in kept)
    rows = con.execute(f'select {listed} from "{schema}"."{table}"').fetchall()
    normal = [tuple(_normal(v) for v in row) for row in rows]
    return columns, sorted(normal, key=lambda r: tuple((v is None, str(v)) for v in r))


@pytest.mark.parametrize("schema", ["marts", "finance"])
def test_marts_and_finance_are_identical_table_by_table(runs, schema):
    duck, url, _, _, _ = runs
    with wh.open_warehouse(duck, read_only=True) as d, wh.open_warehouse(url) as p:
        names = _relations(d, schema)
        assert names and _relations(p, schema) == names
        for table in names:
            duck_columns, duck_rows = _dump(d, schema, table)
            pg_columns, pg_rows = _dump(p, schema, table)
            assert pg_columns == duck_columns, table
            assert len(pg_rows) == len(duck_rows), table
            assert pg_rows == duck_rows, table


def _outcomes(warehouse) -> dict[str, tuple]:
    """Each suite's outcome as the validation page shows it, times and samples aside."""

    def failure(f: dict) -> tuple:
        return tuple(
            (key, f[key])
            for key in ("type", "column", "query", "severity", "unexpected_count")
            if key in f
        )

    return {
        row.suite: (
            row.status,
            row.passed,
            row.failed_errors,
            row.failed_warnings,
            row.unexpected,
            row.rows,
            sorted(failure(f) for f in row.failures),
        )
        for row in validation_report.load_rows(warehouse)
    }


def test_every_suite_has_the_same_outcome_on_both_engines(runs):
    duck, url, _, pg_root, _ = runs
    cwd = os.getcwd()
    os.chdir(pg_root)  # the PostgreSQL warehouse's local files are relative to the run's folder
    try:
        on_postgres = _outcomes(url)
    finally:
        os.chdir(cwd)
    on_duckdb = _outcomes(duck)
    assert len(on_duckdb) > 40
    assert on_postgres == on_duckdb


def _files_holding(folder: Path, secret: bytes, since: float) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime >= since and secret in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


def test_the_password_shows_in_no_output_file_or_event_log(runs, pg_server):
    _, _, result, pg_root, started = runs
    secret = pg_server.password.encode()
    assert len(secret) > 16
    assert secret not in result.stdout and secret not in result.stderr
    # what the run wrote: summary, validation page, report, exports; the Dagster instance (runs,
    # event log with every asset's metadata, compute logs); dbt's logs and artefacts
    assert (pg_root / "dagster" / "history").is_dir()
    assert list(pg_root.rglob("summary.txt"))
    assert _files_holding(pg_root, secret, 0) == []
    assert _files_holding(DBT_PROJECT / "target", secret, started) == []
    assert _files_holding(DBT_PROJECT / "logs", secret, started) == []
