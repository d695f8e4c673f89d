"""Validate a batch given as DataFrames, chunk by chunk, and merge the chunks' results.

A batch larger than ``chunk_rows`` is validated chunk by chunk and the results are merged:
unexpected counts add up, samples are the first ten offenders, row-count expectations are judged
on the batch's total, other table-level expectations must pass on every chunk. Uniqueness is
judged within each chunk only (a duplicate split across two chunks is missed; the result's
details say so): exact up to ``chunk_rows`` rows, a lower bound beyond. Offending rows are listed
only for samples that still have room (D66).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib.ge_runner import gx_engine
from dagster_project.lib.ge_runner.results import ExpectationResult, SuiteResult
from dagster_project.lib.ge_runner.suites import (
    AS_OF_PARAMETER,
    TYPED_SUFFIX,
    SuiteFile,
    expectation_columns,
    get_suite_file,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 10
SOURCE_COLUMNS = ("_source_file", "_source_line")
_COLLECT_AFTER_ROWS = 100_000  # chunks at least this long are collected after validation
_ROW_COUNT_TYPES = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")


_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
# First pass of every chunk: counts and values, without the offending rows' index labels (D66)
_COUNTS_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE}


@dataclass
class _Accumulator:
    """One expectation's results over the chunks of a batch."""

    spec: Mapping[str, Any]
    result: ExpectationResult
    all_chunks_succeeded: bool = True
    denominator: int = 0


def new_result(spec: Mapping[str, Any]) -> ExpectationResult:
    """An expectation's result before any chunk: passed, nothing counted."""
    kwargs = spec.get("kwargs", {})
    columns = expectation_columns(kwargs)
    meta = spec.get("meta", {})
    return ExpectationResult(
        type=spec["type"],
        column=",".join(columns) or None,
        severity=meta["severity"],
        success=True,
        notes=str(meta.get("notes", "")),
    )


def _exception_message(info: Any) -> str | None:
    """The first exception message in GE's ``exception_info`` (flat or keyed by metric)."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "error") if info["raised_exception"] else None
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None


def jsonable(value: Any) -> Any:
    """Plain JSON values for samples: no numpy scalars, NaN/NA as None, timestamps as ISO."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Decimal):
        return jsonable(float(value))
    return str(value)


