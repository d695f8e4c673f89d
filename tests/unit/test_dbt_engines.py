"""Engine differences live in dispatched macros, one version per engine (issue 19, D166)."""

from __future__ import annotations

import re
from pathlib import Path

MACROS = Path(__file__).resolve().parents[2] / "dbt_models" / "macros"


def _versions(prefix: str) -> set[str]:
    pattern = re.compile(r"\{%-?\s*macro\s+" + prefix + r"__(\w+)\s*\(")
    return {name for path in MACROS.glob("*.sql") for name in pattern.findall(path.read_text())}


def test_every_duckdb_macro_has_a_postgres_twin():
    duckdb = _versions("duckdb")
    assert len(duckdb) >= 9
    assert duckdb - _versions("postgres") == set()


def test_no_default_versions():
    """A default__ macro would run one engine's SQL on another (Spark next): each engine its
    own version, a missing one fails at compile time."""
    assert _versions("default") == set()


def test_unit_test_names_fit_postgres_identifiers():
    """dbt names a relation after a unit test: PostgreSQL refuses names over 63 bytes."""
    import yaml

    models = MACROS.parent / "models"
    names = [
        test["name"]
        for path in models.rglob("*.yml")
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []
    ]
    assert len(names) >= 70
    assert [n for n in names if len(n.encode()) > 63] == []
