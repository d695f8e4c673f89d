"""The generic CDR CSV and the survey form exports, mapped into the inbox contract's shape."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from dagster_project.lib import warehouse as wh
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
    # a reload that keeps every key logs no removal; one without c3 logs it (D204, D206)
    assert con.execute("select count(*) from raw._removals").fetchone() == (0,)
    cdr(tmp_path, "\n".join(line for line in CDR_CSV.splitlines() if not line.startswith("c3")))
    [shrunk] = load_cdr(con, settings)
    assert shrunk.status == "reloaded"
    assert con.execute(
        "select r.source_table, r.source_file, r.rows_removed from raw._removals as r "
        "join raw_cdr._files as f on f.batch_id = r.batch_id and f.status = 'reloaded'"
    ).fetchall() == [("raw_cdr.calls", "2026-02-01.csv", 1)]


def test_a_key_a_reload_drops_is_taken_over_by_another_file_that_has_it(tmp_path, con):
    """Raw keeps one row per key, the first file's; the later files' rows of it wait in
    `calls_repeats`. When the first file is reloaded without the key, the next file's row takes
    its place, as a fresh load of the final folder has it: nothing is lost and no removal is
    logged (D207)."""
    settings = cdr(tmp_path)
    (settings.folder / "2026-02-02.csv").write_text(cdr_rows("c1", "d2"), encoding="utf-8")
    (settings.folder / "2026-02-03.csv").write_text(cdr_rows("c1"), encoding="utf-8")
    load_cdr(con, settings)
    repeats = "select call_id, _source_file from raw_cdr.calls_repeats order by 1, 2"
    assert con.execute(repeats).fetchall() == [("c1", "2026-02-02.csv"), ("c1", "2026-02-03.csv")]
    cdr(tmp_path, "\n".join(line for line in CDR_CSV.splitlines() if not line.startswith("c1")))
    [reloaded] = [r for r in load_cdr(con, settings) if r.status == "reloaded"]
    assert reloaded.rows_restored == 1
    assert con.execute(
        "select c._source_file, c._batch_id = f.batch_id from raw_cdr.calls as c "
        "join raw_cdr._files as f on f.status = 'reloaded' where c.call_id = 'c1'"
    ).fetchall() == [("2026-02-02.csv", True)]  # new to the incremental facts and raw checks
    assert con.execute(repeats).fetchall() == [("c1", "2026-02-03.csv")]
    assert con.execute("select coalesce(sum(rows_removed), 0) from raw._removals").fetchone() == (
        0,
    )
    fresh = wh.connect(tmp_path / "fresh.duckdb")
    try:
        load_cdr(fresh, settings)
        table = (
            "select * exclude (_loaded_at, _batch_id) from raw_cdr.{} "
            "order by call_id, _source_file"
        )
        for name in ("calls", "calls_repeats"):
            assert con.execute(table.format(name)).fetchall() == (
                fresh.execute(table.format(name)).fetchall()
            )
    finally:
        fresh.close()


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


def test_a_broken_xlsx_export_is_logged_as_failed(tmp_path, con):
    """A file named .xlsx that is not a workbook (a CSV renamed, a download cut short): a
    `failed` result saying so, no traceback."""
    settings = forms(tmp_path)
    (settings.folder / "nps" / "export.xlsx").write_text(FORM_CSV, encoding="utf-8")
    [result] = load_forms(con, settings)
    assert result.status == "failed" and "not a readable XLSX workbook" in result.message


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


FILES_LOG = (
    "select source_file, status, message, rows_read, rows_loaded from raw_{source}._files "
    "where status = 'failed' order by source_file"
)


def test_entries_that_are_not_files_are_logged_as_failed(tmp_path, con):
    """A broken link and a folder named like a CSV file (CDR), a folder named like an XLSX
    export (forms): each a `failed` row of `_files` with its reason, never skipped unseen."""
    settings = cdr(tmp_path)
    (settings.folder / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    (settings.folder / "march.csv").mkdir()
    (settings.folder / "march.csv" / "inside.txt").write_text("x", encoding="utf-8")
    results = {r.source_file: r for r in load_cdr(con, settings)}
    assert {name: r.status for name, r in results.items()} == {
        "2026-02-01.csv": "loaded",
        "gone.csv": "failed",
        "march.csv": "failed",
    }
    failed = con.execute(FILES_LOG.format(source="cdr")).fetchall()
    assert [(name, status) for name, status, *_ in failed] == [
        ("gone.csv", "failed"),
        ("march.csv", "failed"),
    ]
    assert "a link to" in failed[0][2] and "which does not exist" in failed[0][2]
    assert "a folder named like a CSV file" in failed[1][2]

    form_settings = forms(tmp_path)
    (form_settings.folder / "nps" / "export.xlsx").mkdir()
    [result] = load_forms(con, form_settings)
    assert result.status == "failed" and "a folder named like a XLSX file" in result.message
    assert con.execute(FILES_LOG.format(source="forms")).fetchall()[0][:2] == (
        "nps/export.xlsx",
        "failed",
    )


@pytest.mark.parametrize("where", ["hash", "read"])
def test_a_file_that_cannot_be_read_is_logged_as_failed(tmp_path, con, monkeypatch, where):
    """A file unreadable when hashed, or removed after it (while the source runs): a `failed`
    result and `_files` row saying so, no traceback; the next file still loads."""
    from dagster_project.lib.sources import files

    settings = cdr(tmp_path, name="a.csv")
    (settings.folder / "b.csv").write_text(cdr_rows("b1"), encoding="utf-8")
    real_sha256 = files.sha256

    def failing_sha256(path):
        if path.name != "a.csv":
            return real_sha256(path)
        if where == "hash":
            raise PermissionError(13, "Permission denied", str(path))
        digest = real_sha256(path)
        path.unlink()  # removed by someone else between the hash and the read
        return digest

    monkeypatch.setattr(files, "sha256", failing_sha256)
    results = {r.source_file: r for r in load_cdr(con, settings)}
    assert results["b.csv"].status == "loaded"
    assert results["a.csv"].status == "failed"
    assert "cannot be read" in results["a.csv"].message
    expected = "Permission denied" if where == "hash" else "No such file or directory"
    assert expected in results["a.csv"].message
    [logged] = con.execute(FILES_LOG.format(source="cdr")).fetchall()
    assert logged[:2] == ("a.csv", "failed") and expected in logged[2]


def test_file_sources_land_on_postgres_with_duckdb_s_accounting(tmp_path, con, pg_url):
    """CDR and forms files through the sink (COPY) into PostgreSQL: the same results, the same
    raw, quarantine and `_files` rows as on DuckDB, over a first load, a skip of an unchanged
    file and a changed file (D233)."""
    settings = cdr(tmp_path)
    (settings.folder / "2026-02-02.csv").write_text(cdr_rows("c1", "d2"), encoding="utf-8")
    (settings.folder / "2026-02-03.csv").write_text(cdr_rows("c1"), encoding="utf-8")
    form_settings = forms(tmp_path)
    (form_settings.folder / "nps" / "export-1.csv").write_text(FORM_CSV, encoding="utf-8-sig")
    (form_settings.folder / "nps" / "export-2.csv").write_text(FORM_CSV, encoding="utf-8")

    def accounted(results):
        return [
            (r.source_file, r.status, r.rows_read, r.rows_loaded, r.rows_quarantined,
             r.rows_duplicate, r.rows_restored, r.message)
            for r in results
        ]  # fmt: skip

    def tables(target):
        out = {}
        for table, key in (
            ("raw_cdr.calls", "call_id"),
            ("raw_cdr.calls_quarantine", "_source_line"),
            ("raw_cdr.calls_repeats", "call_id"),
            ("raw_forms.survey_responses", "response_id"),
            ("raw_forms.survey_responses_repeats", "response_id"),
            ("raw_forms.survey_responses_quarantine", "_source_line"),
        ):
            columns = [
                c
                for c in target.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by column_name",
                    table.split("."),
                ).fetchall()
            ]
            names = ", ".join(
                f'"{c[0]}"' for c in columns if c[0] not in ("_loaded_at", "_batch_id")
            )
            out[table] = target.execute(
                f"select {names} from {table} order by _source_file, {key}"
            ).fetchall()
        for source in ("cdr", "forms"):
            out[source] = target.execute(
                f"select mapping, source_file, sha256, status, rows_read, rows_loaded, "
                f"rows_quarantined, rows_duplicate, message from raw_{source}._files "
                "order by loaded_at, source_file"
            ).fetchall()
        return out

    with wh.open_warehouse(pg_url) as pg:
        runs = []
        for step in ("first", "again", "changed"):
            if step == "changed":  # c2 corrected, c1 dropped: the second file's c1 takes over
                changed = CDR_CSV.replace("Занято", "Отвечен").splitlines()
                cdr(tmp_path, "\n".join(line for line in changed if not line.startswith("c1")))
            runs.append(
                {
                    name: accounted(load_cdr(target, settings) + load_forms(target, form_settings))
                    for name, target in (("duckdb", con), ("postgres", pg))
                }
            )
        for run in runs:
            assert run["duckdb"] == run["postgres"]
        assert [r[1] for r in runs[0]["postgres"]] == ["loaded"] * 5
        assert [r[1] for r in runs[1]["postgres"]] == ["skipped_unchanged"] * 5
        assert [r[1] for r in runs[2]["postgres"]][:3] == ["reloaded"] + ["skipped_unchanged"] * 2
        # the second CDR file's c1 was loaded from the first file: already loaded
        assert runs[0]["postgres"][1][2:6] == (2, 1, 0, 1)
        assert runs[2]["postgres"][0][6] == 1  # c1 taken over from the second file (D207)
        on_postgres = tables(pg)
        assert all(on_postgres.values())  # every table has rows to compare
        assert tables(con) == on_postgres
