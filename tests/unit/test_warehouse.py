"""The warehouse's lock, working copy and publishing (lib/warehouse.py, D80, D81)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import warehouse as wh

HOLDER = """
import sys, time
from dagster_project.lib import warehouse as wh
with wh.session(sys.argv[1], "voronka run") as s:
    s.mark_dirty()
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


READ = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select x from t").fetchall())
"""


def hold(published: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse for `seconds` (returns once it holds it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(published), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def table(path: Path, sql: str = "select x from t") -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def write(path: Path, value: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("create or replace table t as select ? as x", [value])
    finally:
        con.close()


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    published = tmp_path / "wh.duckdb"
    holder = hold(published, 30)
    try:
        with pytest.raises(wh.WarehouseBusy) as busy, wh.session(published, "voronka load"):
            pass
        message = str(busy.value)
        assert f"pid {holder.pid}" in message and "`voronka run`" in message
        assert " since 20" in message and "--wait" in message
        assert wh.read_holder(published)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_wait_takes_the_warehouse_when_the_holder_ends(tmp_path):
    published = tmp_path / "wh.duckdb"
    holder = hold(published, 1)
    started = time.monotonic()
    with wh.session(published, "voronka close-period", wait_seconds=60):
        assert wh.read_holder(published)["pid"] == os.getpid()
    assert time.monotonic() - started < 30
    holder.wait()
    with pytest.raises(wh.WarehouseBusy, match="Waited 0.6 s"):
        other = hold(published, 30)
        try:
            with wh.session(published, "voronka run", wait_seconds=0.6):
                pass
        finally:
            other.kill()
            other.wait()


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path, caplog):
    published = tmp_path / "wh.duckdb"
    holder = hold(published, 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with (
        caplog.at_level(logging.WARNING, "voronka.warehouse"),
        wh.session(published, "voronka run"),
    ):
        pass
    assert f"pid {holder.pid}" in caplog.text and "ended without releasing" in caplog.text


def test_sessions_nest_in_one_process_and_only_the_outermost_publishes(tmp_path):
    published = tmp_path / "wh.duckdb"
    with wh.session(published, "voronka run") as outer:
        assert outer.owner and outer.path == wh.working_path(published)
        assert wh.active_file(published) == outer.path
        with wh.session(published, "dagster run") as inner:
            assert not inner.owner
            inner.mark_dirty()
            write(inner.path, 1)
            assert inner.publish() is None
        assert wh.holds_lock(published)
        assert not published.exists()
        assert outer.publish() is not None
    assert not wh.holds_lock(published)
    assert wh.active_file(published) == published
    assert table(published) == [(1,)]


def test_readers_keep_their_view_and_never_see_an_unpublished_change(tmp_path):
    published = tmp_path / "wh.duckdb"
    with wh.session(published, "voronka run") as s:
        s.mark_dirty()
        write(s.path, 1)
        s.publish()
    reader = duckdb.connect(str(published), read_only=True)  # a BI tool, held open
    try:
        with wh.session(published, "voronka run") as s:
            s.mark_dirty()
            write(s.path, 2)  # a reader holding the published file does not stop the writer
            assert table(published) == [(1,)]  # not published yet
            assert s.dirty["command"] == "voronka run"
            s.publish()
            assert s.dirty is None
        assert reader.execute("select x from t").fetchall() == [(1,)]  # its old, whole view
        # another process's new connection sees the new run (in this process DuckDB shares the
        # open database of the path with every new connection until the last one closes)
        seen = subprocess.run(
            [sys.executable, "-c", READ, str(published)], capture_output=True, text=True
        )
        assert seen.stdout.strip() == "[(2,)]", seen.stderr
    finally:
        reader.close()
    assert table(published) == [(2,)]
    assert not list(tmp_path.glob(".*publishing"))


def test_a_crashed_run_leaves_the_published_file_and_the_next_goes_on(tmp_path):
    published = tmp_path / "wh.duckdb"
    with wh.session(published, "voronka run") as s:
        s.mark_dirty()
        write(s.path, 1)
        s.publish()
    with wh.session(published, "voronka run") as s:
        s.mark_dirty()
        write(s.path, 2)  # ... and the run fails: no publish
    assert table(published) == [(1,)]
    with wh.session(published, "voronka run") as s:
        assert table(s.path) == [(2,)]  # the working copy goes on from where it was
        assert s.dirty["command"] == "voronka run"


def test_adoption_rules(tmp_path, caplog):
    published = tmp_path / "wh.duckdb"
    write(published, 1)  # built by someone else (or by a version before D80)
    with wh.session(published, "voronka run") as s:
        assert table(s.path) == [(1,)] and s.dirty is None
    write(published, 5)  # changed outside voronka: adopted again
    with caplog.at_level(logging.WARNING, "voronka.warehouse"):
        with wh.session(published, "voronka run") as s:
            assert table(s.path) == [(5,)]
    assert "changed outside voronka" in caplog.text
    with wh.session(published, "voronka run") as s:
        s.mark_dirty()
        write(s.path, 6)
        s.publish()
    published.unlink()  # deleted after a publish: a fresh start
    with wh.session(published, "voronka run") as s:
        assert not s.path.exists()
    fresh = tmp_path / "fresh.duckdb"
    with wh.session(fresh, "voronka run") as s:  # a first run that crashes
        s.mark_dirty()
        write(s.path, 7)
    with wh.session(fresh, "voronka run") as s:  # never published: the work is kept
        assert table(s.path) == [(7,)]


def test_missing_and_unreadable_warehouses_say_what_to_do(tmp_path):
    with pytest.raises(wh.WarehouseError, match="voronka run"):
        wh.require_built(tmp_path / "none.duckdb")
    with pytest.raises(wh.WarehouseError, match="No warehouse"):
        wh.connect_published(tmp_path / "none.duckdb")


def test_the_run_log_loses_stack_traces_not_messages():
    import io

    from dagster_project.runner import _StackTraceFilter

    out = io.StringIO()
    stream = _StackTraceFilter(out)
    stream.write("12:00 - step - STEP_FAILURE\n\nValueError: bad\n\nStack Trace:\n  File x\n")
    stream.write("12:01 - step - fine\n")
    assert out.getvalue() == (
        "12:00 - step - STEP_FAILURE\n\nValueError: bad\n"
        "  (the stack trace: voronka run --debug)\n12:01 - step - fine\n"
    )


PUBLISH = """
import os, signal, sys, time, duckdb
from dagster_project.lib import warehouse as wh
published, value, fault = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rename = os.replace
def replace(source, target):  # the publish's rename, with a fault before or after it
    publishing = str(source).endswith(".publishing")
    if publishing and fault == "pause":
        print("publishing", flush=True)
        time.sleep(60)
    if publishing and fault == "kill before rename":
        os.kill(os.getpid(), signal.SIGKILL)
    rename(source, target)
    if publishing and fault == "kill after rename":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
