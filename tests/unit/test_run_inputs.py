"""A run whose inputs are the published run's is skipped; anything else that reaches the results
runs (lib/run_inputs.py, D150); a file is hashed again only when its stat changed (D151)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import run_inputs
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("VORONKA_"):
            monkeypatch.delenv(name)
    inbox = tmp_path / "inbox"
    (inbox / "calls").mkdir(parents=True)
    (inbox / "calls" / "2026-01.csv").write_text("call_id\nk1\n")
    published = tmp_path / "warehouse.duckdb"
    settings = Settings(inbox=inbox, warehouse=published)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("<html></html>")
    return settings


def publish_run(settings: Settings) -> None:
    """What a successful `voronka run` leaves: the working copy published with its inputs."""
    with wh.session(settings.warehouse, "voronka run") as session:
        hashes = run_inputs.FileHashes(settings.warehouse)
        inputs = run_inputs.current_inputs(settings, hashes)
        hashes.save()
        session.mark_dirty()
        con = session.connect()
        con.execute("create or replace table t as select 1 as x")
        con.close()
        session.publish(run_record=run_inputs.record(inputs, settings.warehouse))


def current(settings: Settings) -> str | None:
    with wh.session(settings.warehouse, "voronka run") as session:
        hashes = run_inputs.FileHashes(settings.warehouse)
        return run_inputs.published_run_is_current(
            session, run_inputs.current_inputs(settings, hashes)
        )


def test_the_same_inputs_are_current_and_say_so(setup):
    publish_run(setup)
    message = current(setup)
    assert message and "Nothing changed since the run published at" in message


def test_a_touched_file_with_the_same_content_is_still_current(setup):
    publish_run(setup)
    path = setup.inbox / "calls" / "2026-01.csv"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert current(setup)


@pytest.mark.parametrize(
    "change",
    [
        "changed file",
        "new file",
        "removed file",
        "new folder",
        "as-of",
        "time zone",
        "language",
        "channel field",
        "report deleted",
        "dirty",
        "published elsewhere",
        "api source",
    ],
)
# complexity (C901): one branch per kind of change (parametrized)
def test_anything_that_reaches_the_results_makes_a_run(setup, change, monkeypatch):  # noqa: C901
    publish_run(setup)
    settings = setup
    calls = setup.inbox / "calls" / "2026-01.csv"
    if change == "changed file":
        calls.write_text("call_id\nk2\n")  # same size, other content
    elif change == "new file":
        (setup.inbox / "calls" / "2026-02.csv").write_text("call_id\nk3\n")
    elif change == "removed file":
        calls.unlink()
    elif change == "new folder":
        (setup.inbox / "misc").mkdir()
    elif change == "as-of":
        settings = Settings(inbox=setup.inbox, warehouse=setup.warehouse, as_of="2026-01-31")
    elif change == "time zone":
        settings = Settings(inbox=setup.inbox, warehouse=setup.warehouse, business_timezone="UTC")
    elif change == "language":
        settings = Settings(inbox=setup.inbox, warehouse=setup.warehouse, language="en")
    elif change == "channel field":
        monkeypatch.setenv("VORONKA_BITRIX24_CHANNEL_FIELD", "UF_CRM_1")
    elif change == "report deleted":
        (setup.warehouse.parent / "report" / "index.html").unlink()
    elif change == "dirty":  # `voronka load`, a failed or killed run
        with wh.session(setup.warehouse, "voronka load") as session:
            session.mark_dirty()
    elif change == "published elsewhere":  # close-period publishes without a run's inputs
        with wh.session(setup.warehouse, "voronka close-period") as session:
            session.mark_dirty()
            session.publish()
    elif change == "api source":
        monkeypatch.setattr(
            "dagster_project.lib.sources.configured_sources", lambda env=None: ["amocrm"]
        )
    assert current(settings) is None


def test_the_published_file_replaced_by_hand_makes_a_run(setup):
    publish_run(setup)
    con = duckdb.connect(str(setup.warehouse))
    con.execute("create table other as select 2 as y")
    con.close()
    assert current(setup) is None


def test_a_file_is_hashed_again_only_when_its_stat_changed(setup):
    path = setup.inbox / "calls" / "2026-01.csv"
    first = run_inputs.FileHashes(setup.warehouse)
    sha = first.sha256(path)
    assert first.hashed_bytes == path.stat().st_size
    first.save()

    again = run_inputs.FileHashes(setup.warehouse)
    assert again.sha256(path) == sha
    assert again.hashed_bytes == 0  # read from the cache, the file not opened

    path.write_text("call_id\nk9\n")  # same size: the ctime and mtime moved
    changed = run_inputs.FileHashes(setup.warehouse)
    assert changed.sha256(path) != sha
    assert changed.hashed_bytes == path.stat().st_size


def test_a_postgresql_warehouse_keeps_no_cache_and_always_runs(tmp_path):
    """No folder beside a database: nothing is written, every run runs (D150)."""
    settings = Settings.from_env(inbox=tmp_path, warehouse="postgresql://u@localhost:1/db")
    hashes = run_inputs.FileHashes(settings.warehouse)
    hashes.save()
    assert hashes.path is None

    class Held:
        owner = True

    assert run_inputs.check(settings, Held()) == run_inputs.Checked(None, None)
    assert wh.PostgresSession(settings.warehouse, True, "voronka run").publish(None) is None


@pytest.fixture
def with_file_sources(setup, tmp_path, monkeypatch):
    """The CDR and survey-form sources on, each with one file and its mapping (D221)."""
    for name in ("cdr", "forms"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "2026-01.csv").write_text("id\n1\n")
        (tmp_path / f"{name}.yml").write_text("name: x\n")
    monkeypatch.setenv("VORONKA_CDR_DIR", str(tmp_path / "cdr"))
    monkeypatch.setenv("VORONKA_CDR_MAPPING", str(tmp_path / "cdr.yml"))
    monkeypatch.setenv("VORONKA_FORMS_DIR", str(tmp_path / "forms"))
    monkeypatch.setenv("VORONKA_FORMS_CONFIG", str(tmp_path / "forms.yml"))
    return setup


def test_file_sources_unchanged_are_current(with_file_sources):
    publish_run(with_file_sources)
    message = current(with_file_sources)
    assert message and "Nothing changed since the run published at" in message


@pytest.mark.parametrize(
    "change",
    ["cdr file", "new forms file", "removed cdr file", "cdr mapping", "forms config", "cdr off"],
)
def test_a_changed_file_source_makes_a_run(with_file_sources, tmp_path, change, monkeypatch):
    publish_run(with_file_sources)
    if change == "cdr file":
        (tmp_path / "cdr" / "2026-01.csv").write_text("id\n2\n")  # same size, other content
    elif change == "new forms file":
        (tmp_path / "forms" / "2026-02.csv").write_text("id\n3\n")
    elif change == "removed cdr file":
        (tmp_path / "cdr" / "2026-01.csv").unlink()
    elif change == "cdr mapping":
        (tmp_path / "cdr.yml").write_text("name: y\n")
    elif change == "forms config":
        (tmp_path / "forms.yml").write_text("name: y\n")
    elif change == "cdr off":
        monkeypatch.delenv("VORONKA_CDR_DIR")
    assert current(with_file_sources) is None


def test_with_an_api_source_on_an_unchanged_run_extracts_first(setup, monkeypatch):
    """What an API holds is known only by asking it: the run is not skipped before its
    extraction, but marked to extract first and skip the rest on no new row (D221)."""
    monkeypatch.setattr(
        "dagster_project.lib.sources.configured_sources", lambda env=None: ["mango", "amocrm"]
    )
    publish_run(setup)
    with wh.session(setup.warehouse, "voronka run") as session:
        checked = run_inputs.check(setup, session)
        forced = run_inputs.check(setup, session, force=True)
    assert checked.unchanged is None and checked.extract_first == ("amocrm", "mango")
    assert forced.extract_first == ()
    (setup.inbox / "calls" / "2026-01.csv").write_text("call_id\nk2\n")
    with wh.session(setup.warehouse, "voronka run") as session:
        assert run_inputs.check(setup, session).extract_first == ()  # the inbox changed


def test_dbt_writing_its_user_file_is_not_a_code_change(tmp_path, monkeypatch):
    """dbt creates dbt_models/.user.yml on its first run in a checkout; the next unchanged run
    must still be skipped (D150)."""
    (tmp_path / "dbt_models").mkdir()
    (tmp_path / "dbt_models" / "model.sql").write_text("select 1\n")
    monkeypatch.setattr(run_inputs, "ROOT", tmp_path)
    before = run_inputs.code_digest()
    (tmp_path / "dbt_models" / ".user.yml").write_text("id: 5f3c\n")
    assert run_inputs.code_digest() == before
    (tmp_path / "dbt_models" / "model.sql").write_text("select 2\n")
    assert run_inputs.code_digest() != before
