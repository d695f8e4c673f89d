"""Survey form exports (Google Forms, Yandex Forms: one column per question) as NPS/CSAT responses.

Files: `VORONKA_FORMS_DIR` (CSV or XLSX); the config (YAML or JSON): `VORONKA_FORMS_CONFIG`.
Each form row gives one inbox `survey_responses` row per mapped question it answered, landed in
`raw_forms.survey_responses` (contract columns as text, `_source` = the form's name); rows that
break the contract (a score outside 0–10 for NPS, 1–5 for CSAT, no time) go to
`raw_forms.survey_responses_quarantine`. A respondent who skipped a question gives no row.

Example config::

    forms:
      - name: nps_after_purchase
        files: ["nps/*.xlsx", "nps/*.csv"]
        sheet: null                            # XLSX: default the first sheet
        timestamp_format: "%d.%m.%Y %H:%M:%S"  # optional; default ISO 8601
        columns:                               # header names, case-insensitive
          responded_at: "Отметка времени"
          client_phone: "Телефон"
          client_email: "Адрес электронной почты"
          deal_id: "Номер заказа"              # also: response_id, client_id, request_id,
        questions:                             #       manager_id
          - column: "Насколько вероятно, что вы порекомендуете нас?"
            survey_type: nps
            comment: "Почему?"                 # optional comment column
          - column: "Оцените работу менеджера"
            survey_type: csat
            values: {"Отлично": 5, "Хорошо": 4, "Нормально": 3, "Плохо": 2, "Ужасно": 1}

The score is the leading number of the answer (`9`, `9 — скорее да`), or the `values` label
map. `response_id` is the mapped column (plus the question) or, by default, a hash of the form,
the time, the respondent's identifiers and the answer, so that a later export repeating earlier
answers loads nothing twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.contract import ENTITY_BY_NAME
from dagster_project.lib.sources.files import (
    FileResult,
    MappedFileLoader,
    MappingError,
    column_ref,
    list_files,
    literal,
    load_mapping,
    timestamp_sql,
)

SOURCE = "forms"
ENTITY = ENTITY_BY_NAME["survey_responses"]
ID_COLUMNS = (
    "response_id",
    "client_id",
    "client_phone",
    "client_email",
    "deal_id",
    "request_id",
    "manager_id",
)


@dataclass(frozen=True)
class FormsSettings:
    """Where the exports and their config are (`VORONKA_FORMS_DIR`, `VORONKA_FORMS_CONFIG`)."""

    folder: Path
    config_file: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> FormsSettings | None:
        env = dict(os.environ if env is None else env)
        folder = (env.get("VORONKA_FORMS_DIR") or "").strip()
        config = (env.get("VORONKA_FORMS_CONFIG") or "").strip()
        if not folder or not config:
            return None
        return cls(Path(folder).expanduser(), Path(config).expanduser())


@dataclass(frozen=True)
class Question:
    column: str
    survey_type: str
    comment: str | None = None
    values: dict | None = None


@dataclass(frozen=True)
class FormMapping:
    """One form's mapping."""

    name: str
    files: tuple[str, ...]
    columns: dict[str, str]
    questions: tuple[Question, ...]
    timestamp_format: str | None = None
    sheet: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> FormMapping:
        name = str(data.get("name") or "").strip()
        if not name:
            raise MappingError("every form needs a `name`")
        columns = data.get("columns") or {}
        unknown = sorted(set(columns) - {"responded_at", *ID_COLUMNS})
        if unknown:
            raise MappingError(f"form {name}: unknown column(s) in `columns`: {', '.join(unknown)}")
        if not columns.get("responded_at"):
            raise MappingError(f"form {name}: `columns.responded_at` is required")
        questions = []
        for q in data.get("questions") or []:
            survey_type = str(q.get("survey_type") or "").lower()
            if survey_type not in ("nps", "csat"):
                raise MappingError(f"form {name}: `survey_type` must be nps or csat")
            if not q.get("column"):
                raise MappingError(f"form {name}: every question needs a `column`")
            questions.append(
                Question(str(q["column"]), survey_type, q.get("comment"), q.get("values"))
            )
        if not questions:
            raise MappingError(f"form {name}: map at least one question")
        files = data.get("files") or [f"{name}/*"]
        return cls(
            name=name,
            files=tuple([files] if isinstance(files, str) else files),
            columns={k: str(v) for k, v in columns.items() if v},
            questions=tuple(questions),
            timestamp_format=data.get("timestamp_format"),
            sheet=data.get("sheet"),
        )


