"""The entry points: validate one suite of any layer, or every suite of a layer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib.ge_runner.layers import validate_layer_table
from dagster_project.lib.ge_runner.raw import validate_raw_table
from dagster_project.lib.ge_runner.reading import DEFAULT_CHUNK_ROWS
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.suites import LAYERS, SuiteFile, discover_suites, get_suite_file

if TYPE_CHECKING:
    import duckdb


def validate_suite(
    con: duckdb.DuckDBPyConnection,
    suite: str | SuiteFile,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
    results: Path | None = None,
) -> SuiteResult:
    """Validate one suite of any layer: raw by :func:`validate_raw_table` (typed batches not
    validated yet), the others by :func:`validate_layer_table`. The one entry point of the
    asset checks and of ``voronka validate``. ``results``: the folder of the results that may be
    given again when the rows are those they validated (the asset checks', D330)."""
    suite_file = get_suite_file(suite, root)
    if suite_file.layer == "raw":
        return validate_raw_table(
            con,
            suite_file.table,
            as_of=as_of,
            business_timezone=business_timezone,
            chunk_rows=chunk_rows,
            root=suite_file.path.parent.parent,
            results=results,
        )
    return validate_layer_table(
        con,
        suite_file,
        as_of=as_of,
        chunk_rows=chunk_rows,
        root=suite_file.path.parent.parent,
        results=results,
    )


def validate_layer(
    con: duckdb.DuckDBPyConnection,
    layer: str | None = "raw",
    *,
    root: Path | str | None = None,
    **kwargs: Any,
) -> list[SuiteResult]:
    """Run every suite of a layer (every layer when ``layer`` is None) against the warehouse.

    Args:
        con: an open DuckDB connection (read-only is enough).
        layer: ``raw``, ``staging``, ``core``, ``marts``, ``finance`` or None.
        root: the expectations folder.
        **kwargs: passed on to :func:`validate_suite`.

    Returns:
        One result per suite file, in layer order (raw first), then by table.
    """
    suites = discover_suites(layer, root)
    order = {name: i for i, name in enumerate(LAYERS)}
    suites.sort(key=lambda f: (order.get(f.layer, len(LAYERS)), f.table))
    return [validate_suite(con, suite_file, root=root, **kwargs) for suite_file in suites]
