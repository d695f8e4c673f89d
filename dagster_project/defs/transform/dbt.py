"""The dbt project as Dagster assets: one `@dbt_assets` streaming `dbt build`, built on first use
(`build_dbt_assets`: importing this module parses nothing and starts no dbt, D122).

dbt tests appear as asset checks; the translator only sets each model's group from its folder
(staging, intermediate, core, marts, finance). dbt sources `inbox.<entity>` map to the extract
assets `[inbox, <entity>]` by dagster-dbt's default keys.
"""

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtProjectPreparer,
    DagsterDbtTranslator,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from dagster_project.defs.resources import ValidationResource, WarehouseResource
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings
from dagster_project.lib.timestamps import fixed_offset_since

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_models"

# dbt is installed next to this interpreter (the project's venv), which need not be on PATH
# when `voronka` is called by its full path: the runs start it by its path (`dbt_resource`),
# and the parse that prepares the manifest finds it on PATH (`_dbt_on_path`).
_BIN = str(Path(sys.executable).parent)

# dbt is started through a launcher that has it killed with the process that started it (D83)
GUARDED_DBT = Path(__file__).resolve().parents[2] / "bin" / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=os.getenv("DBT_TARGET", "duckdb"))


_PARSED_VARS = "voronka_parsed_vars.json"  # the vars of the last `dbt parse`, next to the manifest


def _manifest_is_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for folder in (DBT_PROJECT_DIR, DBT_PROJECT_DIR.parent / "seeds"):
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in ("target", "logs", "dbt_packages")]
            for name in files:
                path = Path(root, name)
                if path.suffix in (".sql", ".yml", ".yaml", ".csv") and (
                    path.stat().st_mtime > built
                ):
                    return True
    return False


