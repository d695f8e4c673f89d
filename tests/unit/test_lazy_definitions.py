"""Importing the Dagster definitions is light (D122): no dbt parse, no process started, PATH
left alone, Great Expectations not imported. The definitions are built when Dagster (or the
runner) calls the builder."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this test session has imported the modules already.
PROBE = r"""
import json, os, subprocess, sys

spawned = []
real_init = subprocess.Popen.__init__


def recording(self, args, *a, **k):
    spawned.append(args if isinstance(args, str) else [str(x) for x in args])
    return real_init(self, args, *a, **k)


subprocess.Popen.__init__ = recording
path_before = os.environ.get("PATH")

import dagster_project.definitions as definitions

print(json.dumps({
    "spawned": spawned,
    "path_changed": os.environ.get("PATH") != path_before,
    "great_expectations": "great_expectations" in sys.modules,
    "defs_is_lazy": callable(definitions.defs),
}))
"""


def test_importing_the_definitions_starts_no_dbt_and_changes_no_path(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VORONKA_", "DBT_"))}
    # vars no parse has used (a zone of its own): an eager import would have to parse again
    env["VORONKA_TIMEZONE"] = "Asia/Kamchatka"
    env["VORONKA_WAREHOUSE"] = str(tmp_path / "warehouse.duckdb")
    env["VORONKA_INBOX"] = str(tmp_path / "inbox")
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # no `dbt parse` (the imports of some libraries start `file` to tell the architecture)
    assert [args for args in seen["spawned"] if "dbt" in str(args)] == []
    assert not seen["path_changed"]
    assert not seen["great_expectations"]
    assert seen["defs_is_lazy"]
