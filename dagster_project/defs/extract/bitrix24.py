"""Extract assets of Bitrix24 (REST): one multi-asset per object, keys `[bitrix24, <table>]`.

Each loads its object into `raw_bitrix24.<table>` (see `lib/sources/bitrix24.py`), page by page
(several pages per `batch` request), resuming an interrupted run. Bitrix24's own telephony
(`voximplant.statistic.get`) is `[bitrix24, calls]`. The source is enabled when
`VORONKA_BITRIX24_WEBHOOK_URL` (or the OAuth `VORONKA_BITRIX24_BASE_URL` and
`VORONKA_BITRIX24_ACCESS_TOKEN`) is set: `enabled_bitrix24_assets()` returns the assets then.
"""

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources.bitrix24 import (
    OBJECTS,
    Bitrix24Extractor,
    Bitrix24Settings,
    BitrixObject,
)
from dagster_project.lib.sources.engine import ObjectReport
from dagster_project.lib.sources.reporting import api_table_metadata
from dagster_project.lib.sources.state import RawWriter

SOURCE = "bitrix24"
GROUP = "extract_bitrix24"

CHILD_DESCRIPTIONS = {
    "contact_channels": "Phones and e-mails of Bitrix24 contacts (the PHONE/EMAIL multi-fields), "
    "one row per value and contact version (key entity_id, channel, value, updated_at), with "
    "the phone normalised.",
    "company_channels": "Phones and e-mails of Bitrix24 companies, one row per value and company "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
}


def _description(obj: BitrixObject, table: str) -> str:
    if table in CHILD_DESCRIPTIONS:
        return CHILD_DESCRIPTIONS[table]
    spec = next(t for t in obj.tables if t.name == table)
    version = spec.version or "content (row hash)"
    return (
        f"{obj.description} From Bitrix24 `{obj.method}` into `raw_bitrix24.{table}` (grain: "
        f"one row per {', '.join(spec.key)} and {version}; field names lowercased, nested "
        f"values as JSON text)."
    )


def build_bitrix24_asset(obj: BitrixObject) -> dg.AssetsDefinition:
    """The multi-asset of one Bitrix24 object (its main table and any child tables)."""
    specs = [
        dg.AssetSpec(
            key=[SOURCE, t.name],
            group_name=GROUP,
            kinds={"api", "duckdb"},
            description=_description(obj, t.name),
        )
        for t in obj.tables
    ]

    @dg.multi_asset(name=f"{SOURCE}_{obj.name}", specs=specs)
    def _extract(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        settings = Bitrix24Settings.from_env()
        if settings is None:
            raise dg.Failure(
                "Bitrix24 is not configured: set VORONKA_BITRIX24_WEBHOOK_URL (or the OAuth "
                "VORONKA_BITRIX24_* variables)"
            )

        def progress(report: ObjectReport) -> None:
            if report.pages == 1 or report.pages % 20 == 0:
                context.log.info(
                    f"{report.obj}: {report.pages} request(s), {report.rows_received} rows "
                    f"read, {report.rows_inserted} new"
                )

        context.log.info(f"Bitrix24 {settings.host}: extracting {obj.name} ({obj.method})")
        extractor = Bitrix24Extractor(settings)
        con = warehouse.connect()
        try:
            writer = RawWriter(con, SOURCE)
            reports = extractor.extract(writer, obj.name, progress=progress)
            results = [
                dg.MaterializeResult(
                    asset_key=[SOURCE, t.name],
                    metadata=api_table_metadata(t.name, reports, writer, extractor.client),
                )
                for t in obj.tables
            ]
        finally:
            con.close()
            extractor.close()
        yield from results

    return _extract


bitrix24_assets = [build_bitrix24_asset(obj) for obj in OBJECTS]


def enabled_bitrix24_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The Bitrix24 assets when the source is configured in the environment, else none."""
    return bitrix24_assets if Bitrix24Settings.from_env(env) is not None else []
