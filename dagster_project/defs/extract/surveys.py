"""Extract asset of survey form exports (Google Forms, Yandex Forms): `[forms, survey_responses]`.

CSV and XLSX exports in `VORONKA_FORMS_DIR`, mapped by `VORONKA_FORMS_CONFIG` (question column
→ NPS/CSAT, columns → time and respondent) into the inbox `survey_responses` shape, loaded into
`raw_forms.survey_responses` (see `lib/sources/survey_forms.py`). `enabled_survey_assets()`
returns the asset when both settings are present.
"""

import dagster as dg

from dagster_project.defs.extract._files import load_file_source
from dagster_project.defs.resources import WarehouseResource
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
    return load_file_source(
        context,
        warehouse,
        settings=FormsSettings.from_env(),
        not_configured=(
            "the forms source is not configured: set VORONKA_FORMS_DIR and VORONKA_FORMS_CONFIG"
        ),
        load=load_forms,
        table="raw_forms.survey_responses",
        counts=lambda result: (
            f"{result.rows_read} answers, {result.rows_loaded} loaded, "
            f"{result.rows_quarantined} quarantined, {result.rows_duplicate} already loaded"
        ),
    )


survey_assets = [forms_survey_responses]


def enabled_survey_assets(env: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The survey-export asset when the source is configured, else none."""
    return survey_assets if FormsSettings.from_env(env) is not None else []
