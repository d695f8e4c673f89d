"""The dbt project on PostgreSQL (issue 19): the same models build staging -> core -> marts ->
finance from the hand-made inbox, every dbt unit test passes (on DuckDB: test_pipeline.py), and a database
whose text rules differ from DuckDB's is refused (D166-D169)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.cli import main
from tests.integration.test_pipeline import EXPECTED_CORE_ROWS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_models"
DBT = Path(sys.executable).parent / "dbt"


# the parse of each database and vars, kept from the first dbt command that made it: a later
# command in another test's folder starts from it as dbt's partial parse instead of parsing the
# whole project again (D413; dbt checks the files, the profile and the vars itself)
_PARSES: dict[str, Path] = {}
PARTIAL_PARSE = "partial_parse.msgpack"


def dbt(
    args: list[str], env: dict[str, str], target: Path, timeout: int = 900
) -> subprocess.CompletedProcess:
    folder = target / "target"
    given = args[args.index("--vars") + 1] if "--vars" in args else None
    key = json.dumps([sorted((k, v) for k, v in env.items() if k != "PGPASSWORD"), given])
    if key in _PARSES and not (folder / PARTIAL_PARSE).exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_PARSES[key], folder / PARTIAL_PARSE)
    result = subprocess.run(
        [str(DBT), *args, "--target-path", str(folder), "--log-path", str(target)],
        cwd=DBT_PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))},
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode == 0 and key not in _PARSES and (folder / PARTIAL_PARSE).exists():
        _PARSES[key] = target / f"parse-{len(_PARSES)}.msgpack"
        shutil.copyfile(folder / PARTIAL_PARSE, _PARSES[key])
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
def pg_built(pg_server, pg_mini_run, tmp_path_factory):
    """A PostgreSQL database with the mini inbox loaded (raw and quarantine, by COPY: the real
    path, D184) and every model built by dbt (its data tests included): a copy of the session's
    `voronka run` (tests/conftest.py, D281), which this module's rebuilds change."""
    result = pg_mini_run.result
    assert result.returncode == 0, result.stdout.decode(errors="replace")[-6000:]
    root = tmp_path_factory.mktemp("pg_built")
    database = "built"
    pg_server.create_database(database, template=pg_mini_run.database)
    yield pg_env(pg_server, database), database, root
    pg_server.drop_database(database)


def test_voronka_load_lands_the_inbox_on_postgres(pg_server, pg_mini_run, pg_url):
    """`voronka load` alone on a PostgreSQL URL: raw and quarantine hold what the session's
    `voronka run` of the same inbox landed (pg_built is a copy of that run, D281)."""
    assert main(["load", "--inbox", str(pg_mini_run.inbox), "--warehouse", pg_url]) == 0
    counts = "select (select count(*) from raw.{0}), (select count(*) from quarantine.{0})"

    def landed(database: str) -> dict[str, tuple]:
        with pg_server.connect(database=database) as con:
            return {
                folder.name: con.execute(counts.format(folder.name)).fetchone()
                for folder in sorted(pg_mini_run.inbox.iterdir())
            }

    loaded = landed(pg_url.rsplit("/", 1)[1])
    assert sum(raw for raw, _ in loaded.values()) > 0
    assert loaded == landed(pg_mini_run.database)


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


PRIVATE_TABLES = [
    "raw.deals",
    "quarantine.deals",
    "staging.stg_inbox__deals",
    "intermediate.int_as_of",
    "core.fct_deals",
    "core.dim_clients",
    "finance_ledger.period_log",
]


def _reader(pg_server, database: str, group: str) -> str:
    """A LOGIN role (its password its name) made a member of `group`, as a DBA adds a BI tool."""
    login = f"reader_of_{group}"
    with pg_server.connect(admin=True, database="postgres") as con:
        exists = con.execute("select 1 from pg_roles where rolname = %s", [login]).fetchone()
        if not exists:
            con.execute(f"create role {login} login password '{login}' in role {group}")
    return login


