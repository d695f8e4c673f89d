"""Faults, as an operator meets them: `voronka run` killed (SIGKILL) during the load, the
validation and dbt, a second run at the same time, a BI reader holding the warehouse open
(D80-D83, issue 15).

Every run is a `voronka` subprocess on the mini inbox. The reference is one uninterrupted run;
the marts and finance tables of every other outcome are compared with it as dumps (each table's
rows, sorted, as text, load metadata `_...` left out), byte for byte.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FIXTURES, write_inbox

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXTRA_CALLS = {
    "calls/2026-02-extra.csv": (
        "call_id,started_at,direction,client_phone,manager_extension,line,status,ring_seconds,"
        "talk_seconds\nx1,2026-02-20 10:00,inbound,+79035556677,103,74950000001,answered,5,120\n"
    )
}
LOADING = re.compile(r"calls/2026-0\d[\w-]*\.csv: \d+ rows")
VALIDATED = re.compile(r" - raw\.\w+( passed on | FAILED on |: nothing validated)")


def env_for(root: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VORONKA_")}
    return {
        **clean,
        "VORONKA_INBOX": str(root / "inbox"),
        "VORONKA_WAREHOUSE": str(root / "warehouse.duckdb"),
    }


def voronka(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", *args],
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=900,
    )


def start_run(root: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dagster_project.cli", "run"],
            env=env_for(root),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(process: subprocess.Popen, what, timeout: float = 600) -> None:
    """Poll until `what()` is true while the process runs."""
    deadline = time.monotonic() + timeout
    while not what():
        assert process.poll() is None, f"the run ended (exit {process.returncode}) first"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def in_log(log: Path, pattern: re.Pattern) -> bool:
    return bool(pattern.search(log.read_text(errors="replace")))


def descendants(pid: int) -> list[int]:
    """The process ids below `pid`, from /proc (children of every thread, recursively)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Running (a zombie left for a reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def dbt_child(process: subprocess.Popen) -> int | None:
    for pid in descendants(process.pid):
        args = cmdline(pid)
        if any("dbt" in part for part in args[:2]) and "build" in args:
            return pid
    return None


def kill(process: subprocess.Popen) -> list[int]:
    """SIGKILL the run alone; returns its descendants (the validation worker, dbt) as they were."""
    children = descendants(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return children


def assert_no_orphans(children: list[int]) -> None:
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # leave nothing behind, then fail
        os.kill(pid, signal.SIGKILL)
    assert not left, f"orphans left by the killed run: {[(p, cmdline(p)[:3]) for p in left]}"


def identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def dumps(path: Path) -> bytes:
    """Every table and view of marts and finance: name, columns, rows sorted, as text."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dump_connection(con)
    finally:
        con.close()


def dump_connection(con: duckdb.DuckDBPyConnection) -> bytes:
    """The dumps through an open connection. Load metadata (`_...` columns, such as
    `kpi_calls_hourly._last_loaded_at`) is left out, as in D92's comparison: it says when a
    row's inputs were loaded, and a killed run's committed loads keep their own time (D110)."""
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in con.execute(
        "select table_schema, table_name, column_name from information_schema.columns"
        " where table_schema in ('marts', 'finance') and not starts_with(column_name, '_')"
        " order by table_schema, table_name, ordinal_position"
    ).fetchall():
        columns.setdefault((schema, table), []).append(f'"{column}"')
    assert len(columns) > 5
    parts = []
    for (schema, table), names in columns.items():
        relation = con.sql(f'select {", ".join(names)} from "{schema}"."{table}" order by all')
        parts.append(f"{schema}.{table} {relation.columns}\n")
        parts.extend(f"{row!r}\n" for row in relation.fetchall())
    return "".join(parts).encode()


@pytest.fixture(scope="module")
def reference(mini_run) -> tuple[Path, bytes]:
    """One uninterrupted run of the mini inbox, the session's (tests/conftest.py, D280): its
    folder and its dumps. The tests copy what they change."""
    assert mini_run.code == 0
    return mini_run.root, dumps(mini_run.warehouse)


def test_sigkill_during_load_validation_and_dbt_then_a_rerun_gives_the_same_marts(
    reference, tmp_path
):
    _, expected = reference
    shutil.copytree(FIXTURES / "mini_inbox", tmp_path / "inbox")
    published = tmp_path / "warehouse.duckdb"
    log = tmp_path / "run.log"
    phases = [
        ("load", lambda p: in_log(log, LOADING)),
        ("validation", lambda p: in_log(log, VALIDATED)),
        ("dbt", lambda p: dbt_child(p) is not None and time.sleep(2) is None),
    ]
    for phase, reached in phases:
        process = start_run(tmp_path, log)
        try:
            wait_for(process, lambda process=process, reached=reached: reached(process))
            if phase == "dbt":
                assert dbt_child(process) is not None
        finally:
            children = kill(process)
        assert_no_orphans(children)
        assert not published.exists(), f"a run killed during {phase} published"
    done = voronka(tmp_path, "run", "--quiet")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "taking over the warehouse lock" in done.stderr
    assert dumps(published) == expected


def test_a_reader_and_a_second_run_during_a_run_and_a_kill(reference, tmp_path):
    """A BI reader holds the published warehouse open through two runs: the first is killed
    during dbt (the reader's warehouse stays whole), the second succeeds. A second command
    during a run is refused at once, naming the run."""
    source, expected = reference
    shutil.copytree(source / "inbox", tmp_path / "inbox")
    shutil.copyfile(source / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    write_inbox(tmp_path / "inbox", EXTRA_CALLS)
    published = tmp_path / "warehouse.duckdb"
    before = identity(published)
    reader = duckdb.connect(str(published), read_only=True)
    try:
        log = tmp_path / "run.log"
        process = start_run(tmp_path, log)
        try:
            wait_for(process, lambda: in_log(log, LOADING))
            assert dump_connection(reader) == expected  # queried during the run
            for args in (("run",), ("close-period", "2026-01")):
                refused = voronka(tmp_path, *args)
                assert refused.returncode == 2, refused.stderr
                assert f"in use by `voronka run` (pid {process.pid} on " in refused.stderr
                assert "Traceback" not in refused.stderr
            wait_for(process, lambda: dbt_child(process) is not None)
            assert dump_connection(reader) == expected
        finally:
            children = kill(process)
        assert_no_orphans(children)
        # the killed run published nothing (a new connection here would share the reader's
        # open database, D80: the file itself is compared)
        assert identity(published) == before

        done = voronka(tmp_path, "run", "--quiet")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert dump_connection(reader) == expected  # the reader's view stays whole
        assert identity(published) != before  # published: a new file under the same name
    finally:
        reader.close()
    calls = duckdb.connect(str(published), read_only=True)
    try:
        found = calls.execute("select count(*) from core.fct_calls where call_id = 'x1'")
        assert found.fetchone() == (1,)
    finally:
        calls.close()
