"""Extract assets of amoCRM (API v4): one multi-asset per object, keys `[amocrm, <table>]`.

Each loads its object incrementally into `raw_amocrm.<table>` (see `lib/sources/amocrm.py`),
page by page, resuming an interrupted run. The source is enabled when `VORONKA_AMOCRM_BASE_URL`
and a token (`VORONKA_AMOCRM_LONG_LIVED_TOKEN` or `VORONKA_AMOCRM_ACCESS_TOKEN`) are set:
`enabled_amocrm_assets()` returns the assets then, else nothing.
"""

import dagster as dg

from dagster_project.defs.extract._crm import CrmSource, build_crm_asset
from dagster_project.lib.sources.amocrm import OBJECTS, AmoCrmExtractor, AmoCrmSettings, AmoObject

CHILD_DESCRIPTIONS = {
    "statuses": "Stages of every amoCRM pipeline (grain: one row per pipeline and status "
    "version; key pipeline_id, id): name, sort, type, color. Loaded with the pipelines.",
    "contact_channels": "Phones and e-mails of amoCRM contacts, one row per value and contact "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
    "company_channels": "Phones and e-mails of amoCRM companies, one row per value and company "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
}

AMOCRM = CrmSource(
    name="amocrm",
    group="extract_amocrm",
    load_settings=AmoCrmSettings.from_env,
    extractor=AmoCrmExtractor,
    not_configured="amoCRM is not configured: set VORONKA_AMOCRM_BASE_URL and "
    "VORONKA_AMOCRM_LONG_LIVED_TOKEN (or the OAuth VORONKA_AMOCRM_* variables)",
    origin=lambda obj: f"amoCRM `{obj.path}`",
    field_note="fields flattened one level",
    child_descriptions=CHILD_DESCRIPTIONS,
    start_message=lambda settings, obj: f"amoCRM {settings.host}: extracting {obj.name}",
    page_word="page(s)",
)


def build_amocrm_asset(obj: AmoObject) -> dg.AssetsDefinition:
    """The multi-asset of one amoCRM object (its main table and any child tables)."""
    return build_crm_asset(AMOCRM, obj)


amocrm_assets = [build_amocrm_asset(obj) for obj in OBJECTS]


def enabled_amocrm_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The amoCRM assets when the source is configured in the environment, else none."""
    return amocrm_assets if AmoCrmSettings.from_env(env) is not None else []
