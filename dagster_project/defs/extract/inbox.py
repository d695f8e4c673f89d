"""Extract assets of the inbox: one asset per entity, key `[inbox, <entity>]`.

Each asset loads the new and changed CSV files of `<inbox>/<entity>/` into `raw.<entity>`
(rejected rows into `quarantine.<entity>`), see `lib/inbox_loader.py`. The keys match the dbt
source `inbox`, so lineage joins the dbt staging models without a custom translator.
"""

from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.contract import ENTITIES, Entity
from dagster_project.lib.inbox_loader import EntityReport, FileReport, InboxLoader, inbox_problem
from dagster_project.lib.run_inputs import FileHashes
from dagster_project.lib.sources import configured_sources


def _file_table(report: EntityReport) -> str:
    lines = [
        "| file | status | rows | loaded | quarantined | encoding | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in report.files + report.others:
        note = (f.message or "").replace("|", "/")
        lines.append(
            f"| {f.source_file} | {f.status} | {f.rows_read} | {f.rows_loaded} | "
            f"{f.rows_quarantined} | {f.encoding or ''} {f.delimiter or ''} | {note} |"
        )
    return "\n".join(lines)


def report_metadata(report: EntityReport, raw_rows: int) -> dict:
    """Asset metadata of one load: counts, and the per-file table."""
    return {
        "dagster/row_count": dg.MetadataValue.int(raw_rows),
        "rows_loaded": dg.MetadataValue.int(report.rows_loaded),
        "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
        "rows_released_from_quarantine": dg.MetadataValue.int(report.rows_released),
        "files_loaded": dg.MetadataValue.int(report.count("loaded") + report.count("reloaded")),
        "files_skipped_unchanged": dg.MetadataValue.int(report.count("skipped_unchanged")),
        "files_failed": dg.MetadataValue.int(len(report.failed_files)),
        "files_ignored": dg.MetadataValue.int(len(report.ignored)),
        "files_vanished": dg.MetadataValue.int(len(report.vanished)),
        "files": (
            dg.MetadataValue.md(_file_table(report))
            if report.files or report.others
            else "no files"
        ),
    }


def require_inbox(inbox: Path) -> None:
    """Fail the run, naming the folder, when the inbox is missing or empty: a run from the UI,
    the schedule or the sensor must not turn green on nothing (D107). With an API or file
    source on, an empty or missing inbox is a normal set-up."""
    if configured_sources():
        return
    problem = inbox_problem(inbox)
    if problem:
        raise dg.Failure(problem)


def build_inbox_asset(entity: Entity) -> dg.AssetsDefinition:
    """The extract asset of one inbox entity."""

    @dg.asset(
        key=["inbox", entity.name],
        group_name="extract_inbox",
        deps=[dg.AssetKey(["inbox", ref]) for _, ref, _ in entity.references],
        kinds={"duckdb", "csv"},
        description=(
            f"{entity.description} Loaded from `inbox/{entity.name}/*.csv` into "
            f"`raw.{entity.name}` (grain: one row per file row; key {', '.join(entity.key)}); "
            f"rows that break the inbox contract go to `quarantine.{entity.name}`."
        ),
    )
    def _extract(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        def progress(file: FileReport) -> None:
            if file.status == "failed":
                context.log.warning(f"{file.source_file}: not loaded: {file.message}")
            elif file.status in ("ignored", "vanished"):
                context.log.warning(f"{file.source_file}: {file.status}: {file.message}")
            elif file.status != "skipped_unchanged":
                context.log.info(
                    f"{file.source_file}: {file.rows_read} rows, {file.rows_loaded} loaded, "
                    f"{file.rows_quarantined} quarantined"
                )

        require_inbox(warehouse.inbox_path)
        hashes = FileHashes(warehouse.published_path)  # what the run's start hashed (D151)
        con = warehouse.connect()
        loader = InboxLoader(
            con,
            warehouse.inbox_path,
            run_id=context.run_id,
            hashes=hashes,
            memory_limit=warehouse.memory_limit,
        )
        try:
            report = loader.load_entity(entity, progress=progress)
            raw_rows = con.execute(f'select count(*) from raw."{entity.name}"').fetchone()[0]
        finally:
            loader.close()
            con.close()
            hashes.save()
        skipped = report.count("skipped_unchanged")
        if skipped:
            context.log.info(f"{entity.name}: {skipped} unchanged file(s) skipped")
        return dg.MaterializeResult(metadata=report_metadata(report, raw_rows))

    return _extract


inbox_assets = [build_inbox_asset(entity) for entity in ENTITIES]
