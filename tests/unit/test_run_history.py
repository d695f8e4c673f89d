"""Dagster's run history is written without fsync during a run, and nothing else is (D260); its
files are opened once per file during a run (D381)."""

import importlib
import sqlite3
from pathlib import Path

import dagster as dg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dagster_project.runner import DAGSTER_SQLITE_MODULES, pooled_history, unsynced_history


def _synchronous(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("pragma synchronous")).scalar()


def test_the_history_under_the_home_is_unsynced_and_only_inside_the_block(tmp_path: Path):
    home, elsewhere = tmp_path / "home", tmp_path / "other.db"
    home.mkdir()
    # a connection per use, as Dagster opens them
    inside = create_engine(f"sqlite:///{home / 'index.db'}", poolclass=NullPool)
    outside = create_engine(f"sqlite:///{elsewhere}", poolclass=NullPool)
    with unsynced_history(home):
        assert _synchronous(inside) == 0
        assert _synchronous(outside) == 2  # SQLite's default, FULL
    assert _synchronous(inside) == 2


def test_a_run_recorded_in_the_block_is_read_back(tmp_path: Path):
    @dg.asset
    def one() -> int:
        return 1

    @dg.asset_check(asset=one)
    def one_is_checked() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    with unsynced_history(tmp_path), dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = dg.materialize([one, one_is_checked], instance=instance)
    assert result.success
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]
    # the files are plain SQLite, readable by any client
    with sqlite3.connect(tmp_path / "history" / "runs.db") as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 1


def _materialize_counting_connections(home: Path, *blocks) -> tuple[bool, int]:
    """Materialize two assets and a check on the instance in `home` inside `blocks`; return
    whether the run succeeded and how many SQLite connections were opened meanwhile."""
    import contextlib

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @dg.asset
    def first() -> None:
        return None

    @dg.asset(deps=[first])
    def second() -> None:
        return None

    @dg.asset_check(asset=second)
    def second_is_checked() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    opened = []

    def count(*_args) -> None:
        opened.append(1)

    event.listen(Engine, "connect", count)
    try:
        with contextlib.ExitStack() as stack:
            for block in blocks:
                stack.enter_context(block)
            instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
            result = dg.materialize([first, second, second_is_checked], instance=instance)
    finally:
        event.remove(Engine, "connect", count)
    return result.success, len(opened)


def test_a_run_in_the_pooled_block_opens_each_file_once_and_reads_back(tmp_path: Path):
    plain, pooled = tmp_path / "plain", tmp_path / "pooled"
    plain.mkdir()
    pooled.mkdir()
    # the first run of an instance creates its files: compare second runs
    _materialize_counting_connections(plain)
    _materialize_counting_connections(pooled)
    success, without = _materialize_counting_connections(plain)
    assert success
    success, within = _materialize_counting_connections(
        pooled, unsynced_history(pooled), pooled_history(pooled)
    )
    assert success
    # every use opened a connection before; now the run's files are opened a few times
    assert without > 40, without
    assert within <= 10, within
    # Dagster's own functions are back after the block, and the history is whole
    for name in DAGSTER_SQLITE_MODULES:
        module = importlib.import_module(name)
        assert module.create_engine.__module__.startswith("sqlalchemy"), name
    with dg.DagsterInstance.from_config(str(pooled)) as instance:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("second"), "second_is_checked"), limit=5
        )
        assert len(checks) == 2
