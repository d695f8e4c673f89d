"""A dbt data test that passed is not run again while nothing it reads has changed (D370).

A daily run rebuilds every table, but most of the tables under its data tests are made of
inputs the day did not bring: the seeds, the dimensions of managers and pipeline stages, the
small inbox tables (plans, weights, pools), the staging views of the sources that are off, the
finance ledger. A dbt data test costs dbt a node (compiled, run, its result written), about the
same on ten rows as on a hundred thousand ([performance.md](../../docs/performance.md#d370)).

What a test returns is a function of what it reads. A table model holds what its SQL makes of
its inputs, so what a test reads is decided by the code (every file of the dbt project, the
run's vars, dbt's version and target: the shared parse's key, D220; DuckDB's version) and by the
rows of the sources upstream of it in dbt's graph (`parent_map`, to the sources). So a test's
key (:func:`keys_of_tests`) is the digest of the parse key, DuckDB's version, the test's id and the
fingerprint of each source upstream of it: its columns and types, its number of rows and the
sum of its rows' `hash` (the fingerprint of D11 and D330), computed in the warehouse. A test
is given again (left out of `dbt build`, its check reported passed again) only when:

- it passed the last time it ran, with the same key (:func:`store` keeps only passes: a failure
  or a warning always runs again, so it fails or warns exactly as before);
- every source upstream of it has at most `MAX_FINGERPRINT_ROWS` rows: the tables a day grows
  (calls, activities, deals) are not hashed, their tests always run;
- no incremental model is upstream of it: an incremental table also keeps rows of its earlier
  builds, so its rows are not a function of its sources alone;
- on DuckDB (another engine runs every test, as D330).

Any code change, any change of a setting, a new, changed or removed row in an upstream source
runs the test again (and a D320 full rebuild follows a code change, so a full check does too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster_project.lib import warehouse as wh

logger = logging.getLogger(__name__)

# a source with more rows is not hashed on every run: the tests downstream of it always run
MAX_FINGERPRINT_ROWS = 50_000

FILE_SUFFIX = ".dbt_tests.json"  # beside the working copy, as D330's results


def kept_path(warehouse: Path | str) -> Path | None:
    """Where the keys of the tests that passed are kept: `<file>.dbt_tests.json` beside the
    DuckDB file dbt builds (the working copy during a run, D80); None for PostgreSQL."""
    target = wh.parse_target(warehouse)
    if wh.is_postgres(target):
        return None
    return Path(target).with_name(Path(target).name + FILE_SUFFIX)


def upstream(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    """Every node and source upstream of `unique_id` in dbt's graph."""
    parents = manifest["parent_map"]
    found: set[str] = set()
    stack = list(parents.get(unique_id, ()))
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(parents.get(node, ()))
    return found


def _is_incremental(manifest: Mapping[str, Any], unique_id: str) -> bool:
    node = manifest["nodes"].get(unique_id) or {}
    return (node.get("config") or {}).get("materialized") == "incremental"


def source_fingerprints(con, manifest: Mapping[str, Any], sources: Iterable[str]) -> dict:
    """The fingerprint of each source (unique id) read in `con` (DuckDB): its columns and
    types, its rows and the sum of their hashes; "missing" when the relation does not exist
    (a source that is off: staging reads an empty relation, D40); None when it has more than
    `MAX_FINGERPRINT_ROWS` rows or cannot be read (its tests run)."""
    found: dict[str, Any] = {}
    wanted = sorted(set(sources))
    try:  # every column of every relation in one query: most sources are small or missing
        columns: dict[tuple[str, str], list] = {}
        for schema, name, column, data_type in con.raw.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns where table_catalog = current_database() "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall():
            columns.setdefault((schema, name), []).append([column, data_type])
    except wh.database_errors() as err:
        logger.debug("no fingerprints: %s", err)
        return dict.fromkeys(wanted)
    for unique_id in wanted:
        source = manifest["sources"][unique_id]
        schema, name = source["schema"], source["identifier"]
        if (schema, name) not in columns:
            found[unique_id] = "missing"
            continue
        relation = f'"{schema}"."{name}"'
        try:
            [(rows,)] = con.raw.execute(f"select count(*) from {relation}").fetchall()
            if rows > MAX_FINGERPRINT_ROWS:
                found[unique_id] = None
                continue
            [(hashed,)] = con.raw.execute(f"select sum(hash(t)) from {relation} as t").fetchall()
        except wh.database_errors() as err:
            logger.debug("no fingerprint of %s: %s", unique_id, err)
            found[unique_id] = None
            continue
        found[unique_id] = [columns[(schema, name)], rows, str(hashed)]
    return found


def keys_of_tests(
    manifest: Mapping[str, Any],
    tests: Iterable[str],
    fingerprints: Mapping[str, Any],
    code: str,
) -> dict[str, str]:
    """The key of each test of `tests` that may be given again (see the module), from the
    fingerprints of its upstream sources (`source_fingerprints`) and `code` (the parse key and
    the versions); a test that may not is left out."""
    keys = {}
    for unique_id in tests:
        above = upstream(manifest, unique_id)
        if any(_is_incremental(manifest, node) for node in above):
            continue
        sources = sorted(node for node in above if node.startswith("source."))
        if any(fingerprints.get(source) is None for source in sources):
            continue
        parts = [code, unique_id, [[source, fingerprints[source]] for source in sources]]
        keys[unique_id] = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return keys


def code_key(parse_key: str) -> str:
    """What the code part of a key is: the shared parse's key (the dbt project's files, the vars,
    dbt's version and target, D220) and DuckDB's version."""
    return json.dumps([parse_key, metadata.version("duckdb")])


def kept(path: Path | None) -> dict[str, str]:
    """The keys the tests that passed were run with (test id: key); empty when none are kept or
    the file cannot be read (every test runs)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data["passed"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def reusable(keys: Mapping[str, str], kept_keys: Mapping[str, str]) -> list[str]:
    """The tests whose key is the one they last passed with, sorted."""
    return sorted(test for test, key in keys.items() if kept_keys.get(test) == key)


def store(
    path: Path | None,
    keys: Mapping[str, str],
    statuses: Mapping[str, str],
    kept_keys: Mapping[str, str],
    reused: Iterable[str],
    run_id: str | None = None,
) -> None:
    """Keep the key of every test that passed in this build (`statuses`: dbt's status per test
    that ran) or was given again; a test that ran and did not pass loses its entry; a test this
    build did not select keeps its entry. Written whole, then renamed."""
    if path is None:
        return
    passed = {test: key for test, key in kept_keys.items() if test not in statuses}
    passed.update({test: keys[test] for test in reused if test in keys})
    for test, status in statuses.items():
        if status == "pass" and test in keys:
            passed[test] = keys[test]
        else:
            passed.pop(test, None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = {"run_id": run_id, "written_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"}
    tmp.write_text(json.dumps({**data, "passed": dict(sorted(passed.items()))}), encoding="utf-8")
    os.replace(tmp, path)