def _can_read(pg_server, database: str, login: str, table: str) -> bool:
    import psycopg

    with pg_server.connect(database=database, user=login, password=login) as con:
        try:
            con.execute(f"select * from {table} limit 1").fetchall()
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False


def _assert_reader_grants(pg_server, database: str) -> None:
    bi = _reader(pg_server, database, "voronka_bi")
    finance = _reader(pg_server, database, "voronka_finance")
    for table in ("marts.kpi_company_monthly", "marts.kpi_plan_completion"):
        assert _can_read(pg_server, database, bi, table), (bi, table)
        assert _can_read(pg_server, database, finance, table), (finance, table)
    for table in ("finance.bonus_lines", "finance.bonus_statements", "finance.bonus_adjustments"):
        assert not _can_read(pg_server, database, bi, table), (bi, table)
        assert _can_read(pg_server, database, finance, table), (finance, table)
    for table in PRIVATE_TABLES:
        assert not _can_read(pg_server, database, bi, table), (bi, table)
        assert not _can_read(pg_server, database, finance, table), (finance, table)


def test_bi_and_finance_roles_read_only_their_schemas(pg_server, pg_built):
    """The run created the group roles; a LOGIN member of voronka_bi reads marts only, one of
    voronka_finance marts and finance; neither reads a table with phones, e-mails or names."""
    _, database, _ = pg_built
    with pg_server.connect(database=database) as con:
        groups = con.execute(
            "select rolname, rolcanlogin from pg_roles where rolname like 'voronka\\_%' order by 1"
        ).fetchall()
    assert groups == [("voronka_bi", False), ("voronka_finance", False)]
    _assert_reader_grants(pg_server, database)


def _row_xmins(pg_server, database: str, table: str) -> set[int]:
    """The transactions that wrote the table's rows: a rebuild writes new ones."""
    with pg_server.connect(database=database) as con:
        return {r[0] for r in con.execute(f"select xmin::text::bigint from {table}")}


def _relation_id(pg_server, database: str, table: str) -> int:
    with pg_server.connect(database=database) as con:
        return con.execute("select %s::regclass::oid", [table]).fetchone()[0]


