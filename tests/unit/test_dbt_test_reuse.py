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
    return reuse.keys_of(MANIFEST, reuse.upstream_of(MANIFEST, TESTS), sources, CODE)


def change(path, sql):
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


def warehouse_of(kept):
    return kept.with_name(kept.name.removesuffix(reuse.FILE_SUFFIX))


def keep(kept, *args):
    """`store`, and the warehouse marked with its token, as the dbt asset does after a build."""
    token = reuse.store(kept, *args)
    con = wh.connect(warehouse_of(kept))
    try:
        reuse.mark(con, token)
    finally:
        con.close()


def read(kept):
    """The keys kept, if kept for the warehouse as it is (its token)."""
    con = wh.connect(warehouse_of(kept), read_only=True)
    try:
        return reuse.kept(kept, reuse.build_token(con))
    finally:
        con.close()


def passed_once(path, tmp_path):
    """The first build: every test ran and passed; their keys kept."""
    first = keys(path)
    kept = reuse.kept_path(path)
    keep(kept, first, dict.fromkeys(TESTS, "pass"), {}, [])
    return kept


def test_the_same_rows_and_code_give_the_passed_tests_again(warehouse, tmp_path):
    kept = passed_once(warehouse, tmp_path)
    assert kept == tmp_path / "w.duckdb.dbt_tests.json"
    again = reuse.reusable(keys(warehouse), read(kept))
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
    assert reuse.reusable(keys(warehouse), read(kept)) == []


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
    other = reuse.keys_of(
        MANIFEST, reuse.upstream_of(MANIFEST, TESTS), sources, reuse.code_key("parse-2")
    )
    assert reuse.reusable(other, read(kept)) == []


def test_a_test_that_failed_or_warned_runs_again(warehouse, tmp_path):
    kept = passed_once(warehouse, tmp_path)
    now = keys(warehouse)
    statuses = {ROLE_TEST: "fail", "test.v.primary_key_stg_managers": "warn"}
    keep(kept, now, statuses, read(kept), [])
    assert reuse.reusable(now, read(kept)) == []
    # a test given again keeps its entry; a test not in the build keeps its own
    keep(kept, now, {ROLE_TEST: "pass"}, read(kept), [])
    keep(kept, now, {}, read(kept), [ROLE_TEST])
    assert reuse.reusable(now, read(kept)) == [ROLE_TEST]


def test_an_unreadable_file_keeps_nothing(tmp_path):
    path = tmp_path / "w.duckdb.dbt_tests.json"
    path.write_text("{not json", encoding="utf-8")
    assert reuse.kept(path, "t") == {}
    assert reuse.kept(None, "t") == {}
    assert reuse.kept_path("postgresql://u@h/db") is None


# D385: the models left out of `dbt build`. raw.managers -> staging.stg_managers (view) ->
# core.dim_managers (table) -> marts.kpi_managers (table); raw.calls -> fct_calls (incremental)
# -> marts.kpi_calls (table)
MODELS = {
    "model.v.stg_managers": {"schema": "staging", "name": "stg_managers"},
    "model.v.dim_managers": {"schema": "core", "name": "dim_managers"},
    "model.v.kpi_managers": {"schema": "marts", "name": "kpi_managers"},
    "model.v.fct_calls": {"schema": "core", "name": "fct_calls"},
    "model.v.kpi_calls": {"schema": "marts", "name": "kpi_calls"},
}
MODEL_MANIFEST = {
    "sources": MANIFEST["sources"],
    "nodes": {
        **{
            unique_id: {**node, **MODELS[unique_id]}
            for unique_id, node in MANIFEST["nodes"].items()
            if unique_id in MODELS
        },
        "model.v.kpi_managers": {
            "config": {"materialized": "table"},
            **MODELS["model.v.kpi_managers"],
        },
        "model.v.kpi_calls": {"config": {"materialized": "table"}, **MODELS["model.v.kpi_calls"]},
    },
    "parent_map": {
        **{k: v for k, v in MANIFEST["parent_map"].items() if k in MODELS},
        "model.v.kpi_managers": ["model.v.dim_managers"],
        "model.v.kpi_calls": ["model.v.fct_calls"],
    },
}
VIEW, TABLE, MART = "model.v.stg_managers", "model.v.dim_managers", "model.v.kpi_managers"


