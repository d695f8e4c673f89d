"""The finance ledger and the exports on PostgreSQL (issue 19), against DuckDB on the same rows.

One module-scoped pair of warehouses: the mini inbox plus March (tests/integration/
test_finance.py) loaded once, its raw tables copied into a PostgreSQL database by COPY
(tests/pg_copy.py), and every model built by dbt on each engine. Then, on both: a close, late
data and the adjustment it makes, a reopen, a re-close, with the same times, so every ledger and
finance table must be equal row for row, and every export byte for byte.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_project.cli import main
from dagster_project.lib import warehouse as wh
from dagster_project.lib.finance_ledger import (
    as_of_month,
    close_period,
    detect_adjustments,
    reopen_period,
    run_as_of,
)
from tests.conftest import FIXTURES, write_inbox
from tests.integration.test_finance import MARCH_FILES
from tests.integration.test_postgres_dbt import DBT, DBT_PROJECT, _can_read, _reader, pg_env
from tests.pg_copy import copy_schemas

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
CLOSED_AT = datetime(2026, 4, 2, 9, 0)
REOPENED_AT = datetime(2026, 4, 20, 9, 0)
RECLOSED_AT = datetime(2026, 4, 21, 9, 0)
ZONE = "Europe/Moscow"

STATE = {
    "period_log": "select * from finance_ledger.period_log order by event_id",
    "closed_bonus_lines": (
        "select * from finance_ledger.closed_bonus_lines "
        "order by close_event_id, month, manager_id, kpi_code"
    ),
    "closed_bonus_statements": (
        "select * from finance_ledger.closed_bonus_statements "
        "order by close_event_id, month, manager_id"
    ),
    "ledger_adjustments": (
        "select * from finance_ledger.bonus_adjustments order by detected_at, manager_id, kpi_code"
    ),
    "bonus_adjustments": (
        "select * from finance.bonus_adjustments order by detected_at, manager_id, kpi_code"
    ),
    "bonus_lines": "select * from finance.bonus_lines order by month, manager_id, kpi_code",
    "bonus_statements": "select * from finance.bonus_statements order by month, manager_id",
}
ADJUSTMENT = (MARCH, "m1", "deals_won", Decimal("8800.00"), Decimal("11000.00"), Decimal("2200.00"))
MARCH_STATEMENT = (
    "select bonus_amount, period_status, closed_at from finance.bonus_statements "
    "where month = '2026-03-01' and manager_id = 'm1'"
)


@dataclass(frozen=True)
class Engines:
    duck: Path  # a DuckDB warehouse file dbt builds directly
    url: str  # the PostgreSQL warehouse
    database: str
    root: Path


def _dbt_both(pg_server, engines: Engines, *args: str, pg_extra: dict | None = None) -> None:
    """`dbt <args>` on both warehouses at once (two processes: the machine has two cores)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))}
    runs = {
        "duckdb": {**base, "VORONKA_WAREHOUSE": str(engines.duck)},
        "postgres": {**base, **pg_env(pg_server, engines.database), **(pg_extra or {})},
    }
    procs = {}
    for name, env in runs.items():
        target = engines.root / f"dbt-{name}"
        procs[name] = subprocess.Popen(
            [str(DBT), *args, "--target-path", str(target), "--log-path", str(target)],
            cwd=DBT_PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, (name, out[-4000:])


@pytest.fixture(scope="module")
def engines(pg_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("pg_finance")
    inbox = root / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    write_inbox(inbox, MARCH_FILES)
    loaded = root / "loaded.duckdb"
    assert main(["load", "--inbox", str(inbox), "--warehouse", str(loaded)]) == 0
    duck = root / "duck.duckdb"
    shutil.copyfile(wh.working_path(loaded), duck)
    database = "finance_parity"
    url = pg_server.create_database(database)
    with pg_server.connect(database=database) as con:
        copy_schemas(duck, con)
    built = Engines(duck, url, database, root)
    _dbt_both(pg_server, built, "build", "--exclude-resource-type", "unit_test")
    yield built
    pg_server.drop_database(database)


def _on_both(engines: Engines, action) -> dict:
    """`action(con)` on the DuckDB warehouse and on the PostgreSQL one; their results."""
    results = {}
    for name, target in (("duckdb", engines.duck), ("postgres", engines.url)):
        with wh.open_warehouse(target) as con:
            if con.engine == "postgres":  # a step that would wait for a reader fails instead
                con.execute("set lock_timeout = '5s'")
            results[name] = action(con)
    return results


def _state(con) -> dict:
    return {name: con.execute(sql).fetchall() for name, sql in STATE.items()}


def _assert_same_state(engines: Engines) -> dict:
    states = _on_both(engines, _state)
    for name in STATE:
        assert states["duckdb"][name] == states["postgres"][name], name
    return states["postgres"]


def test_close_adjust_reopen_reclose_on_postgres_as_on_duckdb(pg_server, engines):
    # 1. close March: the same lines frozen on both
    closed = _on_both(
        engines,
        lambda con: close_period(con, MARCH, "Ольга", CLOSED_AT, as_of_month(con, ZONE)),
    )
    assert closed["duckdb"] == closed["postgres"]
    assert (closed["postgres"].lines, closed["postgres"].bonus_amount) == (1, 8800.0)
    state = _assert_same_state(engines)
    with wh.open_warehouse(engines.url) as con:
        assert con.execute(MARCH_STATEMENT).fetchall() == [
            (Decimal("8800.00"), "closed", CLOSED_AT)
        ]

    # 2. a late pool correction, the same on both; the models rebuilt; the adjustment found,
    # while a reader holds finance.bonus_adjustments open (it waits for nothing, sees the old
    # rows until its transaction ends; new readers see the new ones)
    for target in (engines.duck, engines.url):
        with wh.open_warehouse(target) as con:
            con.execute(
                "update raw.bonus_pools set pool_amount = '25000' "
                "where period = '2026-03' and manager_id = 'm1'"
            )
    _dbt_both(pg_server, engines, "run", "--select", "fct_bonus_pools+")
    reader = _long_reader(pg_server, engines.database, "finance.bonus_adjustments")
    try:
        recorded = _on_both(engines, lambda con: detect_adjustments(con, run_as_of(con)))
        assert recorded == {"duckdb": 1, "postgres": 1}
        assert reader.execute("select count(*) from finance.bonus_adjustments").fetchone() == (0,)
    finally:
        reader.close()
    state = _assert_same_state(engines)
    [adjustment] = state["bonus_adjustments"]
    assert adjustment[:3] + adjustment[4:7] == ADJUSTMENT and adjustment[7] == APRIL
    _assert_finance_reads_adjustments(pg_server, engines.database, rows=1)

    # dbt publishes the table again in place: neither waits for a reader holding it (as the
    # view's swap by renames did) nor drops the readers' grants
    reader = _long_reader(pg_server, engines.database, "finance.bonus_adjustments")
    try:
        _dbt_only_postgres(
            pg_server, engines, "run", "--select", "bonus_adjustments", lock_timeout_ms=5000
        )
    finally:
        reader.close()
    _assert_finance_reads_adjustments(pg_server, engines.database, rows=1)
    assert _state_of(engines.url)["bonus_adjustments"] == state["bonus_adjustments"]

    # 3. reopen: the unpaid adjustment voided and gone from finance.bonus_adjustments at once
    reopened = _on_both(
        engines, lambda con: reopen_period(con, MARCH, "pool corrected", "Ольга", REOPENED_AT)
    )
    assert reopened["duckdb"] == reopened["postgres"]
    assert reopened["postgres"].voided_adjustments == 1
    state = _assert_same_state(engines)
    assert state["bonus_adjustments"] == []
    assert [row[2] for row in state["period_log"]] == ["close", "reopen"]
    _assert_finance_reads_adjustments(pg_server, engines.database, rows=0)

    # 4. rebuilt from the data, closed again: 11 000 frozen on both, nothing left to adjust
    _dbt_both(pg_server, engines, "run", "--select", "int_finance_periods_classified+")
    reclosed = _on_both(
        engines,
        lambda con: close_period(con, MARCH, "Ольга", RECLOSED_AT, as_of_month(con, ZONE)),
    )
    assert reclosed["duckdb"] == reclosed["postgres"]
    assert reclosed["postgres"].bonus_amount == 11000.0
    assert _on_both(engines, lambda con: detect_adjustments(con, run_as_of(con))) == {
        "duckdb": 0,
        "postgres": 0,
    }
    state = _assert_same_state(engines)
    assert [row[2] for row in state["period_log"]] == ["close", "reopen", "close"]
    with wh.open_warehouse(engines.url) as con:
        assert con.execute(MARCH_STATEMENT).fetchall() == [
            (Decimal("11000.00"), "closed", RECLOSED_AT)
        ]


def _state_of(target) -> dict:
    with wh.open_warehouse(target) as con:
        return _state(con)


def _long_reader(pg_server, database: str, table: str):
    """A reader in a REPEATABLE READ transaction that has read `table` (its lock is held until
    it ends), as a dashboard's long query holds it."""
    import psycopg

    con = psycopg.connect(pg_server.conninfo(database=database))
    con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    con.execute(f"select count(*) from {table}").fetchone()
    return con


def _dbt_only_postgres(pg_server, engines: Engines, *args: str, lock_timeout_ms: int) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))},
        **pg_env(pg_server, engines.database),
        "PGOPTIONS": f"-c lock_timeout={lock_timeout_ms}",
    }
    target = engines.root / "dbt-postgres"
    result = subprocess.run(
        [str(DBT), *args, "--target-path", str(target), "--log-path", str(target)],
        cwd=DBT_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def _assert_finance_reads_adjustments(pg_server, database: str, rows: int) -> None:
    """A LOGIN member of voronka_finance reads finance.bonus_adjustments (its rows); one of
    voronka_bi may not (D170)."""

    finance = _reader(pg_server, database, "voronka_finance")
    bi = _reader(pg_server, database, "voronka_bi")
    assert not _can_read(pg_server, database, bi, "finance.bonus_adjustments")
    with pg_server.connect(database=database, user=finance, password=finance) as con:
        count = con.execute("select count(*) from finance.bonus_adjustments").fetchone()[0]
    assert count == rows


def _xlsx_parts(data: bytes) -> dict[str, bytes]:
    """A workbook's parts but its properties (they hold the time it was written)."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return {n: book.read(n) for n in book.namelist() if n != "docProps/core.xml"}


def test_every_export_of_postgres_is_byte_for_byte_duckdb_s(pg_server, engines, tmp_path):
    """csv (with a decimal comma), parquet and xlsx of finance and marts: the same files from
    both warehouses; a table dbt is building beside a published one is not exported."""
    with wh.open_warehouse(engines.url) as con:
        con.execute(
            "create table finance.bonus_lines__dbt_tmp as select * from finance.bonus_lines"
        )
    try:
        for schema in ("finance", "marts"):
            for fmt in ("csv", "parquet", "xlsx"):
                for name, target in (("duckdb", engines.duck), ("postgres", engines.url)):
                    args = ["export", "--schema", schema, "--format", fmt, "--decimal-comma"]
                    args += ["--out", str(tmp_path / name), "--warehouse", str(target)]
                    assert main(args) == 0, (name, schema, fmt)
    finally:
        with wh.open_warehouse(engines.url) as con:
            con.execute("drop table finance.bonus_lines__dbt_tmp")
    duck = sorted(p.name for p in (tmp_path / "duckdb").iterdir())
    assert sorted(p.name for p in (tmp_path / "postgres").iterdir()) == duck
    assert len(duck) == 2 * (3 + 7) + 2
    for name in duck:
        a, b = (
            (tmp_path / "duckdb" / name).read_bytes(),
            (tmp_path / "postgres" / name).read_bytes(),
        )
        if name.endswith(".xlsx"):
            assert _xlsx_parts(a) == _xlsx_parts(b), name
        else:
            assert a == b, name


def test_a_finance_reader_exports_finance_and_a_bi_reader_is_told_why_not(
    pg_server, engines, tmp_path, monkeypatch, capsys
):
    """A controller's own login (a member of voronka_finance) exports the finance tables as the
    pipeline's role does; a member of voronka_bi sees no finance table and is told so (exit 2),
    nothing written."""
    owner = tmp_path / "owner"
    assert main(["export", "--schema", "finance", "--format", "csv", "--out", str(owner),
                 "--warehouse", engines.url]) == 0  # fmt: skip
    finance = _reader(pg_server, engines.database, "voronka_finance")
    bi = _reader(pg_server, engines.database, "voronka_bi")
    for login in (finance, bi):
        monkeypatch.setenv("PGPASSWORD", login)  # _reader's logins: the password is the name
        url = pg_server.url_for(engines.database, user=login)
        code = main(["export", "--schema", "finance", "--format", "csv", "--out",
                     str(tmp_path / login), "--warehouse", url])  # fmt: skip
        assert code == (0 if login == finance else 2), login
    err = capsys.readouterr().err
    assert f"schema 'finance' has tables the role '{bi}' may not read" in err
    assert "`voronka_finance` (`marts`, `finance`)" in err
    assert not (tmp_path / bi).exists()
    exported = sorted(p.name for p in owner.iterdir())
    assert sorted(p.name for p in (tmp_path / finance).iterdir()) == exported
    for name in exported:
        assert (tmp_path / finance / name).read_bytes() == (owner / name).read_bytes(), name


def test_a_second_process_is_refused_by_the_advisory_lock(pg_server, engines, capsys):
    """While this process holds the warehouse (as `voronka run` does), `close-period` in another
    process is refused at once (exit 2) naming the holder, and changes nothing; the ledger
    commands speak on PostgreSQL as on DuckDB."""
    before = _state_of(engines.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VORONKA_")}
    command = [str(Path(sys.executable).parent / "voronka"), "close-period", "2026-02"]
    with wh.session(engines.url, "voronka run"):
        result = subprocess.run(
            [*command, "--warehouse", engines.url],
            cwd=engines.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    assert "is in use by `voronka " in result.stderr and "voronka run" in result.stderr
    assert "Traceback" not in result.stderr
    assert _state_of(engines.url) == before

    assert main(["reopen-period", "2026-02", "--reason", "x", "--warehouse", engines.url]) == 2
    assert "2026-02 is not closed: nothing to reopen" in capsys.readouterr().err
