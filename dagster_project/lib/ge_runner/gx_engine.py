"""The Great Expectations side: one ephemeral GE context per process, the GE suites built from
suite files, one DataFrame validated by GE, and EVERY patch of GE's private internals.

What is patched (``tests/unit/test_gx_internals.py`` fails when GE renames or removes any of it):

- ``great_expectations.execution_engine.pandas_execution_engine.HASH_THRESHOLD`` set to 0: GE
  fingerprints every DataFrame under 1 GB by hashing all of it, twice per validation; the
  fingerprint is a batch marker nothing here reads.
- ``PandasExecutionEngine._apply_row_condition_filter(self, data, row_condition,
  domain_kwargs)`` wrapped: each ``row_condition`` is applied once per validated frame
  (:func:`_memoize_row_conditions`, D63).
- the batch manager's ``_batch_data_cache`` / ``_batch_cache`` dicts: a validated batch is
  dropped from them (:func:`_forget_batch`, D63, D66).

Speed (D63, D66). tqdm progress bars off; each suite built once per file version; column-set
expectations run once per batch on a zero-row frame, the others see only the columns they
reference (:class:`PreparedSuite`); one data asset serves every suite.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib.ge_runner.suites import (
    TYPED_SUFFIX,
    SuiteError,
    SuiteFile,
    condition_columns,
    expectation_columns,
    get_suite_file,
    suite_key,
)

if TYPE_CHECKING:  # imported lazily: great_expectations alone takes seconds to import
    import pandas as pd
    from great_expectations.core import ExpectationSuite

logger = logging.getLogger(__name__)


_LOCK = threading.RLock()
_GX: dict[str, Any] = {}
_GX_SUITES: dict[tuple[Path, int, str], PreparedSuite] = {}


def context() -> Any:
    """The process's ephemeral GE context with one pandas datasource, created on first use."""
    with _LOCK:
        if "context" not in _GX:
            gx_logger = logging.getLogger("great_expectations")
            if gx_logger.level == logging.NOTSET:
                # GE logs its own start-up (docstring registry, temporary docs folder) at INFO
                gx_logger.setLevel(logging.WARNING)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from great_expectations.execution_engine import pandas_execution_engine

            # GE fingerprints every DataFrame under 1 GB by hashing all of it, twice per
            # validation (seconds per million rows of text); the fingerprint is a batch
            # marker nothing here reads.
            pandas_execution_engine.HASH_THRESHOLD = 0
            _memoize_row_conditions(pandas_execution_engine.PandasExecutionEngine)
            started = time.perf_counter()
            gx_context = gx.get_context(mode="ephemeral")
            # tqdm bars ("Calculating Metrics") would spam the Dagster logs
            gx_context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False
            )
            _GX["context"] = gx_context
            _GX["datasource"] = gx_context.data_sources.add_pandas("voronka")
            # GE's modules and context are ~270k objects that live as long as the process: out
            # of the collector's sight, the full collection after each big chunk (see
            # validate_chunks) takes 0.05 s instead of 0.2 s
            gc.collect()
            gc.freeze()
            logger.debug("GE context ready in %.1fs", time.perf_counter() - started)
        return _GX["context"]


_ROW_FILTERS = threading.local()  # .cache: filtered rows of one validation, see below


