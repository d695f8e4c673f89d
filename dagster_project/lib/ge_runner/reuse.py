"""A suite's result given again when its batch is the rows it last validated (D330).

Most suites cost GE's fixed work per expectation, not their rows (D66), and a daily run validates
many tables whose rows did not change: the small raw tables of a ``full`` suite, the dimensions,
the seeds' tables. A validation is a function of what it is given: the suite file, the rows of
each of its batches (the table's and every query's), the parameters it uses, the chunk size and
the code and versions that run it. :func:`fingerprint` is one digest of all of these, the rows
counted and hashed in the warehouse (``count(*)`` and the sum of each row's ``hash``, the
fingerprint of the month-incremental marts, D11), so nothing is read into Python for it. The
check that validated keeps its result with the fingerprint (:func:`store`, a JSON file per suite
beside the validated file, :func:`results_folder`: no write into the warehouse); a later
validation whose fingerprint is the kept one gives that result again (:func:`stored`), failures
and samples included: a failure stays reported on every run while its rows are there, and any
changed, added or removed row, any edit of the suite or of the code makes the suite validate
again.

Limits: only on DuckDB (another engine validates every time); only when every batch fits in one
chunk (``chunk_rows``): a batch read in several chunks judges uniqueness per chunk, so its result
could depend on the order of the rows, which the fingerprint does not see; never for a suite with
an expectation on the rows' order (``ORDER_SENSITIVE``). Otherwise the order changes nothing but
which offending rows a sample shows first; a result given again shows the rows sampled when it
was made.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib import warehouse as wh
from dagster_project.lib.ge_runner.results import ExpectationResult, SuiteResult

if TYPE_CHECKING:
    from dagster_project.lib.connection import Connection
    from dagster_project.lib.ge_runner.suites import SuiteFile

logger = logging.getLogger(__name__)

FOLDER_SUFFIX = ".validations"  # beside the validated warehouse file: one JSON per suite


def results_folder(warehouse: Path | str) -> Path | None:
    """Where the results that may be given again are kept: ``<file>.validations/`` beside the
    validated DuckDB file (the working copy during a run, D80); None for PostgreSQL."""
    target = wh.parse_target(warehouse)
    if wh.is_postgres(target):
        return None
    return target.with_name(target.name + FOLDER_SUFFIX)


# expectations whose result depends on the order of the rows: a suite with one is always validated
ORDER_SENSITIVE = (
    "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_decreasing",
)


@dataclass(frozen=True)
class Batch:
    """One batch of a suite as the validation reads it: its name (None for the suite's table),
    its SQL, the SQL's parameters, its number of rows if the caller counted them, and its rows
    as an Arrow table if the caller read them already (D390: the fingerprint hashes those rows,
    the very ones the validation then judges, instead of running the SQL once more)."""

    name: str | None
    sql: str
    params: Any = None
    rows: int | None = None
    data: Any = None


@functools.lru_cache(maxsize=1)
def _code() -> str:
    """The pipeline's own files and the versions that run a validation (D150's digest)."""
    from importlib import metadata

    from dagster_project.lib import run_inputs

    versions = {}
    for name in ("great_expectations", "duckdb", "pandas", "pyarrow", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = ""
    return json.dumps([run_inputs.code_digest(), versions])


def uses_parameters(suite_file: SuiteFile) -> bool:
    """Whether an expectation of the suite reads a ``$PARAMETER`` (the as-of)."""
    return "$PARAMETER" in json.dumps(list(suite_file.expectations))


def fingerprint(
    con: Connection,
    suite_file: SuiteFile,
    batches: Sequence[Batch],
    *,
    parameters: Mapping[str, Any],
    chunk_rows: int,
    extra: Mapping[str, Any] | None = None,
) -> str | None:
    """The digest of everything a validation of ``suite_file`` on ``batches`` depends on; None
    when its result may not be given again (not DuckDB, an expectation that reads the rows'
    order, a batch larger than one chunk, a batch whose SQL fails: the validation reports that
    itself).

    Args:
        con: the validation's connection.
        suite_file: the suite.
        batches: the SQL of each batch, as validated.
        parameters: the expectations' ``$PARAMETER`` values (left out of the digest when no
            expectation reads one).
        chunk_rows: the validation's chunk size.
        extra: whatever else the result depends on (time zone, key columns, batch ids).
    """
    if getattr(con, "engine", None) != "duckdb":
        return None
    if any(spec.get("type") in ORDER_SENSITIVE for spec in suite_file.expectations):
        return None  # the sum of the rows' hashes does not see their order
    digest = hashlib.sha256()

    def add(value: Any) -> None:
        digest.update(json.dumps(value, sort_keys=True, default=str).encode() + b"\0")

    add(
        [
            _code(),
            suite_file.name,
            suite_file.path.read_text(encoding="utf-8"),
            dict(parameters) if uses_parameters(suite_file) else None,
            chunk_rows,
            dict(extra or {}),
        ]
    )
    for batch in batches:
        params = batch.params or None
        try:
            if batch.rows is not None and batch.rows > chunk_rows:
                return None
            if batch.data is not None:  # read once: hashed as read (D390)
                if batch.data.num_rows > chunk_rows:
                    return None
                shape, rows, hashed = _read_shape_and_hash(con, batch.data)
                add([batch.name, batch.sql, batch.params, shape, rows, str(hashed)])
                continue
            relation = con.raw.sql(batch.sql, params=params)
            shape = [relation.columns, [str(t) for t in relation.types]]
            # one pass: a batch read from a view computes the view once more, not twice
            [(rows, hashed)] = con.raw.sql(
                f"select count(*), sum(hash(q)) from ({batch.sql}) as q", params=params
            ).fetchall()
            if rows > chunk_rows:
                return None
        except wh.database_errors() as err:  # the validation reports a failing query
            logger.debug("%s: no fingerprint of %s: %s", suite_file.name, batch.name, err)
            return None
        add([batch.name, batch.sql, batch.params, shape, rows, str(hashed)])
    return digest.hexdigest()


_READ_BATCH = "_voronka_read_batch"


def _read_shape_and_hash(con: Connection, data: Any) -> tuple[list[Any], int, Any]:
    """The shape (column names, DuckDB types), the rows and the sum of the rows' ``hash`` of a
    batch already read into Arrow: DuckDB reads the Arrow table back with the types it exported
    it with, and hashes its values as it hashes them in a table."""
    with con.staged(_READ_BATCH, data):
        relation = con.raw.sql(f"select * from {_READ_BATCH}")
        shape = [relation.columns, [str(t) for t in relation.types]]
        [(rows, hashed)] = con.raw.sql(
            f"select count(*), sum(hash(q)) from {_READ_BATCH} as q"
        ).fetchall()
    return shape, rows, hashed


def stored(
    folder: Path | None,
    suite: str,
    fingerprint_: str | None,
    *,
    started: float,
    as_of: str | None,
    batch_ids: Sequence[str] = (),
) -> SuiteResult | None:
    """The result kept in ``folder`` for ``suite`` with this fingerprint, if any, given again:
    its note says so, its time is this call's (``started``: ``time.perf_counter()`` when the
    validation began), its as-of and batches this validation's."""
    if folder is None or fingerprint_ is None:
        return None
    try:
        kept = json.loads((folder / f"{suite}.json").read_text(encoding="utf-8"))
        if kept["fingerprint"] != fingerprint_:
            return None
        result = from_json(kept["result"])
    except (OSError, ValueError, KeyError, TypeError):  # none kept, or not readable: validate
        return None
    run_id = kept.get("run_id")
    result.fingerprint = fingerprint_
    result.reused = (
        f"the rows validated at {kept.get('validated_at')} UTC"
        + (f" (run {run_id[:8]})" if run_id else "")
        + ", unchanged: that validation's result (D330)"
    )
    result.note = "; ".join(part for part in (result.note, result.reused) if part)
    result.as_of = as_of
    result.batch_ids = list(batch_ids)
    result.duration_seconds = round(time.perf_counter() - started, 3)
    logger.info("%s in %.2fs", result.summary(), result.duration_seconds)
    return result


def store(folder: Path | None, result: SuiteResult, run_id: str | None = None) -> bool:
    """Keep a validation's result with its fingerprint in ``folder`` (one per suite: the newest;
    written whole, then renamed); nothing for a result given again or without a fingerprint.
    Returns whether it kept it."""
    if folder is None or result.fingerprint is None or result.reused or result.skipped:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.suite_name}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    kept = {
        "fingerprint": result.fingerprint,
        "validated_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
        "run_id": run_id,
        "result": to_json(result),
    }
    tmp.write_text(json.dumps(kept), encoding="utf-8")
    os.replace(tmp, path)
    return True


_NOT_STORED = ("duration_seconds", "fingerprint", "reused")


def to_json(result: SuiteResult) -> str:
    data = {k: v for k, v in result.to_dict().items() if k not in _NOT_STORED}
    return json.dumps(data, default=str)


def from_json(text: str) -> SuiteResult:
    data = json.loads(text)
    known = {f.name for f in fields(ExpectationResult)}
    data["expectations"] = [
        ExpectationResult(**{k: v for k, v in e.items() if k in known})
        for e in data.get("expectations", [])
    ]
    known = {f.name for f in fields(SuiteResult)}
    return SuiteResult(**{k: v for k, v in data.items() if k in known})
