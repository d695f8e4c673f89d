"""Extract assets of Bitrix24 (REST): one multi-asset per object, keys `[bitrix24, <table>]`.

Each loads its object into `raw_bitrix24.<table>` (see `lib/sources/bitrix24.py`), page by page
(several pages per `batch` request), resuming an interrupted run. Bitrix24's own telephony
(`voximplant.statistic.get`) is `[bitrix24, calls]`. The source is enabled when
`VORONKA_BITRIX24_WEBHOOK_URL` (or the OAuth `VORONKA_BITRIX24_BASE_URL` and
`VORONKA_BITRIX24_ACCESS_TOKEN`) is set: `enabled_bitrix24_assets()` returns the assets then.
"""

import dagster as dg

from dagster_project.defs.extract._crm import CrmSource, build_crm_asset
from dagster_project.lib.sources.bitrix24 import (
    OBJECTS,
    Bitrix24Extractor,
    Bitrix24Settings,
    BitrixObject,
)

CHILD_DESCRIPTIONS = {
    "contact_channels": "Phones and e-mails of Bitrix24 contacts (the PHONE/EMAIL multi-fields), "
    "one row per value and contact version (key entity_id, channel, value, updated_at), with "
    "the phone normalised.",
    "company_channels": "Phones and e-mails of Bitrix24 companies, one row per value and company "
    "version (key entity_id, channel, value, updated_at), with the phone normalised.",
}
CHILD_DESCRIPTIONS.update(
    {
        f"{table}_deletions": f"Bitrix24 {table} no longer listed (deleted, or merged into "
        "another record) and listed again (restored), as the live-id pass after each extraction "
        "saw them (decision D100): one row per id, event (deleted, restored) and observed_at."
        for table in ("deals", "contacts", "companies", "activities")
    }
)

BITRIX24 = CrmSource(
    name="bitrix24",
    group="extract_bitrix24",
    load_settings=Bitrix24Settings.from_env,
    extractor=Bitrix24Extractor,
    not_configured="Bitrix24 is not configured: set VORONKA_BITRIX24_WEBHOOK_URL (or the OAuth "
    "VORONKA_BITRIX24_* variables)",
    origin=lambda obj: f"Bitrix24 `{obj.method}`",
    field_note="field names lowercased",
    child_descriptions=CHILD_DESCRIPTIONS,
    start_message=lambda settings, obj: (
        f"Bitrix24 {settings.host}: extracting {obj.name} ({obj.method})"
    ),
    page_word="request(s)",
)


def build_bitrix24_asset(obj: BitrixObject) -> dg.AssetsDefinition:
    """The multi-asset of one Bitrix24 object (its main table and any child tables)."""
    return build_crm_asset(BITRIX24, obj)


bitrix24_assets = [build_bitrix24_asset(obj) for obj in OBJECTS]


def enabled_bitrix24_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The Bitrix24 assets when the source is configured in the environment, else none."""
    return bitrix24_assets if Bitrix24Settings.from_env(env) is not None else []
