"""Run the Great Expectations suites of ``expectations/<layer>/<table>.json`` on DataFrames.

Plain Python, no Dagster objects: the asset checks in ``defs/quality/checks.py`` (and any
script) call the functions below.

Why DataFrames: GE's SQL engine does not work on DuckDB (duckdb-engine returns no rows once GE
closes the connection), so a batch is read from the warehouse with DuckDB SQL and validated by
GE's pandas engine, at most ``chunk_rows`` rows at a time.

Raw-layer batches. ``raw.<entity>`` holds text (see ``docs/architecture.md``). The batch query
adds one ``<column>__typed`` column per contract column that has a type to parse, by the
contract's rules (:func:`raw_select_sql`): timestamps as naive UTC (naive text is read in the
business time zone), dates and periods as timestamps, decimals and integers as doubles, booleans
as booleans, enums lowercased. A typed value is null where the text does not parse, so "parses
as its type" is ``expect_column_values_to_not_be_null`` on the typed column with a
``row_condition`` that the raw column is not null, and ranges run on typed columns. A suite's
``meta.batch`` says which rows form the batch: ``full`` (the whole table) or
``latest_load_run`` (for the big event tables, so the cost follows the new data): the rows of
every batch loaded into the entity's raw table (``raw._load_log``) that the suite has not
validated yet, whoever loaded it and whatever crashed since (D82). A check records the batches
it validated in ``raw._validated_batches`` (:func:`record_validated`); a batch that failed a
blocking suite is not recorded, so it is validated again, and blocks, until its file is fixed.

Other layers (staging, core, marts, finance): :func:`validate_layer_table` reads the table as
dbt built it (the whole table, or the rows of the batches not validated yet, by
``_last_loaded_at``) and
the suite's query-defined batches (``meta.queries``: DuckDB queries whose result DataFrames are
validated by the expectations naming them in ``meta.query``; see :class:`Query`). A finance
table that does not exist yet is skipped. :func:`validate_suite` dispatches by layer.

Severity. Every expectation carries ``meta.severity``: ``error`` (a failure fails the suite) or
``warn`` (reported, never fails it).

Suite parameters (the as-of). Kwargs may use GE's own ``{"$PARAMETER": "as_of"}``; the runner
passes ``as_of`` as an ``expectation_parameters`` value on every validation, so the JSON stays
plain GE. Its value, a naive UTC timestamp: the ``as_of`` argument, else ``VORONKA_AS_OF`` (read
in the business time zone when naive), else the latest ``_loaded_at`` of the batch, i.e. the
moment the newest row of the batch was loaded (an event cannot have happened after its file was
loaded; the latest event of the batch would make the bound hold by construction).

Chunks. A batch larger than ``chunk_rows`` is validated chunk by chunk and the results are
merged: unexpected counts add up, samples are the first ten offenders, row-count expectations
are judged on the batch's total, other table-level expectations must pass on every chunk.
Uniqueness is judged within each chunk only (a duplicate split across two chunks is missed; the
result's details say so): exact up to ``chunk_rows`` rows, a lower bound beyond.

Speed. One ephemeral GE context per process (tqdm progress bars off), each suite built once per
file version. Column-set expectations run once per batch on a zero-row frame; the others see only
the columns they reference (plus keys and source columns). Each ``row_condition`` is applied
once per chunk (:func:`_memoize_row_conditions`), offending rows are listed only for samples
that still have room (:func:`validate_chunks`), and one data asset serves every suite. GE's
DataFrame fingerprint (a hash of the whole frame, twice per validation) is switched off. About
0.7 s per million rows of ``raw.calls`` at the large scale, reading included (D63, D66).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib import contract, parsing
from dagster_project.lib.settings import Settings
from dagster_project.lib.timestamps import parse_timestamp

if TYPE_CHECKING:  # imported lazily: great_expectations alone takes seconds to import
    import duckdb
    import pandas as pd
    from great_expectations.core import ExpectationSuite

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "expectations"
ROOT_ENV = "VORONKA_EXPECTATIONS"
DEFAULT_CHUNK_ROWS = 1_000_000
DEFAULT_VALIDATION_MEMORY = "1GB"  # DuckDB's share of a validation (read_only_warehouse)
VALIDATION_MEMORY_ENV = "VORONKA_VALIDATION_MEMORY_LIMIT"
_COLLECT_AFTER_ROWS = 100_000  # chunks at least this long are collected after validation
SAMPLE_SIZE = 10
SEVERITIES = ("error", "warn")
BATCH_MODES = ("full", "latest_load_run")
TYPED_SUFFIX = "__typed"
AS_OF_PARAMETER = "as_of"
SOURCE_COLUMNS = ("_source_file", "_source_line")
LOADED_STATUSES = ("loaded", "reloaded")
# pandas holds nanosecond timestamps only between 1677 and 2262; typed timestamps are clipped to
# these bounds (both far outside every range a suite accepts) so that a year-9999 typo fails a
# range expectation instead of crashing the conversion.
_TIMESTAMP_CLIP = ("1800-01-01", "2200-01-01")
_ROW_COUNT_TYPES = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")


class SuiteError(ValueError):
    """A suite file is missing, unreadable or not in the shape the runner accepts."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class ExpectationResult:
    """The outcome of one expectation on one batch.

    Attributes:
        type: the expectation type, e.g. ``expect_column_values_to_be_between``.
        column: the column it applies to (``column_A,column_B`` for pairs), None for the table.
        severity: ``error`` or ``warn``.
        success: True when the expectation held.
        unexpected_count: offending rows (column expectations only).
        unexpected_percent: offending rows in percent of the rows it was evaluated on.
        element_count: rows the expectation was evaluated on (after its ``row_condition``).
        observed_value: GE's observed value for table-level expectations (row count, columns).
        details: further facts, e.g. ``{"missing": [...], "unexpected": [...]}`` for column sets.
        sample: up to ten offending rows: key columns, ``_source_file``, ``_source_line`` and the
            values (raw text and typed) of the expectation's columns.
        notes: why the expectation exists (``meta.notes`` of the suite).
        exception: the error GE raised while evaluating it, if any (the expectation failed).
        query: the query-defined batch it ran on (``meta.query``); None for the suite's table.
    """

    type: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    observed_value: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    exception: str | None = None
    query: str | None = None


