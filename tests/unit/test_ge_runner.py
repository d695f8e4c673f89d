"""The raw-layer suites and the Great Expectations runner, on DataFrames (no warehouse)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from dagster_project.lib import contract
from dagster_project.lib.ge_runner import chunks as ge_chunks
from dagster_project.lib.ge_runner import gx_engine
from dagster_project.lib.ge_runner.chunks import validate_chunks
from dagster_project.lib.ge_runner.gx_engine import load_suite
from dagster_project.lib.ge_runner.raw import type_raw_frame, typed_columns, validate_raw_frame
from dagster_project.lib.ge_runner.reading import read_ahead
from dagster_project.lib.ge_runner.results import ExpectationResult, SuiteResult
from dagster_project.lib.ge_runner.suites import (
    DEFAULT_ROOT,
    SuiteError,
    discover_suites,
    get_suite_file,
    read_suite_file,
)
from dagster_project.lib.timestamps import parse_timestamp

RAW_SUITES = DEFAULT_ROOT / "raw"
META = [name for name, _ in contract.META_COLUMNS]
LOADED_AT = pd.Timestamp("2026-11-03 12:00:00")


def survey_frame(**overrides) -> pd.DataFrame:
    """Three valid survey responses shaped like raw.survey_responses (text columns)."""
    data = {
        "response_id": ["r1", "r2", "r3"],
        "survey_type": ["nps", "NPS", "csat"],
        "score": ["9", "0", "5"],
        "responded_at": ["2026-11-01T09:15:00+03:00", "2026-11-01 10:00", "2026-11-02T06:00:00Z"],
        "client_id": ["c1", None, "c3"],
        "client_phone": None,
        "client_email": None,
        "deal_id": None,
        "request_id": None,
        "manager_id": ["m1", "m1", "m2"],
        "comment": None,
        "_source_file": "survey_responses/2026-11-02.csv",
        "_source_line": [2, 3, 4],
        "_loaded_at": LOADED_AT,
        "_batch_id": "batch-1",
    }
    data.update(overrides)
    return pd.DataFrame(data)


def failed(result: SuiteResult, type_: str, column: str | None = None):
    return [e for e in result.failed if e.type == type_ and (column is None or e.column == column)]


# ---------------------------------------------------------------------------- suite files


def test_every_entity_has_exactly_one_suite():
    assert sorted(p.stem for p in RAW_SUITES.glob("*.json")) == sorted(
        e.name for e in contract.ENTITIES
    )


@pytest.mark.parametrize("path", sorted(RAW_SUITES.glob("*.json")), ids=lambda p: p.stem)
def test_suite_file_is_plain_ge_1x_json_with_a_severity_on_every_expectation(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["name"] == f"raw.{path.stem}"
    assert "id" not in data
    assert data["expectations"]
    for exp in data["expectations"]:
        assert set(exp) <= {"type", "kwargs", "meta"}
        assert exp["type"].startswith("expect_")
        assert exp["meta"]["severity"] in ("error", "warn"), exp
        assert exp["meta"]["notes"].strip(), exp


@pytest.mark.parametrize("entity", contract.ENTITIES, ids=lambda e: e.name)
def test_suite_loads_into_ge_without_dropping_expectations(entity: contract.Entity):
    suite_file = get_suite_file(f"raw.{entity.name}")
    gx_suite = load_suite(suite_file)
    assert gx_suite.name == f"raw.{entity.name}"
    assert len(gx_suite.expectations) == len(suite_file.expectations)


@pytest.mark.parametrize("entity", contract.ENTITIES, ids=lambda e: e.name)
def test_suite_follows_the_contract(entity: contract.Entity):
    """Column sets and parse checks are derived from contract.py: a contract change shows here."""
    suite = get_suite_file(f"raw.{entity.name}")
    column_sets = {
        exp["kwargs"]["exact_match"]: (set(exp["kwargs"]["column_set"]), exp["meta"]["severity"])
        for exp in suite.expectations
        if exp["type"] == "expect_table_columns_to_match_set"
    }
    assert column_sets[False] == (set(entity.required_columns + META), "error")
    all_columns = entity.column_names + META + typed_columns(entity)
    assert column_sets[True] == (set(all_columns), "warn")

    parse_checks = {
        exp["kwargs"]["column"]
        for exp in suite.expectations
        if exp["type"] == "expect_column_values_to_not_be_null"
        and exp["kwargs"].get("row_condition", {}).get("type") == "nullity"
    }
    parsed_types = ("timestamp", "date", "period", "decimal", "integer", "boolean")
    assert parse_checks == {f"{c.name}__typed" for c in entity.columns if c.type in parsed_types}

    ranged = {
        exp["kwargs"]["column"]
        for exp in suite.expectations
        if exp["type"] == "expect_column_values_to_be_between"
        and exp["meta"]["severity"] == "error"
    }
    for column in entity.columns:
        if column.min_value is not None or column.max_value is not None:
            assert f"{column.name}__typed" in ranged
    assert any(e["type"] == "expect_table_row_count_to_be_between" for e in suite.expectations)
    expected_batch = (
        "latest_load_run"
        if entity.name
        in (
            "calls",
            "deal_stage_changes",
            "survey_responses",
            "activities",
            "deals",
            "clients",
            "requests",
            "managers",
        )
        else "full"
    )
    assert suite.batch == expected_batch


VALID_TEXT = {
    "id": "x1",
    "text": "text",
    "phone": "8 (916) 123-45-67",
    "timestamp": "2026-11-01T10:00:00+03:00",
    "date": "2026-01-15",
    "period": "2026-11",
    "decimal": "0,5",
    "integer": "1",
    "boolean": "да",
}
VALID_OVERRIDES = {"lower_pct": "100", "upper_pct": "110", "stage_order": "2"}


def valid_rows(entity: contract.Entity, n: int = 2) -> pd.DataFrame:
    """n rows of an entity that keep every rule of contract v1."""
    data = {}
    for column in entity.columns:
        value = VALID_OVERRIDES.get(column.name) or (
            column.values[0] if column.type == "enum" else VALID_TEXT[column.type]
        )
        data[column.name] = [f"{value}{i}" if column.type == "id" else value for i in range(n)]
    data.update(
        _source_file=f"{entity.name}/2026-11-01.csv",
        _source_line=list(range(2, n + 2)),
        _loaded_at=LOADED_AT,
        _batch_id="batch-1",
    )
    return pd.DataFrame(data)


@pytest.mark.parametrize("entity", contract.ENTITIES, ids=lambda e: e.name)
def test_suite_passes_on_valid_rows(entity: contract.Entity):
    """No expectation raises or fails on rows that keep the contract (catches broken kwargs)."""
    result = validate_raw_frame(entity.name, valid_rows(entity))
    assert [(e.type, e.column, e.exception) for e in result.failed] == []
    assert result.success and result.severity is None


def test_suite_without_severity_is_refused(tmp_path: Path):
    path = tmp_path / "raw" / "calls.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "name": "raw.calls",
                "expectations": [
                    {"type": "expect_column_to_exist", "kwargs": {"column": "call_id"}}
                ],
            }
        )
    )
    with pytest.raises(SuiteError, match="severity"):
        read_suite_file(path)


def test_discover_suites_uses_the_given_root(tmp_path: Path):
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "kpi.json").write_text(
        json.dumps(
            {
                "name": "marts.kpi",
                "expectations": [
                    {
                        "type": "expect_table_row_count_to_be_between",
                        "kwargs": {"min_value": 1},
                        "meta": {"severity": "warn", "notes": "not empty"},
                    }
                ],
            }
        )
    )
    assert [s.name for s in discover_suites(root=tmp_path)] == ["marts.kpi"]
    assert discover_suites("raw", root=tmp_path) == []
    assert len(discover_suites("raw")) == len(contract.ENTITIES)


# ---------------------------------------------------------------------------- validation


def test_clean_survey_responses_pass():
    result = validate_raw_frame("survey_responses", survey_frame())
    assert result.success, result.failed
    assert result.failed == []
    assert result.rows_validated == 3
    assert result.as_of == "2026-11-03T12:00:00"  # the latest _loaded_at


def test_nps_of_11_fails_the_nps_range_with_error_severity_and_a_sample():
    df = survey_frame(score=["11", "0", "5"])
    result = validate_raw_frame("survey_responses", df)

    assert not result.success
    assert result.severity == "error"
    [nps] = [e for e in result.failed if "NPS" in e.notes]
    assert nps.type == "expect_column_values_to_be_between"
    assert nps.column == "score__typed"
    assert nps.severity == "error"
    assert nps.unexpected_count == 1
    assert nps.element_count == 2  # only the NPS rows
    assert nps.sample == [
        {
            "response_id": "r1",
            "_source_file": "survey_responses/2026-11-02.csv",
            "_source_line": 2,
            "score": "11",
            "score__typed": 11,
        }
    ]
    assert [e.notes for e in result.failed] == [nps.notes]  # the CSAT range still holds


def test_csat_of_0_fails_the_csat_range_only():
    result = validate_raw_frame("survey_responses", survey_frame(score=["9", "0", "0"]))
    [csat] = result.failed
    assert "CSAT" in csat.notes
    assert csat.sample[0]["response_id"] == "r3"


def test_extra_column_only_warns():
    result = validate_raw_frame("survey_responses", survey_frame(utm_source="yandex"))
    assert result.success
    assert result.severity == "warn"
    [drift] = result.failed
    assert drift.type == "expect_table_columns_to_match_set"
    assert drift.severity == "warn"
    assert drift.details == {"unexpected": ["utm_source"]}


def test_missing_required_column_fails():
    result = validate_raw_frame("survey_responses", survey_frame().drop(columns="score"))
    assert not result.success
    [schema] = [
        e for e in failed(result, "expect_table_columns_to_match_set") if e.severity == "error"
    ]
    assert schema.details == {"missing": ["score"]}


def test_unparsable_and_out_of_range_timestamps_fail():
    df = survey_frame(responded_at=["01.11.2026 09:15", "1999-12-31T10:00:00Z", "2026-11-05"])
    result = validate_raw_frame("survey_responses", df)
    [parse] = failed(result, "expect_column_values_to_not_be_null", "responded_at__typed")
    assert parse.severity == "error"
    assert [s["response_id"] for s in parse.sample] == ["r1"]
    [between] = failed(result, "expect_column_values_to_be_between", "responded_at__typed")
    # before 2000, and after the as-of (the batch was loaded on 2026-11-03)
    assert sorted(s["response_id"] for s in between.sample) == ["r2", "r3"]


def test_as_of_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VORONKA_AS_OF", "2026-11-01T12:00:00")  # Moscow time: 09:00 UTC
    result = validate_raw_frame("survey_responses", survey_frame())
    assert result.as_of == "2026-11-01T09:00:00"
    [between] = failed(result, "expect_column_values_to_be_between", "responded_at__typed")
    assert sorted(s["response_id"] for s in between.sample) == ["r3"]


def test_typed_columns_follow_the_contract_parsing_rules():
    df = pd.DataFrame(
        {
            "request_id": ["q1", "q2", "q3"],
            "created_at": ["2026-11-01T09:15:00+03:00", "2026-11-01 09:15", "2026-11-01T06:15Z"],
            "is_complaint": ["да", "No", "maybe"],
            "updated_at": ["2026-11-01T09:15:00 +0300", None, "2026-02-30"],
        }
    )
    typed = type_raw_frame("requests", df, business_timezone="UTC")
    assert [str(t) for t in typed["created_at__typed"]] == [
        "2026-11-01 06:15:00",
        "2026-11-01 09:15:00",  # naive: the business zone, here UTC
        "2026-11-01 06:15:00",
    ]
    assert typed["is_complaint__typed"].tolist()[:2] == [True, False]
    assert pd.isna(typed["is_complaint__typed"][2])
    assert str(typed["updated_at__typed"][0]) == "2026-11-01 06:15:00"
    assert typed["updated_at__typed"][1:].isna().all()


@pytest.mark.parametrize("zone", ["Europe/Moscow", "Europe/Berlin", "UTC"])
def test_typed_timestamps_read_naive_ones_in_the_offset_in_force_then(zone: str):
    """The fixed-offset shortcut (after the zone's last change) gives what the zone rules give,
    on both sides of Moscow's change of 26 Oct 2014, with and without offsets."""
    texts = [
        "2014-10-20 12:00",  # Moscow +04:00 then
        "2014-10-27 12:00",  # +03:00, before the shortcut's start: by the rules
        "2014-11-02 00:00",  # the shortcut's first instant
        "2026-01-31 23:30",
        "2026-07-01 12:00:00",  # Berlin: summer time
        "2026-03-01",
        "2026-03-01T00:00:00-05:00",
        "2026-01-31T23:30:15.5 +0300",
        "2026-03-01T10:00Z",
    ]
    df = pd.DataFrame({"request_id": [f"q{i}" for i in range(len(texts))], "created_at": texts})
    typed = type_raw_frame("requests", df, business_timezone=zone)
    assert [t.to_pydatetime() for t in typed["created_at__typed"]] == [
        parse_timestamp(t, zone) for t in texts
    ]


def test_decimal_comma_and_thousands_spaces_parse():
    df = pd.DataFrame(
        {
            "period": ["2026-11", "2026-11", "2026-13"],
            "channel": ["yandex", "vk", "seo"],
            "amount": ["1 234,50", "-10", "12.5.1"],
            "_source_file": "marketing_spend/2026-11.csv",
            "_source_line": [2, 3, 4],
        }
    )
    result = validate_raw_frame("marketing_spend", df, as_of="2026-11-30")
    messages = {(e.type, e.column): e for e in result.failed}
    amount_parse = messages[("expect_column_values_to_not_be_null", "amount__typed")]
    assert [s["channel"] for s in amount_parse.sample] == ["seo"]
    amount_range = messages[("expect_column_values_to_be_between", "amount__typed")]
    assert amount_range.sample[0]["amount__typed"] == -10
    period_parse = messages[("expect_column_values_to_not_be_null", "period__typed")]
    assert period_parse.unexpected_count == 1


def test_chunks_are_merged_into_one_result():
    frames = [survey_frame(score=["11", "0", "5"]), survey_frame(score=["12", "13", "5"])]
    chunks = [type_raw_frame("survey_responses", frame) for frame in frames]
    result = validate_chunks(
        chunks,
        "raw.survey_responses",
        parameters={"as_of": "2026-11-03T12:00:00"},
        key_columns=("response_id",),
    )
    assert result.chunks == 2
    assert result.rows_validated == 6
    [nps] = [e for e in result.failed if "NPS" in e.notes]
    assert nps.unexpected_count == 3
    assert nps.element_count == 4
    assert nps.unexpected_percent == pytest.approx(75.0)
    assert len(nps.sample) == 3
    [row_count] = [e for e in result.expectations if e.type.startswith("expect_table_row_count")]
    assert row_count.success and row_count.observed_value == 6


def _defective_deals() -> pd.DataFrame:
    """Deals that break conditioned and unconditioned rules: every row_condition of the suite
    selects some rows, and some of them fail."""
    deals = valid_rows(contract.ENTITY_BY_NAME["deals"], n=8)
    deals["status"] = ["won", "lost", "open", "WON", "won", "lost", "open", "won"]
    deals["closed_at"] = [
        None,
        "2026-11-02T10:00:00+03:00",
        None,
        "garbage",
        None,
        None,
        "2026-11-02T10:00:00+03:00",
        "1999-01-01T00:00:00Z",
    ]
    deals["amount"] = ["10", "-5", "abc", None, "7,5", "1 000", "0", "-1"]
    deals["created_at"] = ["2026-11-01T10:00:00+03:00"] * 7 + ["2026-11-03T10:00:00+03:00"]
    return type_raw_frame("deals", deals)


def test_shortcuts_give_ge_s_own_results(monkeypatch: pytest.MonkeyPatch):
    """The runner filters each row_condition once and hands metrics their columns only (D63),
    and asks GE for the offending rows' labels only where a sample still has room (D66): every
    count, percent and sample equals GE's plain SUMMARY path, failures and chunks included."""
    frame = _defective_deals()
    chunks = [frame.iloc[:5], frame.iloc[5:]]
    kwargs = {"parameters": {"as_of": "2026-11-03T12:00:00"}, "key_columns": ("deal_id",)}
    fast = validate_chunks([c.copy() for c in chunks], "raw.deals", **kwargs).to_dict()

    class NoCache:  # validate_chunks cannot switch the cache on: GE filters as it ships
        cache = None

        def __setattr__(self, name, value):
            pass

    monkeypatch.setattr(gx_engine, "_ROW_FILTERS", NoCache())
    monkeypatch.setattr(ge_chunks, "_COUNTS_FORMAT", ge_chunks._RESULT_FORMAT)
    plain = validate_chunks([c.copy() for c in chunks], "raw.deals", **kwargs).to_dict()
    for result in (fast, plain):
        result.pop("duration_seconds")
    specs = get_suite_file("raw.deals").expectations
    conditioned = [
        result
        for spec, result in zip(specs, fast["expectations"], strict=True)
        if spec["kwargs"].get("row_condition") and not result["success"]
    ]
    assert len(conditioned) >= 2  # the frame does exercise failing conditioned expectations
    assert all(result["sample"] for result in conditioned)
    assert fast == plain


def test_validated_frames_are_not_kept_alive():
    """GE's engine caches every batch it validated; the runner drops them, so a check does not
    carry its last chunk into the rest of the run (D63)."""
    import gc

    rows = 23  # a length no other frame of the test session has
    frame = type_raw_frame("deals", valid_rows(contract.ENTITY_BY_NAME["deals"], rows))
    validate_chunks(
        [frame], "raw.deals", parameters={"as_of": "2026-11-03T12:00:00"}, key_columns=("deal_id",)
    )
    del frame
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) == rows] == []


