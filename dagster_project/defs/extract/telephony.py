"""Extract assets of the telephony sources other than Bitrix24's own (that is `[bitrix24, calls]`).

- Mango Office (VPBX API): `[mango, calls]` (call legs from the statistics report) and
  `[mango, users]` (extension → employee), in `raw_mango`; enabled by `VORONKA_MANGO_API_KEY`
  and `VORONKA_MANGO_API_SALT`.
- Any other provider's call log as CSV with a column mapping: `[cdr, calls]` in `raw_cdr.calls`
  in the inbox `calls` shape (bad rows in `raw_cdr.calls_quarantine`); enabled by
  `VORONKA_CDR_DIR` and `VORONKA_CDR_MAPPING`.

`enabled_telephony_assets()` returns the assets of the configured sources.
"""

import dagster as dg

from dagster_project.defs.extract._files import load_file_source
from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources import mango
from dagster_project.lib.sources.cdr_csv import CdrSettings, load_cdr
from dagster_project.lib.sources.engine import ObjectReport
from dagster_project.lib.sources.mango import MangoExtractor, MangoSettings
from dagster_project.lib.sources.reporting import api_table_metadata
from dagster_project.lib.sources.state import RawWriter


def build_mango_asset(name: str) -> dg.AssetsDefinition:
    """The asset of one Mango Office object (`calls` or `users`)."""
    grain = (
        "one row per report line (call leg), keyed by the line's hash"
        if name == "calls"
        else "one row per extension and content version"
    )

    @dg.asset(
        key=["mango", name],
        group_name="extract_mango",
        kinds={"api", "duckdb"},
        description=f"{mango.OBJECTS[name]} Into `raw_mango.{name}` (grain: {grain}).",
    )
    def _extract(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        settings = MangoSettings.from_env()
        if settings is None:
            raise dg.Failure(
                "Mango Office is not configured: set VORONKA_MANGO_API_KEY and "
                "VORONKA_MANGO_API_SALT"
            )

        def progress(report: ObjectReport) -> None:
            context.log.info(
                f"mango {report.obj}: {report.pages} window(s), {report.rows_inserted} new rows"
            )

        extractor = MangoExtractor(settings)
        con = warehouse.connect()
        try:
            writer = RawWriter(con, "mango")
            reports = extractor.extract(writer, name, progress=progress)
            metadata = api_table_metadata(name, reports, writer, extractor.client)
        finally:
            con.close()
            extractor.close()
        return dg.MaterializeResult(metadata=metadata)

    return _extract


@dg.asset(
    key=["cdr", "calls"],
    group_name="extract_cdr",
    kinds={"csv", "duckdb"},
    description=(
        "Call records (CDR) exported by any telephony provider as CSV, mapped by the "
        "VORONKA_CDR_MAPPING file into the inbox `calls` shape and loaded into `raw_cdr.calls` "
        "(grain: one row per call_id; text as in raw.calls, the file's other columns kept); "
        "rows that break the inbox contract go to `raw_cdr.calls_quarantine`."
    ),
)
def cdr_calls(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    return load_file_source(
        context,
        warehouse,
        settings=CdrSettings.from_env(),
        not_configured=(
            "the CDR source is not configured: set VORONKA_CDR_DIR and VORONKA_CDR_MAPPING"
        ),
        load=load_cdr,
        table="raw_cdr.calls",
        counts=lambda result: (
            f"{result.rows_read} rows, {result.rows_loaded} loaded, "
            f"{result.rows_quarantined} quarantined"
        ),
    )


mango_assets = [build_mango_asset("calls"), build_mango_asset("users")]
telephony_assets = [*mango_assets, cdr_calls]


def enabled_telephony_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The assets of the configured telephony sources (Mango Office, CDR CSV)."""
    enabled: list[dg.AssetsDefinition] = []
    if MangoSettings.from_env(env) is not None:
        enabled.extend(mango_assets)
    if CdrSettings.from_env(env) is not None:
        enabled.append(cdr_calls)
    return enabled
