"""The generic CDR CSV and the survey form exports, mapped into the inbox contract's shape."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from dagster_project.lib.sources.cdr_csv import CdrMapping, CdrSettings, load_cdr
from dagster_project.lib.sources.files import MappingError
from dagster_project.lib.sources.survey_forms import FormsSettings, load_config, load_forms

pytestmark = pytest.mark.integration

CDR_MAPPING = """
name: cloudpbx
timestamp_format: "%d.%m.%Y %H:%M:%S"
duration_format: hms
columns:
  call_id: "ID звонка"
  started_at: "Дата и время"
  direction: "Тип"
  client_phone: "Номер клиента"
  manager_extension: "Внутренний"
  status: "Статус"
  total_seconds: "Длительность"
  talk_seconds: "Разговор"
values:
  direction: {"Входящий": inbound, "Исходящий": outbound}
  status: {"Отвечен": answered, "Пропущен": missed, "Занято": busy}
"""

CDR_CSV = (
    "ID звонка;Дата и время;Тип;Номер клиента;Внутренний;Статус;Длительность;Разговор;Тег\n"
    "c1;01.02.2026 09:15:00;Входящий;8 (916) 123-45-67;101;Отвечен;0:02:10;1:55;VIP\n"
    "c2;01.02.2026 09:20:00;Исходящий;+7 916 765 43 21;102;Занято;0:00:05;0:00;\n"
    "c3;01.02.2026 09:25:00;Входящий;9161112233;;Пропущен;0:00:30;0:00;\n"
    "c4;01.02.2026 09:30:00;Факс;9161112233;101;Отвечен;0:01:00;0:00:40;\n"
)


def cdr(tmp_path, csv_text=CDR_CSV, name="2026-02-01.csv"):
    folder = tmp_path / "cdr"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(csv_text.encode("cp1251"))  # an Excel export in a Russian locale
    mapping = tmp_path / "cdr.yml"
    mapping.write_text(CDR_MAPPING, encoding="utf-8")
    return CdrSettings(folder, mapping)


def test_cdr_rows_become_inbox_calls(tmp_path, con):
    [result] = load_cdr(con, cdr(tmp_path))
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        "loaded",
        4,
        3,
        1,
    )
    rows = con.execute(
        "select call_id, started_at, direction, client_phone, manager_extension, status, "
        'ring_seconds, talk_seconds, "тег", _source_file, _source_line, _source '
        "from raw_cdr.calls order by call_id"
    ).fetchall()
    assert rows[0] == (
        "c1",
        "2026-02-01 09:15:00",
        "inbound",
        "8 (916) 123-45-67",
        "101",
        "answered",
        "15",
        "115",
        "VIP",
        "2026-02-01.csv",
        2,
        "cloudpbx",
    )
    assert rows[2][2:8] == ("inbound", "9161112233", None, "missed", "30", "0")
    bad = con.execute(
        "select call_id, _reason, _source_line from raw_cdr.calls_quarantine"
    ).fetchone()
    assert bad == ("c4", "invalid_enum:direction", 5)


def test_cdr_files_load_once_and_a_changed_file_replaces_its_rows(tmp_path, con):
    settings = cdr(tmp_path)
    load_cdr(con, settings)
    [again] = load_cdr(con, settings)
    assert again.status == "skipped_unchanged"
    cdr(tmp_path, CDR_CSV.replace("Занято", "Отвечен"))
    [changed] = load_cdr(con, settings)
    assert changed.status == "reloaded"
    assert con.execute("select count(*) from raw_cdr.calls").fetchone()[0] == 3
    assert con.execute("select status from raw_cdr.calls where call_id = 'c2'").fetchone() == (
        "answered",
    )


def test_a_cdr_mapping_error_names_what_to_fix(tmp_path, con):
    with pytest.raises(MappingError, match="must map started_at"):
        CdrMapping.from_dict(
            {
                "columns": {
                    "direction": "x",
                    "client_phone": "y",
                    "status": "z",
                    "talk_seconds": "t",
                    "total_seconds": "u",
                }
            }
        )
    settings = cdr(tmp_path)
    settings.mapping_file.write_text(
        CDR_MAPPING.replace('"Номер клиента"', '"Телефон"'), encoding="utf-8"
    )
    [result] = load_cdr(con, settings)
    assert (
        result.status == "failed"
        and "'Телефон'" in result.message
        and "client_phone" in result.message
    )


FORMS = {
    "forms": [
        {
            "name": "nps_q1",
            "files": ["nps/*"],
            "timestamp_format": "%d.%m.%Y %H:%M:%S",
            "columns": {
                "responded_at": "Отметка времени",
                "client_phone": "Телефон",
                "deal_id": "Номер заказа",
            },
            "questions": [
                {
                    "column": "Насколько вероятно, что вы порекомендуете нас?",
                    "survey_type": "nps",
                    "comment": "Почему?",
                },
                {
                    "column": "Оцените менеджера",
                    "survey_type": "csat",
                    "values": {"Отлично": 5, "Хорошо": 4, "Плохо": 2},
                },
            ],
        }
    ]
}
FORM_CSV = (
    'Отметка времени,"Насколько вероятно, что вы порекомендуете нас?",Почему?,Оцените менеджера,Телефон,Номер заказа\n'
    '15.03.2026 14:22:05,"9 — скорее да",Быстро,Отлично,+7 916 000 00 01,D-1\n'
    "15.03.2026 15:00:00,10,,,+7 916 000 00 02,D-2\n"
    "16.03.2026 10:00:00,11,Очень,Плохо,,D-3\n"
)


def forms(tmp_path):
    folder = tmp_path / "forms"
    (folder / "nps").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "forms.json"
    config.write_text(json.dumps(FORMS, ensure_ascii=False), encoding="utf-8")
    return FormsSettings(folder, config)


def test_form_export_rows_become_nps_and_csat_responses(tmp_path, con):
    settings = forms(tmp_path)
    (settings.folder / "nps" / "export-1.csv").write_text(FORM_CSV, encoding="utf-8-sig")
    [result] = load_forms(con, settings)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 4, 1)
    rows = con.execute(
        "select survey_type, score, responded_at, client_phone, deal_id, comment from raw_forms.survey_responses "
        "order by responded_at, survey_type"
    ).fetchall()
    assert rows[0] == ("csat", "5", "2026-03-15 14:22:05", "+7 916 000 00 01", "D-1", None)
    assert rows[1] == ("nps", "9", "2026-03-15 14:22:05", "+7 916 000 00 01", "D-1", "Быстро")
    assert ("nps", "10") in [r[:2] for r in rows]
    bad = con.execute("select score, _reason from raw_forms.survey_responses_quarantine").fetchone()
    assert bad == ("11", "nps_score_out_of_range")


def test_a_later_export_repeating_earlier_answers_loads_only_the_new_ones(tmp_path, con):
    settings = forms(tmp_path)
    (settings.folder / "nps" / "export-1.csv").write_text(FORM_CSV, encoding="utf-8")
    load_forms(con, settings)
    later = FORM_CSV + "17.03.2026 09:00:00,7,,Хорошо,+7 916 000 00 04,D-4\n"
    (settings.folder / "nps" / "export-2.csv").write_text(later, encoding="utf-8")
    results = load_forms(con, settings)
    new = next(r for r in results if r.source_file.endswith("export-2.csv"))
    assert new.rows_loaded == 2 and new.rows_duplicate == 4
    assert con.execute(
        "select count(*), count(distinct response_id) from raw_forms.survey_responses"
    ).fetchone() == (6, 6)


def test_xlsx_exports_are_read(tmp_path, con):
    openpyxl = pytest.importorskip("openpyxl")
    settings = forms(tmp_path)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "Отметка времени",
            "Насколько вероятно, что вы порекомендуете нас?",
            "Почему?",
            "Оцените менеджера",
            "Телефон",
            "Номер заказа",
        ]
    )
    sheet.append([datetime(2026, 3, 15, 14, 22, 5), 8, "Норм", "Хорошо", "+7 916 000 00 01", "D-1"])
    workbook.save(settings.folder / "nps" / "export.xlsx")
    [result] = load_forms(con, settings)
    assert result.rows_loaded == 2
    assert con.execute(
        "select score, responded_at from raw_forms.survey_responses where survey_type = 'nps'"
    ).fetchone() == ("8", "2026-03-15 14:22:05")


def test_a_forms_config_error_names_the_form(tmp_path):
    path = tmp_path / "forms.yml"
    path.write_text(
        "forms:\n  - name: x\n    columns: {responded_at: t}\n    questions: [{column: q, survey_type: ces}]\n"
    )
    with pytest.raises(MappingError, match="forms.yml: form x: `survey_type` must be nps or csat"):
        load_config(path)


def cdr_rows(*ids: str) -> str:
    header = CDR_CSV.splitlines()[0]
    return "".join(
        [header + "\n"]
        + [f"{i};01.02.2026 09:15:00;Входящий;9161112233;101;Отвечен;0:02:10;1:55;\n" for i in ids]
    )


@pytest.mark.parametrize(
    "names",
    [
        ("2026-02[1].csv", "2026-021.csv"),  # `[1]` is a character class matching `1`
        ("cdr?.csv", "cdrX.csv"),  # `?` matches any one character
        ("cdr*.csv", "cdr-all.csv"),
        ("cdr{a,b}.csv", "cdra.csv"),
    ],
)
def test_cdr_file_names_are_never_patterns(tmp_path, con, names):
    """Each file loads its own rows under its own name, a sibling its pattern would match
    included; rows read = loaded + quarantined + already loaded, file by file (D74)."""
    settings = cdr(tmp_path, cdr_rows("a1", "a2"), name=names[0])
    for name, ids in ((names[0], ("a1", "a2")), (names[1], ("b1", "b2", "b3"))):
        # UTF-8, read in place (a cp1251 file would be read from a converted copy)
        (settings.folder / name).write_text(cdr_rows(*ids), encoding="utf-8")
    results = {r.source_file: r for r in load_cdr(con, settings)}
    accounted = {
        name: (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined, r.rows_duplicate)
        for name, r in results.items()
    }
    assert accounted == {names[0]: ("loaded", 2, 2, 0, 0), names[1]: ("loaded", 3, 3, 0, 0)}
    assert con.execute(
        "select _source_file, string_agg(call_id, ',' order by call_id) from raw_cdr.calls "
        "group by 1 order by 1"
    ).fetchall() == sorted([(names[0], "a1,a2"), (names[1], "b1,b2,b3")])


def test_form_file_names_are_never_patterns(tmp_path, con):
    settings = forms(tmp_path)
    first, second = FORM_CSV.splitlines(keepends=True)[:2], FORM_CSV.splitlines(keepends=True)
    (settings.folder / "nps" / "export[1].csv").write_text("".join(first), encoding="utf-8")
    (settings.folder / "nps" / "export1.csv").write_text(
        "".join(second[:1] + second[2:]), encoding="utf-8"
    )
    results = {r.source_file: r for r in load_forms(con, settings)}
    accounted = {
        name.rpartition("/")[2]: (r.rows_read, r.rows_loaded, r.rows_quarantined, r.rows_duplicate)
        for name, r in results.items()
    }
    # export[1]: one respondent (NPS and CSAT); export1: NPS of two, CSAT of one, an 11 quarantined
    assert accounted == {"export[1].csv": (2, 2, 0, 0), "export1.csv": (3, 2, 1, 0)}
    assert con.execute(
        "select count(*), count(distinct response_id) from raw_forms.survey_responses"
    ).fetchone() == (4, 4)