@dataclass
class SuiteResult:
    """The outcome of one suite on one batch.

    Attributes:
        suite_name: e.g. ``raw.calls``.
        success: no ``error`` expectation failed.
        rows_validated: rows of the batch (0 when nothing was validated).
        chunks: DataFrames the batch was validated in.
        as_of: the ``as_of`` parameter used, ISO 8601, naive UTC.
        note: why nothing or something unusual was validated (empty when unremarkable).
        expectations: one result per expectation of the suite, in suite order.
        duration_seconds: wall time of reading and validating.
        skipped: nothing was validated because the table does not exist (yet) in a layer that
            tolerates it (see :func:`validate_layer_table`); ``note`` says why.
        batch_ids: the loaded batches (``_batch_id``) this result validated, for
            :func:`record_validated` (empty for ``full`` batches).
    """

    suite_name: str
    success: bool
    rows_validated: int = 0
    chunks: int = 0
    as_of: str | None = None
    note: str = ""
    expectations: list[ExpectationResult] = field(default_factory=list)
    duration_seconds: float = 0.0
    skipped: bool = False
    batch_ids: list[str] = field(default_factory=list)

    @property
    def layer(self) -> str:
        return self.suite_name.partition(".")[0]

    @property
    def failed(self) -> list[ExpectationResult]:
        """Expectations that did not hold, errors first."""
        failed = [e for e in self.expectations if not e.success]
        return sorted(failed, key=lambda e: SEVERITIES.index(e.severity))

    @property
    def failed_errors(self) -> list[ExpectationResult]:
        return [e for e in self.failed if e.severity == "error"]

    @property
    def failed_warnings(self) -> list[ExpectationResult]:
        return [e for e in self.failed if e.severity == "warn"]

    @property
    def severity(self) -> str | None:
        """``error`` if the suite failed, ``warn`` if only warnings did, else None."""
        if self.failed_errors or not self.success:
            return "error"
        return "warn" if self.failed_warnings else None

    def summary(self) -> str:
        """One line for logs and the check's description."""
        if self.skipped:
            return f"{self.suite_name}: skipped ({self.note})"
        if not self.expectations:
            return f"{self.suite_name}: nothing validated ({self.note})"
        # the same verdict as the asset check's badge (defs/quality/checks.py): a failed `warn`
        # expectation fails the check with severity WARN, so the text must not say "passed"
        verdict = {None: "passed", "warn": "FAILED (warnings only)", "error": "FAILED"}[
            self.severity
        ]
        text = (
            f"{self.suite_name} {verdict} on {self.rows_validated:,} rows: "
            f"{len(self.failed_errors)} error and {len(self.failed_warnings)} warn expectations "
            f"failed of {len(self.expectations)}"
        )
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole result."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Suite files