def test_grants_survive_rebuilds(pg_server, pg_built, tmp_path):
    """A rebuild of the marts and finance tables (rows replaced in place), a full refresh (a new
    table swapped in) and the role hook run again (it is idempotent) keep every grant."""
    env, database, _ = pg_built
    models = ["kpi_plan_completion", "bonus_lines", "bonus_statements"]
    table = "marts.kpi_plan_completion"
    before = _row_xmins(pg_server, database, table), _relation_id(pg_server, database, table)
    result = dbt(["run", "--select", *models], env, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    rebuilt = _row_xmins(pg_server, database, table), _relation_id(pg_server, database, table)
    assert rebuilt[0].isdisjoint(before[0]) and rebuilt[1] == before[1]  # new rows, same table
    _assert_reader_grants(pg_server, database)

    # a swap drops the views on the old table (int_bonus_lines_computed): rebuilt after it
    result = dbt(["run", "--full-refresh", "--select", "kpi_plan_completion+"], env, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert _relation_id(pg_server, database, table) != before[1]  # a new table
    _assert_reader_grants(pg_server, database)


def test_a_reader_never_waits_for_a_rebuild_nor_sees_it_half_done(pg_server, pg_built, tmp_path):
    """A reader holds a mart and a finance table open in a transaction (a dashboard's long
    query) while dbt rebuilds them: the run does not wait for it (dbt's renaming swap would,
    and every new query would queue behind the swap), the open transaction keeps seeing the old
    rows, and other readers querying all through the run see the whole old or the whole new
    table, never an empty or partial one (D171)."""
    import threading

    import psycopg

    env, database, _ = pg_built
    tables = {"marts.kpi_plan_completion": None, "finance.bonus_lines": None}
    with pg_server.connect(database=database) as con:
        for table in tables:
            tables[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
    assert all(tables.values())
    old_rows = {t: _row_xmins(pg_server, database, t) for t in tables}

    seen: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep_reading() -> None:
        try:
            with pg_server.connect(database=database) as con:
                while not stop.is_set():
                    for table in tables:
                        count = con.execute(f"select count(*) from {table}").fetchone()[0]
                        seen.append((table, count))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    long_reader = psycopg.connect(pg_server.conninfo(database=database))
    long_reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    reader = threading.Thread(target=keep_reading, daemon=True)
    try:
        for table in tables:  # its ACCESS SHARE locks are held until it ends
            long_reader.execute(f"select count(*) from {table}").fetchone()
        reader.start()
        result = dbt(
            ["run", "--select", "kpi_plan_completion", "bonus_lines"], env, tmp_path, timeout=300
        )
        assert result.returncode == 0, result.stdout[-4000:]
        for table in tables:  # the long reader still sees the old rows
            xmins = {r[0] for r in long_reader.execute(f"select xmin::text::bigint from {table}")}
            assert xmins == old_rows[table]
    finally:
        stop.set()
        reader.join(60)
        long_reader.close()
    assert errors == []
    for table, count in tables.items():
        new_rows = _row_xmins(pg_server, database, table)
        assert new_rows.isdisjoint(old_rows[table])  # rebuilt while the reader held it
        counts = {c for t, c in seen if t == table}
        assert counts == {count}, (table, counts)
    assert len(seen) > 2 * len(tables)


@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/St_Johns"])
def test_the_parse_macros_on_postgres_parse_as_the_python_rules(pg_server, pg_url, zone, tmp_path):
    """The postgres__ parse macros (their expressions generated by lib/parsing.py, D167) give
    every tricky value of tests/parsing_cases.py the value of the Python rules (which the
    loader's and DuckDB's SQL give too: test_parsing.py, test_parse_parity.py), or null, and
    never fail on a value their type cannot hold."""
    from tests.integration.test_parse_parity import READERS, VALIDATED
    from tests.parsing_cases import ALL_VALUES
    from tests.unit.test_parsing import python_value

    database = pg_url.rsplit("/", 1)[1]
    env = {**pg_env(pg_server, database), "VORONKA_TIMEZONE": zone}
    macros = [(label, m) for label, _, m in READERS] + [(label, m) for label, _, m in VALIDATED]
    inline = "select v, " + ", ".join(f"{{{{ {m} }}}} as {label}" for label, m in macros)
    result = dbt(["compile", "--quiet", "--inline", inline + " from parity_values"], env, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    with pg_server.connect(database=database) as con:
        con.execute("create table parity_values (v text)")
        with con.cursor().copy("copy parity_values from stdin") as copy:
            for value in ALL_VALUES:
                copy.write_row([value])
        rows = {r[0]: r[1:] for r in con.execute(result.stdout.strip()).fetchall()}
    differences = []
    for value in ALL_VALUES:
        for i, (label, column, _) in enumerate(READERS):
            expected = python_value(column.type, value, zone, column.scale)
            if rows[value][i] != expected:
                differences.append((label, value, expected, rows[value][i]))
        for j, (label, type_, _) in enumerate(VALIDATED):
            expected = python_value(type_, value, zone)
            got = rows[value][len(READERS) + j]
            if expected is not None and got != expected:  # raw text the loader let in
                differences.append((label, value, expected, got))
    assert differences == []


def test_a_removed_call_leaves_the_incremental_models_on_postgres(pg_server, pg_built, tmp_path):
    """The removals log and the rebuild after a removal (D204, D205) on PostgreSQL: a call of a
    date of its own, loaded and built incrementally, then gone from its reloaded file, leaves
    fct_calls and kpi_calls_hourly, which are then as first built (on DuckDB, with the whole
    pipeline: test_removed_rows.py)."""
    from tests.conftest import write_inbox
    from tests.integration.test_removed_rows import DUPLICATES, HEADERS, REMOVED

    env, database, root = pg_built
    url = pg_server.url_for(database)
    hourly = (
        "select line, call_date, call_hour, offered, answered, missed, service_level, "
        "avg_ring_seconds, talk_minutes, callback_within_1h_rate from marts.kpi_calls_hourly"
    )

    def built() -> tuple:
        with pg_server.connect(database=database) as con:
            calls = con.execute("select call_id from core.fct_calls order by 1").fetchall()
            return [c for (c,) in calls], sorted(con.execute(hourly).fetchall())

    def load_and_build(*rows: str) -> None:
        write_inbox(root / "inbox", {"calls/extra.csv": "\n".join([HEADERS["calls"], *rows])})
        assert main(["load", "--inbox", str(root / "inbox"), "--warehouse", url]) == 0
        result = dbt(["run", "--select", "fct_calls", "kpi_calls_hourly"], env, tmp_path)
        assert result.returncode == 0, result.stdout[-4000:]

    first = built()
    load_and_build(DUPLICATES["calls"], REMOVED["calls"])
    assert built()[0] == sorted([*first[0], "k77"])
    load_and_build(DUPLICATES["calls"])
    assert built() == first
    with pg_server.connect(database=database) as con:
        assert con.execute("select rows_removed from raw._removals").fetchall() == [(1,)]
        for model in ("fct_calls", "kpi_calls_hourly"):
            seen = f"select removals_seen from intermediate.{model}__removals_seen"
            assert con.execute(seen).fetchall() == [(1,)]


def _tables(pg_server, database: str, schemas: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Every table of `schemas`, its rows sorted, the load-time columns (`_...`) left out."""
    out = {}
    with pg_server.connect(database=database) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema = any(%s) and table_type = 'BASE TABLE' order by 1",
            [list(schemas)],
        ).fetchall()
        for (table,) in tables:
            schema, name = table.split(".")
            columns = con.execute(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s and column_name not like '\\_%%' order by ordinal_position",
                [schema, name],
            ).fetchall()
            listed = ", ".join(f'"{c}"' for (c,) in columns)
            out[table] = sorted(con.execute(f"select {listed} from {table}").fetchall(), key=repr)
    return out


def test_incremental_runs_on_postgres_equal_a_full_refresh(pg_server, pg_built, tmp_path):
    """Issue 18 on PostgreSQL: the run sequence's deliveries (test_run_sequences.py: late data
    for an old month, a new manager version, a deleted record, a client's new phone, a new day)
    loaded into the built database in two steps, each built incrementally, give every core,
    marts and finance table of a full refresh of the same raw rows."""
    from tests.conftest import PG_MINI_AS_OF, write_inbox
    from tests.integration.test_run_sequences import DELETED_AND_NEW_DAY, LATE_CHANGED_NEW_VERSION

    env, database, root = pg_built
    url = pg_server.url_for(database)
    as_of = ["--vars", f"{{as_of: '{PG_MINI_AS_OF}'}}"]
    for delivery in (LATE_CHANGED_NEW_VERSION, DELETED_AND_NEW_DAY):
        write_inbox(root / "sequence", delivery)
        assert main(["load", "--inbox", str(root / "sequence"), "--warehouse", url]) == 0
        result = dbt(["run", *as_of], env, tmp_path)
        assert result.returncode == 0, result.stdout[-4000:]
    schemas = ("core", "marts", "finance")
    incremental = _tables(pg_server, database, schemas)
    result = dbt(["run", "--full-refresh", *as_of], env, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    full = _tables(pg_server, database, schemas)
    assert incremental.keys() == full.keys() and len(full) > 10
    assert {t for t in full if incremental[t] != full[t]} == set()
