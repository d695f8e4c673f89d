"""The warehouse resource: where the inbox and the DuckDB file are, and how to open it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import DEFAULT_MEMORY_LIMIT, Settings


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

    path: str
    inbox: str
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    wait_seconds: float = 0.0

    _session: object = PrivateAttr(default=None)
    _hold: object = PrivateAttr(default=None)

    @property
    def warehouse_path(self) -> Path:
        """The file the run reads and writes: the working copy during a run."""
        return wh.active_file(self.path)

    @property
    def published_path(self) -> Path:
        """The file readers open (the `--warehouse` path); outputs go next to it."""
        return Path(self.path)

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

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the warehouse (the working copy during a run); `read_only` for checks."""
        if read_only:
            return duckdb.connect(str(self.warehouse_path), read_only=True)
        from dagster_project.lib.inbox_loader import connect

        return connect(self.warehouse_path, self.memory_limit)


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
        path=str(settings.warehouse.resolve()),
        inbox=str(settings.inbox.resolve()),
        memory_limit=settings.memory_limit,
        wait_seconds=settings.lock_wait,
    )
