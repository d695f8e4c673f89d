"""The warehouse connection's interface (D180): what `warehouse.open_warehouse` yields for every
engine (DuckDB in `lib/warehouse.py`, PostgreSQL in `lib/postgres.py`)."""

from __future__ import annotations


class Connection:
    """One open connection to the warehouse (D180): what every module uses to read and write it.

    `execute(sql, params)` returns a result with `fetchall`, `fetchone` and `fetchmany`;
    `executemany(sql, rows)` runs one statement per row of a small list; `changed(sql, params)`
    runs an insert, update or delete and returns the rows it changed;
    `arrow_reader(sql, params, batch_rows)` streams a large result as Arrow record batches.
    SQL placeholders are `?` (and `$name` with a dict of parameters). `engine` names the engine
    for the few places that must differ; `raw` is the engine's own connection, for code that is
    about that engine itself (DuckDB's CSV reader in the loader, DuckDB's catalog functions).
    The connection closes at the end of a `with` block, or with `close()`.
    """

    engine: str

    def __init__(self, raw) -> None:
        self.raw = raw

    def execute(self, sql: str, params=None):
        raise NotImplementedError

    def executemany(self, sql: str, rows) -> None:
        raise NotImplementedError

    def changed(self, sql: str, params=None) -> int:
        """Run an insert, update or delete; the rows it changed."""
        raise NotImplementedError

    def arrow_reader(self, sql: str, params=None, batch_rows: int = 1_000_000):
        raise NotImplementedError

    def staged(self, name: str, table):
        """A context manager making the Arrow table `table` readable as `name` by this
        connection's SQL until the block ends (the bulk path for rows made in Python)."""
        raise NotImplementedError

    def in_duckdb(self, relations: list[str]):
        """A context manager yielding a DuckDB connection in which the warehouse's `relations`
        ("schema.table") are readable under the same names, with the same column types and
        rows, all read in one snapshot: for code written in DuckDB's SQL that only reads (the
        exports, D231). A DuckDB warehouse yields itself; another engine copies them in bulk."""
        raise NotImplementedError

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
