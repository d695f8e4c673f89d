"""The raw-layer asset checks in a Dagster run, on a hand-built temporary warehouse.

The warehouse is written here, per ``docs/architecture.md`` (``raw.survey_responses`` as text
plus the metadata columns, and ``raw._load_log``), so these tests do not depend on the loader.
A stand-in asset takes the key of the extract asset, ``["inbox", "survey_responses"]``.
"""

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    ExecuteInProcessResult,
    asset,
    materialize,
)

from dagster_project.defs.quality.checks import check_result, raw_asset_checks
from dagster_project.defs.resources import ValidationResource, warehouse_from_settings
from dagster_project.lib import contract
from dagster_project.lib.ge_runner.batches import record_validated
from dagster_project.lib.ge_runner.reading import read_only_warehouse
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.run import validate_layer, validate_suite
from tests.raw_tables import write_load_log

pytestmark = pytest.mark.integration

ENTITY = contract.ENTITY_BY_NAME["survey_responses"]
KEY = AssetKey(["inbox", "survey_responses"])
CHECK_NAME = "ge_raw_survey_responses"

Row = tuple[str, str, str, str, str, str]  # response_id, type, score, at, file, batch


def build_warehouse(
    path: Path,
    rows: Sequence[Row],
    load_log: Sequence[tuple],
    extra=False,
    validated: Sequence[str] = (),
):
    """A warehouse with raw.survey_responses and raw._load_log, closed when returned;
    `validated`: batches a check has validated already (raw._validated_batches, D82)."""
    columns = [*ENTITY.column_names, *(["utm_source"] if extra else [])]
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema raw")
        con.execute(
            "create table raw.survey_responses ("
            + ", ".join(f"{c} varchar" for c in columns)
            + ", _source_file varchar, _source_line bigint, _loaded_at timestamp,"
            " _batch_id varchar)"
        )
        for line, (response_id, survey_type, score, at, source_file, batch_id) in enumerate(
            rows, start=2
        ):
            values = {
                "response_id": response_id,
                "survey_type": survey_type,
                "score": score,
                "responded_at": at,
                "client_id": "c1",
                "utm_source": "yandex",
            }
            con.execute(
                "insert into raw.survey_responses values ("
                + ", ".join("?" for _ in columns)
                + ", ?, ?, timestamp '2026-11-03 12:00:00', ?)",
                [values.get(c) for c in columns] + [source_file, line, batch_id],
            )
        write_load_log(
            con,
            (
                {
                    "run_id": run_id,
                    "batch_id": batch_id,
                    "entity": "survey_responses",
                    "source_file": source_file,
                    "sha256": "sha",
                    "bytes": 100,
                    "status": status,
                    "rows_read": 3,
                    "rows_loaded": 3,
                    "rows_quarantined": 0,
                    "encoding": "utf-8",
                    "delimiter": ",",
                    "decimal_comma": False,
                    "started_at": started_at,
                    "finished_at": started_at,
                }
                for run_id, batch_id, source_file, status, started_at in load_log
            ),
        )
        for batch_id in validated:
            record_validated(
                con,
                SuiteResult(suite_name="raw.survey_responses", success=True, batch_ids=[batch_id]),
                "run-before",
            )
    finally:
        con.close()
    return path


GOOD = [
    ("r1", "nps", "9", "2026-11-01T09:15:00+03:00", "survey_responses/2026-11-01.csv", "b1"),
    ("r2", "csat", "5", "2026-11-01 10:00", "survey_responses/2026-11-01.csv", "b1"),
]
BAD_NPS = ("r3", "NPS", "11", "2026-11-02 10:00", "survey_responses/2026-11-02.csv", "b2")
LOG_TWO_RUNS = [
    ("run-1", "b1", "survey_responses/2026-11-01.csv", "loaded", "2026-11-01 12:00:00"),
    ("run-2", "b1", "survey_responses/2026-11-01.csv", "skipped_unchanged", "2026-11-03 12:00:00"),
    ("run-2", "b2", "survey_responses/2026-11-02.csv", "loaded", "2026-11-03 12:00:00"),
]


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("VORONKA_WAREHOUSE", str(path))
    monkeypatch.delenv("VORONKA_AS_OF", raising=False)
    monkeypatch.setenv("VORONKA_TIMEZONE", "Europe/Moscow")
    return path


@asset(key=KEY)
def survey_responses_stand_in() -> None:
    """Stands in for the extract asset: the test has already written the warehouse."""


