"""Shared fixtures: hand-made inbox files and temporary warehouses."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests import background
from tests.pg_server import PgServer, PgUnavailable, find_bindir, running_server

FIXTURES = Path(__file__).parent / "fixtures"
# set by .ci/run, which installs PostgreSQL: a missing server fails the tests instead of skipping
REQUIRE_POSTGRES = "VORONKA_REQUIRE_POSTGRES"


def write_inbox(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `{"calls/a.csv": "text", ...}` under `root` and return it."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def warehouse(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"


@contextlib.contextmanager
def voronka_environment_kept():
    """`voronka run` exports its settings (VORONKA_*) to the environment for dbt, which runs as a
    subprocess; a test that calls it in-process must not leak them into the tests after it."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("VORONKA_")}
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("VORONKA_")]:
            del os.environ[key]
        os.environ.update(saved)


def _voronka_environment_restored():
    with voronka_environment_kept():
        yield


# per test, and per module: a module fixture that runs `voronka run --as-of ...` in-process
# left VORONKA_AS_OF to every later module (the raw suites of tests/unit/test_ge_runner.py then
# judged their rows against that as-of and failed, in the full suite only)
_isolated_environment = pytest.fixture(autouse=True)(_voronka_environment_restored)
_isolated_module_environment = pytest.fixture(autouse=True, scope="module")(
    _voronka_environment_restored
)


def voronka_process(*args: str, env: dict) -> subprocess.CompletedProcess:
    """`voronka ...` as a user types it: a subprocess with the environment `env`, its output
    as text."""
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session", autouse=True)
def background_runs(request, tmp_path_factory) -> background.Background:
    """The jobs of tests/background.py (D412): those the session's tests need, started now, in
    the order of their first test, beside the tests; a fixture takes its job's outcome. Under
    `pytest -n` each worker runs the jobs of its own tests when they need them."""
    runs = background.Background(tmp_path_factory)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        runs.start(request.session.items)
    yield runs
    runs.close()


@dataclass(frozen=True)
class RunFolder:
    """A folder holding an inbox and the warehouse `voronka run` built from it (with its
    working copy, state, dbt folder, Dagster instance, report and exports beside it)."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def _copy_folder(self, root: Path) -> None:
        """The whole folder copied to `root` (absent): a warehouse of its own to change. Its
        first run adopts the copied file as its working copy (D80: changed outside voronka)."""
        shutil.copytree(self.root, root)


@dataclass(frozen=True)
class MiniRun(RunFolder):
    """The mini inbox's folder (RunFolder) and the run's exit code."""

    code: int

    def copy_to(self, root: Path) -> MiniRun:
        self._copy_folder(root)
        return MiniRun(root, self.code)


@background.job("mini_run", "mini_run", any_module=True)
def _mini_run_job(root: Path) -> list[background.Command]:
    shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
    built = MiniRun(root, -1)
    return [
        background.voronka(
            "run", "--inbox", str(built.inbox), "--warehouse", str(built.warehouse), "--quiet"
        )
    ]


@pytest.fixture(scope="session")
def mini_run(background_runs) -> MiniRun:
    """One `voronka run` of tests/fixtures/mini_inbox with the default settings (no as-of),
    shared by the modules that start from that warehouse (D280): e2e/test_faults.py takes it as
    its reference, test_run_sequences.py starts from a copy. Read it; a test that changes the
    inbox or the warehouse works on `mini_run.copy_to(...)`. A subprocess, started beside the
    first tests (tests/background.py, D412): its settings never reach the tests' environment."""
    done = background_runs.take("mini_run")
    return MiniRun(done.root, done.code)


@dataclass(frozen=True)
class DemoRun(RunFolder):
    """A demo inbox's folder (tiny, 3 months: August to October 2026; RunFolder) and the two
    commands' outcomes (text)."""

    demo: subprocess.CompletedProcess
    run: subprocess.CompletedProcess

    def copy_to(self, root: Path) -> Path:
        """The copy's warehouse."""
        self._copy_folder(root)
        return root / self.warehouse.name


@background.job("demo_run", "demo_run", any_module=True)
def _demo_run_job(root: Path) -> list[background.Command]:
    env = {
        "VORONKA_INBOX": str(root / "inbox"),
        "VORONKA_WAREHOUSE": str(root / "warehouse.duckdb"),
    }
    demo = ["demo", "--out", str(root / "inbox"), "--scale", "tiny", "--months", "3"]
    return [
        background.voronka(*demo, env=env, unset=("DAGSTER_HOME",)),
        background.voronka("run", env=env, unset=("DAGSTER_HOME",)),
    ]


