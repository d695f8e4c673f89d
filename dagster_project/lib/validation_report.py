"""The latest validation results next to the warehouse: one JSON per suite and a static page.

``<warehouse dir>/validation/suites/<layer>.<table>.json`` holds the latest result of each suite
(written by the asset checks and by ``voronka validate``, overwritten each time; ``voronka run``
clears the folder first, so the page shows one run). ``<warehouse dir>/validation/index.html`` is
rendered from those files: a plain page, no Great Expectations Data Docs. Nothing is kept
beyond the latest results: history belongs to Dagster's run log, not to files.
"""

from __future__ import annotations

import html
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.suites import BLOCKING_LAYERS, LAYERS

logger = logging.getLogger(__name__)

FOLDER = "validation"
PAGE = "index.html"


def validation_dir(warehouse: Path | str) -> Path:
    """``<warehouse dir>/validation``."""
    from dagster_project.lib import warehouse as wh

    return wh.local_folder(warehouse) / FOLDER


def report_path(warehouse: Path | str) -> Path:
    """The page: ``<warehouse dir>/validation/index.html``."""
    return validation_dir(warehouse) / PAGE


def clear(warehouse: Path | str, layer: str | None = None) -> None:
    """Forget the previous results (before a run validates again): of one layer, or all."""
    folder = validation_dir(warehouse) / "suites"
    if layer is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        for path in folder.glob(f"{layer}.*.json") if folder.is_dir() else []:
            path.unlink(missing_ok=True)
    report_path(warehouse).unlink(missing_ok=True)


