"""What is in the warehouse: rows per layer, quarantine per entity. Read-only, small queries."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib import postgres as pg
from dagster_project.lib import warehouse as wh

LAYERS = ("raw", "quarantine", "staging", "intermediate", "core", "marts", "finance")


@dataclass
class WarehouseSummary:
    """Row counts of a warehouse.

    Attributes:
        path: the DuckDB file.
        rows_per_layer: schema -> total rows of its tables (internal `_` tables aside).
        tables_per_layer: schema -> number of tables.
        views_per_layer: schema -> number of views. Their rows are not counted: counting a
            view runs its query (a staging view deduplicates every raw row: at the large scale
            the slowest step after the pipeline and the run's memory peak, D64).
        quarantine: entity -> quarantined rows.
        failed_files: (entity, file, reason) of inbox entries not loaded: files that could not
            be read, and entries ignored (an unknown folder, a workbook; entity empty at the
            inbox's top).
        vanished_files: (entity, file, message) of files loaded before and missing from the
            inbox at the latest load (their rows stay until `voronka forget-file`).
    """

    path: Path
    rows_per_layer: dict[str, int] = field(default_factory=dict)
    tables_per_layer: dict[str, int] = field(default_factory=dict)
    views_per_layer: dict[str, int] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)
    failed_files: list[tuple[str, str, str]] = field(default_factory=list)
    vanished_files: list[tuple[str, str, str]] = field(default_factory=list)


def _has_load_log(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.columns "
            "where table_schema = 'raw' and table_name = '_load_log' and column_name = 'status'"
        ).fetchone()[0]
    )


def summarize(warehouse: Path) -> WarehouseSummary:
    """Count the rows of every table of every layer of the warehouse, and its views."""
    summary = WarehouseSummary(path=warehouse)
    if not wh.exists(warehouse):
        return summary
    con = wh.connect(warehouse, read_only=True)
    try:
        tables = con.execute(
            """
            select table_schema, table_name, table_type = 'VIEW' as is_view
            from information_schema.tables
            where table_catalog = current_database()
              and table_schema in ({})
              and table_name not like '\\_%' escape '\\'
            order by 1, 2
            """.format(", ".join(f"'{layer}'" for layer in LAYERS))
        ).fetchall()
        for schema, table, is_view in tables:
            if is_view:
                summary.views_per_layer[schema] = summary.views_per_layer.get(schema, 0) + 1
                continue
            count = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            summary.rows_per_layer[schema] = summary.rows_per_layer.get(schema, 0) + count
            summary.tables_per_layer[schema] = summary.tables_per_layer.get(schema, 0) + 1
            if schema == "quarantine" and table != "files" and count:
                summary.quarantine[table] = count
        if ("quarantine", "files", False) in tables:
            summary.failed_files = con.execute(
                "select coalesce(entity, ''), source_file, reason from quarantine.files "
                "order by 1, 2"
            ).fetchall()
        if _has_load_log(con):
            # a file is vanished when the latest load run of its entity said so
            summary.vanished_files = con.execute(
                """
                with latest as (
                    select entity, max(run_id) filter (where finished_at = last) as run_id
                    from (
                        select entity, run_id, finished_at,
                            max(finished_at) over (partition by entity) as last
                        from raw._load_log
                        where status in ('loaded', 'reloaded', 'skipped_unchanged', 'failed',
                            'vanished', 'ignored')
                    ) as runs
                    group by entity
                )
                select l.entity, l.source_file, l.message
                from raw._load_log l join latest using (entity, run_id)
                where l.status = 'vanished' and not exists (
                    select 1 from raw._load_log f
                    where f.status = 'forgotten' and f.entity = l.entity
                        and f.source_file = l.source_file and f.finished_at > l.finished_at
                )
                order by 1, 2
                """
            ).fetchall()
    finally:
        con.close()
    return summary


SUMMARY_FILE = "summary.txt"


def _fmt(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _where(warehouse: Path | str) -> list[str]:
    """Where the warehouse is and how its readers open it (a URL holds no password, D182)."""
    target = wh.parse_target(warehouse)
    if wh.is_postgres(target):
        return [
            f"Warehouse: {target} (PostgreSQL)",
            f"  {pg.READERS}",
        ]
    return [
        f"Warehouse: {target.resolve()}",
        "  open it read-only with any DuckDB client; BI reads schema `marts`, finance schema "
        "`finance`",
    ]


def summary_lines(warehouse: Path, timezone: str, source: Path | None = None) -> list[str]:
    """What a run says of its warehouse: where it is, rows per layer, the quarantine, and the KPI
    summary (lib/kpi_summary.py). Printed by `voronka run` and `voronka summary`, written by the
    asset `reports/run_summary` to `summary.txt` next to the warehouse. `source`: the file the
    counts are read from (a run's working copy, D80), default the (published) warehouse."""
    from dagster_project.lib.kpi_summary import format_summary, kpi_summary

    source = source or warehouse
    summary = summarize(source)
    lines = [*_where(warehouse), "Rows per layer:"]
    for layer in LAYERS:
        tables = summary.tables_per_layer.get(layer, 0)
        views = summary.views_per_layer.get(layer, 0)
        if not tables and not views:
            continue
        rows = _fmt(summary.rows_per_layer.get(layer, 0))
        line = f"  {layer:<13} {rows:>14} rows in {tables} tables"
        if views:
            line += f" (and {views} views, computed when read)"
        lines.append(line)
    total_q = sum(summary.quarantine.values())
    hint = " (rows with their reasons: quarantine.<entity>)" if total_q else ""
    lines.append(f"Quarantined rows: {_fmt(total_q)}{hint}")
    for entity, count in sorted(summary.quarantine.items()):
        lines.append(f"  {entity:<22} {_fmt(count):>10}")
    for _entity, file, reason in summary.failed_files:
        lines.append(f"  file not loaded: {file}: {reason}")
    for _entity, file, message in summary.vanished_files:
        lines.append(f"  file vanished: {file}: {message}")
    lines += format_summary(kpi_summary(source, timezone))
    return lines


def write_summary(warehouse: Path, lines: list[str]) -> Path:
    """`<warehouse dir>/summary.txt`, replaced whole."""
    path = wh.local_folder(warehouse) / SUMMARY_FILE
    partial = path.with_name(path.name + ".part")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
