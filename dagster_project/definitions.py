"""The Dagster definitions of Voronka: extract, validate, transform, schedule."""

import dagster as dg

from dagster_project.defs.extract.amocrm import enabled_amocrm_assets
from dagster_project.defs.extract.bitrix24 import enabled_bitrix24_assets
from dagster_project.defs.extract.inbox import inbox_assets
from dagster_project.defs.extract.surveys import enabled_survey_assets
from dagster_project.defs.extract.telephony import enabled_telephony_assets
from dagster_project.defs.finance import finance_assets
from dagster_project.defs.quality.checks import layer_asset_checks, raw_asset_checks
from dagster_project.defs.reports import report_assets
from dagster_project.defs.resources import warehouse_from_settings
from dagster_project.defs.schedules import all_assets_job, daily_schedule
from dagster_project.defs.sensors import inbox_sensor
from dagster_project.defs.transform.dbt import (
    dbt_resource,
    external_source_specs,
    voronka_dbt_assets,
)

defs = dg.Definitions(
    assets=[
        *inbox_assets,
        # API and file sources are on when their settings are (see README, Settings)
        *enabled_amocrm_assets(),
        *enabled_bitrix24_assets(),
        *enabled_telephony_assets(),
        *enabled_survey_assets(),
        voronka_dbt_assets,
        *finance_assets,
        *report_assets,
        *external_source_specs(),  # the finance ledger, written by commands
    ],
    asset_checks=[*raw_asset_checks, *layer_asset_checks],
    jobs=[all_assets_job],
    schedules=[daily_schedule],
    sensors=[inbox_sensor],
    resources={"warehouse": warehouse_from_settings(), "dbt": dbt_resource()},
    # DuckDB has a single writer: steps run one after another in one process.
    executor=dg.in_process_executor,
)
