"""The one warehouse opener (D180): every module opens the warehouse through it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dagster_project.lib import warehouse as wh

PACKAGE = Path(__file__).resolve().parents[2] / "dagster_project"


def test_no_module_opens_the_warehouse_but_the_opener():
    # `duckdb.connect()` without a path is a private in-memory scratch, not the warehouse
    pattern = re.compile(r"duckdb\.connect\(\s*[^)\s]")
    found = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "warehouse.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []


def test_open_write_then_read(tmp_path):
    path = tmp_path / "sub" / "w.duckdb"
    with wh.open_warehouse(path, memory_limit="200MB") as con:  # the folder is created
        assert con.engine == "duckdb"
        con.execute("create table t (a integer, b varchar)")
        con.executemany("insert into t values (?, ?)", [[1, "x"], [2, None]])
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] in (
            "190.7 MiB",
            "200.0 MB",
        )
    with wh.open_warehouse(path, read_only=True) as con:
        assert con.execute("select * from t where a > ? order by a", [0]).fetchall() == [
            (1, "x"),
            (2, None),
        ]
        with pytest.raises(duckdb.Error):
            con.execute("insert into t values (3, 'y')")
        reader = con.arrow_reader("select a from t where a >= $low order by a", {"low": 1}, 1)
        assert [b.num_rows for b in reader] == [1, 1]


def test_the_connection_closes_at_the_end_of_the_block(tmp_path):
    with wh.open_warehouse(tmp_path / "w.duckdb") as con:
        pass
    with pytest.raises(duckdb.Error):
        con.execute("select 1")


def test_staged_arrow_table_is_readable_inside_the_block_only(tmp_path):
    table = pa.table({"k": [1, 2, 3]})
    with wh.open_warehouse(tmp_path / "w.duckdb") as con:
        with con.staged("page", table):
            assert con.execute("select sum(k) from page").fetchall() == [(6,)]
        with pytest.raises(duckdb.Error):
            con.execute("select * from page")


def test_a_reader_waits_for_a_writer_process_then_fails(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    wh.connect(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', "
            "flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException):
            wh.connect(path, read_only=True, wait_seconds=1.5)
    finally:
        holder.kill()
        holder.wait()
    wh.connect(path, read_only=True, wait_seconds=5).close()
