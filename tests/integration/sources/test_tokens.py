"""The OAuth token store under two processes and a crash (D98), against the fake amoCRM."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from dagster_project.lib import warehouse as wh
from dagster_project.lib.sources.amocrm import AmoCrmExtractor, AmoCrmSettings
from dagster_project.lib.sources.secrets import Secret
from dagster_project.lib.sources.state import RawWriter
from dagster_project.lib.sources.tokens import TokenPair, TokenStore
from tests.integration.sources.fakes import make_amo_data

pytestmark = pytest.mark.integration


def _env(url: str, store: str) -> dict[str, str]:
    return {
        "VORONKA_AMOCRM_BASE_URL": url,
        "VORONKA_TOKEN_STORE": store,
        "VORONKA_AMOCRM_ACCESS_TOKEN": "access-token-AAAA",
        "VORONKA_AMOCRM_REFRESH_TOKEN": "refresh-token-RRRR",
        "VORONKA_AMOCRM_CLIENT_ID": "client-id-1",
        "VORONKA_AMOCRM_CLIENT_SECRET": "client-secret-SSSS",
        "VORONKA_AMOCRM_RPS": "1000",
    }


def _run(url: str, store: str, warehouse: str, start, results) -> None:
    """One extraction process (a scheduled run, a manual run): leads into its own warehouse."""
    start.wait(30)
    try:
        extractor = AmoCrmExtractor(AmoCrmSettings.from_env(_env(url, store)))
        con = wh.connect(warehouse)
        try:
            [report] = extractor.extract(RawWriter(con, "amocrm"), "leads")
        finally:
            con.close()
            extractor.close()
        results.put(("ok", report.rows_inserted))
    except Exception as error:  # reported to the test, which shows it
        results.put(("error", f"{type(error).__name__}: {error}"))


def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(amo_server, tmp_path):
    """Both runs start with a dead access token; the refresh is slow and, as on Bitrix24,
    invalidates the access tokens issued before it. Exactly one refresh; both runs succeed."""
    amo_server.data = make_amo_data(n_leads=300)
    amo_server.expire_tokens()
    amo_server.token_delay = 1.0
    amo_server.invalidate_on_refresh = True
    store = str(tmp_path / "cfg" / "tokens.json")
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(
            target=_run,
            args=(amo_server.url, store, str(tmp_path / f"w{i}.duckdb"), start, results),
        )
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert outcomes == [("ok", 300), ("ok", 300)], outcomes
    assert amo_server.refreshes == 1
    saved = json.loads((tmp_path / "cfg" / "tokens.json").read_text())
    [entry] = saved.values()
    assert entry["refresh_token"] == "refresh-token-N001"
    assert not list((tmp_path / "cfg").glob(".tokens-*"))  # no temporary file left behind


def test_a_crash_while_saving_leaves_the_previous_pair_readable(tmp_path, monkeypatch):
    store = TokenStore(tmp_path / "cfg" / "tokens.json")
    store.save("amocrm:x", TokenPair(Secret("access-old-1234"), Secret("refresh-old-1234")))
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    def crash(*args):
        raise OSError("disk died during the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save("amocrm:x", TokenPair(Secret("access-new-1234"), Secret("refresh-new-1234")))
    assert synced, "the new pair is fsynced before it replaces the store"
    pair = store.load("amocrm:x")
    assert pair.refresh_token.reveal() == "refresh-old-1234"
    assert not list((tmp_path / "cfg").glob(".tokens-*"))


def test_a_stale_process_takes_the_pair_another_one_saved(amo_server, tmp_path, con):
    """A process that read the store before another refreshed gets a 401, takes the lock,
    finds the newer pair and uses it: no second refresh."""
    amo_server.data = make_amo_data(n_leads=10)
    env = _env(amo_server.url, str(tmp_path / "cfg" / "tokens.json"))
    stale = AmoCrmExtractor(AmoCrmSettings.from_env(env))  # holds access-token-AAAA
    amo_server.expire_tokens()
    fresh = AmoCrmExtractor(AmoCrmSettings.from_env(env))
    fresh.extract(RawWriter(con, "amocrm"), "users")  # refreshes: N001
    assert amo_server.refreshes == 1
    try:
        [report] = stale.extract(RawWriter(con, "amocrm"), "leads")
    finally:
        stale.close()
        fresh.close()
    assert report.rows_inserted == 10 and amo_server.refreshes == 1