def _domain_columns(domain_kwargs: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The columns of a metric's domain; None for a table domain (every column)."""
    columns = expectation_columns(domain_kwargs) + list(domain_kwargs.get("column_list") or ())
    return tuple(dict.fromkeys(columns)) if columns else None


def _condition_key(row_condition: Any) -> tuple[str, set[str] | None]:
    """A row condition as a cache key, and the columns it reads (None: cannot tell)."""
    if not isinstance(row_condition, Mapping) and hasattr(row_condition, "model_dump"):
        row_condition = row_condition.model_dump(mode="json")  # GE's Condition objects
    if isinstance(row_condition, Mapping):
        key = json.dumps(row_condition, sort_keys=True, default=str)
        return key, condition_columns(row_condition)
    return repr(row_condition), None


def _memoize_row_conditions(engine_class: Any) -> None:
    """Filter by each distinct ``row_condition`` once per validation, and copy only the
    columns a metric reads.

    GE's pandas engine applies an expectation's ``row_condition`` with ``DataFrame.query`` (a
    copy of every column of the matching rows) for each metric it computes, five or six times
    per expectation: on 1M rows of ``raw.calls`` that was 1.0 s of 2.25 s, on ``raw.deals``
    (22 columns, six conditions) half of the time. Inside :func:`validate_frame`, which sets
    ``_ROW_FILTERS.cache``, the condition is evaluated once per frame on the columns it reads
    (by GE's own filter), and each metric gets the matching rows of its domain's columns only,
    with the same index labels. Outside, GE runs as it ships. The cache holds the frame it was
    computed from, so an ``id`` cannot be reused while cached.
    """
    original = engine_class._apply_row_condition_filter
    if getattr(original, "_voronka_memoized", False):
        return

    def apply_row_condition_filter(self: Any, data: Any, row_condition: Any, domain_kwargs: dict):
        cache = getattr(_ROW_FILTERS, "cache", None)
        if cache is None:
            return original(self, data, row_condition, domain_kwargs)
        condition, condition_columns = _condition_key(row_condition)
        parser = domain_kwargs.get("condition_parser")
        rows_key = (id(data), condition, parser)
        hit = cache.get(rows_key)
        if hit is None or hit[0] is not data:
            readable = condition_columns is not None and condition_columns <= set(data.columns)
            narrow = data[[c for c in data.columns if c in condition_columns]] if readable else data
            kept = original(self, narrow, row_condition, domain_kwargs).index
            hit = cache[rows_key] = (data, data.index.get_indexer(kept))
        positions = hit[1]
        columns = _domain_columns(domain_kwargs)
        if columns is not None and not set(columns) <= set(data.columns):
            columns = None  # let GE report the missing column as it does
        domain_key = (*rows_key, columns)
        cached = cache.get(domain_key)
        if cached is None or cached[0] is not data:
            source = data if columns is None else data[list(columns)]
            cached = cache[domain_key] = (data, source.take(positions))
        return cached[1]

    apply_row_condition_filter._voronka_memoized = True  # type: ignore[attr-defined]
    engine_class._apply_row_condition_filter = apply_row_condition_filter


def warm_up() -> threading.Thread:
    """Import GE and build its context in a background thread (seconds of CPU, mostly
    imports), so that the first check does not wait for it: ``voronka run`` starts this before
    the extract, whose DuckDB work leaves the interpreter idle. Idempotent; returns the thread."""

    def build() -> None:
        try:
            context()
        except Exception:  # the first check will raise it again, with its context
            logger.debug("GE warm-up failed", exc_info=True)

    thread = threading.Thread(target=build, name="ge-warm-up", daemon=True)
    thread.start()
    return thread


def batch_definition() -> Any:
    """The whole-DataFrame batch definition every suite validates through (created once).

    One data asset for all suites: the suite is an argument of each validation, and GE saves its
    whole project configuration each time an asset is added (a cost growing with their number;
    D66)."""
    with _LOCK:
        if "batch_definition" not in _GX:
            context()
            asset = _GX["datasource"].add_dataframe_asset(name="batch")
            _GX["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole")
        return _GX["batch_definition"]


def gx_suite(name: str, path: Path, specs: Sequence[tuple[int, Mapping[str, Any]]]) -> Any:
    """A GE ``ExpectationSuite`` of the given (position in file, expectation) pairs.

    Each expectation's ``meta`` gets ``_index`` (its position in the file) so that results can be
    matched back to the file.

    Raises:
        SuiteError: GE rejected an expectation (GE itself only logs and drops it).
    """
    import great_expectations as gx

    expectations = [
        {
            "type": exp["type"],
            "kwargs": dict(exp.get("kwargs", {})),
            "meta": {**exp.get("meta", {}), "_index": i},
        }
        for i, exp in specs
    ]
    try:
        built = gx.ExpectationSuite(name=name, expectations=expectations)
    except Exception as err:
        raise SuiteError(f"{path}: GE rejected the suite: {err}") from err
    if len(built.expectations) != len(expectations):
        loaded = {e.meta.get("_index") for e in built.expectations}
        bad = [f"{i} ({exp['type']})" for i, exp in specs if i not in loaded]
        raise SuiteError(f"{path}: GE rejected expectation(s) {', '.join(bad)}")
    return built


def load_suite(suite: str | SuiteFile, root: Path | str | None = None) -> ExpectationSuite:
    """The GE ``ExpectationSuite`` of a suite file (every expectation, in file order).

    Raises:
        SuiteError: the file is not a valid suite or GE rejected an expectation.
    """
    suite_file = get_suite_file(suite, root)
    context()
    return gx_suite(suite_file.name, suite_file.path, list(enumerate(suite_file.expectations)))


@dataclass(frozen=True)
class PreparedSuite:
    """A suite split for speed: table-shape expectations run once on a zero-row frame, the
    others on only the columns they reference (GE copies the whole frame for every
    ``row_condition``)."""

    shape: Any  # ExpectationSuite | None
    rows: Any  # ExpectationSuite | None
    row_columns: frozenset[str] | None  # None: cannot tell, keep every column


_SHAPE_PREFIXES = ("expect_table_column",)  # columns, column count, ordered column list


def prepared_suite(suite_file: SuiteFile) -> PreparedSuite:
    """The suite file's :class:`PreparedSuite` (built once per file version)."""
    key = suite_key(suite_file)
    with _LOCK:
        if key not in _GX_SUITES:
            context()
            shape, rows = [], []
            columns: set[str] | None = set()
            for i, exp in enumerate(suite_file.expectations):
                if exp["type"].startswith(_SHAPE_PREFIXES):
                    shape.append((i, exp))
                    continue
                rows.append((i, exp))
                kwargs = exp.get("kwargs", {})
                reads = condition_columns(kwargs.get("row_condition"))
                if columns is None or reads is None:
                    columns = None
                    continue
                referenced = expectation_columns(kwargs) + list(kwargs.get("column_list", []))
                columns |= reads | set(referenced)
                columns |= {c.removesuffix(TYPED_SUFFIX) for c in referenced}  # for samples
            _GX_SUITES[key] = PreparedSuite(
                shape=gx_suite(suite_file.name, suite_file.path, shape) if shape else None,
                rows=gx_suite(suite_file.name, suite_file.path, rows) if rows else None,
                row_columns=frozenset(columns) if columns is not None else None,
            )
        return _GX_SUITES[key]


def _forget_batch(batch: Any) -> None:
    """Drop a validated batch from the datasource engine's caches.

    The pandas datasource shares one execution engine, whose batch manager keeps every batch it
    validated (by batch id) until a batch with the same id replaces it: with one data asset per
    suite the last chunk of each suite stayed alive, and the raw checks carried 1.5 GB of them
    into dbt's run at the large scale (D63); with one asset for all (D66) the last one would.
    GE has no public call to drop one, hence the guarded private access: if its internals
    change, this does nothing and only memory is lost.
    """
    engine = getattr(getattr(batch, "data", None), "execution_engine", None)
    manager = getattr(engine, "batch_manager", None)
    for name in ("_batch_data_cache", "_batch_cache"):
        cache = getattr(manager, name, None)
        if isinstance(cache, dict):
            cache.pop(batch.id, None)


_SAMPLE_SUITES: dict[tuple, Any] = {}  # GE suites of the expectations a chunk must sample


def sample_suite(suite_file: SuiteFile, indices: tuple[int, ...]) -> Any:
    """A GE suite of the expectations at ``indices`` of a suite file (built once per file
    version): those whose offending rows a chunk must list for its samples."""
    key = (*suite_key(suite_file), indices)
    with _LOCK:
        if key not in _SAMPLE_SUITES:
            specs = [(i, suite_file.expectations[i]) for i in indices]
            _SAMPLE_SUITES[key] = gx_suite(suite_file.name, suite_file.path, specs)
        return _SAMPLE_SUITES[key]


def validate_frame(
    suite: Any,
    frame: pd.DataFrame,
    result_format: Mapping[str, Any],
    parameters: Mapping[str, Any],
) -> list:
    """GE's results of a GE suite on one DataFrame, in suite order: each ``row_condition``
    applied once (:func:`_memoize_row_conditions`), the batch dropped from GE's caches after
    (:func:`_forget_batch`)."""
    batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
    _ROW_FILTERS.cache = {}
    try:
        validation = batch.validate(
            suite,
            result_format=dict(result_format),
            expectation_parameters=dict(parameters),
        )
    finally:
        _ROW_FILTERS.cache = None
        _forget_batch(batch)
    return list(validation.results)
