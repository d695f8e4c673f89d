"""The warehouse resource: where the inbox and the DuckDB file are, and how to open it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.lib.inbox_loader import connect
from dagster_project.lib.settings import DEFAULT_MEMORY_LIMIT, Settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file and the inbox folder it is loaded from.

    DuckDB allows one writer process: writers run in sequence (the in-process executor), and
    every connection is closed before the next step opens one.
    """

    path: str
    inbox: str
    memory_limit: str = DEFAULT_MEMORY_LIMIT

    @property
    def warehouse_path(self) -> Path:
        return Path(self.path)

    @property
    def inbox_path(self) -> Path:
        return Path(self.inbox)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the warehouse; `read_only` for checks and reports."""
        if read_only:
            return duckdb.connect(str(self.warehouse_path), read_only=True)
        return connect(self.warehouse_path, self.memory_limit)


def warehouse_from_settings(settings: Settings | None = None) -> WarehouseResource:
    """The resource for the current settings (environment variables, with defaults)."""
    settings = settings or Settings.from_env()
    return WarehouseResource(
        path=str(settings.warehouse.resolve()),
        inbox=str(settings.inbox.resolve()),
        memory_limit=settings.memory_limit,
    )