def testread_ahead_keeps_order_errors_and_stops_its_reader():
    """`read_ahead` yields the frames in order, raises the reader's error where it happened,
    and a consumer that stops early leaves no reader thread running (D67)."""
    import threading

    def frames(n: int, fail_at: int | None = None):
        for i in range(n):
            if i == fail_at:
                raise RuntimeError(f"broken at {i}")
            yield pd.DataFrame({"i": [i]})

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "voronka-read-ahead"]

    assert [f["i"][0] for f in read_ahead(frames(5))] == [0, 1, 2, 3, 4]
    seen = []
    with pytest.raises(RuntimeError, match="broken at 3"):
        for frame in read_ahead(frames(5, fail_at=3)):
            seen.append(frame["i"][0])
    assert seen == [0, 1, 2]
    early = read_ahead(frames(100))
    assert next(early)["i"][0] == 0
    early.close()
    assert readers() == []


def test_the_summary_says_failed_when_the_check_fails_on_warnings_only():
    """A failed `warn` expectation fails the check (severity WARN): its text must not say
    "passed" beside the Failed badge (D108)."""
    warned = ExpectationResult("expect_x", "a", "warn", success=False)
    held = ExpectationResult("expect_y", "b", "error", success=True)
    result = SuiteResult("raw.calls", success=True, rows_validated=5, expectations=[warned, held])
    assert result.severity == "warn"
    assert result.summary().startswith("raw.calls FAILED (warnings only) on 5 rows: 0 error")
    clean = SuiteResult("raw.calls", success=True, rows_validated=5, expectations=[held])
    assert clean.summary().startswith("raw.calls passed on 5 rows")
