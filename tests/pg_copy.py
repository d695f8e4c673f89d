"""Copy schemas of a DuckDB warehouse into PostgreSQL by COPY (test helper, issue 19)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from psycopg import sql

TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
    "DOUBLE": "double precision",
}


def copy_schemas(duckdb_path: Path, pg, schemas=("raw", "quarantine")) -> dict[str, int]:
    """Tables of `schemas` re-created in the psycopg connection `pg`; rows per table."""
    counts = {}
    src = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for schema in schemas:
                pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
                tables = src.execute(
                    "select table_name from information_schema.tables "
                    "where table_schema = ? and table_type = 'BASE TABLE' order by 1",
                    [schema],
                ).fetchall()
                for (table,) in tables:
                    columns = src.execute(
                        "select column_name, data_type from information_schema.columns "
                        "where table_schema = ? and table_name = ? order by ordinal_position",
                        [schema, table],
                    ).fetchall()
                    target = sql.Identifier(schema, table)
                    pg.execute(sql.SQL("drop table if exists {}").format(target))
                    pg.execute(
                        sql.SQL("create table {} ({})").format(
                            target,
                            sql.SQL(", ").join(
                                sql.SQL("{} {}").format(
                                    sql.Identifier(name),
                                    sql.SQL(
                                        TYPES.get(
                                            type_, type_.lower().replace("decimal", "numeric")
                                        )
                                    ),
                                )
                                for name, type_ in columns
                            ),
                        )
                    )
                    csv = Path(tmp) / f"{schema}.{table}.csv"
                    src.execute(
                        f'copy (select * from "{schema}"."{table}") to \'{csv}\' (header false)'
                    )
                    with (
                        pg.cursor() as cur,
                        cur.copy(sql.SQL("copy {} from stdin (format csv)").format(target)) as copy,
                        open(csv, "rb") as data,
                    ):
                        while chunk := data.read(1 << 16):
                            copy.write(chunk)
                    counts[f"{schema}.{table}"] = pg.execute(
                        sql.SQL("select count(*) from {}").format(target)
                    ).fetchone()[0]
    finally:
        src.close()
    return counts
