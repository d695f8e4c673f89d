"""Hand-built raw bookkeeping tables for tests that write a warehouse without the loader."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from dagster_project.lib.inbox_loader import LOAD_LOG_DDL


def write_load_log(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> None:
    """`raw._load_log` as the loader creates it, holding `rows` (column -> value; the columns a
    row leaves out are null)."""
    con.execute("create schema if not exists raw")
    con.execute(LOAD_LOG_DDL)
    for row in rows:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"insert into raw._load_log ({names}) values ({marks})", list(row.values()))