RELATIONS = (
    "create schema staging; create schema core; create schema marts; "
    "create view staging.stg_managers as select * from raw.managers; "
    "create table core.dim_managers as select * from staging.stg_managers; "
    "create table marts.kpi_managers as select count(*) as n from core.dim_managers; "
    "create table core.fct_calls as select * from raw.calls; "
    "create table marts.kpi_calls as select count(*) as n from core.fct_calls"
)


@pytest.fixture
def built(warehouse):
    """The warehouse with its models' relations, as a build leaves them."""
    change(warehouse, RELATIONS)
    return warehouse


def model_keys(path, code=CODE):
    """The keys of the models, as the dbt asset computes them before its build."""
    con = wh.connect(path, read_only=True)
    try:
        shapes = reuse.source_shapes(con, MODEL_MANIFEST, MODEL_MANIFEST["sources"])
        fingerprints = reuse.source_fingerprints(
            con, MODEL_MANIFEST, MODEL_MANIFEST["sources"], shapes
        )
    finally:
        con.close()
    return reuse.keys_of(
        MODEL_MANIFEST, reuse.upstream_of(MODEL_MANIFEST, MODELS), fingerprints, code, shapes
    )


def reused_now(path, kept, code=CODE):
    """The models the next build leaves out: kept with their key, and there."""
    con = wh.connect(path, read_only=True)
    try:
        found = reuse.relations(con)
    finally:
        con.close()
    return reuse.reusable(model_keys(path, code), read(kept), MODEL_MANIFEST, found)


def built_once(path):
    """The first build: every model built; their keys kept."""
    first = model_keys(path)
    kept = reuse.kept_path(path)
    keep(kept, first, dict.fromkeys(MODELS, "success"), {}, [])
    return kept


def test_a_first_build_keeps_the_keys_of_what_it_created(warehouse):
    """The keys are computed before the build, when the relations may not be there yet."""
    kept = reuse.kept_path(warehouse)
    keep(kept, model_keys(warehouse), dict.fromkeys(MODELS, "success"), {}, [])
    assert reused_now(warehouse, kept) == []  # nothing there to leave out
    change(warehouse, RELATIONS)
    assert reused_now(warehouse, kept) == [TABLE, MART, VIEW]


def test_the_same_code_and_sources_leave_the_view_and_tables_out(built):
    kept = built_once(built)
    # the tables downstream of the incremental fct_calls always build, and fct_calls itself
    assert reused_now(built, kept) == [TABLE, MART, VIEW]


@pytest.mark.parametrize(
    ("planted", "left"),
    [
        # rows changed: the tables rebuild; the view's definition is written from its source's
        # columns, not its rows
        ("insert into raw.managers values ('m3', 'boss')", [VIEW]),
        ("update raw.managers set role = 'boss' where manager_id = 'm2'", [VIEW]),
        ("delete from raw.managers where manager_id = 'm2'", [VIEW]),
        # columns changed: raw_source() writes a staging view's select from them (D40)
        ("alter table raw.managers add column team varchar", []),
        # the source that was off is on now: the view read an empty relation
        ("create schema raw_amocrm; create table raw_amocrm.users (id varchar)", []),
    ],
)
def test_a_changed_source_rebuilds_the_models_it_reaches(built, planted, left):
    kept = built_once(built)
    change(built, planted)
    assert reused_now(built, kept) == left


