"""The dbt project on PostgreSQL (issue 19): the same models build staging -> core -> marts ->
finance from the hand-made inbox, every dbt unit test passes (on DuckDB: test_pipeline.py), and a database
whose text rules differ from DuckDB's is refused (D166-D169)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.cli import main
from dagster_project.lib.warehouse import working_path
from tests.conftest import FIXTURES
from tests.integration.test_pipeline import EXPECTED_CORE_ROWS
from tests.pg_copy import copy_schemas

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_models"
DBT = Path(sys.executable).parent / "dbt"


def dbt(args: list[str], env: dict[str, str], target: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(DBT), *args, "--target-path", str(target / "target"), "--log-path", str(target)],
        cwd=DBT_PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))},
            **env,
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result


def pg_env(server, database: str) -> dict[str, str]:
    """libpq's variables for dbt's `postgres` output (profiles.yml); the password is PGPASSWORD,
    set for the session by the pg_server fixture."""
    return {
        "DBT_TARGET": "postgres",
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": server.user,
        "PGDATABASE": database,
        "PGPASSWORD": os.environ["PGPASSWORD"],
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Path:
    """The mini inbox loaded (raw and quarantine only) into a DuckDB working copy."""
    root = tmp_path_factory.mktemp("loaded")
    inbox = root / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    warehouse = root / "warehouse.duckdb"
    assert main(["load", "--inbox", str(inbox), "--warehouse", str(warehouse)]) == 0
    return working_path(warehouse)


@pytest.fixture(scope="module")
def pg_built(pg_server, loaded, tmp_path_factory):
    """A PostgreSQL database with the loaded raw and quarantine tables (copied by COPY) and every
    model built by `dbt build` (its data tests included)."""
    root = tmp_path_factory.mktemp("pg_built")
    database = "built"
    pg_server.create_database(database)
    with pg_server.connect(database=database) as con:
        copy_schemas(loaded, con)
    env = pg_env(pg_server, database)
    result = dbt(["build", "--exclude-resource-type", "unit_test"], env, root)
    assert result.returncode == 0, result.stdout[-6000:]
    yield env, database, root
    pg_server.drop_database(database)


def test_every_layer_builds_on_postgres(pg_server, pg_built):
    _, database, _ = pg_built
    with pg_server.connect(database=database) as con:
        for model, rows in EXPECTED_CORE_ROWS.items():
            assert con.execute(f"select count(*) from core.{model}").fetchone()[0] == rows, model
        for schema, table in [
            ("marts", "kpi_company_monthly"),
            ("marts", "kpi_manager_monthly"),
            ("marts", "kpi_plan_completion"),
            ("finance", "bonus_lines"),
            ("finance", "bonus_statements"),
        ]:
            assert con.execute(f"select count(*) from {schema}.{table}").fetchone()[0] > 0, table
        # naive inbox times are Moscow time, as on DuckDB (test_pipeline)
        closed = con.execute("select closed_at from core.fct_deals where deal_id = 'd2'")
        assert str(closed.fetchone()[0]) == "2026-01-31 20:30:00"


def test_every_dbt_unit_test_passes_on_postgres(pg_built, tmp_path):
    """`dbt test --select test_type:unit` against the built database (on DuckDB:
    test_pipeline.py's test_dbt_unit_tests_pass)."""
    env, _, _ = pg_built
    result = dbt(["test", "--select", "test_type:unit"], env, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "ERROR=0" in result.stdout
    passed = int(result.stdout.rsplit("PASS=", 1)[1].split()[0])
    assert passed >= 70, result.stdout[-2000:]


def test_a_database_with_other_text_rules_is_refused(pg_server, tmp_path):
    """Under the C ctype lower('ДА') is 'ДА'; under a language collation 'a' sorts before 'B':
    either would change numbers, so the run stops before any model and says what to do."""
    database = "c_ctype"
    with pg_server.connect(admin=True, database="postgres") as con:
        con.execute(
            f"create database {database} owner {pg_server.user} template template0 "
            "encoding 'UTF8' lc_collate 'C' lc_ctype 'C'"
        )
    try:
        result = dbt(["run", "--select", "int_as_of"], pg_env(pg_server, database), tmp_path)
        assert result.returncode != 0
        assert "does not lowercase Cyrillic" in result.stdout
        assert "LC_CTYPE 'C.UTF-8'" in result.stdout
        with pg_server.connect(database=database) as con:
            built = con.execute("select to_regclass('intermediate.int_as_of')").fetchone()[0]
        assert built is None
    finally:
        pg_server.drop_database(database)
