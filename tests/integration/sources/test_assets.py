"""The source assets: keys, groups, enabling by settings, and a materialization on a fake API."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from dagster_project.defs.extract.amocrm import amocrm_assets, enabled_amocrm_assets
from dagster_project.defs.extract.bitrix24 import bitrix24_assets, enabled_bitrix24_assets
from dagster_project.defs.extract.surveys import enabled_survey_assets, survey_assets
from dagster_project.defs.extract.telephony import enabled_telephony_assets, telephony_assets
from dagster_project.defs.resources import WarehouseResource
from tests.integration.sources.fakes import make_amo_data, make_bitrix_data

pytestmark = pytest.mark.integration

ALL = [*amocrm_assets, *bitrix24_assets, *telephony_assets, *survey_assets]


def keys(assets) -> set[tuple[str, ...]]:
    return {tuple(k.path) for a in assets for k in a.keys}


def test_keys_groups_and_descriptions():
    found = keys(ALL)
    for key in [
        ("amocrm", "leads"),
        ("amocrm", "events"),
        ("amocrm", "statuses"),
        ("amocrm", "call_notes"),
        ("bitrix24", "deals"),
        ("bitrix24", "deal_stage_history"),
        ("bitrix24", "calls"),
        ("mango", "calls"),
        ("cdr", "calls"),
        ("forms", "survey_responses"),
    ]:
        assert key in found
    for assets_def in ALL:
        for key in assets_def.keys:
            spec = assets_def.specs_by_key[key]
            assert spec.group_name == f"extract_{key.path[0]}"
            assert spec.description and len(spec.description) > 60
    defs = dg.Definitions(
        assets=ALL, resources={"warehouse": WarehouseResource(path="x.duckdb", inbox="x")}
    )
    assert len(defs.get_repository_def().asset_graph.get_all_asset_keys()) == len(found)


def test_sources_are_enabled_by_their_settings():
    assert enabled_amocrm_assets({}) == [] and enabled_bitrix24_assets({}) == []
    assert enabled_telephony_assets({}) == [] and enabled_survey_assets({}) == []
    assert enabled_amocrm_assets({"VORONKA_AMOCRM_BASE_URL": "https://x.amocrm.ru"}) == []
    assert (
        enabled_amocrm_assets(
            {
                "VORONKA_AMOCRM_BASE_URL": "https://x.amocrm.ru",
                "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "tok-12345",
            }
        )
        == amocrm_assets
    )
    assert enabled_bitrix24_assets(
        {"VORONKA_BITRIX24_WEBHOOK_URL": "https://x.bitrix24.ru/rest/1/abcdefgh12/"}
    )
    mango_only = enabled_telephony_assets(
        {"VORONKA_MANGO_API_KEY": "k-12345", "VORONKA_MANGO_API_SALT": "s-12345"}
    )
    assert keys(mango_only) == {("mango", "calls"), ("mango", "users")}
    assert keys(
        enabled_telephony_assets({"VORONKA_CDR_DIR": "/x", "VORONKA_CDR_MAPPING": "/m.yml"})
    ) == {("cdr", "calls")}
    assert (
        enabled_survey_assets({"VORONKA_FORMS_DIR": "/x", "VORONKA_FORMS_CONFIG": "/c.yml"})
        == survey_assets
    )


def test_materialize_amocrm_and_bitrix24_on_fakes(amo_server, bitrix_server, tmp_path, monkeypatch):
    amo_server.data = make_amo_data(n_leads=260, n_contacts=3)
    bitrix_server.data = make_bitrix_data(n_deals=60)
    monkeypatch.setenv("VORONKA_AMOCRM_BASE_URL", amo_server.url)
    monkeypatch.setenv("VORONKA_AMOCRM_LONG_LIVED_TOKEN", "access-token-AAAA")
    monkeypatch.setenv("VORONKA_BITRIX24_WEBHOOK_URL", bitrix_server.webhook_url)
    monkeypatch.setenv("VORONKA_TOKEN_STORE", str(tmp_path / "tokens.json"))
    warehouse = WarehouseResource(path=str(tmp_path / "wh.duckdb"), inbox=str(tmp_path / "inbox"))
    selected = [
        a for a in ALL if a.node_def.name in ("amocrm_leads", "amocrm_pipelines", "bitrix24_deals")
    ]
    result = dg.materialize(selected, resources={"warehouse": warehouse})
    assert result.success
    materializations = {
        tuple(m.asset_key.path): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    leads = materializations[("amocrm", "leads")]
    assert leads["dagster/row_count"].value == 260 and leads["rows_inserted"].value == 260
    assert leads["host"].value == amo_server.url.split("//")[1]
    assert materializations[("amocrm", "statuses")]["dagster/row_count"].value == 4
    assert materializations[("bitrix24", "deals")]["dagster/row_count"].value == 60
    dumped = json.dumps(
        {str(k): {n: str(v.value) for n, v in md.items()} for k, md in materializations.items()}
    )
    assert "access-token-AAAA" not in dumped and bitrix_server.webhook_code not in dumped


def test_a_failing_api_fails_the_asset_with_a_clear_message(amo_server, tmp_path, monkeypatch):
    amo_server.data = make_amo_data(n_leads=10)
    amo_server.fail("/api/v4/leads", 500, "boom", times=100)
    monkeypatch.setenv("VORONKA_AMOCRM_BASE_URL", amo_server.url)
    monkeypatch.setenv("VORONKA_AMOCRM_LONG_LIVED_TOKEN", "access-token-AAAA")
    monkeypatch.setenv("VORONKA_HTTP_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("VORONKA_HTTP_BACKOFF_SECONDS", "0.01")
    warehouse = WarehouseResource(path=str(tmp_path / "wh.duckdb"), inbox=str(tmp_path / "inbox"))
    leads = next(a for a in amocrm_assets if a.node_def.name == "amocrm_leads")
    result = dg.materialize([leads], resources={"warehouse": warehouse}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    text = failure.to_string()
    assert "amocrm GET /api/v4/leads failed after 3 attempts: HTTP 500" in text
    assert "access-token-AAAA" not in text