with wh.session(published, "voronka run") as s:
    s.mark_dirty()
    con = duckdb.connect(str(s.path))
    con.execute("create or replace table t as select ? as x", [value])
    con.close()
    s.publish()
"""


def publish_with(published: Path, value: int, fault: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISH, str(published), str(value), fault],
        stdout=subprocess.PIPE,
        text=True,
    )


def fresh_view(published: Path) -> str:
    """What a new reader process sees (in this process DuckDB would share an open database)."""
    seen = subprocess.run(
        [sys.executable, "-c", READ, str(published)], capture_output=True, text=True
    )
    return seen.stdout.strip() or seen.stderr


def test_a_publish_killed_or_busy_never_harms_readers_nor_the_next_run(tmp_path, caplog):
    """SIGKILL of a run during its publish, before and after the rename, with a reader holding
    the published file; a second run while the first is publishing (D111)."""
    published = tmp_path / "wh.duckdb"
    with wh.session(published, "voronka run") as s:
        s.mark_dirty()
        write(s.path, 1)
        s.publish()
    reader = duckdb.connect(str(published), read_only=True)  # a BI tool, held open throughout
    try:
        killed = publish_with(published, 2, "kill before rename")
        assert killed.wait() == -signal.SIGKILL
        assert fresh_view(published) == "[(1,)]"  # the last good warehouse, whole
        assert len(list(tmp_path.glob(".wh.duckdb.*.publishing"))) == 1
        # and what an adoption (a copy of the published file) killed halfway leaves
        adopting = wh.working_path(published).with_name("wh.work.duckdb.999999.tmp")
        adopting.write_bytes(b"half a copy")
        with caplog.at_level(logging.WARNING, "voronka.warehouse"):
            with wh.session(published, "voronka run") as s:
                assert not list(tmp_path.glob(".*publishing"))  # the leftover copies removed
                assert not adopting.exists()
                assert table(s.path) == [(2,)] and s.dirty  # the killed run's work goes on
                s.publish()
        assert "left by a copy that was killed" in caplog.text
        assert fresh_view(published) == "[(2,)]"

        killed = publish_with(published, 3, "kill after rename")
        assert killed.wait() == -signal.SIGKILL
        assert fresh_view(published) == "[(3,)]"
        work = wh.working_path(published)
        before = work.stat().st_ino
        caplog.clear()
        with caplog.at_level(logging.WARNING, "voronka.warehouse"):
            with wh.session(published, "voronka run") as s:
                # published, not "changed outside voronka": nothing adopted, nothing dirty
                assert s.dirty is None and work.stat().st_ino == before
                assert table(s.path) == [(3,)]
        assert "changed outside" not in caplog.text

        first = publish_with(published, 4, "pause")
        try:
            assert first.stdout.readline().strip() == "publishing"
            with pytest.raises(wh.WarehouseBusy, match=f"pid {first.pid}"):
                with wh.session(published, "voronka run"):
                    pass
        finally:
            first.kill()
            first.wait()
        assert fresh_view(published) == "[(3,)]"
        assert reader.execute("select x from t").fetchall() == [(1,)]  # its old, whole view
    finally:
        reader.close()
