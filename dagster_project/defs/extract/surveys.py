"""Extract asset of survey form exports (Google Forms, Yandex Forms): `[forms, survey_responses]`.

CSV and XLSX exports in `VORONKA_FORMS_DIR`, mapped by `VORONKA_FORMS_CONFIG` (question column
→ NPS/CSAT, columns → time and respondent) into the inbox `survey_responses` shape, loaded into
`raw_forms.survey_responses` (see `lib/sources/survey_forms.py`). `enabled_survey_assets()`
returns the asset when both settings are present.
"""

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.sources.files import FileResult
from dagster_project.lib.sources.reporting import file_table_metadata
from dagster_project.lib.sources.survey_forms import FormsSettings, load_forms


@dg.asset(
    key=["forms", "survey_responses"],
    group_name="extract_forms",
    kinds={"csv", "duckdb"},
    description=(
        "NPS and CSAT answers from form-tool exports (one column per question), mapped by the "
        "VORONKA_FORMS_CONFIG file into the inbox `survey_responses` shape and loaded into "
        "`raw_forms.survey_responses` (grain: one row per response_id = form row × mapped "
        "question answered); rows that break the contract (score out of range, no time) go "
        "to `raw_forms.survey_responses_quarantine`."
    ),
)
def forms_survey_responses(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = FormsSettings.from_env()
    if settings is None:
        raise dg.Failure(
            "the forms source is not configured: set VORONKA_FORMS_DIR and VORONKA_FORMS_CONFIG"
        )

    def progress(result: FileResult) -> None:
        if result.status == "failed":
            context.log.warning(f"{result.source_file}: not loaded: {result.message}")
        elif result.status != "skipped_unchanged":
            context.log.info(
                f"{result.source_file}: {result.rows_read} answers, {result.rows_loaded} "
                f"loaded, {result.rows_quarantined} quarantined, {result.rows_duplicate} "
                "already loaded"
            )

    con = warehouse.connect()
    try:
        results = load_forms(con, settings, progress=progress)
        rows = con.execute("select count(*) from raw_forms.survey_responses").fetchone()[0]
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata=file_table_metadata(results, rows, "raw_forms.survey_responses")
    )


survey_assets = [forms_survey_responses]


def enabled_survey_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The survey-export asset when the source is configured, else none."""
    return survey_assets if FormsSettings.from_env(env) is not None else []
