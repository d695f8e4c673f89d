"""The dbt project as Dagster assets: one `@dbt_assets` streaming `dbt build`, built on first use
(`build_dbt_assets`: importing this module parses nothing and starts no dbt, D122).

dbt tests appear as asset checks; the translator only sets each model's group from its folder
(staging, intermediate, core, marts, finance). dbt sources `inbox.<entity>` map to the extract
assets `[inbox, <entity>]` by dagster-dbt's default keys.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
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
# when `voronka` is called by its full path: it is started by its path (`dbt_resource`).
_BIN = str(Path(sys.executable).parent)

# dbt is started through a launcher that has it killed with the process that started it (D83)
GUARDED_DBT = Path(__file__).resolve().parents[2] / "bin" / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=os.getenv("DBT_TARGET", "duckdb"))


# Where dbt writes (D220). The parse that gives Dagster its manifest is shared by every run of
# this checkout: `target/parsed/<key>/`, one immutable folder per key (the project's files, the
# run's vars and dbt's environment: what decides the parse), moved into place whole, so that
# runs side by side (two warehouses, `pytest -n 2`) read a complete one and never lock. Each
# warehouse's builds write their artifacts and logs in its own folder beside its state file
# (`dbt_folder`), starting from the shared parse (dbt re-parses only what its own check finds
# changed).
PARSED_DIR = DBT_PROJECT_DIR / "target" / "parsed"
# the files of the project that a parse reads, and the folders it does not
_PARSED_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
_NOT_PARSED = ("target", "logs", "dbt_packages", "lint")
# written by dbt itself into the project folder (its profiles folder) at its first run: an id
# for its usage statistics, read by no parse; counted, it changed the key once in a fresh
# checkout, and the next run reused no test and no model (D370, D385)
_NOT_PARSED_FILES = (".user.yml",)
# kept: the newest parses, and any used within the last hour (a run may still read it)
_KEEP_PARSES = 8
_KEEP_PARSE_SECONDS = 3600
# kept per warehouse: the newest builds' artifacts and logs
_KEEP_BUILDS = 3
# secrets among the variables the profile reads: never part of a parse key (libpq reads it)
_SECRET_ENV = ("PGPASSWORD",)


def dbt_folder(warehouse: Path | str | wh.PostgresTarget) -> Path:
    """The dbt artifacts and logs of a warehouse's builds: `<dir>/.voronka/<stem>.dbt/`, beside
    its state file (D220), one subfolder per build."""
    return wh.state_dir(warehouse) / f"{wh.stem(warehouse)}.dbt"


def _project_files() -> list[Path]:
    files = []
    for folder in (DBT_PROJECT_DIR, DBT_PROJECT_DIR.parent / "seeds"):
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _NOT_PARSED)
            files += [
                Path(root, n)
                for n in sorted(names)
                if n.endswith(_PARSED_SUFFIXES) and n not in _NOT_PARSED_FILES
            ]
    return files


def _env_names() -> list[str]:
    """The environment variables profiles.yml and dbt_project.yml read (`env_var('NAME'`)."""
    names: set[str] = set()
    for name in ("profiles.yml", "dbt_project.yml"):
        text = (DBT_PROJECT_DIR / name).read_text(encoding="utf-8")
        names.update(re.findall(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]", text))
    return sorted(names - set(_SECRET_ENV))


def parse_key(vars_json: str) -> str:
    """What decides a parse: the project's files (paths and contents), the vars, dbt's target
    and version, and the variables the profile and the project read (the working copy's name
    relative to its folder, D220). The environment as set for the run's dbt."""
    digest = hashlib.sha256()
    for part in (vars_json, dbt_project.target or "", metadata.version("dbt-core")):
        digest.update(part.encode() + b"\0")
    shadowed = {"VORONKA_WAREHOUSE"} if os.environ.get(wh.WORKING_COPY_ENV) else set()
    for name in _env_names():
        if name in shadowed:  # profiles.yml's fallback, when the working copy is named
            continue
        digest.update(f"{name}={os.environ.get(name)}".encode() + b"\0")
    for path in _project_files():
        digest.update(path.relative_to(DBT_PROJECT_DIR.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def prepare_manifest(settings: Settings | None = None) -> Path:
    """The manifest of the run's parse: the shared one for its key (`parse_key`), else parsed
    now into a folder of its own and moved into place (D220).

    The parse gets the run's vars (`dbt_vars`) and the profile of the run's build (its working
    copy, D80), so that `dbt build` reuses it as its partial parse (D67, D69); it starts from
    the newest other parse, so that dbt re-parses only the files that changed when only files
    changed."""
    settings = settings or Settings.from_env()
    vars_json = json.dumps(dbt_vars(settings))
    with wh.dbt_target(wh.working_path(settings.warehouse)):
        folder = PARSED_DIR / parse_key(vars_json)
        if not (folder / "manifest.json").exists():
            _parse_into(folder, vars_json)
    with contextlib.suppress(OSError):
        os.utime(folder)  # in use: kept by `_prune_parses`
    return folder / "manifest.json"


def _parse_into(folder: Path, vars_json: str) -> None:
    PARSED_DIR.mkdir(parents=True, exist_ok=True)
    tmp = PARSED_DIR / f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        newest = _parses()[:1]
        if newest and (newest[0] / PARTIAL_PARSE).exists():
            shutil.copyfile(newest[0] / PARTIAL_PARSE, tmp / PARTIAL_PARSE)
        dbt_resource().cli(["parse", "--quiet", "--vars", vars_json], target_path=tmp).wait()
        try:
            tmp.rename(folder)
        except OSError:  # another run moved the same parse into place first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune_parses()


PARTIAL_PARSE = "partial_parse.msgpack"


def _parses() -> list[Path]:
    """The shared parses, newest first."""
    found = []
    for path in PARSED_DIR.glob("*"):
        if path.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime, path))
    return [path for _, path in sorted(found, reverse=True)]


