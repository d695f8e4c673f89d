"""dbt's command line on a test's warehouse, as the integration tests run it (one helper, D142)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_models"


def run_dbt(
    warehouse: Path,
    *args: str,
    target_path: str | Path,
    keep_settings: bool = False,
    env: dict[str, str] | None = None,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """`dbt <args>` in the project against `warehouse`, its artifacts in `target_path` (a
    folder of its own per test module, so that modules running side by side do not share
    one). The caller's `VORONKA_*` settings are dropped unless `keep_settings`; `env` adds
    variables. A failed dbt fails the test with the end of its output."""
    base = (
        dict(os.environ)
        if keep_settings
        else {k: v for k, v in os.environ.items() if not k.startswith("VORONKA_")}
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--target-path", str(target_path)],
        cwd=DBT_PROJECT,
        env={**base, "VORONKA_WAREHOUSE": str(warehouse), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result
