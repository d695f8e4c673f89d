"""The asset builder shared by the CRM API sources (amoCRM, Bitrix24).

Each CRM object is one multi-asset with keys `[<source>, <table>]` for its main table and any
child tables. At run time it reads the source's settings from the environment (failing with
`not_configured` when they are missing), extracts the object through the source's extractor
page by page into `raw_<source>` (logging progress every 20 pages) and reports each table's
metadata (`api_table_metadata`). What differs per source is passed in: the settings loader, the
extractor class, the messages and the descriptions.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources.engine import ObjectReport
from dagster_project.lib.sources.reporting import api_table_metadata
from dagster_project.lib.sources.state import RawWriter


@dataclass(frozen=True)
class CrmSource:
    """What a CRM source's assets need to know about it.

    Attributes:
        name: the source (`amocrm`, `bitrix24`): asset key prefix and raw schema suffix.
        group: the Dagster asset group.
        load_settings: the settings from the environment, or None when not configured.
        extractor: builds the extractor from the settings (has `extract`, `client`, `close`).
        not_configured: the failure message when the settings are missing.
        origin: where an object comes from, for its description (e.g. amoCRM `/api/v4/leads`).
        field_note: how the raw columns are named, for the descriptions.
        child_descriptions: the descriptions of the child tables (channels, statuses).
        start_message: the log line before an object's extraction, from settings and object.
        page_word: what one progress step is (`page(s)`, `request(s)`).
    """

    name: str
    group: str
    load_settings: Callable[[], Any]
    extractor: Callable[[Any], Any]
    not_configured: str
    origin: Callable[[Any], str]
    field_note: str
    child_descriptions: dict[str, str]
    start_message: Callable[[Any, Any], str]
    page_word: str

    def describe(self, obj: Any, table: str) -> str:
        """The asset description of raw table `table` of `obj`."""
        if table in self.child_descriptions:
            return self.child_descriptions[table]
        spec = next(t for t in obj.tables if t.name == table)
        version = spec.version or "content (row hash)"
        return (
            f"{obj.description} From {self.origin(obj)} into `raw_{self.name}.{table}` (grain: "
            f"one row per {', '.join(spec.key)} and {version}; {self.field_note}, nested values "
            f"as JSON text)."
        )


def build_crm_asset(source: CrmSource, obj: Any) -> dg.AssetsDefinition:
    """The multi-asset of one CRM object (its main table and any child tables)."""
    specs = [
        dg.AssetSpec(
            key=[source.name, t.name],
            group_name=source.group,
            kinds={"api", "duckdb"},
            description=source.describe(obj, t.name),
        )
        for t in obj.tables
    ]

    @dg.multi_asset(name=f"{source.name}_{obj.name}", specs=specs)
    def _extract(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        settings = source.load_settings()
        if settings is None:
            raise dg.Failure(source.not_configured)

        def progress(report: ObjectReport) -> None:
            if report.pages == 1 or report.pages % 20 == 0:
                context.log.info(
                    f"{report.obj}: {report.pages} {source.page_word}, {report.rows_received} "
                    f"rows read, {report.rows_inserted} new"
                )

        context.log.info(source.start_message(settings, obj))
        extractor = source.extractor(settings)
        con = warehouse.connect()
        try:
            writer = RawWriter(con, source.name)
            reports = extractor.extract(writer, obj.name, progress=progress)
            results = [
                dg.MaterializeResult(
                    asset_key=[source.name, t.name],
                    metadata=api_table_metadata(t.name, reports, writer, extractor.client),
                )
                for t in obj.tables
            ]
        finally:
            con.close()
            extractor.close()
        yield from results

    return _extract