def _prune_parses() -> None:
    now = time.time()
    for path in _parses()[_KEEP_PARSES:]:
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _KEEP_PARSE_SECONDS:
                shutil.rmtree(path)


def _build_folder(settings: Settings, run_id: str) -> Path:
    """A new folder for one build's artifacts and logs (the older ones beyond the newest
    `_KEEP_BUILDS` removed: one writer per warehouse, D81)."""
    base = dbt_folder(settings.warehouse)
    base.mkdir(parents=True, exist_ok=True)
    builds = sorted(base.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[_KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    return base / f"{run_id[:8]}-{uuid.uuid4().hex[:7]}"


@contextlib.contextmanager
def _partial_parse_from(folder: Path) -> Iterator[None]:
    """dagster-dbt starts a build from `$DBT_TARGET_PATH/partial_parse.msgpack` (its copy into
    the build's folder): the shared parse's, inside the block."""
    before = os.environ.get("DBT_TARGET_PATH")
    os.environ["DBT_TARGET_PATH"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DBT_TARGET_PATH", None)
        else:
            os.environ["DBT_TARGET_PATH"] = before


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
    the manifest is prepared first (`prepare_manifest`: the shared parse of the run's key, D220),
    and the dependencies on switched-off sources are dropped (`enabled_source_keys`). Built once
    per parse and set of enabled sources."""
    manifest = prepare_manifest()
    enabled = frozenset(enabled_source_keys())
    key = (str(manifest), enabled)
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
    wh.before_write()  # dbt writes the warehouse: a reader held open lets go first (D393)
    args = dbt_build_args(settings, large)
    if "--threads" in args:
        context.log.info(f"dbt build with {args[args.index('--threads') + 1]} thread(s) (D67)")
    parsed = prepare_manifest(settings).parent  # the parse the assets were built from (D220)
    reuse = _Reuse.prepare(context, warehouse.warehouse_path, parsed.name, args)
    args += reuse.args()
    if reuse.tests:
        context.log.info(
            f"{len(reuse.tests)} dbt data tests given again: they passed on the same inputs (D370)"
        )
    if reuse.models:
        context.log.info(
            f"{len(reuse.models)} dbt models not rebuilt: built last time from the same code "
            f"and sources (D385): {', '.join(reuse.names(reuse.models))}"
        )
    with (
        wh.dbt_target(warehouse.warehouse_path),  # the run's working copy (D80)
        _partial_parse_from(parsed),
    ):
        # dbt starts here, with this environment, its artifacts and logs in the warehouse's
        # dbt folder (D220)
        invocation = dbt.cli(
            args, context=context, target_path=_build_folder(settings, context.run_id)
        )
    failure = None
    try:
        yield from reuse.interleaved(invocation.stream())
    except Exception as err:  # dbt failed (a test, a model): its error is raised below
        failure = err
    # also when dbt failed: the models not rebuilt and the tests given again are reported as
    # they would have been had dbt built them (not those below a model dbt skipped or failed),
    # and what passed or was built is kept
    built = reuse.read_results(invocation)
    reuse.store(built, context.run_id)
    yield from reuse.outputs(built)
    yield from reuse.results(built)
    if failure is not None:
        raise failure


# what the metadata of a model dbt did not build says, by materialization (D385)
_NOT_REBUILT = {
    "view": "not re-created: the view is there, defined by the same code from the same source "
    "columns (D385)",
    "table": "not rebuilt: built last time by the same code from the same source rows (D385)",
}


class _Reuse:
    """The dbt nodes of this build left out of `dbt build` (`lib/dbt_test_reuse.py`): the data
    tests that passed on the same inputs (D370), reported passed after it; the models whose
    relation holds what a build would write (D385), reported materialized after it, their
    metadata saying they were not rebuilt and why."""

    def __init__(
        self,
        manifest=None,
        keys=None,
        kept=None,
        reused=(),
        path=None,
        checks=None,
        outputs=None,
        warehouse_path=None,
        models=None,
        above=None,
    ):
        self.manifest = manifest
        self.keys: dict[str, str] = keys or {}
        self.kept: dict[str, str] = kept or {}
        self.path: Path | None = path
        self.warehouse_path = warehouse_path
        self.checks: dict[str, dg.AssetCheckKey] = checks or {}
        self.outputs_of: dict[str, str] = outputs or {}  # model id: its output's name
        self.tests = [node for node in reused if node.startswith("test.")]
        self.models = [node for node in reused if not node.startswith("test.")]
        # every model of the step by its output's name and by its asset key
        self._by_output = {name: model for model, (name, _) in (models or {}).items()}
        self._by_key = {key: model for model, (_, key) in (models or {}).items()}
        self._reported: set[str] = set()  # the models left out whose output was yielded
        self._above: dict[str, set[str]] = dict(above or {})  # what is upstream of a node

    @classmethod
    def prepare(
        cls, context: dg.AssetExecutionContext, warehouse_path, parse_key: str, args: list[str]
    ) -> "_Reuse":
        from dagster_dbt.asset_utils import (
            get_asset_check_key_for_test,
            get_manifest_and_translator_from_dbt_assets,
        )

        from dagster_project.lib import dbt_test_reuse as reuse

        path = reuse.kept_path(warehouse_path)
        if path is None:  # PostgreSQL: every node builds
            return cls()
        manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
        selected = set(context.selected_asset_check_keys)
        checks = {}
        for unique_id in manifest["nodes"]:
            if unique_id.startswith("test."):
                key = get_asset_check_key_for_test(
                    manifest, translator, unique_id, project=dbt_project
                )
                if key is not None and key in selected:
                    checks[unique_id] = key
        models = _model_outputs(context, manifest, translator)
        leave_out = _may_leave_out_models(context, args)
        outputs = {
            model: name
            for model, (name, _) in models.items()
            if leave_out and reuse.materialization(manifest, model) in _NOT_REBUILT
        }
        tables = [m for m in outputs if reuse.materialization(manifest, m) == "table"]
        above = reuse.upstream_of(manifest, [*checks, *outputs])
        sources = {node for node in set().union(*above.values()) if node.startswith("source.")}
        fingerprinted = set().union(*(above[node] for node in [*checks, *tables]))
        con = wh.connect(warehouse_path, read_only=True)
        try:
            shapes = reuse.source_shapes(con, manifest, sources)
            fingerprints = reuse.source_fingerprints(con, manifest, sources & fingerprinted, shapes)
            found = reuse.relations(con)
            token = reuse.build_token(con)
        finally:
            con.close()
        code = reuse.code_key(parse_key)
        keys = reuse.keys_of(manifest, above, fingerprints, code, shapes)
        kept = reuse.kept(path, token)
        reused = reuse.reusable(keys, kept, manifest, found)
        return cls(
            manifest, keys, kept, reused, path, checks, outputs, warehouse_path, models, above
        )

    def names(self, nodes: list[str]) -> list[str]:
        return [self.manifest["nodes"][node]["name"] for node in nodes]

    def args(self) -> list[str]:
        """What `dbt build` gets to leave the reused nodes out: their names excluded, and with a
        model among them no indirect selection (else dbt leaves out every test of an excluded
        model too, D385: they run unless given again)."""
        if not self.tests and not self.models:
            return []
        args = ["--exclude", " ".join(self.names([*self.tests, *self.models]))]
        return args + (["--indirect-selection", "empty"] if self.models else [])

    def read_results(self, invocation) -> dict[str, str]:
        """dbt's status of each node of this build (none when nothing is kept: not needed)."""
        if self.path is None:
            return {}
        try:
            results = invocation.get_artifact("run_results.json")["results"]
        except (OSError, ValueError, KeyError):
            return {}
        return {result["unique_id"]: result["status"] for result in results}

    def _parents_built(self, node: str, built: Mapping[str, str]) -> bool:
        """Whether every node `node` reads was built in this build, or left out and reported
        (a source, or a node dbt did not run and nothing left out: as it was)."""
        return all(
            built[parent] == "success"
            if parent in built
            else parent not in self.models or parent in self._reported
            for parent in self.manifest["nodes"][node]["depends_on"]["nodes"]
        )

    def interleaved(self, events: Iterator[Any]) -> Iterator[Any]:
        """dbt's events, each preceded by the materializations of the models left out that are
        upstream of its model (or are its model: a test's): Dagster takes a multi-asset's outputs
        in the order of its graph only (D385). dbt built or tested that model, so what is upstream
        of it was built or left out as it was."""
        for event in events:
            model = self._model_of(event)
            if model is not None:
                above = {model, *self._upstream(model)}
                yield from self._outputs(m for m in self.models if m in above)
            yield event

    def outputs(self, built: Mapping[str, str]) -> Iterator[dg.Output]:
        """After dbt: the materialization of each model left out not reported yet whose parents
        dbt built or left out (D385): the steps downstream of it run as after a build."""
        if not built:  # dbt wrote no results: it did not get to the models
            return
        for model in sorted(self.models, key=lambda m: len(self._upstream(m))):
            if self._parents_built(model, built):
                yield from self._outputs([model])

    def _outputs(self, models: Iterable[str]) -> Iterator[dg.Output]:
        """The materializations of `models` not reported yet, the upstream ones first."""
        for model in sorted(models, key=lambda m: len(self._upstream(m))):
            if model in self._reported:
                continue
            self._reported.add(model)
            kind = self.manifest["nodes"][model]["config"]["materialized"]
            yield dg.Output(
                value=None,
                output_name=self.outputs_of[model],
                metadata={"unique_id": model, "status": "reused", "rebuilt": _NOT_REBUILT[kind]},
            )

    def _upstream(self, node: str) -> set[str]:
        from dagster_project.lib import dbt_test_reuse

        if node not in self._above:
            self._above[node] = dbt_test_reuse.upstream(self.manifest, node)
        return self._above[node]

    def _model_of(self, event: Any) -> str | None:
        """The dbt node a Dagster event of dbt's stream is about (a test's: the model tested)."""
        if isinstance(event, dg.Output):
            return self._by_output.get(event.output_name)
        if isinstance(event, dg.AssetCheckResult):
            return self._by_key.get(event.asset_key)
        return None

    def results(self, built: Mapping[str, str]) -> Iterator[dg.AssetCheckResult]:
        """A passed check for each test given again whose models dbt built in this build."""
        if not built:  # dbt wrote no results: it did not get to the tests
            return
        for test in self.tests:
            if not self._parents_built(test, built):
                continue
            node = self.manifest["nodes"][test]
            warn = str((node.get("config") or {}).get("severity", "error")).lower() == "warn"
            key = self.checks[test]
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
                metadata={
                    "status": "pass",
                    "given_again": "not run: it passed on the same inputs and code (D370)",
                },
            )

    def store(self, built: Mapping[str, str], run_id: str) -> None:
        from dagster_project.lib import dbt_test_reuse as reuse

        if self.path is None or not built:
            return
        # every node dbt ran: one without a key (a model of a subset's build) loses its entry
        token = reuse.store(
            self.path, self.keys, built, self.kept, [*self.tests, *self.models], run_id
        )
        con = wh.connect(self.warehouse_path)
        try:
            reuse.mark(con, token)
        finally:
            con.close()


def _model_outputs(
    context: dg.AssetExecutionContext, manifest, translator
) -> dict[str, tuple[str, dg.AssetKey]]:
    """Each model of this step's asset (unique id): its output's name and asset key."""
    outputs = {key: name for name, key in context.assets_def.keys_by_output_name.items()}
    found = {}
    for unique_id, node in manifest["nodes"].items():
        if node.get("resource_type") == "model":
            key = translator.get_asset_spec(manifest, unique_id, dbt_project).key
            if key in outputs:
                found[unique_id] = (outputs[key], key)
    return found


def _may_leave_out_models(context: dg.AssetExecutionContext, args: list[str]) -> bool:
    """Whether this build may leave models out (D385): not when the step builds a subset
    (dagster-dbt selects its tests by dbt's indirect selection then, which D385 turns off), nor
    a full refresh (everything is rebuilt), nor with an indirect selection set by hand."""
    assets_def = context.assets_def
    subset = (
        assets_def.keys_by_output_name != assets_def.node_keys_by_output_name
        or assets_def.check_specs_by_output_name != assets_def.node_check_specs_by_output_name
    )
    return not (subset or "--full-refresh" in args or os.environ.get("DBT_INDIRECT_SELECTION"))


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


class VoronkaDbtCliResource(DbtCliResource):
    """dagster-dbt's resource less two things it does before every dbt command that a Voronka
    build never uses (D382): running `dbt --version` in a subprocess to learn the version (the
    launcher runs this environment's dbt-core, whose version the package metadata gives), and
    loading dbt's project, profile and adapter into this process (dagster-dbt's handle for
    `fetch_row_counts` and `fetch_column_metadata`, which the build does not call)."""

    @property
    def _cli_version(self):
        from packaging import version

        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    _guard_env()
    return VoronkaDbtCliResource(project_dir=dbt_project, dbt_executable=str(GUARDED_DBT))
