"""The dbt project as Dagster assets: one `@dbt_assets` streaming `dbt build`.

dbt tests appear as asset checks; the translator only sets each model's group from its folder
(staging, intermediate, core, marts, finance). dbt sources `inbox.<entity>` map to the extract
assets `[inbox, <entity>]` by dagster-dbt's default keys.
"""

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from dagster_project.lib.settings import Settings
from dagster_project.lib.timestamps import fixed_offset_since

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_models"

# dbt is installed next to this interpreter (the project's venv), which need not be on PATH
# when `voronka` is called by its full path: dagster-dbt looks the executable up on PATH.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=os.getenv("DBT_TARGET", "duckdb"))


def _manifest_is_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR, DBT_PROJECT_DIR.parent / "seeds"]
    return any(
        path.stat().st_mtime > built
        for folder in sources
        for path in folder.rglob("*")
        if path.suffix in (".sql", ".yml", ".yaml", ".csv")
        and "target" not in path.relative_to(folder).parts
    )


def prepare_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than its files."""
    if _manifest_is_stale():
        dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


class VoronkaDbtTranslator(DagsterDbtTranslator):
    """Groups models by their top folder under `models/` (seeds: group `seeds`)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "model" and len(fqn) > 2:
            return fqn[1]
        return super().get_group_name(dbt_resource_props)


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """The dbt vars of a run: the business time zone, its fixed offset (if any) and the as-of
    time (if set).

    `business_fixed_offset` hands dbt what the macro `business_fixed_offset` would otherwise
    sample from the tz database at every call (about 3 s of every parse), computed once by its
    Python twin; the macro uses it only when `zone` is the run's business_timezone.
    """
    zone = settings.business_timezone
    fixed = fixed_offset_since(zone)
    values: dict[str, Any] = {
        "business_timezone": zone,
        "business_fixed_offset": {
            "zone": zone,
            "since": f"{fixed[0]:%Y-%m-%d %H:%M:%S}" if fixed else None,
            "seconds": fixed[1] if fixed else None,
        },
    }
    if settings.as_of:
        values["as_of"] = settings.as_of
    return values


@dbt_assets(
    manifest=prepare_manifest(),
    project=dbt_project,
    dagster_dbt_translator=VoronkaDbtTranslator(),
)
def voronka_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Staging, core, marts and finance: `dbt build` of the selected models, tests included."""
    # dbt unit tests pin formulas on hand-made rows: they run in the test suite
    # (tests/integration/test_pipeline.py), not in every production build.
    args = [
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        json.dumps(dbt_vars(Settings.from_env())),
    ]
    yield from dbt.cli(args, context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=str(Path(_BIN) / "dbt"))
