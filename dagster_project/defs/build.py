"""The one definitions builder (D121): every asset, check, resource, job, schedule and sensor of
Voronka, read by ``dagster_project/definitions.py`` (the Dagster UI, ``dagster dev``) and by
``dagster_project/runner.py`` (``voronka run``), so the two cannot drift apart.

Building parses the dbt project if its manifest is stale (``defs/transform/dbt.py``,
``build_dbt_assets``); importing this module does not.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.lib.settings import Settings


def build_definitions(
    settings: Settings | None = None, *, validate_in_worker: bool = False
) -> dg.Definitions:
    """The Dagster definitions for ``settings`` (default: the environment's).

    Args:
        settings: inbox, warehouse and the rest; the API and file sources are on when their
            settings are in the environment (see README, "Connecting ...").
        validate_in_worker: run the Great Expectations checks in a worker process that the run
            starts and ends (``voronka run``, D68); else in the step's process.
    """
    from dagster_project.defs.extract.amocrm import enabled_amocrm_assets
    from dagster_project.defs.extract.bitrix24 import enabled_bitrix24_assets
    from dagster_project.defs.extract.inbox import inbox_assets
    from dagster_project.defs.extract.surveys import enabled_survey_assets
    from dagster_project.defs.extract.telephony import enabled_telephony_assets
    from dagster_project.defs.finance import finance_assets
    from dagster_project.defs.quality.checks import build_layer_asset_checks, raw_asset_checks
    from dagster_project.defs.reports import build_report_assets
    from dagster_project.defs.resources import ValidationResource, warehouse_from_settings
    from dagster_project.defs.schedules import all_assets_job, daily_schedule
    from dagster_project.defs.sensors import inbox_sensor
    from dagster_project.defs.transform.dbt import (
        build_dbt_assets,
        dbt_resource,
        external_source_specs,
    )

    dbt_assets = build_dbt_assets()
    dbt_keys = list(dbt_assets.keys)
    return dg.Definitions(
        assets=[
            *inbox_assets,
            # API and file sources are on when their settings are (see README, Settings)
            *enabled_amocrm_assets(),
            *enabled_bitrix24_assets(),
            *enabled_telephony_assets(),
            *enabled_survey_assets(),
            dbt_assets,
            *finance_assets,
            *build_report_assets(dbt_keys),
            *external_source_specs(),  # the finance ledger, written by commands
        ],
        asset_checks=[*raw_asset_checks, *build_layer_asset_checks(dbt_keys)],
        jobs=[all_assets_job],
        schedules=[daily_schedule],
        sensors=[inbox_sensor],
        resources={
            "warehouse": warehouse_from_settings(settings),
            "dbt": dbt_resource(),
            "validation": ValidationResource(in_worker=validate_in_worker),
        },
        # DuckDB has a single writer: steps run one after another in one process.
        executor=dg.in_process_executor,
    )