def prepare_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than its files, or was parsed
    with other vars than this run's.

    The parse gets the run's vars (`dbt_vars`), so that `dbt build` can reuse its partial-parse
    state: with other vars dbt parses the whole project again (D67).
    """
    vars_json = json.dumps(dbt_vars(Settings.from_env()))
    parsed_vars = dbt_project.project_dir / dbt_project.target_path / _PARSED_VARS
    same_vars = parsed_vars.exists() and parsed_vars.read_text() == vars_json
    if _manifest_is_stale() or not same_vars:
        # parsed with the profile of the run's build (its working copy, D80): dbt reuses its
        # partial parse only when the rendered profile matches (D69)
        with wh.dbt_target(wh.working_path(Settings.from_env().warehouse)), _dbt_on_path():
            DagsterDbtProjectPreparer(["parse", "--quiet", "--vars", vars_json]).prepare(
                dbt_project
            )
        parsed_vars.write_text(vars_json)
    return dbt_project.manifest_path


@contextlib.contextmanager
def _dbt_on_path() -> Iterator[None]:
    """This interpreter's folder (where dbt is installed) first on PATH while dagster-dbt's
    preparer starts `dbt parse` (it looks `dbt` up on PATH); PATH as it was afterwards."""
    before = os.environ.get("PATH")
    if _BIN not in (before or "").split(os.pathsep):
        os.environ["PATH"] = _BIN + os.pathsep + (before or "")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


# The sources of the API and file extractors (README, "Connecting ..."): on only when their
# settings are present. A switched-off source is no asset, and no dbt model depends on it in the
# graph (its staging models read an empty relation then, the raw_source macro, D40), so the UI
# shows no placeholder asset for it (D108).
SWITCHABLE_SOURCES = ("amocrm", "bitrix24", "mango", "cdr", "forms")


def enabled_source_keys() -> set[dg.AssetKey]:
    """The keys of the extract assets of the switchable sources that are on."""
    from dagster_project.defs.extract.amocrm import enabled_amocrm_assets
    from dagster_project.defs.extract.bitrix24 import enabled_bitrix24_assets
    from dagster_project.defs.extract.surveys import enabled_survey_assets
    from dagster_project.defs.extract.telephony import enabled_telephony_assets

    enabled = (
        enabled_amocrm_assets()
        + enabled_bitrix24_assets()
        + enabled_telephony_assets()
        + enabled_survey_assets()
    )
    return {key for assets in enabled for key in assets.keys}


class VoronkaDbtTranslator(DagsterDbtTranslator):
    """Groups models by their top folder under `models/` (seeds: group `seeds`); drops the
    dependencies on switched-off sources (`SWITCHABLE_SOURCES` without an enabled asset)."""

    def __init__(self, enabled_sources: set[dg.AssetKey] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._enabled_sources = frozenset(enabled_sources or ())

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not unique_id.startswith("source."):
            deps = [dep for dep in spec.deps if not self._switched_off(dep.asset_key)]
            if len(deps) != len(spec.deps):
                spec = spec.replace_attributes(deps=deps)
        return spec

    def _switched_off(self, key: dg.AssetKey) -> bool:
        return key.path[0] in SWITCHABLE_SOURCES and key not in self._enabled_sources

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
    sample from the tz database at every call (seconds of every parse), computed once by its
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


# dbt threads on DuckDB by the size of the raw layer (D67). Two models at once share DuckDB's
# two cores and its memory limit: on the large demo (70 M raw rows) one thread built faster (each
# big query already uses both cores); on the medium demo (6.6 M) two are faster (dbt's own work
# per node overlaps). The switch sits between the two measured scales, not measured in between.
# Figures: docs/performance.md, D67.
DBT_SINGLE_THREAD_RAW_ROWS = 20_000_000


def dbt_threads(settings: Settings, large: bool | None = None) -> int | None:
    """Threads for `dbt build`: `VORONKA_DBT_THREADS` if set; on DuckDB 1 when the raw layer
    holds `DBT_SINGLE_THREAD_RAW_ROWS` rows or more, else None (the profile's 2). `large`: that
    answer if the caller has it already (`_is_large`), else it is looked up."""
    given = os.getenv("VORONKA_DBT_THREADS")
    if given:
        if not given.strip().isdigit() or int(given) < 1:
            raise ValueError(f"VORONKA_DBT_THREADS must be a whole number from 1, not {given!r}")
        return int(given)
    if dbt_project.target != "duckdb":
        return None
    return 1 if (_is_large(settings) if large is None else large) else None


def _is_large(settings: Settings) -> bool:
    """Whether the raw layer holds `DBT_SINGLE_THREAD_RAW_ROWS` rows or more (False when the
    warehouse cannot be read, e.g. a writer holds it). The working copy during a run."""
    path = wh.active_file(settings.warehouse)
    if wh.is_postgres(path) or not path.exists():
        return False  # the single-thread rule is DuckDB's memory (D67)
    try:
        con = wh.connect(path, read_only=True)
    except duckdb.Error:
        return False
    try:
        raw_rows = con.execute(
            "select coalesce(sum(estimated_size), 0) from duckdb_tables() where schema_name = 'raw'"
        ).fetchall()[0][0]
    finally:
        con.close()
    return raw_rows >= DBT_SINGLE_THREAD_RAW_ROWS


def dbt_build_args(settings: Settings, large: bool | None = None) -> list[str]:
    """The arguments of a run's `dbt build`: the run's vars, its threads (`dbt_threads`), and
    no unit tests (they pin formulas on hand-made rows in the test suite,
    tests/integration/test_pipeline.py, not in every production build)."""
    args = [
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        json.dumps(dbt_vars(settings)),
    ]
    threads = dbt_threads(settings, large)
    if threads:
        args += ["--threads", str(threads)]
    return args


_DBT_ASSETS: dict[tuple, dg.AssetsDefinition] = {}


def build_dbt_assets() -> dg.AssetsDefinition:
    """The dbt project as one `@dbt_assets` definition, built on first use, not at import (D122):
    the manifest is prepared first (`prepare_manifest`: parsed when stale or parsed with other
    vars), and the dependencies on switched-off sources are dropped (`enabled_source_keys`).
    Built once per manifest version and set of enabled sources."""
    manifest = prepare_manifest()
    enabled = frozenset(enabled_source_keys())
    key = (manifest.stat().st_mtime_ns, enabled)
    if key not in _DBT_ASSETS:
        _DBT_ASSETS.clear()
        _DBT_ASSETS[key] = dbt_assets(
            manifest=manifest,
            project=dbt_project,
            dagster_dbt_translator=VoronkaDbtTranslator(set(enabled)),
            name="voronka_dbt_assets",
        )(_dbt_build)
    return _DBT_ASSETS[key]


def _dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    validation: ValidationResource,
):
    """Staging, core, marts and finance: `dbt build` of the selected models, tests included."""
    settings = Settings.from_env()
    _guard_env()
    large = _is_large(settings)  # one look at the raw layer for both decisions
    if large:
        # the raw checks are done: their worker's memory goes before dbt's arrives (D68); on
        # smaller warehouses it stays, and the checks after dbt skip GE's start-up
        validation.release()
    args = dbt_build_args(settings, large)
    if "--threads" in args:
        context.log.info(f"dbt build with {args[args.index('--threads') + 1]} thread(s) (D67)")
    with wh.dbt_target(warehouse.warehouse_path):  # the run's working copy (D80)
        invocation = dbt.cli(args, context=context)  # dbt starts here, with this environment
    yield from invocation.stream()


# dbt sources written by no asset: the finance ledger is written by `voronka close-period` /
# `reopen-period` and by the asset finance/adjustment_detection (through SQL, not as an output)
EXTERNAL_SOURCE_GROUPS = {"finance_ledger": "finance"}


def external_source_specs() -> list[dg.AssetSpec]:
    """The dbt sources that no asset materializes, as described external assets in their group
    (else Dagster shows them as bare placeholders in group `default`)."""
    manifest = json.loads(prepare_manifest().read_text(encoding="utf-8"))
    translator = VoronkaDbtTranslator()
    specs = []
    for unique_id, source in sorted(manifest["sources"].items()):
        group = EXTERNAL_SOURCE_GROUPS.get(source["source_name"])
        if group is None:
            continue
        key = translator.get_asset_spec(manifest, unique_id, dbt_project).key
        description = source.get("description") or source.get("source_description") or ""
        specs.append(
            dg.AssetSpec(key=key, group_name=group, description=description, kinds={"duckdb"})
        )
    return specs


def _guard_env() -> None:
    """What the launcher `bin/dbt` runs: this interpreter, and the real dbt next to it."""
    os.environ["VORONKA_PYTHON"] = sys.executable
    os.environ["VORONKA_DBT"] = str(Path(_BIN) / "dbt")


def dbt_resource() -> DbtCliResource:
    _guard_env()
    return DbtCliResource(project_dir=dbt_project, dbt_executable=str(GUARDED_DBT))
