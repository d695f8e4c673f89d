"""dbt's folders (D220): one shared parse per key, each warehouse's builds in its own folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dagster_project.defs.transform import dbt as dbt_module
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings


def key_for(warehouse: Path, **settings) -> str:
    given = Settings(warehouse=warehouse, **settings)
    with wh.dbt_target(wh.working_path(given.warehouse)):
        return dbt_module.parse_key(json.dumps(dbt_module.dbt_vars(given)))


def test_dbt_names_the_working_copy_relative_to_the_folder_it_starts_in(tmp_path, monkeypatch):
    monkeypatch.delenv(wh.WORKING_COPY_ENV, raising=False)
    monkeypatch.delenv(wh.DBT_CWD_ENV, raising=False)
    work = tmp_path / ".voronka" / "warehouse.work.duckdb"
    with wh.dbt_target(work):
        assert os.environ[wh.WORKING_COPY_ENV] == "warehouse.work.duckdb"
        assert os.environ[wh.DBT_CWD_ENV] == str(work.parent)
    assert wh.WORKING_COPY_ENV not in os.environ and wh.DBT_CWD_ENV not in os.environ


def test_warehouses_of_one_name_share_a_parse_and_other_settings_do_not(tmp_path, monkeypatch):
    """The published path is in VORONKA_WAREHOUSE during a run (profiles.yml's fallback): it
    must not split the key, or every warehouse would parse the project again."""
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(tmp_path / "a" / "warehouse.duckdb"))
    first = key_for(tmp_path / "a" / "warehouse.duckdb")
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(tmp_path / "b" / "warehouse.duckdb"))
    assert key_for(tmp_path / "b" / "warehouse.duckdb") == first
    # another catalog name (dbt's database is the file's stem), as-of or zone: another parse
    assert key_for(tmp_path / "a" / "sales.duckdb") != first
    assert key_for(tmp_path / "a" / "warehouse.duckdb", as_of="2026-01-31") != first
    assert key_for(tmp_path / "a" / "warehouse.duckdb", business_timezone="Asia/Tokyo") != first


def test_a_changed_model_is_another_parse(tmp_path, monkeypatch):
    """On a copy of the project (the real one is read by other tests side by side)."""
    project = tmp_path / "project" / "dbt_models"
    shutil.copytree(
        dbt_module.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copytree(dbt_module.DBT_PROJECT_DIR.parent / "seeds", project.parent / "seeds")
    monkeypatch.setattr(dbt_module, "DBT_PROJECT_DIR", project)
    before = key_for(tmp_path / "warehouse.duckdb")
    model = project / "models" / "marts" / "zz_probe.sql"
    model.write_text("select 1 as one\n", encoding="utf-8")
    assert key_for(tmp_path / "warehouse.duckdb") != before
    model.unlink()
    assert key_for(tmp_path / "warehouse.duckdb") == before
    # dbt's own .user.yml (written at its first run) is not the project's code
    (project / ".user.yml").write_text("id: 5c6f0d2e\n", encoding="utf-8")
    assert key_for(tmp_path / "warehouse.duckdb") == before


def test_each_warehouse_has_its_own_dbt_folder(tmp_path):
    assert dbt_module.dbt_folder(tmp_path / "a" / "warehouse.duckdb") == (
        tmp_path / "a" / ".voronka" / "warehouse.dbt"
    )
    assert dbt_module.dbt_folder(tmp_path / "b" / "warehouse.duckdb") != dbt_module.dbt_folder(
        tmp_path / "a" / "warehouse.duckdb"
    )


def test_the_dbt_resource_learns_dbts_version_without_running_it(monkeypatch):
    """D382: no `dbt --version` subprocess and no dbt adapter in this process per dbt command;
    fails when a dagster-dbt upgrade renames what the resource overrides."""
    import subprocess
    from importlib import metadata

    from dagster_dbt import DbtCliResource

    def refused(*_args, **_kwargs):
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "check_output", refused)
    resource = dbt_module.dbt_resource()
    assert str(resource._cli_version) == metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None
    # what the resource overrides is still dagster-dbt's, under the same names
    assert "_cli_version" in vars(DbtCliResource)
    assert callable(vars(DbtCliResource)["_initialize_dbt_core_adapter"])