@pytest.mark.parametrize(
    ("dropped", "left"),
    [
        ("drop view staging.stg_managers", [TABLE, MART]),
        ("drop table core.dim_managers", [MART, VIEW]),
        # a relation of another kind under the model's name is not the model's
        (
            "drop view staging.stg_managers; create table staging.stg_managers (x int)",
            [TABLE, MART],
        ),
    ],
)
def test_a_relation_dropped_by_hand_is_built_again(built, dropped, left):
    kept = built_once(built)
    change(built, dropped)
    assert reused_now(built, kept) == left


def test_other_code_rebuilds_every_model(built):
    kept = built_once(built)
    assert reused_now(built, kept, reuse.code_key("parse-2")) == []


def test_a_failed_or_skipped_build_is_never_reused(built):
    kept = built_once(built)
    now = model_keys(built)
    keep(kept, now, {TABLE: "error", MART: "skipped"}, read(kept), [])
    assert reuse.reusable(now, read(kept)) == [VIEW]
    # built again: kept again; reused: kept; not in the build: kept
    keep(kept, now, {TABLE: "success"}, read(kept), [VIEW])
    assert reuse.reusable(now, read(kept)) == [TABLE, VIEW]


def test_a_model_built_without_a_key_loses_its_entry(built, monkeypatch):
    kept = built_once(built)
    monkeypatch.setattr(reuse, "MAX_FINGERPRINT_ROWS", 1)  # raw.managers is past the bound now
    now = model_keys(built)
    assert TABLE not in now
    keep(kept, now, {TABLE: "success", MART: "success"}, read(kept), [VIEW])
    monkeypatch.undo()
    # back under the bound with the same rows: the table holds what that build wrote, which
    # no key vouches for, so it builds
    assert reused_now(built, kept) == [VIEW]


def test_after_a_dbt_build_that_kept_no_keys_nothing_is_reused(built):
    """Every dbt build drops the token as it starts (macros/reused_builds.sql): one that died or
    was run by hand (other code, perhaps) leaves the keys without it."""
    kept = built_once(built)
    assert read(kept)
    change(built, "drop table if exists raw._dbt_build")
    assert reused_now(built, kept) == []


def test_another_copy_of_the_warehouse_reuses_nothing(built, tmp_path):
    """A restored backup, say: its token is another build's."""
    kept = built_once(built)
    before = read(kept)
    keep(kept, model_keys(built), {}, before, [])  # a later build marks the warehouse anew
    con = wh.connect(built)
    try:
        reuse.mark(con, "an older build's")
    finally:
        con.close()
    assert read(kept) == {}


def test_models_left_out_are_reported_before_what_is_built_from_them():
    """Dagster takes a multi-asset's outputs in the order of its graph (D385)."""
    import dagster as dg

    from dagster_project.defs.transform.dbt import _Reuse

    manifest = {
        **MODEL_MANIFEST,
        "nodes": {
            unique_id: {**node, "depends_on": {"nodes": MODEL_MANIFEST["parent_map"][unique_id]}}
            for unique_id, node in MODEL_MANIFEST["nodes"].items()
        },
    }
    models = {m: (m.split(".")[-1], dg.AssetKey(m.split(".")[-1])) for m in MODELS}
    outputs = {m: name for m, (name, _) in models.items()}
    left_out = _Reuse(manifest, reused=[TABLE, VIEW], outputs=outputs, models=models)
    built = dg.Output(None, output_name="kpi_managers")
    events = list(left_out.interleaved(iter([built])))
    assert [event.output_name for event in events] == [
        "stg_managers",
        "dim_managers",
        "kpi_managers",
    ]
    assert events[0].metadata["status"].value == "reused"
    # nothing reported twice after dbt
    assert list(left_out.outputs({MART: "success"})) == []
    # a model left out under a model dbt did not build is not reported
    alone = _Reuse(manifest, reused=[TABLE], outputs=outputs, models=models)
    assert list(alone.outputs({VIEW: "error"})) == []
    assert [e.output_name for e in alone.outputs({VIEW: "success"})] == ["dim_managers"]
