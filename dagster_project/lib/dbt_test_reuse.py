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
key (:func:`keys_of`) is the digest of the parse key, DuckDB's version, the test's id and the
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

A model is left out of `dbt build` the same way (D385), its relation left as the last build
wrote it:

- a view whose definition cannot have changed: the same code and the same columns of every
  source upstream of it (`raw_source()` writes a staging view's SQL from its source's columns,
  D40), built with them last time, the view still there;
- a table under the rules of a test above (:func:`keys_of`): what it holds is a function of the
  code and of those sources' rows; it was built successfully last time with that key and is
  still there.

A model that failed, was skipped or was built without a key loses its entry. The keys are true
of one warehouse as one build left it: they are kept with a token that the warehouse holds too
(`TOKEN_TABLE`), which every dbt build drops as it starts and the dbt asset writes again after
keeping its build's keys. A build that died, a direct `dbt build` (other code, perhaps), a
restored backup: the tokens differ, nothing is reused, every node runs once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
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
# the token of the build the kept keys belong to, in the warehouse they describe: dropped by
# every dbt build as it starts (the on-run-start hook `forget_reused_builds`), written by the
# dbt asset after it has kept the keys of its build (D385)
TOKEN_TABLE = "raw._dbt_build"
# what a reusable relation is in DuckDB's information_schema.tables, by materialization
RELATION_TYPES = {"view": "VIEW", "table": "BASE TABLE"}


def kept_path(warehouse: Path | str) -> Path | None:
    """Where the keys of the tests that passed and of the models built are kept:
    `<file>.dbt_tests.json` beside the DuckDB file dbt builds (the working copy during a run,
    D80); None for PostgreSQL."""
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


def upstream_of(manifest: Mapping[str, Any], nodes: Iterable[str]) -> dict[str, set[str]]:
    """`upstream` of each node of `nodes`, walked once each."""
    return {unique_id: upstream(manifest, unique_id) for unique_id in nodes}


def source_shapes(con, manifest: Mapping[str, Any], sources: Iterable[str]) -> dict:
    """The columns and types of each source (unique id) in `con` (DuckDB), every relation's in
    one query; "missing" when the relation does not exist (a source that is off: staging reads
    an empty relation, D40); every source None when the catalogue cannot be read."""
    wanted = sorted(set(sources))
    try:
        columns: dict[tuple[str, str], list] = {}
        for schema, name, column, data_type in con.raw.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns where table_catalog = current_database() "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall():
            columns.setdefault((schema, name), []).append([column, data_type])
    except wh.database_errors() as err:
        logger.debug("no columns: %s", err)
        return dict.fromkeys(wanted)
    found: dict[str, Any] = {}
    for unique_id in wanted:
        source = manifest["sources"][unique_id]
        found[unique_id] = columns.get((source["schema"], source["identifier"]), "missing")
    return found


def source_fingerprints(
    con, manifest: Mapping[str, Any], sources: Iterable[str], shapes: Mapping | None = None
) -> dict:
    """The fingerprint of each source (unique id) read in `con` (DuckDB): its columns and
    types (`shapes`, read by `source_shapes` when not given), its rows and the sum of their
    hashes; "missing" when the relation does not exist; None when it has more than
    `MAX_FINGERPRINT_ROWS` rows or cannot be read (its tests run)."""
    wanted = sorted(set(sources))
    if shapes is None:
        shapes = source_shapes(con, manifest, wanted)
    found: dict[str, Any] = {}
    for unique_id in wanted:
        shape = shapes.get(unique_id)
        if shape is None or shape == "missing":
            found[unique_id] = shape
            continue
        source = manifest["sources"][unique_id]
        relation = f'"{source["schema"]}"."{source["identifier"]}"'
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
        found[unique_id] = [shape, rows, str(hashed)]
    return found


def relations(con) -> dict[tuple[str, str], str]:
    """Every relation of the database in `con` (DuckDB): (schema, name) -> its type, as
    information_schema.tables says (`BASE TABLE`, `VIEW`); empty when it cannot be read."""
    try:
        rows = con.raw.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()
    except wh.database_errors() as err:
        logger.debug("no relations: %s", err)
        return {}
    return {(schema, name): kind for schema, name, kind in rows}


def materialization(manifest: Mapping[str, Any], unique_id: str) -> str | None:
    return ((manifest["nodes"].get(unique_id) or {}).get("config") or {}).get("materialized")


def exists(
    manifest: Mapping[str, Any], unique_id: str, found: Mapping[tuple[str, str], str]
) -> bool:
    """Whether model `unique_id`'s relation is in `found` (`relations`) as what it is built as
    (a view as a view, a table as a table)."""
    node = manifest["nodes"][unique_id]
    name = node.get("alias") or node["name"]
    kind = RELATION_TYPES.get(materialization(manifest, unique_id))
    return kind is not None and found.get((node["schema"], name)) == kind


