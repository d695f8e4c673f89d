"""Shared fixtures: hand-made inbox files and temporary warehouses."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def write_inbox(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `{"calls/a.csv": "text", ...}` under `root` and return it."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def warehouse(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture(autouse=True)
def _isolated_environment():
    """`voronka run` exports its settings (VORONKA_*) to the environment for dbt, which runs as a
    subprocess; a test that calls it in-process must not leak them into the tests after it."""
    import os

    saved = {k: v for k, v in os.environ.items() if k.startswith("VORONKA_")}
    yield
    for key in [k for k in os.environ if k.startswith("VORONKA_")]:
        del os.environ[key]
    os.environ.update(saved)
