"""Fixtures of the source tests: fake API servers on 127.0.0.1, a warehouse, a sleep recorder."""

from __future__ import annotations

import time

import pytest

from dagster_project.lib import warehouse as wh
from tests.integration.sources.fakes import FakeAmoCrm, FakeBitrix24, FakeMango


class SleepRecorder:
    """An injectable `sleep` that only records how long it was asked to wait, and the matching
    monotonic clock (real time plus the time it pretended to sleep) for the rate limiter."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    def monotonic(self) -> float:
        return time.monotonic() + sum(self.calls)

    @property
    def backoffs(self) -> list[float]:
        # the rate limiter waits less than its interval (at most 0.5 s); back-offs are longer
        return [s for s in self.calls if s > 0.5]


@pytest.fixture
def sleep():
    return SleepRecorder()


@pytest.fixture
def con(tmp_path):
    connection = wh.connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


@pytest.fixture
def amo_server():
    server = FakeAmoCrm().start()
    yield server
    server.stop()
    assert not server.budget_exhausted, "the extractor sent more requests than the budget"


@pytest.fixture
def bitrix_server():
    server = FakeBitrix24().start()
    yield server
    server.stop()
    assert not server.budget_exhausted, "the extractor sent more requests than the budget"


@pytest.fixture
def mango_server():
    server = FakeMango().start()
    yield server
    server.stop()
    assert not server.budget_exhausted, "the extractor sent more requests than the budget"