def _sample_rows(
    df: pd.DataFrame, labels: Sequence[Any], spec: Mapping[str, Any], key_columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The rows ``labels`` of ``df``: keys, source file and line, the expectation's columns."""
    columns: list[str] = [*key_columns, *SOURCE_COLUMNS]
    for col in expectation_columns(spec.get("kwargs", {})):
        if col.endswith(TYPED_SUFFIX):
            columns.append(col.removesuffix(TYPED_SUFFIX))
        columns.append(col)
    columns = [c for c in dict.fromkeys(columns) if c in df.columns]
    labels = [label for label in labels if label in df.index]
    if not labels or not columns:
        return []
    rows = df.loc[labels, columns]
    return [
        {c: jsonable(v) for c, v in zip(columns, row, strict=True)}
        for row in rows.itertuples(index=False)
    ]


def _merge_chunk(
    acc: _Accumulator, gx_result: Any, df: pd.DataFrame, key_columns: Sequence[str]
) -> None:
    """Fold one chunk's GE result for one expectation into the accumulator."""
    res = acc.result
    result = dict(gx_result.result or {})
    message = _exception_message(gx_result.exception_info)
    if message and res.exception is None:
        res.exception = message
    acc.all_chunks_succeeded &= bool(gx_result.success) and not message
    if "unexpected_count" in result:
        unexpected = int(result.get("unexpected_count") or 0)
        elements = int(result.get("element_count") or 0)
        res.unexpected_count = (res.unexpected_count or 0) + unexpected
        res.element_count = (res.element_count or 0) + elements
        acc.denominator += elements - int(result.get("missing_count") or 0)
        room = SAMPLE_SIZE - len(res.sample)
        if unexpected and room > 0:
            labels = list(result.get("partial_unexpected_index_list") or [])[:room]
            res.sample.extend(_sample_rows(df, labels, acc.spec, key_columns))
    else:
        res.observed_value = _jsonable_observed(result.get("observed_value"))
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        if acc.spec.get("kwargs", {}).get("exact_match") is False:
            mismatched = {k: v for k, v in mismatched.items() if k == "missing"}
        res.details = {k: list(v) for k, v in mismatched.items()}


def _jsonable_observed(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return jsonable(value)


def _row_count_holds(kwargs: Mapping[str, Any], rows: int) -> bool:
    """The row-count expectations judged on a batch's total (for batches read in chunks)."""
    if "value" in kwargs:
        return rows == kwargs["value"]
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and (rows <= low if kwargs.get("strict_min") else rows < low):
        return False
    return not (high is not None and (rows >= high if kwargs.get("strict_max") else rows > high))


_ACROSS_ROWS_TYPES = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


def _finish(acc: _Accumulator, chunks: int, total_rows: int) -> ExpectationResult:
    res = acc.result
    kwargs = acc.spec.get("kwargs", {})
    if acc.spec["type"] in _ACROSS_ROWS_TYPES and chunks > 1:
        # GE sees one chunk at a time: a duplicate whose rows fall in two chunks is not counted
        res.details["evaluated_on"] = (
            f"each of {chunks} chunks separately: duplicates across chunks are not counted"
        )
    if res.unexpected_count is not None:
        res.unexpected_percent = (
            100.0 * res.unexpected_count / acc.denominator if acc.denominator > 0 else 0.0
        )
        if chunks > 1 and res.exception is None:
            mostly = kwargs.get("mostly")
            if isinstance(mostly, (int, float)):
                res.success = res.unexpected_percent <= 100.0 * (1 - mostly) + 1e-9
            else:
                res.success = res.unexpected_count == 0
        else:
            res.success = acc.all_chunks_succeeded
    elif acc.spec["type"] in _ROW_COUNT_TYPES and chunks > 1 and res.exception is None:
        res.observed_value = total_rows
        res.success = _row_count_holds(kwargs, total_rows)
        res.details["evaluated_on"] = f"the batch total over {chunks} chunks"
    else:
        res.success = acc.all_chunks_succeeded
    return res


# complexity (C901): the chunk loop with its read-ahead, memory release and merge, one piece (D63,
# D67)
def validate_chunks(  # noqa: C901
    chunks: Iterable[pd.DataFrame],
    suite: str | SuiteFile,
    *,
    parameters: Mapping[str, Any] | None = None,
    key_columns: Sequence[str] = (),
    root: Path | str | None = None,
    note: str = "",
) -> SuiteResult:
    """Validate a batch given as DataFrames (chunks of one batch) against a suite.

    Args:
        chunks: the batch, in one or more DataFrames with the same columns.
        suite: ``"<layer>.<table>"`` or a :class:`SuiteFile`.
        parameters: values of ``$PARAMETER`` kwargs (e.g. ``{"as_of": "2026-11-30T21:00:00"}``).
        key_columns: columns that identify a row, shown in samples with ``_source_file`` and
            ``_source_line`` (when present).
        root: the expectations folder; see :func:`.suites.expectations_root`.
        note: a remark carried into the result.

    Returns:
        The merged result of every expectation.
    """
    started = time.perf_counter()
    suite_file = get_suite_file(suite, root)
    prepared = gx_engine.prepared_suite(suite_file)
    accumulators = [
        _Accumulator(spec=spec, result=new_result(spec)) for spec in suite_file.expectations
    ]
    expectation_parameters = dict(parameters or {})

    def validate(gx_suite: Any, frame: pd.DataFrame, result_format: Mapping[str, Any]) -> list:
        return gx_engine.validate_frame(gx_suite, frame, result_format, expectation_parameters)

    def run(gx_suite: Any, frame: pd.DataFrame) -> None:
        """Validate a frame: counts for every expectation, then the offending rows' labels
        (GE's SUMMARY) only for the expectations that found some and still have room for a
        sample. GE's SUMMARY lists the index of every offending row and builds a query for
        them, for each expectation and chunk; most pass, and a failing one needs ten rows."""
        results = {
            r.expectation_config.meta["_index"]: r
            for r in validate(gx_suite, frame, _COUNTS_FORMAT)
        }
        to_sample = tuple(
            index
            for index, r in results.items()
            if (r.result or {}).get("unexpected_count")
            and len(accumulators[index].result.sample) < SAMPLE_SIZE
        )
        if to_sample:
            sample_suite = gx_engine.sample_suite(suite_file, to_sample)
            sampled = validate(sample_suite, frame, _RESULT_FORMAT)
            results.update((r.expectation_config.meta["_index"], r) for r in sampled)
        for index, gx_result in results.items():
            _merge_chunk(accumulators[index], gx_result, frame, key_columns)

    rows = n_chunks = 0
    try:
        for df in chunks:
            n_chunks += 1
            rows += len(df)
            if not df.index.is_unique:
                df = df.reset_index(drop=True)
            if prepared.shape is not None and n_chunks == 1:  # every chunk has the same columns
                run(prepared.shape, df.head(0))
            if prepared.rows is not None:
                if prepared.row_columns is not None:
                    keep = prepared.row_columns | set(key_columns) | set(SOURCE_COLUMNS)
                    df = df[[c for c in df.columns if c in keep]]
                run(prepared.rows, df)
            if len(df) >= _COLLECT_AFTER_ROWS:
                # what a validation leaves in reference cycles (GE's metric results, pandas'
                # intermediate frames) waits for a full collection otherwise: at large it set
                # raw.calls' peak (D63; docs/performance.md)
                del df
                gc.collect()
    finally:
        # a reader thread (`read_ahead`) stops before the caller uses its connection again
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if rows >= _COLLECT_AFTER_ROWS:
        # pyarrow's allocator keeps freed pages for reuse: hand them back, dbt runs next
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    results = [_finish(acc, n_chunks, rows) for acc in accumulators]
    as_of = (parameters or {}).get(AS_OF_PARAMETER)
    outcome = SuiteResult(
        suite_name=suite_file.name,
        success=not any(r.severity == "error" and not r.success for r in results),
        rows_validated=rows,
        chunks=n_chunks,
        as_of=jsonable(as_of) if as_of is not None else None,
        note=note,
        expectations=results,
        duration_seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("%s in %.2fs", outcome.summary(), outcome.duration_seconds)
    return outcome


def validate_dataframe(
    df: pd.DataFrame,
    suite: str | SuiteFile,
    *,
    parameters: Mapping[str, Any] | None = None,
    key_columns: Sequence[str] = (),
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate one DataFrame against a suite; see :func:`validate_chunks`."""
    return validate_chunks([df], suite, parameters=parameters, key_columns=key_columns, root=root)