@pytest.fixture(scope="session")
def demo_run(background_runs) -> DemoRun:
    """`voronka demo --scale tiny --months 3` and then `voronka run`, as a user types them
    (subprocesses, the settings in VORONKA_INBOX and VORONKA_WAREHOUSE): shared by
    e2e/test_cli.py and test_kpi_report.py (D282), started beside the first tests (D412). Read
    it; a test that writes works on a copy."""
    done = background_runs.take("demo_run")
    demo = done.results[0]
    run = done.results[1] if len(done.results) > 1 else demo
    return DemoRun(done.root, demo, run)


@pytest.fixture(scope="session")
def pg_server(background_runs) -> PgServer:
    """One throwaway PostgreSQL server per test process (each xdist worker has its own), with
    its password in PGPASSWORD for the session (tests/pg_server.py). Tests that use it are
    marked `postgres` (below); without PostgreSQL 15+ they skip, or fail under .ci/run."""
    try:
        find_bindir()
    except PgUnavailable as exc:
        if os.environ.get(REQUIRE_POSTGRES):
            pytest.fail(f"{REQUIRE_POSTGRES} is set: {exc}", pytrace=False)
        pytest.skip(str(exc))
    saved = os.environ.get("PGPASSWORD")
    with running_server() as server:
        os.environ["PGPASSWORD"] = server.password
        try:
            if background_runs.needed("pg_mini_run"):
                _submit_pg_mini_run(background_runs, server)
            yield server
        finally:
            if saved is None:
                os.environ.pop("PGPASSWORD", None)
            else:
                os.environ["PGPASSWORD"] = saved


PG_MINI_AS_OF = "2026-03-01T00:00:00+03:00"


@dataclass(frozen=True)
class PgMiniRun:
    inbox: Path
    database: str  # on the session's test server
    url: str
    result: subprocess.CompletedProcess  # the `voronka run` subprocess, its output as bytes
    root: Path  # the folder it ran in: its local files (data/postgres/..., D181), DAGSTER_HOME
    started: float  # a second before it started (for files written since)


PG_MINI_DATABASE = "mini_run"


def _submit_pg_mini_run(runs: background.Background, server: PgServer) -> None:
    """`pg_mini_run`'s database made now, its run queued as a job (D412): the session's server
    starts with the first PostgreSQL test, well before the modules that read the run."""
    if runs.submitted("pg_mini_run"):
        return
    url = server.create_database(PG_MINI_DATABASE)

    def prepare(root: Path) -> list[background.Command]:
        shutil.copytree(FIXTURES / "mini_inbox", root / "inbox")
        run_root = root / "postgres"
        (run_root / "dagster").mkdir(parents=True)
        (root / "started").write_text(repr(time.time() - 1))
        voronka = Path(sys.executable).parent / "voronka"
        where = ["--inbox", str(root / "inbox"), "--warehouse", url, "--as-of", PG_MINI_AS_OF]
        return [
            background.Command(
                [str(voronka), "run", *where],
                env={"PGPASSWORD": server.password, "DAGSTER_HOME": str(run_root / "dagster")},
                unset=("VORONKA_*", "DBT_*"),
                cwd=run_root,  # the warehouse's local files go to ./data/postgres/... (D181)
            )
        ]

    runs.submit("pg_mini_run", "pg_mini_run", prepare)


@pytest.fixture(scope="session")
def pg_mini_run(pg_server, background_runs) -> PgMiniRun:
    """One `voronka run` of tests/fixtures/mini_inbox into a PostgreSQL database, as-of
    PG_MINI_AS_OF: the real path, the inbox landing by COPY (D184), every model built by dbt
    (data tests included). Shared (D281): test_postgres_parity.py reads it; a module that
    changes it works on a copy (`pg_server.create_database(name, template=run.database)`).
    Started beside the tests when the server starts (D412)."""
    _submit_pg_mini_run(background_runs, pg_server)
    done = background_runs.take("pg_mini_run")
    text = done.results[0]
    result = subprocess.CompletedProcess(
        text.args, text.returncode, text.stdout.encode(), text.stderr.encode()
    )
    started = float((done.root / "started").read_text())
    url = pg_server.url_for(PG_MINI_DATABASE)
    yield PgMiniRun(
        done.root / "inbox", PG_MINI_DATABASE, url, result, done.root / "postgres", started
    )
    pg_server.drop_database(PG_MINI_DATABASE)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh empty database on the test server (owned by the product's role), dropped after
    the test: its `postgresql://` URL, without a password (PGPASSWORD holds it)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
