"""Extract assets of amoCRM (API v4): one multi-asset per object, keys `[amocrm, <table>]`.

Each loads its object incrementally into `raw_amocrm.<table>` (see `lib/sources/amocrm.py`),
page by page, resuming an interrupted run. The source is enabled when `VORONKA_AMOCRM_BASE_URL`
and a token (`VORONKA_AMOCRM_LONG_LIVED_TOKEN` or `VORONKA_AMOCRM_ACCESS_TOKEN`) are set:
`enabled_amocrm_assets()` returns the assets then, else nothing.
"""

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources.amocrm import OBJECTS, AmoCrmExtractor, AmoCrmSettings, AmoObject
from dagster_project.lib.sources.engine import ObjectReport
from dagster_project.lib.sources.reporting import api_table_metadata
from dagster_project.lib.sources.state import RawWriter

SOURCE = "amocrm"
GROUP = "extract_amocrm"

CHILD_DESCRIPTIONS = {
    "statuses": "Stages of every amoCRM pipeline (grain: one row per pipeline and status "
    "version; key pipeline_id, id): name, sort, type, color. Loaded with the pipelines.",
    "contact_channels": "Phones and e-mails of amoCRM contacts, one row per value and contact "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
    "company_channels": "Phones and e-mails of amoCRM companies, one row per value and company "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
}


def _description(obj: AmoObject, table: str) -> str:
    if table in CHILD_DESCRIPTIONS:
        return CHILD_DESCRIPTIONS[table]
    spec = next(t for t in obj.tables if t.name == table)
    version = spec.version or "content (row hash)"
    return (
        f"{obj.description} From amoCRM `{obj.path}` into `raw_amocrm.{table}` (grain: one row "
        f"per {', '.join(spec.key)} and {version}; fields flattened one level, nested values "
        f"as JSON text)."
    )


def build_amocrm_asset(obj: AmoObject) -> dg.AssetsDefinition:
    """The multi-asset of one amoCRM object (its main table and any child tables)."""
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
        settings = AmoCrmSettings.from_env()
        if settings is None:
            raise dg.Failure(
                "amoCRM is not configured: set VORONKA_AMOCRM_BASE_URL and "
                "VORONKA_AMOCRM_LONG_LIVED_TOKEN (or the OAuth VORONKA_AMOCRM_* variables)"
            )

        def progress(report: ObjectReport) -> None:
            if report.pages == 1 or report.pages % 20 == 0:
                context.log.info(
                    f"{report.obj}: {report.pages} page(s), {report.rows_received} rows read, "
                    f"{report.rows_inserted} new"
                )

        context.log.info(f"amoCRM {settings.host}: extracting {obj.name}")
        extractor = AmoCrmExtractor(settings)
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


amocrm_assets = [build_amocrm_asset(obj) for obj in OBJECTS]


def enabled_amocrm_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The amoCRM assets when the source is configured in the environment, else none."""
    return amocrm_assets if AmoCrmSettings.from_env(env) is not None else []
