"""dbt's command line on a test's warehouse, as the integration tests run it (one helper, D142)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.background import Command

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_models"


def dbt_command(
    warehouse: Path,
    *args: str,
    target_path: str | Path,
    keep_settings: bool = False,
    env: dict[str, str] | None = None,
    timeout: int = 900,
) -> Command:
    """`dbt <args>` in the project against `warehouse`, its artifacts in `target_path` (a
    folder of its own per test module, so that modules running side by side do not share
    one). The caller's `VORONKA_*` settings are dropped unless `keep_settings`; `env` adds
    variables."""
    return Command(
        [str(Path(sys.executable).parent / "dbt"), *args, "--target-path", str(target_path)],
        env={"VORONKA_WAREHOUSE": str(warehouse), **(env or {})},
        unset=() if keep_settings else ("VORONKA_*",),
        cwd=DBT_PROJECT,
        timeout=timeout,
    )


def run_dbt(warehouse: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """`dbt_command` run: a failed dbt fails the test with the end of its output."""
    command = dbt_command(warehouse, *args, **options)
    result = subprocess.run(
        command.args,
        cwd=command.cwd,
        env=command.environment(os.environ),
        capture_output=True,
        text=True,
        timeout=command.timeout,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result
