"""Where the inbox loader's rows go: one small interface per warehouse engine (D184).

The loader reads, parses and checks files in DuckDB (its CSV reader, the line reader of
`csv_lines`, the contract's SQL: the tested part). That DuckDB is the *scratch*. A sink moves
rows between the scratch and the warehouse, in bulk, with two operations; every other statement
the loader runs on the warehouse is plain SQL on `target` (the load log, deletions, DDL).

- `append(table, select_sql)`: insert the rows of `select_sql` (a query on the scratch) into
  the warehouse's `table`, matching columns by name.
- `pull(name, sql)`: make the rows of `sql` (a query on the warehouse) the scratch table
  `name`, every column as text (the ids a contract reference is checked against, the
  quarantined rows that may be released).

On DuckDB the scratch *is* the warehouse connection (`same` is True): `append` is `insert ...
by name`, exactly the loader's statement before there was a sink, and nothing is pulled. On
PostgreSQL the scratch is a private DuckDB file in a temporary folder: `append` writes the rows
to a CSV file there (DuckDB's `COPY ... TO`) and streams it into `COPY ... FROM STDIN` in
chunks; `pull` goes the other way (`COPY ... TO STDOUT`, DuckDB's `read_csv`). No row passes
through Python one by one. A further engine (Spark) implements the same two operations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dagster_project.lib import warehouse as wh


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DuckDBSink:
    """The warehouse is a DuckDB file: the scratch is its own connection."""

    same = True

    def __init__(self, target: wh.Connection) -> None:
        self.target = target
        self.scratch = target

    def append(self, table: str, select_sql: str) -> None:
        self.target.execute(f"insert into {table} by name {select_sql}")

    def pull(self, name: str, sql: str) -> None:
        self.scratch.execute(f"create or replace table {name} as {sql}")

    def close(self) -> None:
        pass


class PostgresSink:
    """The warehouse is a PostgreSQL database: rows cross by COPY through CSV files (D184)."""

    same = False

    def __init__(self, target: wh.Connection, memory_limit: str | None = None) -> None:
        self.target = target
        self._folder = tempfile.TemporaryDirectory(prefix="voronka_scratch_")
        folder = Path(self._folder.name)
        self.scratch = wh.connect(folder / "scratch.duckdb", memory_limit=memory_limit)
        self._n = 0

    def _file(self) -> Path:
        self._n += 1
        return Path(self._folder.name) / f"rows{self._n:06d}.csv"

    def append(self, table: str, select_sql: str) -> int:
        path = self._file()
        try:
            self.scratch.execute(
                f"copy ({select_sql}) to {_literal(str(path))} (format csv, header true)"
            )
            with path.open("rb") as handle:
                header = handle.readline()
                columns = next(iter(_csv_rows(header)))
                names = ", ".join(_quote(c) for c in columns)
                return self.target.copy_in(f"{table} ({names})", handle)
        finally:
            path.unlink(missing_ok=True)

    def pull(self, name: str, sql: str) -> None:
        path = self._file()
        try:
            with path.open("wb") as handle:
                self.target.copy_out(sql, handle)
            self.scratch.execute(
                f"create or replace table {name} as select * from read_csv("
                f"{_literal(str(path))}, header = true, all_varchar = true, "
                "allow_quoted_nulls = false, auto_detect = true, delim = ',', quote = '\"', "
                "escape = '\"', new_line = '\\n')"
            )
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.scratch.close()
        finally:
            self._folder.cleanup()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_rows(line: bytes):
    import csv

    return csv.reader([line.decode("utf-8").rstrip("\r\n")])


def sink_for(target: wh.Connection, memory_limit: str | None = None):
    """The sink for the warehouse connection `target`."""
    if target.engine == "duckdb":
        return DuckDBSink(target)
    return PostgresSink(target, memory_limit)