@asset(deps=[KEY])
def nps_mart() -> None:
    """Downstream of the raw table: must not run when the blocking check fails with ERROR."""


def the_check() -> AssetsDefinition:
    [check] = [c for c in raw_asset_checks if any(k.asset_key == KEY for k in c.check_keys)]
    return check


def run(validation: ValidationResource | None = None) -> ExecuteInProcessResult:
    return materialize(
        [survey_responses_stand_in, nps_mart, the_check()],
        resources={
            "warehouse": warehouse_from_settings(),
            "validation": validation or ValidationResource(),
        },
        raise_on_error=False,
    )


def materialized(result: ExecuteInProcessResult) -> set[AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_one_blocking_check_per_suite_on_the_inbox_asset_keys():
    keys = {k for check in raw_asset_checks for k in check.check_keys}
    assert {(k.asset_key, k.name) for k in keys} == {
        (AssetKey(["inbox", e.name]), f"ge_raw_{e.name}") for e in contract.ENTITIES
    }
    for check in raw_asset_checks:
        [spec] = check.check_specs
        assert spec.blocking
        assert spec.description and "Great Expectations" in spec.description


def test_clean_batch_passes_and_downstream_runs(warehouse: Path):
    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    result = run()
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK_NAME
    assert evaluation.passed
    assert evaluation.metadata["rows_validated"].value == 2
    assert AssetKey("nps_mart") in materialized(result)


def test_bad_row_in_the_latest_run_fails_with_error_and_blocks_downstream(warehouse: Path):
    build_warehouse(warehouse, [*GOOD, BAD_NPS], LOG_TWO_RUNS, validated=["b1"])
    result = run()
    assert not result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert evaluation.metadata["rows_validated"].value == 1  # only run-2's new file
    [failure] = evaluation.metadata["failed_expectations"].value
    assert failure["column"] == "score__typed" and failure["severity"] == "error"
    assert failure["sample"][0]["response_id"] == "r3"
    assert failure["sample"][0]["_source_file"] == "survey_responses/2026-11-02.csv"
    assert KEY in materialized(result)
    assert AssetKey("nps_mart") not in materialized(result)


def test_a_batch_validated_before_is_not_validated_again(warehouse: Path):
    # b0 passed its check when it was loaded (the suite has grown stricter since)
    bad_old = ("r0", "nps", "11", "2026-10-30 10:00", "survey_responses/2026-10-30.csv", "b0")
    log = [("run-0", "b0", "survey_responses/2026-10-30.csv", "loaded", "2026-10-30 12:00:00")]
    build_warehouse(warehouse, [bad_old, *GOOD], log + LOG_TWO_RUNS[:1], validated=["b0"])
    result = run()
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["rows_validated"].value == 2


def test_every_batch_validated_passes_with_a_note(warehouse: Path):
    skipped = ("run-3", "b1", "survey_responses/2026-11-01.csv", "skipped_unchanged", "2026-11-04")
    build_warehouse(warehouse, GOOD, [*LOG_TWO_RUNS[:1], skipped], validated=["b1"])
    result = run()
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["rows_validated"].value == 0
    assert "validated already" in evaluation.metadata["note"].value


def test_a_batch_never_validated_is_validated_by_the_next_run_and_blocks(warehouse: Path):
    """Issue 15 item 5: b2 was loaded by `voronka load` (or by a run killed before its checks)
    and run-3 loaded nothing new: b2's bad row is still validated, and blocks, every run until
    its file is fixed; the clean batch b1 is validated once and recorded."""
    skipped = ("run-3", "b1", "survey_responses/2026-11-01.csv", "skipped_unchanged", "2026-11-04")
    build_warehouse(warehouse, [*GOOD, BAD_NPS], [*LOG_TWO_RUNS, skipped])
    for _ in range(2):
        result = run()
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.severity == AssetCheckSeverity.ERROR and not evaluation.passed
        assert evaluation.metadata["rows_validated"].value == 3  # b1 and b2: neither recorded
        assert AssetKey("nps_mart") not in materialized(result)
    # nothing was recorded for the failed batches: the published file was never replaced, and
    # the working copy holds no record either
    from dagster_project.lib.warehouse import working_path

    for path in (warehouse, working_path(warehouse)):
        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = con.execute(
                "select count(*) from duckdb_tables() where table_name = '_validated_batches'"
            ).fetchone()[0]
            recorded = (
                con.execute("select count(*) from raw._validated_batches").fetchone()[0]
                if tables
                else 0
            )
        finally:
            con.close()
        assert recorded == 0


def test_a_failure_given_again_stays_red_until_its_rows_change(warehouse: Path):
    """D330: the second run finds the rows of the first one's failed validation and gives its
    result again: the check fails as before, with the same failures, and still blocks; once a
    row changes (here fixed in the working copy, as a reload would) the suite validates it."""
    from dagster_project.lib.warehouse import working_path

    build_warehouse(warehouse, [*GOOD, BAD_NPS], LOG_TWO_RUNS, validated=["b1"])
    evaluations = []
    for _ in range(2):
        result = run()
        [evaluation] = result.get_asset_check_evaluations()
        assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        assert AssetKey("nps_mart") not in materialized(result)
        evaluations.append(evaluation)
    first, second = (e.metadata for e in evaluations)
    assert "D330" not in first["note"].value and "D330" in second["note"].value
    assert second["failed_expectations"].value == first["failed_expectations"].value
    assert second["rows_validated"].value == first["rows_validated"].value == 1

    con = duckdb.connect(str(working_path(warehouse)))
    con.execute(
        "update raw.survey_responses set score = '9', survey_type = 'nps' where response_id = 'r3'"
    )
    con.close()
    result = run()
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and "D330" not in evaluation.metadata["note"].value
    assert AssetKey("nps_mart") in materialized(result)


def test_in_voronka_run_a_check_saves_its_result_and_leaves_the_page_to_the_run(warehouse: Path):
    """D331: a check renders the validation page after it validates, except in `voronka run`,
    whose `run_pipeline` renders it once at the end (the results are saved all the same)."""
    from dagster_project.lib import validation_report

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    assert run(ValidationResource(report_each_check=False)).success
    assert [r.suite for r in validation_report.load_rows(warehouse)] == ["raw.survey_responses"]
    assert not validation_report.report_path(warehouse).exists()
    assert run().success
    assert validation_report.report_path(warehouse).exists()


def recorded_batches(warehouse: Path) -> list[tuple]:
    """What raw._validated_batches holds, read as a reader would."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select suite, batch_id, outcome, run_id from raw._validated_batches"
        ).fetchall()
    finally:
        con.close()


def test_a_passed_batch_is_recorded_and_validated_exactly_once(warehouse: Path):
    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    first = run()
    assert first.success
    [evaluation] = first.get_asset_check_evaluations()
    assert evaluation.metadata["rows_validated"].value == 2
    # published for readers with the record of what was validated
    assert recorded_batches(warehouse) == [("raw.survey_responses", "b1", "passed", first.run_id)]
    second = run()
    [evaluation] = second.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["rows_validated"].value == 0


def test_warning_does_not_block_downstream(warehouse: Path):
    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1], extra=True)
    result = run()
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    [failure] = evaluation.metadata["failed_expectations"].value
    assert failure["severity"] == "warn"
    assert failure["details"] == {"unexpected": ["utm_source"]}
    assert AssetKey("nps_mart") in materialized(result)


def test_validate_layer_runs_every_raw_suite_and_closes_the_warehouse(warehouse: Path):
    build_warehouse(warehouse, [*GOOD, BAD_NPS], LOG_TWO_RUNS, validated=["b1"])
    with read_only_warehouse(warehouse) as con:
        results = {r.suite_name: r for r in validate_layer(con, "raw", chunk_rows=1)}
    assert len(results) == len(contract.ENTITIES)
    surveys = results["raw.survey_responses"]
    assert not surveys.success and surveys.rows_validated == 1
    assert not results["raw.calls"].success  # a required table that was never loaded
    assert results["raw.kpi_weights"].success  # optional: absent is fine
    # the file is closed again: a writer can open it
    duckdb.connect(str(warehouse)).close()


def test_a_missing_required_table_is_an_error():
    missing = SuiteResult(suite_name="raw.calls", success=False, note="raw.calls does not exist")
    evaluation = check_result(missing)
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR


def test_validate_layer_on_another_layer_reads_whole_tables(tmp_path: Path):
    root = tmp_path / "expectations"
    (root / "marts").mkdir(parents=True)
    suite = {
        "name": "marts.kpi_manager_monthly",
        "meta": {"key_columns": ["manager_id"]},
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "kpi_pct", "min_value": -1000, "max_value": 1000},
                "meta": {"severity": "warn", "notes": "a KPI percent this far out is a bug"},
            }
        ],
    }
    (root / "marts" / "kpi_manager_monthly.json").write_text(json.dumps(suite))
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.kpi_manager_monthly as"
        " select * from (values ('m1', 120.0), ('m2', 5000.0)) t(manager_id, kpi_pct)"
    )
    con.close()
    with read_only_warehouse(path) as con:
        [result] = validate_layer(con, "marts", root=root)
    assert result.success and result.severity == "warn"
    [failure] = result.failed
    assert failure.sample == [{"manager_id": "m2", "kpi_pct": 5000}]


# ----------------------------------------------------------------- in the validation worker (D68)


@pytest.fixture
def worker():
    from dagster_project.lib.validation_worker import ValidationWorker

    worker = ValidationWorker()
    worker.start()
    yield worker
    worker.close()


def test_the_worker_gives_the_checks_the_same_results(warehouse: Path, worker):
    build_warehouse(warehouse, [*GOOD, BAD_NPS], LOG_TWO_RUNS, validated=["b1"])
    in_worker = worker.validate(warehouse, "raw.survey_responses")
    assert worker.is_running()
    with read_only_warehouse(warehouse) as con:
        here = validate_suite(con, "raw.survey_responses")
    assert in_worker.rows_validated == here.rows_validated == 1
    assert [(e.type, e.column, e.success, e.unexpected_count) for e in in_worker.expectations] == [
        (e.type, e.column, e.success, e.unexpected_count) for e in here.expectations
    ]
    # and through the asset check: the blocking failure and its sample come back from the worker
    result = run(ValidationResource(in_worker=True))
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    [failure] = evaluation.metadata["failed_expectations"].value
    assert failure["sample"][0]["response_id"] == "r3"
    assert AssetKey("nps_mart") not in materialized(result)


def test_the_validation_resource_starts_a_worker_with_the_run_and_ends_it_with_the_run(
    warehouse: Path,
):
    """`ValidationResource(in_worker=True)` (voronka run) starts one worker process when the run
    sets up its resources and ends it when the run ends (D123); the default validates in the
    step's process and starts none."""
    import multiprocessing

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    seen: dict[str, object] = {}

    @asset(deps=[KEY])
    def probe(validation: ValidationResource) -> None:
        seen["worker"] = validation._worker is not None and validation._worker.is_running()
        seen["children"] = len(multiprocessing.active_children())

    for in_worker in (True, False):
        before = set(multiprocessing.active_children())
        result = materialize(
            [survey_responses_stand_in, the_check(), probe],
            resources={
                "warehouse": warehouse_from_settings(),
                "validation": ValidationResource(in_worker=in_worker),
            },
        )
        assert result.success
        assert seen["worker"] is in_worker
        assert seen["children"] == len(before) + (1 if in_worker else 0)
        assert set(multiprocessing.active_children()) == before  # ended with the run


def test_the_worker_takes_settings_changed_after_it_started(
    warehouse: Path, worker, monkeypatch: pytest.MonkeyPatch
):
    build_warehouse(warehouse, [*GOOD, BAD_NPS], LOG_TWO_RUNS, validated=["b1"])
    assert worker.validate(warehouse, "raw.survey_responses").rows_validated == 1
    # an as-of before r3's answer: its timestamp is now "after the data was loaded"
    monkeypatch.setenv("VORONKA_AS_OF", "2026-11-01T00:00:00")
    result = worker.validate(warehouse, "raw.survey_responses")
    failed = {(e.column, e.type) for e in result.expectations if not e.success}
    assert ("responded_at__typed", "expect_column_values_to_be_between") in failed


def test_release_ends_the_worker_and_the_next_validation_starts_one(warehouse: Path, worker):
    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    worker.validate(warehouse, "raw.survey_responses")
    worker.release()
    assert not worker.is_running()
    assert worker.validate(warehouse, "raw.survey_responses").success
    assert worker.is_running()
    worker.close()
    assert not worker.is_running()
    assert worker.validate(warehouse, "raw.survey_responses").success
    assert not worker.is_running()  # closed: validated in this process


def test_a_killed_worker_fails_its_check_with_a_clear_error_and_the_next_starts_anew(
    warehouse: Path, worker
):
    import signal

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    worker.validate(warehouse, "raw.survey_responses")
    [process] = worker._pool._processes.values()
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=10)
    with pytest.raises(RuntimeError, match="validation worker process ended"):
        worker.validate(warehouse, "raw.survey_responses")
    assert worker.validate(warehouse, "raw.survey_responses").success


