"""Dagster's run history is written without fsync during a run, and nothing else is (D260)."""

import sqlite3
from pathlib import Path

import dagster as dg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dagster_project.runner import unsynced_history


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
