"""The body of a file source's extract asset (CDR CSV, survey form exports), written once.

A file source reads its folder with a mapping setting, loads the files it has not loaded yet into
one raw table (bad rows in its quarantine table) and reports per file; what differs is passed in.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources.files import FileResult
from dagster_project.lib.sources.reporting import file_table_metadata


def load_file_source(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    *,
    settings: Any,
    not_configured: str,
    load: Callable[..., list[FileResult]],
    table: str,
    counts: Callable[[FileResult], str],
) -> dg.MaterializeResult:
    """Load a file source with `load(con, settings, progress=...)` into `table`.

    Args:
        settings: the source's settings, None when it is not configured (the asset then fails
            with `not_configured`, which names the settings to set).
        counts: what a loaded file's log line says after its name (its row counts).
    """
    if settings is None:
        raise dg.Failure(not_configured)

    def progress(result: FileResult) -> None:
        if result.status == "failed":
            context.log.warning(f"{result.source_file}: not loaded: {result.message}")
        elif result.status != "skipped_unchanged":
            context.log.info(f"{result.source_file}: {counts(result)}")

    con = warehouse.connect()
    try:
        results = load(con, settings, progress=progress)
        rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()
    return dg.MaterializeResult(metadata=file_table_metadata(results, rows, table))