def keys_of(
    manifest: Mapping[str, Any],
    nodes: Mapping[str, set[str]],
    fingerprints: Mapping[str, Any],
    code: str,
    shapes: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The key of each node of `nodes` (a node: what is upstream of it, `upstream_of`) that may
    be reused (see the module), a node that may not left out. A test or a table: from `code`
    (the parse key and the versions) and the fingerprints of its upstream sources
    (`source_fingerprints`). A view (D385): from `code` and the columns of those sources
    (`shapes`, `source_shapes`), what its definition is written from; rows are not in it (a
    view holds none)."""
    keys = {}
    for unique_id, above in nodes.items():
        if materialization(manifest, unique_id) == "view":
            key = _key([code, "view"], unique_id, above, shapes or {})
        elif any(materialization(manifest, node) == "incremental" for node in [unique_id, *above]):
            continue
        else:
            key = _key([code], unique_id, above, fingerprints)
        if key is not None:
            keys[unique_id] = key
    return keys


def _key(prefix: list, unique_id: str, above: Iterable[str], values: Mapping) -> str | None:
    """The digest of `prefix`, `unique_id` and the value of each source in `above`; None when a
    source has none (not hashed, not read)."""
    sources = sorted(node for node in above if node.startswith("source."))
    if any(values.get(source) is None for source in sources):
        return None
    parts = [*prefix, unique_id, [[source, values[source]] for source in sources]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def code_key(parse_key: str) -> str:
    """What the code part of a key is: the shared parse's key (the dbt project's files, the vars,
    dbt's version and target, D220), DuckDB's version and dbt-duckdb's (its macros write part of
    a model's SQL, D385)."""
    return json.dumps([parse_key, metadata.version("duckdb"), metadata.version("dbt-duckdb")])


def build_token(con) -> str | None:
    """The token of the last build whose keys were kept, as the warehouse in `con` has it; None
    when a dbt build started since without its keys being kept (a direct `dbt build`, one that
    died) or none was ever kept."""
    try:
        rows = con.raw.execute(f"select token from {TOKEN_TABLE}").fetchall()
    except wh.database_errors():
        return None
    return str(rows[0][0]) if len(rows) == 1 and rows[0][0] else None


def mark(con, token: str) -> None:
    """Record in the warehouse in `con` that the keys kept with `token` describe it."""
    con.raw.execute("create schema if not exists raw")
    con.raw.execute(f"create or replace table {TOKEN_TABLE} as select ? as token", [token])


def kept(path: Path | None, token: str | None) -> dict[str, str]:
    """The keys the tests that passed were run with and the models built were built with (node
    id: key), when they were kept with `token`, the warehouse's (`build_token`); else empty:
    the file belongs to another copy of the warehouse (a restored backup) or a dbt build
    changed it since, and every node runs. Empty too when the file cannot be read."""
    if path is None or token is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["token"] != token:
            return {}
        return {str(k): str(v) for k, v in data["reusable"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def kept_in(warehouse: Path | str) -> dict[str, str]:
    """`kept` for the DuckDB file `warehouse` as it is (its token read in it)."""
    path = kept_path(warehouse)
    if path is None:
        return {}
    con = wh.connect(warehouse, read_only=True)
    try:
        return kept(path, build_token(con))
    finally:
        con.close()


def reusable(
    keys: Mapping[str, str],
    kept_keys: Mapping[str, str],
    manifest: Mapping[str, Any] | None = None,
    found: Mapping[tuple[str, str], str] | None = None,
) -> list[str]:
    """The nodes whose key is the one they last passed or were built with, sorted; with
    `manifest` and `found` (`relations`), a model only when its relation is there (D385; its key
    is kept whether or not it was there before its build)."""
    return sorted(
        node
        for node, key in keys.items()
        if kept_keys.get(node) == key
        and (found is None or not node.startswith("model.") or exists(manifest, node, found))
    )


# dbt's status of a test that passed and of a model built
_DONE = ("pass", "success")


def store(
    path: Path | None,
    keys: Mapping[str, str],
    statuses: Mapping[str, str],
    kept_keys: Mapping[str, str],
    reused: Iterable[str],
    run_id: str | None = None,
) -> str | None:
    """Keep the key of every test that passed and every model built in this build (`statuses`:
    dbt's status per node that ran), and of every node reused; a node that ran and did not pass
    or succeed, or ran without a key, loses its entry; a node this build did not select keeps
    its entry. Written whole, then renamed, under a new token, returned: the caller `mark`s the
    warehouse with it."""
    if path is None:
        return None
    done = {node: key for node, key in kept_keys.items() if node not in statuses}
    done.update({node: keys[node] for node in reused if node in keys})
    for node, status in statuses.items():
        if status in _DONE and node in keys:
            done[node] = keys[node]
        else:
            done.pop(node, None)
    token = uuid.uuid4().hex
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = {"run_id": run_id, "written_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"}
    data |= {"token": token, "reusable": dict(sorted(done.items()))}
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
    return token