def save_result(warehouse: Path | str, result: SuiteResult) -> Path:
    """Write one suite's latest result (overwrites the previous one of that suite)."""
    folder = validation_dir(warehouse) / "suites"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.suite_name}.json"
    record = {
        **result.to_dict(),
        "skipped": result.skipped,
        "validated_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass
class Row:
    """One line of the results table (a suite)."""

    suite: str
    layer: str
    severity: str  # worst failed severity: error, warn, or "" (passed / skipped)
    status: str  # passed, failed, skipped
    passed: int
    failed_errors: int
    failed_warnings: int
    unexpected: int
    rows: int
    seconds: float
    note: str
    failures: list[dict[str, Any]]
    validated_at: str = ""

    @property
    def blocking(self) -> bool:
        return self.layer in BLOCKING_LAYERS


def _row(record: dict[str, Any]) -> Row:
    expectations = record.get("expectations") or []
    failed = [e for e in expectations if not e.get("success")]
    errors = [e for e in failed if e.get("severity") == "error"]
    warnings = [e for e in failed if e.get("severity") == "warn"]
    failed_ok = record.get("success", True)
    skipped = bool(record.get("skipped"))
    status = "skipped" if skipped else ("failed" if failed or not failed_ok else "passed")
    return Row(
        suite=record["suite_name"],
        layer=record["suite_name"].partition(".")[0],
        severity="error" if errors or not failed_ok else ("warn" if warnings else ""),
        status=status,
        passed=len(expectations) - len(failed),
        failed_errors=len(errors),
        failed_warnings=len(warnings),
        unexpected=sum(int(e.get("unexpected_count") or 0) for e in failed),
        rows=int(record.get("rows_validated") or 0),
        seconds=float(record.get("duration_seconds") or 0.0),
        note=str(record.get("note") or ""),
        failures=sorted(failed, key=lambda e: e.get("severity") != "error"),
        validated_at=str(record.get("validated_at") or ""),
    )


def rows_from_results(results: Iterable[SuiteResult]) -> list[Row]:
    """Table rows of results in memory (``voronka validate``)."""
    return _sorted([_row({**r.to_dict(), "skipped": r.skipped}) for r in results])


def load_rows(warehouse: Path | str) -> list[Row]:
    """Table rows of the saved latest results (empty when nothing was validated)."""
    folder = validation_dir(warehouse) / "suites"
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rows.append(_row(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError) as err:
            logger.warning("unreadable validation result %s: %s", path, err)
    return _sorted(rows)


def _sorted(rows: list[Row]) -> list[Row]:
    order = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(rows, key=lambda r: (order.get(r.layer, len(LAYERS)), r.suite))


def format_table(rows: Sequence[Row]) -> list[str]:
    """The results as a plain-text table (one line per suite) plus its failed expectations."""
    header = (
        f"{'suite':<40} {'layer':<8} {'severity':<8} {'status':<8} {'passed':>6} "
        f"{'failed':>6} {'unexpected':>10} {'rows':>9} {'sec':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.suite:<40} {row.layer:<8} {row.severity or '-':<8} {row.status:<8} "
            f"{row.passed:>6} {row.failed_errors + row.failed_warnings:>6} "
            f"{row.unexpected:>10,} {row.rows:>9,} {row.seconds:>6.2f}"
        )
        for failure in row.failures:
            target = failure.get("column") or failure.get("query") or "table"
            count = failure.get("unexpected_count")
            what = f"{count:,} unexpected" if count is not None else "failed"
            if failure.get("exception"):
                what += f" ({failure['exception'][:80]})"
            severity, type_ = failure.get("severity"), failure.get("type")
            lines.append(f"    [{severity}] {type_} ({target}): {what}")
        if row.status == "skipped":
            lines.append(f"    skipped: {row.note}")
    return lines


def totals(rows: Sequence[Row]) -> dict[str, Any]:
    """Counts for one summary line."""
    return {
        "suites": len(rows),
        "failed_error": sum(1 for r in rows if r.severity == "error"),
        "failed_warn": sum(1 for r in rows if r.severity == "warn"),
        "skipped": sum(1 for r in rows if r.status == "skipped"),
        "seconds": round(sum(r.seconds for r in rows), 2),
    }


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; }
tr.error td.sev { background: #f8d0d0; } tr.warn td.sev { background: #fbeec2; }
tr.passed td.sev { background: #d6f0d6; } tr.skipped td.sev { background: #e6e6e6; }
code, pre { font-size: 12px; } pre { margin: 0; white-space: pre-wrap; max-width: 60em; }
"""


def quarantine_counts(warehouse: Path | str) -> list[tuple[str, str, int]] | None:
    """Rows in the quarantine per entity and reason, read-only; None when the warehouse cannot
    be read now (a writer holds it): the page says so rather than failing a check."""
    import duckdb

    from dagster_project.lib import warehouse as wh

    try:
        con = wh.connect(warehouse, read_only=True)
    except duckdb.Error:
        return None
    try:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = "
                "'quarantine' and table_type = 'BASE TABLE' and table_name <> 'files' "
                "and table_name not like '\\_%' escape '\\' order by 1"
            ).fetchall()
        ]
        counts = []
        for table in tables:
            counts += [
                (table, str(reason), int(rows))
                for reason, rows in con.execute(
                    f'select "_reason", count(*) from quarantine."{table}" group by 1 order by 1'
                ).fetchall()
            ]
        return counts
    except duckdb.Error:
        return None
    finally:
        con.close()


def _quarantine_html(counts: list[tuple[str, str, int]] | None) -> list[str]:
    esc = html.escape
    if counts is None:
        return ["<h2>Quarantined rows</h2><p>The warehouse could not be read now.</p>"]
    total = sum(rows for _, _, rows in counts)
    parts = [
        "<h2 id='quarantine'>Quarantined rows</h2>",
        f"<p>{total:,} rows the inbox loader rejected, with the reason of each "
        "(<code>quarantine.&lt;entity&gt;</code>: the file, its line and the raw record).</p>",
    ]
    if counts:
        parts.append("<table><tr><th>entity</th><th>reason</th><th>rows</th></tr>")
        parts += [
            f"<tr><td>{esc(entity)}</td><td>{esc(reason)}</td><td class='n'>{rows:,}</td></tr>"
            for entity, reason, rows in counts
        ]
        parts.append("</table>")
    return parts


def render_html(
    rows: Sequence[Row],
    *,
    title: str,
    warehouse: Path | str,
    quarantine: list[tuple[str, str, int]] | None = None,
) -> str:
    """The page: a summary table, the quarantined rows per entity and reason, and per failing
    suite its failed expectations with samples."""
    esc = html.escape
    t = totals(rows)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Warehouse <code>{esc(_where(warehouse))}</code>, rendered "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC. {t['suites']} suites: "
        f"{t['failed_error']} with failed <b>error</b> expectations, {t['failed_warn']} with "
        f"warnings only, {t['skipped']} skipped; {t['seconds']} s of validation. Layers "
        f"{', '.join(BLOCKING_LAYERS)} block the assets downstream on an error.</p>",
        "<table><tr><th>suite</th><th>layer</th><th>severity</th><th>passed</th><th>failed</th>"
        "<th>unexpected</th><th>rows</th><th>seconds</th><th>note</th></tr>",
    ]
    for row in rows:
        css = row.severity or row.status
        name = f"<a href='#{esc(row.suite)}'>{esc(row.suite)}</a>" if row.failures else row.suite
        parts.append(
            f"<tr class='{css}'><td>{name}</td><td>{row.layer}</td>"
            f"<td class='sev'>{esc(row.severity or row.status)}</td><td class='n'>{row.passed}</td>"
            f"<td class='n'>{row.failed_errors + row.failed_warnings}</td>"
            f"<td class='n'>{row.unexpected:,}</td><td class='n'>{row.rows:,}</td>"
            f"<td class='n'>{row.seconds:.2f}</td><td>{esc(row.note)}</td></tr>"
        )
    parts.append("</table>")
    parts += _quarantine_html(quarantine)
    for row in rows:
        if not row.failures:
            continue
        parts.append(f"<h2 id='{esc(row.suite)}'>{esc(row.suite)}</h2><table>")
        parts.append(
            "<tr><th>severity</th><th>expectation</th><th>column / query</th>"
            "<th>unexpected</th><th>why it matters</th><th>sample of offending rows</th></tr>"
        )
        for f in row.failures:
            count = f.get("unexpected_count")
            unexpected = (
                f"{count:,} ({float(f.get('unexpected_percent') or 0):.3g} %)"
                if count is not None
                else esc(str(f.get("exception") or f.get("details") or f.get("observed_value")))
            )
            target = " / ".join(str(x) for x in (f.get("column"), f.get("query")) if x)
            sample = json.dumps(f.get("sample") or [], ensure_ascii=False, indent=1)
            parts.append(
                f"<tr class='{esc(str(f.get('severity')))}'>"
                f"<td class='sev'>{esc(str(f.get('severity')))}</td>"
                f"<td><code>{esc(str(f.get('type')))}</code></td><td>{esc(target)}</td>"
                f"<td class='n'>{unexpected}</td><td>{esc(str(f.get('notes') or ''))}</td>"
                f"<td><pre>{esc(sample)}</pre></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(warehouse: Path | str, rows: Sequence[Row] | None = None) -> Path | None:
    """Render ``index.html`` from ``rows`` (default: the saved latest results).

    Returns:
        The page's path, or None when there is nothing to report.
    """
    rows = load_rows(warehouse) if rows is None else rows
    if not rows:
        return None
    path = report_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        render_html(
            rows,
            title="Voronka data quality: latest validation",
            warehouse=warehouse,
            quarantine=quarantine_counts(warehouse),
        ),
        encoding="utf-8",
    )
    return path


def _where(warehouse: Path | str) -> str:
    """The warehouse as the page names it: the DuckDB file's path, or the PostgreSQL URL (which
    never holds a password, D182)."""
    from dagster_project.lib import warehouse as wh

    target = wh.parse_target(warehouse)
    return str(target) if wh.is_postgres(target) else str(Path(target).resolve())