def load_config(path: Path) -> list[FormMapping]:
    """The forms of a config file."""
    try:
        data = load_mapping(path)
        forms = data.get("forms")
        if not isinstance(forms, list) or not forms:
            raise MappingError("the config needs a non-empty `forms` list")
        mappings = [FormMapping.from_dict(f) for f in forms]
    except MappingError as exc:
        raise MappingError(f"{Path(path).name}: {exc}") from None
    names = [m.name for m in mappings]
    if len(set(names)) != len(names):
        raise MappingError(f"{Path(path).name}: form names must be unique")
    return mappings


def _score_sql(answer: str, values: dict | None) -> str:
    leading = f"coalesce(nullif(regexp_extract({answer}, '^\\s*(\\d{{1,3}})', 1), ''), {answer})"
    if not values:
        return leading
    whens = " ".join(
        f"when {literal(str(k).strip().lower())} then {literal(str(v))}" for k, v in values.items()
    )
    return f"(case lower({answer}) {whens} else {leading} end)"


def mapper(form: FormMapping):
    """The SQL giving one `survey_responses` row per answered mapped question."""

    def build(by_name: dict[str, str]) -> str:
        cols = {k: column_ref(by_name, v, k) for k, v in form.columns.items()}
        responded = timestamp_sql(cols["responded_at"], form.timestamp_format)
        parts = []
        for q in form.questions:
            answer = column_ref(by_name, q.column, f"a {q.survey_type} question")
            comment = column_ref(by_name, q.comment, "a comment") if q.comment else "null"
            tag = hashlib.md5(q.column.strip().lower().encode()).hexdigest()[:6]
            identity = ", ".join(f"coalesce({cols[c]}, '')" for c in ID_COLUMNS if cols.get(c))
            generated = (
                f"{literal(form.name + ':')} || md5(concat_ws('|', "
                f"coalesce({cols['responded_at']}, ''), "
                f"{identity + ', ' if identity else ''}{literal(tag)}, {answer}))"
            )
            response_id = (
                f"{cols['response_id']} || {literal(':' + tag)}"
                if cols.get("response_id")
                else generated
            )
            select = [
                f"{response_id} as response_id",
                f"{literal(q.survey_type)} as survey_type",
                f"{_score_sql(answer, q.values)} as score",
                f"{responded} as responded_at",
                *(
                    f"{cols.get(c) or 'null'} as {c}"
                    for c in (
                        "client_id",
                        "client_phone",
                        "client_email",
                        "deal_id",
                        "request_id",
                        "manager_id",
                    )
                ),
                f"{comment} as comment",
                "(rowid + 2) as _source_line",
            ]
            parts.append(f"select {', '.join(select)} from _stage where {answer} is not null")
        return " union all ".join(parts)

    return build


def load_forms(con, settings: FormsSettings, progress=None) -> list[FileResult]:
    """Load every new or changed export of every configured form into `raw_forms`."""
    results = []
    for form in load_config(settings.config_file):
        loader = MappedFileLoader(con, SOURCE, ENTITY, settings.folder, form.name)
        build = mapper(form)
        try:
            for path in list_files(settings.folder, list(form.files), (".csv", ".xlsx")):
                result = loader.load(path, build, sheet=form.sheet)
                results.append(result)
                if progress:
                    progress(result)
        finally:
            loader.close()
    return results
