"""The Dagster definitions load, with every inbox asset, the dbt assets and the raw checks."""

import dagster as dg
import pytest

from dagster_project.lib.contract import ENTITIES


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    """What Dagster loads: the lazy `defs` of definitions.py, called (D122)."""
    from dagster_project.definitions import defs

    return defs()


def test_definitions_load(defs: dg.Definitions):
    repo = defs.get_repository_def()
    keys = set(repo.asset_graph.get_all_asset_keys())
    for entity in ENTITIES:
        assert dg.AssetKey(["inbox", entity.name]) in keys
    assert any(key.path[-1] == "fct_calls" for key in keys)
    assert defs.get_schedule_def("voronka_daily")
    assert defs.get_sensor_def("inbox_new_files")
    checks = {key.name for key in repo.asset_graph.asset_check_keys}
    assert any(name.startswith("ge_raw_") for name in checks)


def test_dbt_sources_are_the_extract_assets(defs: dg.Definitions):
    graph = defs.get_repository_def().asset_graph
    staging = next(k for k in graph.get_all_asset_keys() if k.path[-1] == "stg_inbox__calls")
    assert dg.AssetKey(["inbox", "calls"]) in graph.get(staging).parent_keys


def test_dbt_vars_hand_dbt_the_zone_offset_the_python_twin_computes():
    """The macro business_fixed_offset uses this var instead of sampling the tz database."""
    from dagster_project.defs.transform.dbt import dbt_vars
    from dagster_project.lib.settings import Settings

    moscow = dbt_vars(Settings(business_timezone="Europe/Moscow"))
    assert moscow["business_fixed_offset"] == {
        "zone": "Europe/Moscow",
        "since": "2014-11-02 00:00:00",
        "seconds": 10800,
    }
    berlin = dbt_vars(Settings(business_timezone="Europe/Berlin"))["business_fixed_offset"]
    assert berlin == {"zone": "Europe/Berlin", "since": None, "seconds": None}


def test_dbt_threads_follow_the_raw_layer_size(tmp_path, monkeypatch):
    """One dbt thread from DBT_SINGLE_THREAD_RAW_ROWS raw rows on (D67); the setting wins."""
    import duckdb
    import pytest

    from dagster_project.defs.transform import dbt as dbt_module
    from dagster_project.lib.settings import Settings

    monkeypatch.delenv("VORONKA_DBT_THREADS", raising=False)
    warehouse = tmp_path / "warehouse.duckdb"
    settings = Settings(warehouse=warehouse)
    assert dbt_module.dbt_threads(settings) is None  # no warehouse yet
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.execute("create table raw.calls as select range as call_id from range(1000)")
    con.execute("create table raw.deals as select range as deal_id from range(500)")
    con.execute("create table main.other as select range as x from range(5000)")
    con.close()
    monkeypatch.setattr(dbt_module, "DBT_SINGLE_THREAD_RAW_ROWS", 1501)
    assert dbt_module.dbt_threads(settings) is None  # 1 500 raw rows; main.other not counted
    assert "--threads" not in dbt_module.dbt_build_args(settings)
    monkeypatch.setattr(dbt_module, "DBT_SINGLE_THREAD_RAW_ROWS", 1500)
    assert dbt_module.dbt_threads(settings) == 1
    assert dbt_module.dbt_build_args(settings)[-2:] == ["--threads", "1"]
    # the dbt asset looks once (`_is_large`, which also decides the validation worker's release)
    # and hands the answer on
    assert dbt_module._is_large(settings)
    assert "--threads" not in dbt_module.dbt_build_args(settings, large=False)
    monkeypatch.setattr(dbt_module, "DBT_SINGLE_THREAD_RAW_ROWS", 10**9)
    assert dbt_module.dbt_build_args(settings, large=True)[-2:] == ["--threads", "1"]
    monkeypatch.setenv("VORONKA_DBT_THREADS", "3")
    assert dbt_module.dbt_threads(settings) == 3
    for wrong in ("0", "two", "-1"):
        monkeypatch.setenv("VORONKA_DBT_THREADS", wrong)
        with pytest.raises(ValueError, match="VORONKA_DBT_THREADS"):
            dbt_module.dbt_threads(settings)


def test_the_graph_has_no_placeholder_and_every_dbt_test_is_a_check(defs: dg.Definitions):
    """Switched-off sources are not in the graph (no amoCRM settings here), the finance ledger
    is a described external asset, every asset has a group other than `default`, and every dbt
    data test is an asset check (a test of several models names its model, D108)."""
    import json

    from dagster_project.defs.transform.dbt import prepare_manifest

    graph = defs.get_repository_def().asset_graph
    keys = set(graph.get_all_asset_keys())
    assert not any(key.path[0] in ("amocrm", "bitrix24", "mango", "cdr", "forms") for key in keys)
    groups = {key: graph.get(key).group_name for key in keys}
    assert [k for k, group in groups.items() if group == "default"] == []
    ledger = dg.AssetKey(["finance_ledger", "closed_bonus_lines"])
    assert groups[ledger] == "finance" and graph.get(ledger).description
    manifest = json.loads(prepare_manifest().read_text())
    tests = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node["package_name"] == "voronka"
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert tests - checks == set()
    assert dg.AssetKey(["reports", "kpi_report"]) in keys


def test_a_missing_or_empty_inbox_fails_the_run_naming_the_folder(tmp_path):
    """A run from the UI, the schedule or the sensor on no inbox must not turn green (D107)."""
    from dagster_project.defs.extract.inbox import inbox_assets
    from dagster_project.defs.resources import WarehouseResource

    calls = next(a for a in inbox_assets if dg.AssetKey(["inbox", "calls"]) in a.keys)
    for inbox, words in (
        (tmp_path / "nowhere", "does not exist"),
        (tmp_path / "empty", "holds no CSV file"),
    ):
        (tmp_path / "empty" / "calls").mkdir(parents=True, exist_ok=True)
        resource = WarehouseResource(path=str(tmp_path / "w.duckdb"), inbox=str(inbox))
        result = dg.materialize([calls], resources={"warehouse": resource}, raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.user_failure_data.description
        assert str(inbox) in message and words in message


def test_every_asset_dependency_orders_the_steps(defs: dg.Definitions):
    """An asset's step runs after the steps of the assets it depends on: every dependency in the
    graph (what the UI and the snapshot show) is also an execution dependency of the job. Deps
    patched onto built assets' specs show in the graph without ordering the steps (D121)."""
    job = defs.resolve_implicit_global_asset_job_def()
    layer = job.asset_layer
    structure = job.graph.dependency_structure

    def upstream(node: str) -> set[str]:
        seen, todo = set(), [node]
        while todo:
            for output in structure.all_upstream_outputs_from_node(todo.pop()):
                if output.node_name not in seen:
                    seen.add(output.node_name)
                    todo.append(output.node_name)
        return seen

    executable = set(layer.executable_asset_keys)
    unordered = []
    for key in sorted(executable, key=lambda k: k.to_user_string()):
        node = layer.get_op_output_handle(key).node_handle.name
        before = upstream(node)
        for parent in layer.asset_graph.get(key).parent_keys & executable:
            parent_node = layer.get_op_output_handle(parent).node_handle.name
            if parent_node != node and parent_node not in before:
                unordered.append((key.to_user_string(), parent.to_user_string()))
    assert unordered == []
