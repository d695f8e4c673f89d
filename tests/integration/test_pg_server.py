"""The throwaway PostgreSQL server the PostgreSQL tests run against (tests/pg_server.py, D165)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.pg_server import running_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_url_connects_with_the_password_from_pgpassword(pg_server, pg_url):
    assert "@" in pg_url and ":" not in pg_url.split("@")[0].removeprefix("postgresql://")
    assert os.environ["PGPASSWORD"] == pg_server.password
    with psycopg.connect(pg_url) as con:  # libpq reads PGPASSWORD
        user, superuser, createrole = con.execute(
            "select current_user, rolsuper, rolcreaterole from pg_roles "
            "where rolname = current_user"
        ).fetchone()
        version = con.execute("show server_version_num").fetchone()[0]
        owner = con.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone()[0]
    assert (user, superuser, createrole, owner) == ("voronka", False, True, "voronka")
    assert int(version) >= 150000


def test_a_password_is_required(pg_server, monkeypatch, tmp_path):
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg_server.url).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.url, password="wrong").close()


def test_the_unix_socket_in_the_temporary_folder(pg_server):
    with psycopg.connect(
        host=str(pg_server.socket_dir),
        port=pg_server.port,
        dbname=pg_server.database,
        user=pg_server.user,
    ) as con:
        assert con.execute("select 1").fetchone() == (1,)


@pytest.mark.slow
def test_the_server_stops_and_its_folder_goes(tmp_path):
    with running_server() as server:
        with server.connect() as con:
            pid = con.execute("select pg_backend_pid()").fetchone()[0]
        data_dir = server.data_dir
        assert (data_dir / "postmaster.pid").exists()
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    assert not data_dir.parent.exists()
    assert not _alive(postmaster) and not _alive(pid)


@pytest.mark.slow
def test_a_killed_starter_leaves_no_server_behind():
    """SIGKILL the process that started the server (no cleanup runs): the postmaster, its
    child, gets the parent-death signal and shuts down."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.pg_server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [child.stdout.readline() for _ in range(4)]
        data_dir = Path(lines[3].split("data in ")[1].split(";")[0])
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 30
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphan = _alive(postmaster)
    if orphan:  # the failure's clean-up
        os.kill(postmaster, signal.SIGINT)
        time.sleep(2)
    # its folder stays (nothing ran to remove it): remove it here
    shutil.rmtree(data_dir.parent, ignore_errors=True)
    assert not orphan


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
