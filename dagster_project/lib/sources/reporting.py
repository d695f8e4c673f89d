"""Plain summaries of an extraction for the assets' metadata (no secrets: host names only)."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster_project.lib.sources.engine import ObjectReport
from dagster_project.lib.sources.files import FileResult
from dagster_project.lib.sources.http import HttpClient
from dagster_project.lib.sources.state import RawWriter


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def api_table_metadata(
    table: str,
    reports: list[ObjectReport],
    writer: RawWriter,
    client: HttpClient,
) -> dict[str, object]:
    """Metadata of one raw table filled by an API extraction."""
    received = sum(r.received.get(table, 0) for r in reports)
    inserted = sum(r.inserted.get(table, 0) for r in reports)
    seconds = sum(r.seconds for r in reports)
    return {
        "dagster/row_count": int(writer.row_count(table)),
        "table": f"{writer.schema}.{table}",
        "rows_received": int(received),
        "rows_inserted": int(inserted),
        "pages": int(sum(r.pages for r in reports)),
        "resumed": any(r.resumed for r in reports),
        "window_from": ", ".join(_iso(r.window_from) for r in reports if r.window_from) or "all",
        "high_water_mark": ", ".join(_iso(r.hwm) for r in reports if r.hwm) or "",
        "rows_per_second": round(received / seconds, 1) if seconds else 0.0,
        "http_requests": int(client.stats.requests),
        "http_retries": int(client.stats.retries),
        "token_refreshes": int(client.stats.refreshes),
        "host": client.host,
    }


def file_table_metadata(results: list[FileResult], row_count: int, table: str) -> dict[str, object]:
    """Metadata of a mapped-file load: counts and the per-file table."""
    lines = [
        "| file | status | rows | loaded | quarantined | already loaded | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        note = (r.message or "").replace("|", "/")
        lines.append(
            f"| {r.source_file} | {r.status} | {r.rows_read} | {r.rows_loaded} | "
            f"{r.rows_quarantined} | {r.rows_duplicate} | {note} |"
        )
    return {
        "dagster/row_count": int(row_count),
        "table": table,
        "rows_loaded": int(sum(r.rows_loaded for r in results)),
        "rows_quarantined": int(sum(r.rows_quarantined for r in results)),
        "files_loaded": sum(1 for r in results if r.status in ("loaded", "reloaded")),
        "files_skipped_unchanged": sum(1 for r in results if r.status == "skipped_unchanged"),
        "files_failed": sum(1 for r in results if r.status == "failed"),
        "files": "\n".join(lines) if results else "no files",
    }
