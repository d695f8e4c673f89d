"""The resources: the warehouse (where the inbox and the DuckDB file are, and how to open it) and
the validation (where the Great Expectations checks run)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import DEFAULT_MEMORY_LIMIT, Settings

if TYPE_CHECKING:
    from dagster_project.lib.ge_runner.results import SuiteResult

log = logging.getLogger(__name__)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file and the inbox folder it is loaded from.

    A run holds the warehouse from its first step to its last (`lib/warehouse.py`, D80/D81):
    the resource opens a session when the run starts (the lock, or `WarehouseBusy` naming its
    holder after `wait_seconds`) and works on the session's working copy; at the end of a run
    in which no step failed it publishes the copy for readers (when the run's process holds no
    outer session, e.g. a run from the Dagster UI, the schedule or the sensor; `voronka run`
    publishes itself). DuckDB allows one writer process: steps run in sequence (the in-process
    executor) and every connection is closed before the next step opens one.
    """

    path: str  # a DuckDB file, or a postgresql:// URL without a password (D181)
    inbox: str
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    wait_seconds: float = 0.0

    _session: object = PrivateAttr(default=None)
    _hold: object = PrivateAttr(default=None)

    @property
    def warehouse_path(self) -> Path | wh.PostgresTarget:
        """The file the run reads and writes: the working copy during a run (a PostgreSQL
        warehouse: the database itself)."""
        return wh.active_file(self.path)

    @property
    def published_path(self) -> Path | wh.PostgresTarget:
        """What readers open (the `--warehouse` value)."""
        return wh.parse_target(self.path)

    @property
    def inbox_path(self) -> Path:
        return Path(self.inbox)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._hold = wh.session(
            self.path,
            f"dagster run {context.run_id}",
            wait_seconds=self.wait_seconds,
            memory_limit=self.memory_limit,
        )
        self._session = self._hold.__enter__()
        self._session.mark_dirty()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._hold is None:
            return
        try:
            if self._session.owner and not _run_failed(context):
                self._session.publish()
        finally:
            hold, self._hold, self._session = self._hold, None, None
            hold.__exit__(None, None, None)

    def connect(self, read_only: bool = False) -> wh.Connection:
        """Open the warehouse (the working copy during a run); `read_only` for checks."""
        if read_only:
            return wh.connect(self.warehouse_path, read_only=True)
        return wh.connect(self.warehouse_path, memory_limit=self.memory_limit)


def _run_failed(context: dg.InitResourceContext) -> bool:
    """Whether a step of the run failed so far (a blocking check's failure fails its step)."""
    if context.instance is None or not context.run_id:
        return True
    failures = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1
    )
    return bool(failures.records)


def warehouse_from_settings(settings: Settings | None = None) -> WarehouseResource:
    """The resource for the current settings (environment variables, with defaults)."""
    settings = settings or Settings.from_env()
    return WarehouseResource(
        path=(
            settings.warehouse.url
            if wh.is_postgres(settings.warehouse)
            else str(settings.warehouse.resolve())
        ),
        inbox=str(settings.inbox.resolve()),
        memory_limit=settings.memory_limit,
        wait_seconds=settings.lock_wait,
    )


class ValidationResource(dg.ConfigurableResource):
    """Where the asset checks' Great Expectations validations run (D68, D123).

    With ``in_worker`` (``voronka run``), a run starts one worker process when its resources are
    set up, so that GE imports on the other core while the extract runs, and ends it when the
    run ends; the dbt asset may ``release`` it before dbt starts (large warehouses), and the
    next check starts a new one. Without (the default: the Dagster UI, the schedule, the tests of
    single checks), validations run in the step's process.
    """

    in_worker: bool = False
    # the validation page (`lib/validation_report.py`) rendered again after each check, so that
    # runs from the UI, the schedule and the sensor refresh it; `voronka run` renders it once,
    # when its run ends (`runner.run_pipeline`, D331)
    report_each_check: bool = True
    # the loaded batches each check validated (D82) recorded in the warehouse when the run ends,
    # through one writer connection, instead of one connection (an open and a checkpoint of the
    # warehouse file) per check; `voronka run` sets it (D391), the UI's runs record at once
    record_at_end: bool = False

    _worker: object = PrivateAttr(default=None)
    _yielding: object = PrivateAttr(default=None)
    _deferred: list = PrivateAttr(default_factory=list)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._deferred = []
        if self.in_worker:
            from dagster_project.lib.validation_worker import ValidationWorker

            self._worker = ValidationWorker()
            self._worker.start()
            # the worker keeps its read-only connection from one check to the next and lets
            # it go before a writer of this process opens the warehouse (D393)
            self._yielding = wh.yielding_to_writers(self._worker.let_go)
            self._yielding.__enter__()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        worker, self._worker = self._worker, None
        yielding, self._yielding = self._yielding, None
        try:
            if yielding is not None:
                yielding.__exit__(None, None, None)
            if worker is not None:
                worker.close()
        finally:
            self.record_deferred()

    def defer_record(self, warehouse: WarehouseResource, result: SuiteResult, run_id: str) -> None:
        """Keep the batches ``result`` validated, to be recorded when the run ends, in the file
        the check read (the working copy of the run: `voronka run`'s own session holds it until
        it publishes, after the run)."""
        self._deferred.append((warehouse.warehouse_path, warehouse.memory_limit, result, run_id))

    def record_deferred(self) -> None:
        """Record the batches the run's checks validated (D82), each warehouse through one
        writer connection. A warehouse that cannot be opened
        (another writer holds it) is a warning: those batches are validated again by the next
        run, with the same verdicts, nothing is skipped."""
        from dagster_project.lib.ge_runner.batches import record_validated

        deferred, self._deferred = self._deferred, []
        by_warehouse: dict[str, list] = {}
        for path, limit, result, run_id in deferred:
            by_warehouse.setdefault(str(path), []).append((path, limit, result, run_id))
        for name, items in by_warehouse.items():
            try:
                con = wh.connect(items[0][0], memory_limit=items[0][1])
            except (wh.WarehouseError, OSError, *wh.database_errors()) as err:
                # e.g. a failed dbt step's process not ended yet: never the run's failure
                log.warning(
                    "validated batches not recorded in %s (validated again next): %s", name, err
                )
                continue
            try:
                for _, _, result, run_id in items:
                    record_validated(con, result, run_id)
            finally:
                con.close()

    def validate(
        self,
        warehouse: Path | str,
        suite: str,
        *,
        as_of: str | None = None,
        business_timezone: str | None = None,
        root: Path | str | None = None,
    ) -> SuiteResult:
        """Validate one suite (e.g. ``raw.calls``) of a warehouse opened read-only: in the
        worker when there is one, else here (``lib.validation_worker.validate_here``)."""
        from dagster_project.lib import validation_worker

        kwargs = {"as_of": as_of, "business_timezone": business_timezone, "root": root}
        if self._worker is not None:
            return self._worker.validate(warehouse, suite, **kwargs)
        return validation_worker.validate_here(warehouse, suite, **kwargs)

    def release(self) -> None:
        """End the worker process, if one runs (its memory goes with it): before dbt on large
        warehouses. The next validation starts a new one."""
        if self._worker is not None:
            self._worker.release()
