"""Run the whole pipeline in-process through Dagster, as `voronka run` and the tests do."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from dagster_project.lib import run_inputs
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings
from dagster_project.lib.sql import identifier as quote

log = logging.getLogger("voronka.run")


@dataclass
class CheckOutcome:
    """One asset check's result in a run."""

    asset: str
    name: str
    passed: bool
    severity: str  # ERROR or WARN
    seconds: float | None = None  # validation time of a Great Expectations check


@dataclass
class RunOutcome:
    """What a pipeline run did.

    Attributes:
        success: every step succeeded and no blocking (ERROR) check failed.
        checks: every asset check evaluated in the run.
        failed_steps: the steps that failed (their errors are in the log).
        skipped_steps: steps that did not run (e.g. downstream of a failed blocking check).
        seconds: wall time of the run.
        publish_seconds: time the publishing of the warehouse for readers took (D80); None when
            the run did not publish (it failed: readers keep the last published warehouse).
        unchanged: why nothing was run (the inputs of the published run, D150), or None.
    """

    success: bool
    checks: list[CheckOutcome] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    skipped_steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    publish_seconds: float | None = None
    unchanged: str | None = None

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed and c.severity == "ERROR"]

    @property
    def validation_seconds(self) -> float:
        """Time the Great Expectations checks spent reading and validating."""
        return sum(c.seconds or 0.0 for c in self.checks)