@dataclass(frozen=True)
class SuiteFile:
    """A suite file ``<root>/<layer>/<table>.json``, read as JSON (GE is not imported).

    Attributes:
        layer: warehouse schema, e.g. ``raw``.
        table: table in that schema, e.g. ``calls``.
        path: the JSON file.
        name: the suite's name, ``<layer>.<table>``.
        notes: what the suite guards (the suite's top-level ``notes``).
        batch: ``full`` or ``latest_load_run`` (the suite's ``meta.batch``; default ``full``).
        expectations: the expectation dicts as written in the file.
        meta: the suite's whole ``meta`` (``batch``, and for layers other than raw ``entity``,
            ``loaded_column``, ``key_columns`` and ``queries``; see :func:`validate_layer_table`).
    """

    layer: str
    table: str
    path: Path
    name: str
    notes: str
    batch: str
    expectations: tuple[Mapping[str, Any], ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def queries(self) -> dict[str, Query]:
        """The query-defined batches of ``meta.queries`` by name (see :class:`Query`)."""
        return {
            name: Query(
                name=name,
                sql=_sql_text(spec["sql"]),
                key_columns=tuple(spec.get("key_columns", ())),
            )
            for name, spec in (self.meta.get("queries") or {}).items()
        }

    def describe(self) -> str:
        """A Markdown description: the notes and one line per expectation."""
        lines = [self.notes.strip(), ""] if self.notes else []
        for exp in self.expectations:
            kwargs = exp.get("kwargs", {})
            target = kwargs.get("column") or ",".join(
                str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
            )
            where = f" ({target})" if target else ""
            meta = exp.get("meta", {})
            on = f" on query `{meta['query']}`" if meta.get("query") else ""
            lines.append(
                f"- [{meta.get('severity')}] {exp['type']}{where}{on}: {meta.get('notes', '')}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Query:
    """A query-defined batch of a suite (``meta.queries.<name>`` in the suite file).

    Expectations whose ``meta.query`` names it are validated on the DataFrame the query returns
    instead of on the suite's table: this is how cross-table rules (coverage, reconciliation,
    freshness, sums) are written with standard GE expectations.

    Attributes:
        name: the key in ``meta.queries``.
        sql: DuckDB SQL (in the file: a string, or a list of lines joined with newlines). It may
            use the named parameters ``$as_of`` (the as-of, naive UTC ISO text: cast it) and
            ``$batch_since`` (the ``_loaded_at`` from which rows belong to the batch; the epoch
            for ``full`` suites).
        key_columns: columns identifying a row of the result, shown first in samples (which
            show every column of the result).
    """

    name: str
    sql: str
    key_columns: tuple[str, ...] = ()

    @property
    def parameters(self) -> list[str]:
        """The ``$name`` parameters the SQL uses."""
        return sorted(set(_QUERY_PARAMETER.findall(self.sql)))


_QUERY_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
QUERY_PARAMETERS = ("as_of", "batch_since")


def _sql_text(sql: str | Sequence[str]) -> str:
    return sql if isinstance(sql, str) else "\n".join(sql)


def expectations_root(root: Path | str | None = None) -> Path:
    """The folder of the suites: ``root``, else ``VORONKA_EXPECTATIONS``, else the repository's
    ``expectations/`` next to ``dagster_project/``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


_SUITE_FILE_CACHE: dict[tuple[Path, int], SuiteFile] = {}


def read_suite_file(path: Path | str) -> SuiteFile:
    """Read and check one suite file (cached until the file changes).

    Raises:
        SuiteError: not JSON, not the 1.x shape, a name that is not ``<layer>.<table>``, an
            expectation without ``meta.severity`` in (error, warn), an unknown ``meta.batch``.
    """
    path = Path(path)
    try:
        key = (path.resolve(), path.stat().st_mtime_ns)
    except FileNotFoundError as err:
        raise SuiteError(f"no suite file {path}") from err
    if key in _SUITE_FILE_CACHE:
        return _SUITE_FILE_CACHE[key]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SuiteError(f"{path}: not a readable JSON file: {err}") from err
    layer, table = path.parent.name, path.stem
    expected_name = f"{layer}.{table}"
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: expected {{'name': ..., 'expectations': [...]}}")
    if data.get("name") != expected_name:
        raise SuiteError(f"{path}: name must be {expected_name!r}, not {data.get('name')!r}")
    if "id" in data or any("id" in e for e in data["expectations"] if isinstance(e, dict)):
        raise SuiteError(f"{path}: suites are written without ids")
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise SuiteError(f"{path}: meta must be an object")
    batch = meta.get("batch", "full")
    if batch not in BATCH_MODES:
        raise SuiteError(f"{path}: meta.batch must be one of {BATCH_MODES}, not {batch!r}")
    if layer != "raw" and batch == "latest_load_run" and not meta.get("entity"):
        raise SuiteError(f"{path}: meta.batch latest_load_run needs meta.entity (the raw table)")
    queries = meta.get("queries") or {}
    if not isinstance(queries, dict):
        raise SuiteError(f"{path}: meta.queries must be an object of name -> {{'sql': ...}}")
    for name, spec in queries.items():
        sql = spec.get("sql") if isinstance(spec, dict) else None
        if not (isinstance(sql, str) or (isinstance(sql, list) and sql)):
            raise SuiteError(f"{path}: meta.queries.{name} needs 'sql' (a string or lines)")
        unknown = set(_QUERY_PARAMETER.findall(_sql_text(sql))) - set(QUERY_PARAMETERS)
        if unknown:
            raise SuiteError(
                f"{path}: meta.queries.{name} uses unknown parameter(s) {sorted(unknown)};"
                f" known: {QUERY_PARAMETERS}"
            )
    for i, exp in enumerate(data["expectations"]):
        where = f"{path}: expectation {i}"
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise SuiteError(f"{where}: needs a 'type'")
        if not isinstance(exp.get("kwargs", {}), dict):
            raise SuiteError(f"{where} ({exp['type']}): 'kwargs' must be an object")
        severity = (exp.get("meta") or {}).get("severity")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where} ({exp['type']}): meta.severity must be one of {SEVERITIES}")
        query = (exp.get("meta") or {}).get("query")
        if query is not None and query not in queries:
            raise SuiteError(
                f"{where} ({exp['type']}): meta.query {query!r} is not in meta.queries"
            )
    suite_file = SuiteFile(
        layer=layer,
        table=table,
        path=path,
        name=expected_name,
        notes=str(data.get("notes") or ""),
        batch=batch,
        expectations=tuple(data["expectations"]),
        meta=meta,
    )
    _SUITE_FILE_CACHE[key] = suite_file
    return suite_file


def discover_suites(layer: str | None = None, root: Path | str | None = None) -> list[SuiteFile]:
    """Every suite file under ``<root>/<layer>/*.json`` (all layers when ``layer`` is None).

    Args:
        layer: a warehouse schema (``raw``, ``marts``, ...) or None for every layer.
        root: the expectations folder; see :func:`expectations_root`.

    Returns:
        The suites sorted by layer and table.
    """
    base = expectations_root(root)
    pattern = f"{layer}/*.json" if layer else "*/*.json"
    return [read_suite_file(p) for p in sorted(base.glob(pattern))]


def get_suite_file(suite: str | SuiteFile, root: Path | str | None = None) -> SuiteFile:
    """Resolve ``"raw.calls"`` (or a :class:`SuiteFile`) to its suite file."""
    if isinstance(suite, SuiteFile):
        return suite
    layer, _, table = suite.partition(".")
    if not table:
        raise SuiteError(f"a suite is named <layer>.<table>, not {suite!r}")
    return read_suite_file(expectations_root(root) / layer / f"{table}.json")


# --------------------------------------------------------------------------------------------
# The GE context: one per process


_LOCK = threading.RLock()
_GX: dict[str, Any] = {}
_GX_SUITES: dict[tuple[Path, int, str], _PreparedSuite] = {}


def _gx_context() -> Any:
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
            # validation (about 2.5 s per million rows of text); the fingerprint is a batch
            # marker nothing here reads.
            pandas_execution_engine.HASH_THRESHOLD = 0
            _memoize_row_conditions(pandas_execution_engine.PandasExecutionEngine)
            started = time.perf_counter()
            context = gx.get_context(mode="ephemeral")
            # tqdm bars ("Calculating Metrics") would spam the Dagster logs
            context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False
            )
            _GX["context"] = context
            _GX["datasource"] = context.data_sources.add_pandas("voronka")
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
    columns = _expectation_columns(domain_kwargs) + list(domain_kwargs.get("column_list") or ())
    return tuple(dict.fromkeys(columns)) if columns else None


def _condition_key(row_condition: Any) -> tuple[str, set[str] | None]:
    """A row condition as a cache key, and the columns it reads (None: cannot tell)."""
    if not isinstance(row_condition, Mapping) and hasattr(row_condition, "model_dump"):
        row_condition = row_condition.model_dump(mode="json")  # GE's Condition objects
    if isinstance(row_condition, Mapping):
        key = json.dumps(row_condition, sort_keys=True, default=str)
        return key, _condition_columns(row_condition)
    return repr(row_condition), None


def _memoize_row_conditions(engine_class: Any) -> None:
    """Filter by each distinct ``row_condition`` once per validation, and copy only the
    columns a metric reads.

    GE's pandas engine applies an expectation's ``row_condition`` with ``DataFrame.query`` (a
    copy of every column of the matching rows) for each metric it computes, five or six times
    per expectation: on 1M rows of ``raw.calls`` that was 1.0 s of 2.25 s, on ``raw.deals``
    (22 columns, six conditions) half of the time. Inside :func:`validate_chunks`, which sets
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
    """Import GE and build its context in a background thread (about 5-8 s of CPU, mostly
    imports), so that the first check does not wait for it: ``voronka run`` starts this before
    the extract, whose DuckDB work leaves the interpreter idle. Idempotent; returns the thread."""

    def build() -> None:
        try:
            _gx_context()
        except Exception:  # the first check will raise it again, with its context
            logger.debug("GE warm-up failed", exc_info=True)

    thread = threading.Thread(target=build, name="ge-warm-up", daemon=True)
    thread.start()
    return thread


def _batch_definition() -> Any:
    """The whole-DataFrame batch definition every suite validates through (created once).

    One data asset for all suites: the suite is an argument of each validation, and GE saves its
    whole project configuration each time an asset is added (about 0.8 s for the 60 suites and
    query parts of a run, growing with their number; D66)."""
    with _LOCK:
        if "batch_definition" not in _GX:
            _gx_context()
            asset = _GX["datasource"].add_dataframe_asset(name="batch")
            _GX["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole")
        return _GX["batch_definition"]


def _gx_suite(name: str, path: Path, specs: Sequence[tuple[int, Mapping[str, Any]]]) -> Any:
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
        gx_suite = gx.ExpectationSuite(name=name, expectations=expectations)
    except Exception as err:
        raise SuiteError(f"{path}: GE rejected the suite: {err}") from err
    if len(gx_suite.expectations) != len(expectations):
        loaded = {e.meta.get("_index") for e in gx_suite.expectations}
        bad = [f"{i} ({exp['type']})" for i, exp in specs if i not in loaded]
        raise SuiteError(f"{path}: GE rejected expectation(s) {', '.join(bad)}")
    return gx_suite


def load_suite(suite: str | SuiteFile, root: Path | str | None = None) -> ExpectationSuite:
    """The GE ``ExpectationSuite`` of a suite file (every expectation, in file order).

    Raises:
        SuiteError: the file is not a valid suite or GE rejected an expectation.
    """
    suite_file = get_suite_file(suite, root)
    _gx_context()
    return _gx_suite(suite_file.name, suite_file.path, list(enumerate(suite_file.expectations)))


@dataclass(frozen=True)
class _PreparedSuite:
    """A suite split for speed: table-shape expectations run once on a zero-row frame, the
    others on only the columns they reference (GE copies the whole frame for every
    ``row_condition``)."""

    shape: Any  # ExpectationSuite | None
    rows: Any  # ExpectationSuite | None
    row_columns: frozenset[str] | None  # None: cannot tell, keep every column


_SHAPE_PREFIXES = ("expect_table_column",)  # columns, column count, ordered column list


def _condition_columns(condition: Any) -> set[str] | None:
    """Columns a structured ``row_condition`` reads; None for string conditions."""
    if condition is None:
        return set()
    if not isinstance(condition, Mapping):
        return None
    if condition.get("type") in ("and", "or"):
        columns: set[str] = set()
        for part in condition.get("conditions", []):
            part_columns = _condition_columns(part)
            if part_columns is None:
                return None
            columns |= part_columns
        return columns
    name = (condition.get("column") or {}).get("name")
    return {name} if isinstance(name, str) else None


def _suite_key(suite_file: SuiteFile) -> tuple[Path, int, str]:
    """A suite file's version: a suite's query-defined batches are separate sub-suites of the
    same file (see Query), so the name is part of it."""
    return (suite_file.path.resolve(), suite_file.path.stat().st_mtime_ns, suite_file.name)


def _prepared_suite(suite_file: SuiteFile) -> _PreparedSuite:
    key = _suite_key(suite_file)
    with _LOCK:
        if key not in _GX_SUITES:
            _gx_context()
            shape, rows = [], []
            columns: set[str] | None = set()
            for i, exp in enumerate(suite_file.expectations):
                if exp["type"].startswith(_SHAPE_PREFIXES):
                    shape.append((i, exp))
                    continue
                rows.append((i, exp))
                kwargs = exp.get("kwargs", {})
                condition_columns = _condition_columns(kwargs.get("row_condition"))
                if columns is None or condition_columns is None:
                    columns = None
                    continue
                referenced = _expectation_columns(kwargs) + list(kwargs.get("column_list", []))
                columns |= condition_columns | set(referenced)
                columns |= {c.removesuffix(TYPED_SUFFIX) for c in referenced}  # for samples
            _GX_SUITES[key] = _PreparedSuite(
                shape=_gx_suite(suite_file.name, suite_file.path, shape) if shape else None,
                rows=_gx_suite(suite_file.name, suite_file.path, rows) if rows else None,
                row_columns=frozenset(columns) if columns is not None else None,
            )
        return _GX_SUITES[key]


# --------------------------------------------------------------------------------------------
# Validation of DataFrames


_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
# First pass of every chunk: counts and values, without the offending rows' index labels (D66)
_COUNTS_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE}
_SAMPLE_SUITES: dict[tuple, Any] = {}  # GE suites of the expectations a chunk must sample


@dataclass
class _Accumulator:
    """One expectation's results over the chunks of a batch."""

    spec: Mapping[str, Any]
    result: ExpectationResult
    all_chunks_succeeded: bool = True
    denominator: int = 0


def _expectation_columns(kwargs: Mapping[str, Any]) -> list[str]:
    return [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]


def _new_result(spec: Mapping[str, Any]) -> ExpectationResult:
    kwargs = spec.get("kwargs", {})
    columns = _expectation_columns(kwargs)
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


def _jsonable(value: Any) -> Any:
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
        return _jsonable(float(value))
    return str(value)


def _sample_rows(
    df: pd.DataFrame, labels: Sequence[Any], spec: Mapping[str, Any], key_columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The rows ``labels`` of ``df``: keys, source file and line, the expectation's columns."""
    columns: list[str] = [*key_columns, *SOURCE_COLUMNS]
    for col in _expectation_columns(spec.get("kwargs", {})):
        if col.endswith(TYPED_SUFFIX):
            columns.append(col.removesuffix(TYPED_SUFFIX))
        columns.append(col)
    columns = [c for c in dict.fromkeys(columns) if c in df.columns]
    labels = [label for label in labels if label in df.index]
    if not labels or not columns:
        return []
    rows = df.loc[labels, columns]
    return [
        {c: _jsonable(v) for c, v in zip(columns, row, strict=True)}
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
        return [_jsonable(v) for v in value]
    return _jsonable(value)


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


def validate_chunks(
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
        root: the expectations folder; see :func:`expectations_root`.
        note: a remark carried into the result.

    Returns:
        The merged result of every expectation.
    """
    started = time.perf_counter()
    suite_file = get_suite_file(suite, root)
    prepared = _prepared_suite(suite_file)
    batch_definition = _batch_definition()
    accumulators = [
        _Accumulator(spec=spec, result=_new_result(spec)) for spec in suite_file.expectations
    ]
    expectation_parameters = dict(parameters or {})

    def validate(gx_suite: Any, frame: pd.DataFrame, result_format: Mapping[str, Any]) -> list:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        _ROW_FILTERS.cache = {}
        try:
            validation = batch.validate(
                gx_suite,
                result_format=dict(result_format),
                expectation_parameters=expectation_parameters,
            )
        finally:
            _ROW_FILTERS.cache = None
            _forget_batch(batch)
        return list(validation.results)

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
            key = (*_suite_key(suite_file), to_sample)
            if key not in _SAMPLE_SUITES:
                specs = [(i, suite_file.expectations[i]) for i in to_sample]
                _SAMPLE_SUITES[key] = _gx_suite(suite_file.name, suite_file.path, specs)
            sampled = validate(_SAMPLE_SUITES[key], frame, _RESULT_FORMAT)
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
                # intermediate frames) waits for a full collection otherwise: raw.calls at large
                # peaked at 4.7 GB without this, 2.7 GB with it (D63)
                del df
                gc.collect()
    finally:
        # a reader thread (`_read_ahead`) stops before the caller uses its connection again
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
        as_of=_jsonable(as_of) if as_of is not None else None,
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


# --------------------------------------------------------------------------------------------
# The raw layer: typed batches read from DuckDB


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed_expr(column: contract.Column, business_timezone: str) -> str | None:
    """DuckDB SQL parsing a raw text column by the contract's value formats (lib/parsing.py, the
    loader's and the dbt macros' rules: D75); None for text-like types. Numbers as doubles and
    dates as timestamps, for pandas."""
    v = f"cast({_q(column.name)} as varchar)"
    if column.type == "enum":
        return f"lower({v})"
    if column.type not in parsing.PARSED_TYPES:
        return None
    parsed = parsing.parse_sql(
        column.type, v, scale=column.scale, business_timezone=business_timezone
    )
    if column.type in ("decimal", "integer"):
        return f"cast({parsed} as double)"
    if column.type in ("date", "period"):
        return f"cast({parsed} as timestamp)"
    return parsed


def typed_columns(entity: contract.Entity) -> list[str]:
    """Names of the ``__typed`` columns the batch query adds for an entity (contract order)."""
    return [f"{c.name}{TYPED_SUFFIX}" for c in entity.columns if _typed_expr(c, "UTC")]


def raw_select_sql(
    entity: contract.Entity,
    present_columns: Sequence[str],
    source: str,
    *,
    where: str = "",
    business_timezone: str | None = None,
) -> str:
    """The batch query: every column of ``source`` plus the typed columns of ``entity``.

    Args:
        entity: the contract entity.
        present_columns: the columns ``source`` has; typed columns are added only for contract
            columns among them (a missing column is reported by the suite, not by a SQL error).
        source: a table or view name, already quoted if needed (e.g. ``raw."calls"``).
        where: an optional SQL condition selecting the batch.
        business_timezone: zone of naive timestamps (default: ``VORONKA_TIMEZONE``).
    """
    tz = business_timezone or Settings.from_env().business_timezone
    present = {c.lower() for c in present_columns}
    typed = [
        f"{expr} as {_q(c.name + TYPED_SUFFIX)}"
        for c in entity.columns
        if c.name in present and (expr := _typed_expr(c, tz))
    ]
    select = ",\n    ".join(["*", *typed])
    sql = f"select\n    {select}\nfrom {source}"
    return f"{sql}\nwhere {where}" if where else sql


def _to_pandas_types(df: pd.DataFrame) -> pd.DataFrame:
    """Typed timestamps as clipped ``datetime64[ns]`` (GE's vectorised path for datetimes)."""
    import pandas as pd

    for name in df.columns:
        if name.endswith(TYPED_SUFFIX) and pd.api.types.is_datetime64_any_dtype(df[name].dtype):
            low, high = (pd.Timestamp(t) for t in _TIMESTAMP_CLIP)
            df[name] = df[name].clip(lower=low, upper=high).astype("datetime64[ns]")
    return df


def _arrow_chunks(relation: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``chunk_rows`` rows from a DuckDB relation (at least one).

    Decimals become doubles: pandas holds them as Python objects, which GE compares one by one.
    """
    import pyarrow as pa

    reader = relation.to_arrow_reader(min(chunk_rows, 1_000_000))
    schema = reader.schema
    as_double = pa.schema(
        [f.with_type(pa.float64()) if pa.types.is_decimal(f.type) else f for f in schema]
    )

    def frame(batches: list[Any]) -> pd.DataFrame:
        table = pa.Table.from_batches(batches, schema)
        if as_double != schema:
            table = table.cast(as_double)
        return _to_pandas_types(table.to_pandas())

    pending: list[Any] = []
    pending_rows = 0
    yielded = False
    for record_batch in reader:
        offset = 0
        while offset < record_batch.num_rows:
            piece = record_batch.slice(offset, chunk_rows - pending_rows)
            offset += piece.num_rows
            pending.append(piece)
            pending_rows += piece.num_rows
            if pending_rows == chunk_rows:
                yield frame(pending)
                pending, pending_rows, yielded = [], 0, True
    if pending or not yielded:  # an empty batch is still one (empty) DataFrame
        yield frame(pending)


def _read_ahead(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The same frames, the next one read by a helper thread while the caller validates this one.

    Reading (DuckDB's query, Arrow, the conversion to pandas) mostly runs without the GIL, GE's
    validation mostly with it: the two overlap on the second core (D67). At most one frame
    waits, so memory grows by one chunk. The reader's errors are raised here, where the frame
    would have been; a consumer that stops early stops the reader before this returns (the
    connection is then free for the caller again).
    """
    import queue

    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    taken = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
                del frame
                # the next read starts once this frame is taken: at most one frame waits or is
                # being read while the consumer validates its own
                while slot.unfinished_tasks and not stop.is_set():
                    taken.wait(0.05)
                    taken.clear()
            put(end)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    reader = threading.Thread(target=read, name="voronka-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = slot.get()
            slot.task_done()
            taken.set()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item
    finally:
        stop.set()
        reader.join()


def _parse_as_of(value: str | datetime | None, business_timezone: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return parse_timestamp(str(value), business_timezone)


def _as_of_parameter(as_of: datetime | None, fallback: Any) -> str:
    """The ``as_of`` expectation parameter as an ISO string GE parses into a datetime."""
    import pandas as pd

    value = as_of
    if value is None and fallback is not None and not pd.isna(fallback):
        value = pd.Timestamp(fallback).to_pydatetime()
    if value is None:
        # no timestamp at all in the batch: nothing to compare, any bound holds
        value = datetime.fromisoformat(_TIMESTAMP_CLIP[1])
    return value.replace(tzinfo=None).isoformat(timespec="seconds")


def type_raw_frame(
    entity: str, df: pd.DataFrame, *, business_timezone: str | None = None
) -> pd.DataFrame:
    """``df`` (text columns as in ``raw.<entity>``) plus its ``__typed`` columns.

    The same DuckDB query as for the warehouse, run on an in-memory connection, so tests and
    ad-hoc checks see exactly what the asset checks see.
    """
    import duckdb

    sql = raw_select_sql(
        contract.ENTITY_BY_NAME[entity],
        list(df.columns),
        "frame",
        business_timezone=business_timezone,
    )
    con = duckdb.connect()
    try:
        con.register("frame", df)
        return _to_pandas_types(con.sql(sql).df())
    finally:
        con.close()


def validate_raw_frame(
    entity: str,
    df: pd.DataFrame,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate a raw-shaped DataFrame (text columns as in ``raw.<entity>``) with its suite.

    Args:
        entity: a contract entity, e.g. ``survey_responses``.
        df: its rows; ``_loaded_at`` is optional (it is the default ``as_of``).
        as_of: the as-of (ISO 8601 or datetime); default ``VORONKA_AS_OF``, then the latest
            ``_loaded_at``, then the latest typed timestamp of the frame.
        business_timezone: zone of naive timestamps (default ``VORONKA_TIMEZONE``).
        root: the expectations folder.
    """
    import pandas as pd

    settings = Settings.from_env()
    tz = business_timezone or settings.business_timezone
    typed = type_raw_frame(entity, df, business_timezone=tz)
    fallback = None
    if "_loaded_at" in typed.columns:
        fallback = pd.to_datetime(typed["_loaded_at"], errors="coerce").max()
    if fallback is None or pd.isna(fallback):
        stamps = [
            typed[c].max()
            for c in typed.columns
            if c.endswith(TYPED_SUFFIX) and pd.api.types.is_datetime64_any_dtype(typed[c].dtype)
        ]
        stamps = [s for s in stamps if not pd.isna(s)]
        fallback = max(stamps) if stamps else None
    parameters = {
        AS_OF_PARAMETER: _as_of_parameter(_parse_as_of(as_of or settings.as_of, tz), fallback)
    }
    key_columns = contract.ENTITY_BY_NAME[entity].key
    return validate_chunks(
        [typed], f"raw.{entity}", parameters=parameters, key_columns=key_columns, root=root
    )


def _table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns"
        " where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


VALIDATED_BATCHES = "_validated_batches"  # in schema raw, next to the load log
VALIDATED_BATCHES_DDL = f"""
create table if not exists raw.{VALIDATED_BATCHES} (
    suite varchar not null,      -- e.g. raw.calls, core.fct_calls
    batch_id varchar not null,   -- raw._load_log.batch_id
    outcome varchar not null,    -- passed, warn, error (error only for non-blocking layers)
    validated_at timestamp not null,  -- UTC
    run_id varchar
)
"""


def _pending_batches(
    con: duckdb.DuckDBPyConnection, entity: str, suite: str
) -> tuple[list[str], str]:
    """The batches of an entity that `suite` has not validated yet: (batch ids, problem).

    Every ``loaded``/``reloaded`` batch of ``raw._load_log`` (a batch replaced since by a
    reload has no rows left and validates as empty) without a row for ``suite`` in
    ``raw._validated_batches``.
    """
    if not _table_columns(con, "raw", "_load_log"):
        return [], "raw._load_log does not exist"
    statuses = ", ".join(_lit(s) for s in LOADED_STATUSES)
    seen = ""
    if _table_columns(con, "raw", VALIDATED_BATCHES):
        seen = (
            f" and batch_id not in (select batch_id from raw.{VALIDATED_BATCHES}"
            f" where suite = {_lit(suite)})"
        )
    # fetchall, not fetchone: DuckDB refuses further work on a connection with a pending result
    rows = con.execute(
        f"select distinct batch_id from raw._load_log where entity = ? and status in ({statuses})"
        f" and batch_id is not null{seen} order by 1",
        [entity],
    ).fetchall()
    return [r[0] for r in rows], ""


def record_validated(
    con: duckdb.DuckDBPyConnection, result: SuiteResult, run_id: str | None = None
) -> int:
    """Record the batches a result validated, so that no later check validates them again.

    A failed ``error`` expectation of a blocking layer (raw, finance) records nothing: the
    batch stays pending and blocks every run until its file is fixed or forgotten. Returns the
    batches recorded.
    """
    if not result.batch_ids or result.skipped:
        return 0
    outcome = result.severity or "passed"
    if outcome == "error" and result.layer in BLOCKING_LAYERS:
        return 0
    con.execute("create schema if not exists raw")
    con.execute(VALIDATED_BATCHES_DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        f"insert into raw.{VALIDATED_BATCHES} select ?, ?, ?, ?, ? where not exists"
        f" (select 1 from raw.{VALIDATED_BATCHES} where suite = ? and batch_id = ?)",
        [
            [result.suite_name, batch, outcome, now, run_id, result.suite_name, batch]
            for batch in result.batch_ids
        ],
    )
    return len(result.batch_ids)


def validate_raw_table(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate ``raw.<entity>`` of a warehouse with the suite ``raw.<entity>``.

    The batch is the suite's ``meta.batch``: ``full``, or ``latest_load_run`` (rows whose
    ``_batch_id`` is a loaded batch the suite has not validated yet, :func:`_pending_batches`;
    the result's ``batch_ids`` name them for :func:`record_validated`). When every batch has
    been validated, nothing is and the result passes with a note. Rows are read ``chunk_rows``
    at a time.

    Args:
        con: an open DuckDB connection (read-only is enough); the caller closes it.
        entity: a contract entity, e.g. ``calls``.
        as_of: see the module docstring; default ``VORONKA_AS_OF``, else the batch's latest
            ``_loaded_at``.
        business_timezone: zone of naive timestamps (default ``VORONKA_TIMEZONE``).
        chunk_rows: the most rows held in memory at once.
        root: the expectations folder.
    """
    started = time.perf_counter()
    settings = Settings.from_env()
    tz = business_timezone or settings.business_timezone
    ent = contract.ENTITY_BY_NAME[entity]
    suite_file = get_suite_file(f"raw.{entity}", root)
    columns = _table_columns(con, "raw", entity)

    def nothing(note: str, success: bool = True) -> SuiteResult:
        logger.info("raw.%s: nothing validated: %s", entity, note)
        return SuiteResult(
            suite_name=suite_file.name,
            success=success,
            note=note,
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    if not columns:
        if ent.optional:
            return nothing(f"raw.{entity} does not exist (optional entity, no files loaded)")
        return nothing(f"raw.{entity} does not exist: run its load first", success=False)

    where, params, note, batch_ids = "", [], "", []
    if suite_file.batch == "latest_load_run":
        batch_ids, problem = _pending_batches(con, entity, suite_file.name)
        if problem:
            note = f"{problem}; validated the whole table"
            logger.warning("raw.%s: %s", entity, note)
        elif not batch_ids:
            return nothing(f"every loaded batch of {entity} has been validated already")
        elif "_batch_id" in columns:
            where = f"_batch_id in ({', '.join('?' for _ in batch_ids)})"
            params = batch_ids
            note = f"{len(batch_ids)} file load(s) not validated before"
        else:
            note = "raw table has no _batch_id column; validated the whole table"
            batch_ids = []

    source = f"raw.{_q(entity)}"
    loaded_at = "max(_loaded_at)" if "_loaded_at" in columns else "null"
    count_sql = f"select count(*), {loaded_at} from {source}" + (f" where {where}" if where else "")
    [(total, latest_loaded_at)] = con.execute(count_sql, params).fetchall()
    parameters = {
        AS_OF_PARAMETER: _as_of_parameter(
            _parse_as_of(as_of or settings.as_of, tz), latest_loaded_at
        )
    }
    sql = raw_select_sql(ent, columns, source, where=where, business_timezone=tz)
    logger.debug("raw.%s: validating %s rows with\n%s", entity, f"{total:,}", sql)
    relation = con.sql(sql, params=params) if params else con.sql(sql)
    result = validate_chunks(
        _read_ahead(_arrow_chunks(relation, chunk_rows)),
        suite_file,
        parameters=parameters,
        key_columns=ent.key,
        note=note,
    )
    result.batch_ids = list(batch_ids)
    result.duration_seconds = round(time.perf_counter() - started, 3)
    return result


# --------------------------------------------------------------------------------------------
# Every other layer: staging, core, marts, finance (tables as dbt built them)


LAYERS = ("raw", "staging", "core", "marts", "finance")
# Layers whose failed `error` expectations block the assets downstream (see defs/quality/checks):
# raw feeds every model; finance is what gets paid out.
BLOCKING_LAYERS = ("raw", "finance")
# Layers built on another branch or not at all yet: a missing table is skipped, not a failure.
OPTIONAL_LAYERS = ("finance",)
_EPOCH = "1970-01-01T00:00:00"
_NEVER = _TIMESTAMP_CLIP[1] + "T00:00:00"


def warehouse_as_of(con: duckdb.DuckDBPyConnection, as_of: str | datetime | None = None) -> str:
    """The as-of of a validation of the modelled layers, naive UTC ISO text.

    ``as_of`` (or ``VORONKA_AS_OF``) when given, else the as-of dbt used
    (``intermediate.int_as_of.as_of_at``: the var, else the latest event), else a far-future
    bound (nothing is late against it).
    """
    settings = Settings.from_env()
    given = _parse_as_of(as_of or settings.as_of, settings.business_timezone)
    fallback = None
    if given is None and _table_columns(con, "intermediate", "int_as_of"):
        rows = con.execute("select max(as_of_at) from intermediate.int_as_of").fetchall()
        fallback = rows[0][0] if rows else None
    return _as_of_parameter(given, fallback)


def _batch_since(
    con: duckdb.DuckDBPyConnection, suite_file: SuiteFile
) -> tuple[str, str, list[str]]:
    """(``$batch_since``, note, batch ids): where the suite's batch starts in ``_loaded_at``.

    ``full``: the epoch. ``latest_load_run``: the earliest ``_loaded_at`` of the rows of the
    batches of ``meta.entity`` the suite has not validated yet (:func:`_pending_batches`), so a
    model row belongs to the batch when its ``loaded_column`` (``_last_loaded_at`` of
    incremental facts: the newest load of any of its versions) is at or after it. Nothing
    pending: a far-future bound, the batch is empty.
    """
    if suite_file.batch == "full":
        return _EPOCH, "", []
    entity = suite_file.meta["entity"]
    batch_ids, problem = _pending_batches(con, entity, suite_file.name)
    if problem:
        return _EPOCH, f"{problem}; validated the whole table", []
    if not batch_ids:
        return _NEVER, f"every loaded batch of {entity} has been validated already", []
    marks = ", ".join("?" for _ in batch_ids)
    [(since,)] = con.execute(
        f"select min(_loaded_at) from raw.{_q(entity)} where _batch_id in ({marks})", batch_ids
    ).fetchall()
    if since is None:
        return _NEVER, f"the {entity} batches not validated yet left no rows in raw", batch_ids
    since_text = since.isoformat(timespec="microseconds")
    note = f"{len(batch_ids)} {entity} batch(es) not validated before: loaded since {since_text}"
    return since_text, note, batch_ids


def _query_parameters(query: Query, values: Mapping[str, str]) -> dict[str, str]:
    return {name: values[name] for name in query.parameters}


def _failed_query_results(
    specs: Sequence[tuple[int, Mapping[str, Any]]], query: str, message: str
) -> dict[int, ExpectationResult]:
    results = {}
    for i, spec in specs:
        result = _new_result(spec)
        result.success = False
        result.exception = message
        result.query = query
        results[i] = result
    return results


def validate_layer_table(
    con: duckdb.DuckDBPyConnection,
    suite: str | SuiteFile,
    *,
    as_of: str | datetime | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate a table of staging, core, marts or finance with its suite.

    The suite's expectations run on one of two kinds of batch:

    - the table itself (expectations without ``meta.query``): the whole table (``meta.batch``
      ``full``), or the rows of the batches not validated yet (``latest_load_run``: rows whose
      ``meta.loaded_column``, default ``_last_loaded_at`` else ``_loaded_at``, is at or after
      ``$batch_since``, see :func:`_batch_since`), read ``chunk_rows`` at a time and only the
      columns the expectations use;
    - a query-defined batch (``meta.query: <name>``): the DataFrame of the DuckDB query
      ``meta.queries.<name>.sql``, for cross-table rules (coverage, reconciliation, freshness,
      sums); see :class:`Query`.

    A missing table is a failure (``error``), except in ``OPTIONAL_LAYERS`` (finance, built on
    another branch), where the result is skipped with the note "table missing". A query that
    fails (e.g. a table it reads is missing) fails its expectations with the error as exception.

    Args:
        con: an open DuckDB connection (read-only is enough); the caller closes it.
        suite: ``"<layer>.<table>"`` or a :class:`SuiteFile`.
        as_of: see :func:`warehouse_as_of`.
        chunk_rows: the most rows of the table held in memory at once.
        root: the expectations folder.

    Returns:
        One result for the suite, expectations in file order; ``duration_seconds`` covers
        reading and validating every batch.
    """
    import duckdb

    started = time.perf_counter()
    suite_file = get_suite_file(suite, root)
    layer, table = suite_file.layer, suite_file.table
    columns = _table_columns(con, layer, table)
    if not columns:
        optional = layer in OPTIONAL_LAYERS
        return SuiteResult(
            suite_name=suite_file.name,
            success=optional,
            skipped=optional,
            note=(
                f"table missing: {layer}.{table} does not exist"
                + (" (yet: its models are not built on this warehouse)" if optional else "")
            ),
            expectations=[]
            if optional
            else list(
                _failed_query_results(
                    list(enumerate(suite_file.expectations)), None, "table missing"
                ).values()
            ),
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    as_of_text = warehouse_as_of(con, as_of)
    since, note, batch_ids = _batch_since(con, suite_file)
    values = {"as_of": as_of_text, "batch_since": since}
    parameters = {AS_OF_PARAMETER: as_of_text}
    groups: dict[str | None, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, spec in enumerate(suite_file.expectations):
        groups.setdefault((spec.get("meta") or {}).get("query"), []).append((i, spec))
    queries = suite_file.queries
    results: dict[int, ExpectationResult] = {}
    rows = chunks = 0
    for query_name, specs in groups.items():
        part = replace(
            suite_file,
            name=suite_file.name if query_name is None else f"{suite_file.name}.{query_name}",
            expectations=tuple(spec for _, spec in specs),
        )
        if query_name is None:
            key_columns = tuple(suite_file.meta.get("key_columns", ()))
            prepared = _prepared_suite(part)
            wanted = ["*"]
            if prepared.shape is None and prepared.row_columns is not None:
                keep = prepared.row_columns | set(key_columns) | set(SOURCE_COLUMNS)
                wanted = [_q(c) for c in columns if c in keep] or ["1 as _row"]
            where = ""
            if suite_file.batch == "latest_load_run":
                loaded = suite_file.meta.get("loaded_column") or (
                    "_last_loaded_at" if "_last_loaded_at" in columns else "_loaded_at"
                )
                where = f" where {_q(loaded)} >= cast($batch_since as timestamp)"
            sql = f"select {', '.join(wanted)} from {_q(layer)}.{_q(table)}{where}"
            relation = con.sql(sql, params={"batch_since": since}) if where else con.sql(sql)
            frames = _read_ahead(_arrow_chunks(relation, chunk_rows))
        else:
            query = queries[query_name]
            key_columns = query.key_columns
            try:
                relation = con.sql(query.sql, params=_query_parameters(query, values) or None)
                frames = _read_ahead(_arrow_chunks(relation, chunk_rows))
                first = next(frames)
            except duckdb.Error as err:
                message = f"query {query_name} failed: {err}"
                logger.warning("%s: %s", suite_file.name, message)
                results.update(_failed_query_results(specs, query_name, message))
                continue
            # a query selects what is worth seeing: samples show every column of its result
            key_columns = tuple(dict.fromkeys([*query.key_columns, *first.columns]))
            frames = _chain(first, frames)
        part_result = validate_chunks(
            frames, part, parameters=parameters, key_columns=key_columns, root=root
        )
        if query_name is None:
            rows, chunks = part_result.rows_validated, part_result.chunks
        elif None not in groups:  # a suite of queries only: its largest batch
            rows = max(rows, part_result.rows_validated)
            chunks = max(chunks, part_result.chunks)
        for (i, _), result in zip(specs, part_result.expectations, strict=True):
            result.query = query_name
            results[i] = result
    ordered = [results[i] for i in range(len(suite_file.expectations))]
    outcome = SuiteResult(
        suite_name=suite_file.name,
        success=not any(r.severity == "error" and not r.success for r in ordered),
        rows_validated=rows,
        chunks=chunks,
        as_of=as_of_text,
        note=note,
        expectations=ordered,
        duration_seconds=round(time.perf_counter() - started, 3),
        batch_ids=batch_ids,
    )
    logger.info("%s in %.2fs", outcome.summary(), outcome.duration_seconds)
    return outcome


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def validate_suite(
    con: duckdb.DuckDBPyConnection,
    suite: str | SuiteFile,
    *,
    as_of: str | datetime | None = None,
    business_timezone: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate one suite of any layer: raw by :func:`validate_raw_table` (typed batches not
    validated yet), the others by :func:`validate_layer_table`. The one entry point of the
    asset checks and of ``voronka validate``."""
    suite_file = get_suite_file(suite, root)
    if suite_file.layer == "raw":
        return validate_raw_table(
            con,
            suite_file.table,
            as_of=as_of,
            business_timezone=business_timezone,
            chunk_rows=chunk_rows,
            root=suite_file.path.parent.parent,
        )
    return validate_layer_table(
        con, suite_file, as_of=as_of, chunk_rows=chunk_rows, root=suite_file.path.parent.parent
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


@contextmanager
def read_only_warehouse(
    path: Path | str, *, wait_seconds: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only DuckDB connection to the warehouse, closed on exit.

    DuckDB admits one writer process; while another process writes, opening fails with a lock
    error, so the open is retried for up to ``wait_seconds``.

    The connection's ``memory_limit`` (``VORONKA_VALIDATION_MEMORY_LIMIT``, default
    ``1GB``) bounds DuckDB's cache of table blocks and its queries, which spill to disk beyond
    it: the batches' DataFrames need the rest of the process's memory. Without a limit DuckDB
    allows itself 80 % of the machine and kept every block of ``raw.calls`` it had read (1 GB at
    the large scale, on top of the frames; D63).

    Raises:
        FileNotFoundError: there is no warehouse file (nothing has been loaded yet).
    """
    import duckdb

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: load the inbox first")
    limit = os.environ.get(VALIDATION_MEMORY_ENV) or DEFAULT_VALIDATION_MEMORY
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True, config={"memory_limit": limit})
            break
        except duckdb.IOException as err:
            if "lock" not in str(err).lower() or time.monotonic() >= deadline:
                raise
            logger.info("warehouse %s is locked by a writer; retrying", path)
            time.sleep(1.0)
    try:
        yield con
    finally:
        con.close()
