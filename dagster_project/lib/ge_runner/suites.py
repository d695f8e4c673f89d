"""Suite files ``expectations/<layer>/<table>.json``: reading, checking and discovering them.

Read as JSON: GE is not imported here (it takes seconds). Every expectation carries
``meta.severity``: ``error`` (a failure fails the suite) or ``warn`` (reported, never fails it).
A suite's ``meta.batch`` says which rows form its batch: ``full`` (the whole table) or
``latest_load_run`` (the rows of the loaded batches the suite has not validated yet, D82; see
:mod:`.batches`). Kwargs may use GE's own ``{"$PARAMETER": "as_of"}``: the runner passes the
as-of as an ``expectation_parameters`` value on every validation, so the JSON stays plain GE.
Suites of layers other than raw may add query-defined batches (``meta.queries``, :class:`Query`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "expectations"
ROOT_ENV = "VORONKA_EXPECTATIONS"
SEVERITIES = ("error", "warn")
BATCH_MODES = ("full", "latest_load_run")
TYPED_SUFFIX = "__typed"  # a raw column parsed by its contract type (see .raw)
AS_OF_PARAMETER = "as_of"

LAYERS = ("raw", "staging", "core", "marts", "finance")
# Layers whose failed `error` expectations block the assets downstream (see defs/quality/checks):
# raw feeds every model; finance is what gets paid out.
BLOCKING_LAYERS = ("raw", "finance")
# Layers built on another branch or not at all yet: a missing table is skipped, not a failure.
OPTIONAL_LAYERS = ("finance",)


class SuiteError(ValueError):
    """A suite file is missing, unreadable or not in the shape the runner accepts."""


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
            ``loaded_column``, ``key_columns``, ``queries`` and ``rows_kept_in``; see
            :func:`validate_layer_table` and :func:`~.layers.kept_rows`).
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


# complexity (C901, PLR0912): a list of independent checks of a suite file's shape, each with its
# own message
def read_suite_file(path: Path | str) -> SuiteFile:  # noqa: C901, PLR0912
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


def condition_columns(condition: Any) -> set[str] | None:
    """Columns a structured ``row_condition`` reads; None for string conditions."""
    if condition is None:
        return set()
    if not isinstance(condition, Mapping):
        return None
    if condition.get("type") in ("and", "or"):
        columns: set[str] = set()
        for part in condition.get("conditions", []):
            part_columns = condition_columns(part)
            if part_columns is None:
                return None
            columns |= part_columns
        return columns
    name = (condition.get("column") or {}).get("name")
    return {name} if isinstance(name, str) else None


def suite_key(suite_file: SuiteFile) -> tuple[Path, int, str]:
    """A suite file's version: a suite's query-defined batches are separate sub-suites of the
    same file (see Query), so the name is part of it."""
    return (suite_file.path.resolve(), suite_file.path.stat().st_mtime_ns, suite_file.name)


def expectation_columns(kwargs: Mapping[str, Any]) -> list[str]:
    return [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]
