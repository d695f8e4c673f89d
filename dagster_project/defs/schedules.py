"""The daily run of the whole pipeline."""

from __future__ import annotations

import dagster as dg

all_assets_job = dg.define_asset_job(
    "voronka_all",
    selection=dg.AssetSelection.all(),
    description="Load the inbox, validate it, and build staging, core and the marts.",
)

daily_schedule = dg.ScheduleDefinition(
    name="voronka_daily",
    job=all_assets_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/Moscow",
    description="Every day at 06:00 Moscow time: the whole pipeline on what the inbox holds.",
)
