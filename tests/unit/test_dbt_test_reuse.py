"""D370: which dbt data tests may be given again, on a scratch DuckDB file and a hand-made graph.

A test is given again only with the key it last passed with: the code, and the fingerprint of
every source upstream of it. One planted row in such a source, one changed column, a source
grown past the bound, an incremental model upstream, or a test that failed: the test runs.
"""

from __future__ import annotations

import duckdb
import pytest

from dagster_project.lib import dbt_test_reuse as reuse
from dagster_project.lib import warehouse as wh

CODE = reuse.code_key("parse-1")

# raw.managers -> stg_managers (view) -> dim_managers (table): two tests;
# raw.calls -> fct_calls (incremental): one test
MANIFEST = {
    "sources": {
        "source.v.inbox.managers": {"schema": "raw", "identifier": "managers"},
        "source.v.inbox.calls": {"schema": "raw", "identifier": "calls"},
        "source.v.amocrm.users": {"schema": "raw_amocrm", "identifier": "users"},
    },
    "nodes": {
        "model.v.stg_managers": {"config": {"materialized": "view"}},
        "model.v.dim_managers": {"config": {"materialized": "table"}},
        "model.v.fct_calls": {"config": {"materialized": "incremental"}},
        "test.v.accepted_values_dim_managers_role": {"config": {}},
        "test.v.primary_key_stg_managers": {"config": {}},
        "test.v.primary_key_fct_calls": {"config": {}},
    },
    "parent_map": {
        "model.v.stg_managers": ["source.v.inbox.managers", "source.v.amocrm.users"],
        "model.v.dim_managers": ["model.v.stg_managers"],
        "model.v.fct_calls": ["source.v.inbox.calls", "model.v.dim_managers"],
        "test.v.accepted_values_dim_managers_role": ["model.v.dim_managers"],
        "test.v.primary_key_stg_managers": ["model.v.stg_managers"],
        "test.v.primary_key_fct_calls": ["model.v.fct_calls"],
    },
}
TESTS = [n for n in MANIFEST["nodes"] if n.startswith("test.")]
ROLE_TEST = "test.v.accepted_values_dim_managers_role"


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute("create table raw.managers (manager_id varchar, role varchar)")
    con.execute("insert into raw.managers values ('m1', 'sales'), ('m2', 'account')")
    con.execute("create table raw.calls (call_id varchar)")
    con.execute("insert into raw.calls values ('k1')")
    con.close()
    return path


def keys(path):
    con = wh.connect(path, read_only=True)
    try:
        sources = reuse.source_fingerprints(con, MANIFEST, MANIFEST["sources"])
    finally:
        con.close()
    return reuse.keys_of_tests(MANIFEST, TESTS, sources, CODE)


def change(path, sql):
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


def passed_once(path, tmp_path):
    """The first build: every test ran and passed; their keys kept."""
    first = keys(path)
    kept = reuse.kept_path(path)
    reuse.store(kept, first, dict.fromkeys(TESTS, "pass"), {}, [])
    return kept


def test_the_same_rows_and_code_give_the_passed_tests_again(warehouse, tmp_path):
    kept = passed_once(warehouse, tmp_path)
    assert kept == tmp_path / "w.duckdb.dbt_tests.json"
    again = reuse.reusable(keys(warehouse), reuse.kept(kept))
    # the test of the incremental fct_calls always runs: the table keeps rows of earlier builds
    assert again == ["test.v.accepted_values_dim_managers_role", "test.v.primary_key_stg_managers"]
    # a missing source (amoCRM is off) has a fingerprint of its own: "missing"
    con = wh.connect(warehouse, read_only=True)
    try:
        found = reuse.source_fingerprints(con, MANIFEST, ["source.v.amocrm.users"])
    finally:
        con.close()
    assert found == {"source.v.amocrm.users": "missing"}


@pytest.mark.parametrize(
    "planted",
    [
        # a bad row: a manager whose role no test accepts
        "insert into raw.managers values ('m3', 'boss')",
        # a row changed in place, the count unchanged
        "update raw.managers set role = 'boss' where manager_id = 'm2'",
        "delete from raw.managers where manager_id = 'm2'",
        "alter table raw.managers add column team varchar",
        # the source that was off is on now
        "create schema raw_amocrm; create table raw_amocrm.users (id varchar)",
    ],
)
def test_a_changed_source_runs_the_tests_downstream_of_it(warehouse, tmp_path, planted):
    kept = passed_once(warehouse, tmp_path)
    change(warehouse, planted)
    assert reuse.reusable(keys(warehouse), reuse.kept(kept)) == []


def test_a_source_past_the_bound_is_not_hashed_and_its_tests_run(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(reuse, "MAX_FINGERPRINT_ROWS", 1)
    assert ROLE_TEST not in keys(warehouse)


def test_other_code_runs_every_test(warehouse, tmp_path):
    kept = passed_once(warehouse, tmp_path)
    con = wh.connect(warehouse, read_only=True)
    try:
        sources = reuse.source_fingerprints(con, MANIFEST, MANIFEST["sources"])
    finally:
        con.close()
    other = reuse.keys_of_tests(MANIFEST, TESTS, sources, reuse.code_key("parse-2"))
    assert reuse.reusable(other, reuse.kept(kept)) == []


def test_a_test_that_failed_or_warned_runs_again(warehouse, tmp_path):
    kept = passed_once(warehouse, tmp_path)
    now = keys(warehouse)
    statuses = {ROLE_TEST: "fail", "test.v.primary_key_stg_managers": "warn"}
    reuse.store(kept, now, statuses, reuse.kept(kept), [])
    assert reuse.reusable(now, reuse.kept(kept)) == []
    # a test given again keeps its entry; a test not in the build keeps its own
    reuse.store(kept, now, {ROLE_TEST: "pass"}, reuse.kept(kept), [])
    reuse.store(kept, now, {}, reuse.kept(kept), [ROLE_TEST])
    assert reuse.reusable(now, reuse.kept(kept)) == [ROLE_TEST]


def test_an_unreadable_file_keeps_nothing(tmp_path):
    path = tmp_path / "w.duckdb.dbt_tests.json"
    path.write_text("{not json", encoding="utf-8")
    assert reuse.kept(path) == {}
    assert reuse.kept(None) == {}
    assert reuse.kept_path("postgresql://u@h/db") is None