def run_pipeline(
    settings: Settings,
    log_level: str = "INFO",
    session: wh.Session | None = None,
    debug: bool = False,
    force: bool = False,
    checked: run_inputs.Checked | None = None,
) -> RunOutcome:
    """Materialize every asset and run every check, in one process, one step at a time, on the
    warehouse's working copy; publish it for readers when the run succeeds (D80).

    The inbox is always loaded; amoCRM, Bitrix24, Mango, the CDR files and the survey forms
    are extracted when their settings are in the environment (their assets are enabled then).

    Args:
        settings: inbox, warehouse, time zone and as-of of the run (exported to the environment
            for dbt, which runs as a subprocess).
        log_level: Dagster console log level (`INFO` shows progress, `WARNING` is quiet).
        session: the caller's hold on the warehouse (`lib.warehouse.session`), which publishes;
            by default the run takes one itself.
        debug: keep the stack traces in Dagster's log of failed steps (else each failure is
            logged with its error message only, D84).
        force: run even when the inputs are those of the published run (else such a run is
            skipped: `RunOutcome.unchanged` says why, D150).
        checked: the caller's `run_inputs.check` of this session, if it made one (`voronka
            run` checks before it imports Dagster); else the run checks itself.

    Raises:
        WarehouseBusy: another process holds the warehouse (after `settings.lock_wait`).
    """
    settings.export_env()
    hold = (
        contextlib.nullcontext(session)
        if session is not None
        else wh.session(
            settings.warehouse,
            "voronka run",
            wait_seconds=settings.lock_wait,
            memory_limit=settings.memory_limit,
        )
    )
    with hold as held:
        started = time.monotonic()
        checked = checked or run_inputs.check(settings, held, force)
        if checked.unchanged:
            seconds = time.monotonic() - started
            return RunOutcome(success=True, seconds=seconds, unchanged=checked.unchanged)
        held.mark_dirty()
        quiet_traces = contextlib.nullcontext() if debug else _without_stack_traces()
        home = dagster_home(settings)
        with (
            quiet_traces,
            unsynced_history(home),
            pooled_history(home),
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            outcome = _run(instance, settings, log_level, held, checked, started)
        _render_validation_page(settings)
        if outcome.success:
            record = run_inputs.record(checked.inputs, settings.warehouse)
            outcome.publish_seconds = held.publish(run_record=record)
        return outcome


def _run(
    instance: dg.DagsterInstance,
    settings: Settings,
    log_level: str,
    held: wh.Session,
    checked: run_inputs.Checked,
    started: float,
) -> RunOutcome:
    """The run's steps: all of them; or, when only the API sources may have changed
    (`checked.extract_first`), their extraction first, and the rest only if it landed a new
    row (D221): else the run ends there, `unchanged` saying why, and publishes the extraction's
    state (what a full run would publish besides it is what is published already)."""
    from dagster_project.lib import validation_report

    extracted = None
    if checked.extract_first:
        before = _api_rows(held, checked.extract_first)
        extracted = _materialize(instance, settings, log_level, api=checked.extract_first)
        landed = _api_rows(held, checked.extract_first) - before
        if not extracted.success or landed == 0:
            outcome = _outcome([extracted], started)
            if outcome.success:
                outcome.unchanged = run_inputs.api_skip_sentence(held, list(checked.extract_first))
            return outcome
        log.info("the API sources landed %d new row(s): the run goes on (D221)", landed)
    validation_report.clear(settings.warehouse)  # the report shows this run's results only
    rest = _materialize(instance, settings, log_level, skip=checked.extract_first)
    return _outcome([r for r in (extracted, rest) if r is not None], started)


def _api_rows(held: wh.Session, sources: tuple[str, ...]) -> int:
    """Rows in the raw tables of the API sources `sources` (`raw_<source>`, less their
    extraction state `_state`): the extraction only ever inserts rows (`sources/state.py`)."""
    con = held.connect(read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_name <> '_state' "
            f"and table_schema in ({', '.join('?' for _ in sources)})",
            [f"raw_{name}" for name in sources],
        ).fetchall()
        return sum(
            con.execute(f"select count(*) from {quote(schema)}.{quote(table)}").fetchone()[0]
            for schema, table in tables
        )
    finally:
        con.close()


def _render_validation_page(settings: Settings) -> None:
    """The validation page from the run's results, once, the checks having left it (D331);
    a page that cannot be written is a warning, not a failed run."""
    from dagster_project.lib import validation_report

    try:
        validation_report.write_report(settings.warehouse)
    except OSError as err:
        log.warning("could not write the validation page: %s", err)


DAGSTER_FOLDER = ".dagster"


def dagster_home(settings: Settings) -> Path:
    """The Dagster instance's folder: `DAGSTER_HOME` if set, else `.dagster` next to the
    warehouse, where `make dev` points the UI too (D107): the UI shows the runs and the check
    history of `voronka run`."""
    given = os.environ.get("DAGSTER_HOME")
    home = Path(given) if given else wh.local_folder(settings.warehouse) / DAGSTER_FOLDER
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


@contextlib.contextmanager
def unsynced_history(home: Path):
    """Dagster's SQLite run history under `home` written without fsync while the block runs
    (`PRAGMA synchronous = OFF` on each of its connections, D260).

    Dagster opens a new SQLite connection for every event it stores (each dbt model and test is
    planned, evaluated and output: thousands per run), and with SQLite's default every commit
    and every closing of a connection syncs the file to disk: on a loaded disk, the larger part
    of Dagster's own time in a run. Without the syncs an application
    crash still loses nothing; an operating-system crash or a power loss during a run may
    leave the history (the UI's runs and checks, not the warehouse, which DuckDB writes) to be
    recreated by removing `.dagster`. Other SQLite files (and other processes) are untouched."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    folder = str(Path(home).resolve()) + os.sep

    def on_connect(dbapi_connection, _record) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        files = dbapi_connection.execute("pragma database_list").fetchall()
        if any(str(row[2]).startswith(folder) for row in files):
            dbapi_connection.execute("pragma synchronous = off")

    event.listen(Engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Engine, "connect", on_connect)


# the modules of Dagster's SQLite storages (run, event log and its shards, schedules): each
# creates a throwaway engine (`create_engine(..., poolclass=NullPool)`) for every use
DAGSTER_SQLITE_MODULES = (
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
)


@contextlib.contextmanager
def pooled_history(home: Path):
    """Dagster's SQLite files under `home` opened once per file while the block runs (D381).

    Dagster's SQLite storages build a new SQLAlchemy engine and open a new SQLite connection for
    every read and every event they store, and dispose of both after it: thousands per run
    (each dbt model and test, each check). Here the storage modules' `create_engine` returns,
    for a file under `home` asked with `NullPool`, one engine per file whose pool keeps one
    connection (a second one at the same time, from a nested use or another thread, is opened
    and closed as before) and whose `dispose` waits for the end of the block. A connection is
    checked out by one thread at a time and every use is still its own transaction, so what is
    written and read is the same; other files and other processes (the UI) are untouched."""
    import importlib

    import sqlalchemy
    from sqlalchemy.pool import NullPool, QueuePool

    folder = str(Path(home).resolve()) + os.sep
    engines: dict[tuple, sqlalchemy.engine.Engine] = {}

    def create_engine(url, *args, **kwargs):
        path = str(url).removeprefix("sqlite:///")
        if (
            args
            or kwargs.get("poolclass") is not NullPool
            or set(kwargs) - {"poolclass", "connect_args"}
            or not str(url).startswith("sqlite:///")
            or not os.path.abspath(path).startswith(folder)
        ):
            return sqlalchemy.create_engine(url, *args, **kwargs)
        connect_args = dict(kwargs.get("connect_args") or {})
        key = (str(url), tuple(sorted(connect_args.items())))
        if key not in engines:
            engine = sqlalchemy.create_engine(
                url,
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=-1,
                connect_args={**connect_args, "check_same_thread": False},
            )
            engine.dispose = lambda *_args, **_kwargs: None  # Dagster's, after every use
            engines[key] = engine
        return engines[key]

    modules = [importlib.import_module(name) for name in DAGSTER_SQLITE_MODULES]
    saved = [module.create_engine for module in modules]
    for module in modules:
        module.create_engine = create_engine
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.create_engine = original
        for engine in engines.values():
            sqlalchemy.engine.Engine.dispose(engine)


class _StackTraceFilter:
    """stderr, less the stack traces Dagster's console log adds to a failed step's error.

    Dagster writes each log record with one `write`, the error's text after the message and its
    stack after a line "Stack Trace:" (`SerializableErrorInfo.to_string`); the record is cut
    there. Everything else passes unchanged."""

    MARK = "\nStack Trace:\n"

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        cut = text.find(self.MARK)
        if cut >= 0:
            text = text[:cut].rstrip("\n") + "\n  (the stack trace: voronka run --debug)\n"
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _without_stack_traces():
    with contextlib.redirect_stderr(_StackTraceFilter(sys.stderr)):
        yield


def _materialize(
    instance: dg.DagsterInstance,
    settings: Settings,
    log_level: str,
    api: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
) -> dg.ExecuteInProcessResult:
    """Every asset and check; with `api`, only the extract assets of those API sources (no
    check validates them: no validation worker is started); with `skip`, all but those."""
    from dagster_project.defs.build import build_definitions
    from dagster_project.defs.resources import ValidationResource

    # the definitions the UI loads, with the checks validating in a worker process that the run
    # starts and ends (the `validation` resource, D68, D121)
    definitions = build_definitions(settings, validate_in_worker=not api)
    resources = dict(definitions.resources)
    selection = None
    if api or skip:
        keys = [
            key
            for assets in definitions.assets
            if isinstance(assets, dg.AssetsDefinition)
            for key in assets.keys
            if key.path[0] in (api or skip)
        ]
        selection = dg.AssetSelection.assets(*keys)
        if skip:
            selection = dg.AssetSelection.all() - selection
    # the checks validate in a worker the run starts and ends (none for an extraction alone),
    # and leave the validation page to be rendered once, by `run_pipeline` (D331)
    # and record the batches they validated once, when the run ends (D391)
    resources["validation"] = ValidationResource(
        in_worker=not api, report_each_check=False, record_at_end=True
    )
    return dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=resources,
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        selection=selection,
    )


def _outcome(results: list[dg.ExecuteInProcessResult], started: float) -> RunOutcome:
    """What the runs `results` (of one `voronka run`) did together."""
    outcome = RunOutcome(
        success=all(r.success for r in results), seconds=time.monotonic() - started
    )
    for result in results:
        for evaluation in result.get_asset_check_evaluations():
            outcome.checks.append(
                CheckOutcome(
                    asset="/".join(evaluation.asset_key.path),
                    name=evaluation.check_name,
                    passed=evaluation.passed,
                    severity=evaluation.severity.value,
                    seconds=_duration(evaluation),
                )
            )
        for event in result.all_events:
            if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                outcome.failed_steps.append(event.step_key)
            elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
                outcome.skipped_steps.append(event.step_key)
    outcome.success = outcome.success and not outcome.blocking_failures and not outcome.failed_steps
    return outcome


def _duration(evaluation) -> float | None:
    """The ``duration_seconds`` metadata of a Great Expectations check, if any."""
    value = (evaluation.metadata or {}).get("duration_seconds")
    value = getattr(value, "value", value)
    return float(value) if isinstance(value, (int, float)) else None
