"""Great Expectations asset checks: one per suite file in ``expectations/<layer>/``.

Raw layer: blocking checks on the extract assets (below). Staging, core, marts and finance: one
check per suite on the dbt asset of its table (dagster-dbt's key ``[<schema>, <model>]``, which
is ``[<layer>, <table>]`` of the suite file), built only for the models the dbt project has, so a
suite of a model that is not there yet (finance, built on another branch) adds no check until it
is. Finance checks block (a wrong line is a wrong payout); staging, core and marts checks report
with the severity of their worst failed expectation and never block (dbt builds every model in
one step, so nothing downstream of them is left to stop but other branches' assets).

The checks are generated from the suite files (add a file, get a check) and target the extract
assets by key only, ``["inbox", <entity>]``, so this module loads whatever module defines those
assets. Each check opens the warehouse read-only (``VORONKA_WAREHOUSE``), validates the batch
that the suite's ``meta.batch`` selects with :mod:`dagster_project.lib.ge_runner` and closes the
connection before returning, through the ``validation`` resource (``ValidationResource``): during
``voronka run`` in a worker process (:mod:`dagster_project.lib.validation_worker`, D68, D123), so
that GE's memory is not held while dbt runs.

Severity and blocking (Dagster 1.13, ``dagster/_core/execution/plan/execute_step.py``): a step
fails, and the assets downstream of the checked asset are not executed, only when a
``blocking`` check returns ``passed=False`` with ``severity=ERROR``. So:

- an ``error`` expectation failed: ``passed=False, severity=ERROR``; dbt does not run on it;
- only ``warn`` expectations failed: ``passed=False, severity=WARN``; the check shows as a
  warning in the UI and downstream assets run;
- nothing failed (or nothing new to validate): ``passed=True``;
- the raw table of a required entity does not exist: ``passed=False, severity=ERROR``.

The checks read the run's working copy of the warehouse (the ``warehouse`` resource, D80) and
record the loaded batches they validated (``ge_runner.batches.record_validated``, D82): the
next run validates only the batches no check has validated yet, so a batch loaded by
``voronka load`` or by a run killed before its checks is validated by the next run.

DuckDB admits one writer process: run the checks after the writers (the open is retried for a
minute while a writer holds the lock, see ``ge_runner.reading.read_only_warehouse``).
"""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from dagster_project.defs.resources import ValidationResource, WarehouseResource
from dagster_project.lib import validation_report
from dagster_project.lib.ge_runner import reuse
from dagster_project.lib.ge_runner.batches import record_validated
from dagster_project.lib.ge_runner.results import ExpectationResult, SuiteResult
from dagster_project.lib.ge_runner.suites import BLOCKING_LAYERS, LAYERS, SuiteFile, discover_suites
from dagster_project.lib.settings import Settings

RAW_LAYER = "raw"
SOURCE = "inbox"  # the extract assets' key prefix, the dbt source name of the raw tables
CHECK_PREFIX = "ge_raw_"
MAX_FAILURES_IN_TABLE = 50


def _failure_row(failure: ExpectationResult) -> dict[str, Any]:
    return {
        "type": failure.type,
        "column": failure.column,
        "severity": failure.severity,
        "unexpected_count": failure.unexpected_count,
        "unexpected_percent": (
            round(failure.unexpected_percent, 4) if failure.unexpected_percent is not None else None
        ),
        "observed_value": failure.observed_value,
        "details": failure.details,
        "sample": failure.sample,
        "exception": failure.exception,
        "notes": failure.notes,
    }


