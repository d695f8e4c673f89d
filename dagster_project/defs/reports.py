"""What people read after a run, as assets downstream of the marts (D107).

The KPI report page, the finance exports and the run summary are assets, so a run started from
the UI, by the schedule or by the sensor leaves the same files as `voronka run`:

- `reports/kpi_report`: `<warehouse dir>/report/index.html` (lib/kpi_report.py);
- `reports/finance_exports`: `<warehouse dir>/exports/finance.*.csv` (`;`, decimal comma) and
  `finance.xlsx` (lib/exports.py);
- `reports/run_summary`: `<warehouse dir>/summary.txt`, the rows per layer, the quarantine and
  the KPI summary that `voronka run` prints (lib/summary.py).

Each reads the run's working copy read-only (D80: what the run is about to publish) and
replaces its files next to the published warehouse whole (a reader never sees half).
"""

from collections.abc import Iterable

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings

GROUP = "reports"
_FINANCE_DETECTION = dg.AssetKey(["finance", "adjustment_detection"])

_KPI_REPORT_DESCRIPTION = (
    "The KPI report: one self-contained HTML page (plotly.js inlined, nothing loaded from the "
    "network) of the latest full month and the 12 months ending with it, read from the marts "
    "and finance; at `<warehouse dir>/report/index.html`. Labels in VORONKA_LANGUAGE."
)

_FINANCE_EXPORTS_DESCRIPTION = (
    "The finance tables for a controller: `<warehouse dir>/exports/finance.<table>.csv` "
    "(`;`-separated, UTF-8 with BOM, decimal comma: Excel in a Russian locale opens them as "
    "they are) and `finance.xlsx` (statements first, headers in VORONKA_LANGUAGE)."
)

_RUN_SUMMARY_DESCRIPTION = (
    "What `voronka run` prints at the end: rows per layer, quarantined rows per entity, the "
    "KPI summary of the latest full month and the managers ranked by the bonus scheme; at "
    "`<warehouse dir>/summary.txt`."
)


def kpi_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from dagster_project.lib.kpi_report import ReportError, write_report
    from dagster_project.lib.text import parse_language

    settings = Settings.from_env()
    language = parse_language(settings.language)
    con = warehouse.connect(read_only=True)
    try:
        path, report = write_report(
            warehouse.published_path, settings.business_timezone, language, con=con
        )
    except ReportError as exc:  # e.g. no full month in the data yet: nothing to draw
        context.log.warning(f"KPI report not written: {exc}")
        return dg.MaterializeResult(metadata={"not_written": dg.MetadataValue.text(str(exc))})
    finally:
        con.close()
    context.log.info(f"KPI report of {report.month:%Y-%m}: {path.as_uri()}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "month": dg.MetadataValue.text(f"{report.month:%Y-%m}"),
            "as_of": dg.MetadataValue.text(report.as_of),
            "charts": dg.MetadataValue.int(len(report.charts)),
            "language": dg.MetadataValue.text(language),
        }
    )


def finance_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from dagster_project.lib.exports import run_finance_exports
    from dagster_project.lib.text import parse_language

    settings = Settings.from_env()
    language = parse_language(settings.language)
    out = wh.local_folder(warehouse.path) / "exports"
    con = warehouse.connect(read_only=True)
    try:
        # a file whose tables, options and code are unchanged is left as it is (D392)
        tables, workbook = run_finance_exports(con, out, language)
    finally:
        con.close()
    kept = sorted({t.path.name for t in [*tables, *workbook] if t.unchanged})
    context.log.info(
        f"finance exports (csv and xlsx): {out}"
        + (f"; unchanged, not written again: {', '.join(kept)}" if kept else "")
    )
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(out)),
            **{f"rows_{t.table}": dg.MetadataValue.int(t.rows) for t in tables},
            "unchanged_files": dg.MetadataValue.text(", ".join(kept) or "none"),
        }
    )


def run_summary(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from dagster_project.lib.summary import summary_lines, write_summary

    settings = Settings.from_env()
    lines = summary_lines(
        warehouse.published_path, settings.business_timezone, source=warehouse.warehouse_path
    )
    path = write_summary(warehouse.published_path, lines)
    context.log.info(f"run summary: {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "summary": dg.MetadataValue.md("```\n" + "\n".join(lines) + "\n```"),
        }
    )


def build_report_assets(dbt_keys: Iterable[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The report assets, downstream of the marts and finance tables among ``dbt_keys`` (the dbt
    assets' keys, which the definitions builder passes: D121)."""
    # the marts and finance tables the outputs read, as the dbt assets name them
    reads = sorted(
        (key for key in dbt_keys if key.path[0] in ("marts", "finance")),
        key=lambda key: key.to_user_string(),
    )
    return [
        dg.asset(
            key=[GROUP, "kpi_report"],
            group_name=GROUP,
            deps=reads,
            kinds={"html"},
            description=_KPI_REPORT_DESCRIPTION,
        )(kpi_report),
        dg.asset(
            key=[GROUP, "finance_exports"],
            group_name=GROUP,
            deps=[key for key in reads if key.path[0] == "finance"] + [_FINANCE_DETECTION],
            kinds={"csv", "xlsx"},
            description=_FINANCE_EXPORTS_DESCRIPTION,
        )(finance_exports),
        dg.asset(
            key=[GROUP, "run_summary"],
            group_name=GROUP,
            deps=reads,
            kinds={"text"},
            description=_RUN_SUMMARY_DESCRIPTION,
        )(run_summary),
    ]
