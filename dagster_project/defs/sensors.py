"""A sensor that starts the pipeline when files in the inbox are added or changed."""

from __future__ import annotations

import hashlib

import dagster as dg

from dagster_project.defs.schedules import all_assets_job
from dagster_project.lib.contract import ENTITIES
from dagster_project.lib.inbox_loader import list_files
from dagster_project.lib.settings import Settings


def inbox_fingerprint() -> tuple[str, int]:
    """A digest of every inbox file's name, size and modification time, and the file count."""
    inbox = Settings.from_env().inbox
    digest = hashlib.sha256()
    count = 0
    for entity in ENTITIES:
        for path in list_files(inbox, entity):
            stat = path.stat()
            digest.update(f"{path.relative_to(inbox)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            count += 1
    return digest.hexdigest(), count


@dg.sensor(job=all_assets_job, minimum_interval_seconds=60, name="inbox_new_files")
def inbox_sensor(context: dg.SensorEvaluationContext):
    """Runs the whole pipeline when a file is added to or changed in the inbox."""
    fingerprint, count = inbox_fingerprint()
    if count == 0 or fingerprint == context.cursor:
        return dg.SkipReason(f"no new or changed inbox files ({count} files)")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)