def _failures_markdown(failures: Sequence[ExpectationResult]) -> str:
    lines = [
        "| severity | expectation | column | unexpected | sample (first row) |",
        "|---|---|---|---|---|",
    ]
    for failure in failures[:MAX_FAILURES_IN_TABLE]:
        if failure.unexpected_count is not None:
            unexpected = f"{failure.unexpected_count:,} ({failure.unexpected_percent or 0:.3g} %)"
        else:
            unexpected = failure.exception or str(failure.details or failure.observed_value)
        first = failure.sample[0] if failure.sample else ""
        cells = [failure.severity, failure.type, failure.column or "", unexpected, str(first)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def check_result(result: SuiteResult) -> AssetCheckResult:
    """Translate a runner result into an ``AssetCheckResult`` (see the module docstring)."""
    failures = result.failed
    metadata: dict[str, Any] = {
        "suite": result.suite_name,
        "status": "skipped" if result.skipped else ("failed" if failures else "passed"),
        "rows_validated": MetadataValue.int(result.rows_validated),
        "chunks": MetadataValue.int(result.chunks),
        "expectations_evaluated": MetadataValue.int(len(result.expectations)),
        "failed_errors": MetadataValue.int(len(result.failed_errors)),
        "failed_warnings": MetadataValue.int(len(result.failed_warnings)),
        "as_of": result.as_of or "",
        "duration_seconds": MetadataValue.float(float(result.duration_seconds)),
    }
    if result.note:
        metadata["note"] = result.note
    if failures:
        metadata["failures"] = MetadataValue.md(_failures_markdown(failures))
        metadata["failed_expectations"] = MetadataValue.json([_failure_row(f) for f in failures])
    return AssetCheckResult(
        passed=result.severity is None,
        severity=(
            AssetCheckSeverity.ERROR if result.severity == "error" else AssetCheckSeverity.WARN
        ),
        description=result.summary(),
        metadata=metadata,
    )


def _save(settings: Settings, result: SuiteResult, context: Any, render: bool = True) -> None:
    """Keep the latest result next to the warehouse and, with `render`, render the HTML report
    again, so that runs from the UI, the schedule and the sensor refresh it too (D107; never
    fails a check). `voronka run` renders it once, when its run ends (D331)."""
    try:
        validation_report.save_result(settings.warehouse, result)
        if render:
            validation_report.write_report(settings.warehouse)
    except OSError as err:
        context.log.warning("could not save the result of %s: %s", result.suite_name, err)


def _record(
    warehouse: WarehouseResource,
    result: SuiteResult,
    context: Any,
    validation: ValidationResource,
) -> None:
    """Keep the result with the fingerprint of its rows, beside the working copy, for the next
    validation of the same rows (D330); record the batches it validated in the working copy
    (D82), at once or, with the resource's ``record_at_end`` (`voronka run`), when the run
    ends (D391)."""
    reuse.store(reuse.results_folder(warehouse.warehouse_path), result, context.run.run_id)
    if not result.batch_ids:
        return
    if validation.record_at_end:
        validation.defer_record(warehouse, result, context.run.run_id)
        return
    con = warehouse.connect()
    try:
        record_validated(con, result, context.run.run_id)
    finally:
        con.close()


def _description(suite: SuiteFile) -> str:
    if suite.layer != RAW_LAYER:
        blocking = suite.layer in BLOCKING_LAYERS
        return (
            f"Great Expectations suite `{suite.name}` (`expectations/{suite.layer}/"
            f"{suite.path.name}`) on {suite.layer}.{suite.table}"
            + (
                " (rows of the loaded batches not validated yet"
                if suite.batch != "full"
                else " (the whole table"
            )
            + " and the suite's query-defined batches). "
            + (
                "Blocking: a failed `error` expectation stops the assets downstream."
                if blocking
                else "Reports with the severity of the worst failed expectation; never blocks."
            )
            + f"\n\n{suite.describe()}"
        )
    return (
        f"Great Expectations suite `{suite.name}` (`expectations/{suite.layer}/{suite.path.name}`)"
        f" on the rows the inbox loader wrote to raw.{suite.table}. Blocking: a failed `error`"
        " expectation stops the models downstream; `warn` failures are reported, never block."
        f"\n\n{suite.describe()}"
    )


def build_raw_check(suite: SuiteFile) -> AssetChecksDefinition:
    """The blocking asset check of one raw-layer suite file.

    Args:
        suite: a suite file ``expectations/raw/<entity>.json``.
    """
    entity = suite.table
    description = _description(suite)

    @asset_check(
        asset=AssetKey([SOURCE, entity]),
        name=f"{CHECK_PREFIX}{entity}",
        description=description,
        blocking=True,
        metadata={"suite_file": f"{suite.layer}/{suite.path.name}", "batch": suite.batch},
    )
    def _raw_check(
        context: AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        validation: ValidationResource,
    ) -> AssetCheckResult:
        """Validate the new batches of raw.<entity> with its suite (UI text: `description`)."""
        settings = Settings.from_env()
        result = validation.validate(
            warehouse.warehouse_path,
            suite.name,
            as_of=settings.as_of,
            business_timezone=settings.business_timezone,
            root=suite.path.parent.parent,
        )
        _save(settings, result, context, validation.report_each_check)
        _record(warehouse, result, context, validation)
        context.log.info(result.summary())
        for failure in result.failed:
            context.log.warning(
                "%s failed (%s) on %s: %s unexpected%s",
                failure.type,
                failure.severity,
                failure.column or "the table",
                failure.unexpected_count if failure.unexpected_count is not None else "-",
                f"; {failure.exception}" if failure.exception else "",
            )
        return check_result(result)

    return _raw_check


def build_raw_asset_checks(root: Path | str | None = None) -> list[AssetChecksDefinition]:
    """One blocking check per suite file under ``<root>/raw/`` (see ``ge_runner``)."""
    return [build_raw_check(suite) for suite in discover_suites(RAW_LAYER, root)]


raw_asset_checks: list[AssetChecksDefinition] = build_raw_asset_checks()


def build_layer_check(suite: SuiteFile, asset_key: AssetKey | None = None) -> AssetChecksDefinition:
    """The asset check of one suite of staging, core, marts or finance.

    Args:
        suite: a suite file ``expectations/<layer>/<table>.json``.
        asset_key: the checked asset; default ``[<layer>, <table>]`` (the dbt model's key).
    """
    key = asset_key or AssetKey([suite.layer, suite.table])

    @asset_check(
        asset=key,
        name=f"ge_{suite.layer}_{suite.table}",
        description=_description(suite),
        blocking=suite.layer in BLOCKING_LAYERS,
        metadata={"suite_file": f"{suite.layer}/{suite.path.name}", "batch": suite.batch},
    )
    def _layer_check(
        context: AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        validation: ValidationResource,
    ) -> AssetCheckResult:
        """Validate the table's batch and query-defined batches with its suite."""
        settings = Settings.from_env()
        result = validation.validate(
            warehouse.warehouse_path,
            suite.name,
            as_of=settings.as_of,
            root=suite.path.parent.parent,
        )
        _save(settings, result, context, validation.report_each_check)
        _record(warehouse, result, context, validation)
        context.log.info(result.summary())
        for failure in result.failed:
            context.log.warning(
                "%s failed (%s) on %s: %s unexpected%s",
                failure.type,
                failure.severity,
                failure.column or failure.query or "the table",
                failure.unexpected_count if failure.unexpected_count is not None else "-",
                f"; {failure.exception}" if failure.exception else "",
            )
        return check_result(result)

    return _layer_check


def build_layer_asset_checks(
    asset_keys: Iterable[AssetKey], root: Path | str | None = None
) -> list[AssetChecksDefinition]:
    """One check per suite of the layers after raw whose ``[<layer>, <table>]`` is among
    ``asset_keys`` (the dbt assets); suites of models not in the project add no check."""
    keys = set(asset_keys)
    return [
        build_layer_check(suite)
        for layer in LAYERS
        if layer != RAW_LAYER
        for suite in discover_suites(layer, root)
        if AssetKey([suite.layer, suite.table]) in keys
    ]