UNGUARDED_SCRIPT = """
import sys

from dagster_project.lib.validation_worker import ValidationWorker

# at the top level, without `if __name__ == "__main__":`: spawn used to run this again in the
# worker, which then started a worker of its own and died before its first task
worker = ValidationWorker()
worker.start()
result = worker.validate(sys.argv[1], "raw.survey_responses")
worker.close()
print("validated", result.rows_validated, result.success)
"""


def test_a_script_without_a_main_guard_can_use_the_worker(warehouse: Path, tmp_path: Path):
    import subprocess
    import sys

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(warehouse)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "validated 2 True"


def test_in_voronka_run_the_validated_batches_are_recorded_once_when_the_run_ends(
    warehouse: Path,
):
    """D391: with `record_at_end` (voronka run) the check records its batches when the run
    ends, through one writer connection, not during its step, with the validation worker too;
    the record is the same (the next run validates nothing of it) and a failed blocking check
    records nothing, as before."""
    from dagster_project.lib import warehouse as wh

    during: list[int] = []

    @asset(deps=[KEY])
    def reads_the_record() -> None:
        """Runs after the check: what the working copy records at that point."""
        con = duckdb.connect(str(wh.active_file(warehouse)), read_only=True)
        try:
            during.append(
                con.execute(
                    "select count(*) from duckdb_tables() where table_name = '_validated_batches'"
                ).fetchone()[0]
            )
        finally:
            con.close()

    def run_as_voronka_run(record_at_end: bool, in_worker: bool = False) -> ExecuteInProcessResult:
        with wh.session(warehouse, "test") as held:  # run_pipeline's own session publishes
            result = materialize(
                [survey_responses_stand_in, reads_the_record, the_check()],
                resources={
                    "warehouse": warehouse_from_settings(),
                    "validation": ValidationResource(
                        record_at_end=record_at_end, in_worker=in_worker
                    ),
                },
                raise_on_error=False,
            )
            held.publish()
        return result

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    first = run_as_voronka_run(record_at_end=True)
    assert first.success and during == [0]  # not recorded yet while the run went on
    assert recorded_batches(warehouse) == [("raw.survey_responses", "b1", "passed", first.run_id)]
    second = run_as_voronka_run(record_at_end=True)
    [evaluation] = second.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["rows_validated"].value == 0

    def anew(rows: Sequence[Row], log: Sequence[tuple]) -> None:
        for path in warehouse.parent.iterdir():  # the file, its copies and kept results
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        build_warehouse(warehouse, rows, log)

    anew(GOOD, LOG_TWO_RUNS[:1])  # recorded during the step, as before
    during.clear()
    assert run_as_voronka_run(record_at_end=False).success and during == [1]

    # as `voronka run` has it, with the validation worker (which holds a read-only connection
    # between checks, D393, and ends when the run does): recorded at the end all the same
    anew(GOOD, LOG_TWO_RUNS[:1])
    during.clear()
    in_worker = run_as_voronka_run(record_at_end=True, in_worker=True)
    assert in_worker.success and during == [0]
    assert recorded_batches(warehouse) == [
        ("raw.survey_responses", "b1", "passed", in_worker.run_id)
    ]

    anew([*GOOD, BAD_NPS], LOG_TWO_RUNS)  # a blocking failure records nothing
    failed = run_as_voronka_run(record_at_end=True)
    assert not failed.success
    con = duckdb.connect(str(wh.active_file(warehouse)), read_only=True)
    try:
        assert (
            con.execute(
                "select count(*) from duckdb_tables() where table_name = '_validated_batches'"
            ).fetchone()[0]
            == 0
        )
    finally:
        con.close()


def test_the_worker_holds_its_connection_and_lets_go_before_a_writer_opens(warehouse: Path, worker):
    """D393: between validations the worker keeps its read-only connection (a writer that does
    not ask is refused DuckDB's lock); a writer opened through `wh.connect` while the worker
    yields (as in `voronka run`) makes it let go first, and the next validation opens the file
    again and judges what the writer wrote."""
    from dagster_project.lib import warehouse as wh

    build_warehouse(warehouse, GOOD, LOG_TWO_RUNS[:1])
    assert worker.validate(warehouse, "raw.survey_responses").success
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(warehouse)).close()
    assert worker.validate(warehouse, "raw.survey_responses").success  # the same connection

    with wh.yielding_to_writers(worker.let_go):
        con = wh.connect(warehouse)
        try:
            con.execute(
                "update raw.survey_responses set survey_type = 'NPS', score = '11'"
                " where response_id = 'r1'"
            )
        finally:
            con.close()
        wh.connect(warehouse).close()  # nothing held: no round trip needed, no wait
    result = worker.validate(warehouse, "raw.survey_responses")
    assert not result.success and result.severity == "error"
