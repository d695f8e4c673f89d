"""Time the skipped run (D150) on an inbox without building its warehouse first.

A `voronka run` whose inputs are those of the published run reads neither the warehouse nor
the inbox's content: it lists the inbox, compares each file's stat with the hash cache (D151),
digests the code and compares the record in the state file. Its cost therefore depends on the
inbox's files, not on the warehouse's size, and can be measured on a large inbox without the
~10 minutes of a full large build: this script publishes a one-table stand-in warehouse with the
record a successful run would leave (hashing the inbox once, cold: the first figure), then times
the whole `voronka run` command twice (start-up included).

    .venv/bin/python benchmarks/noop.py --inbox /tmp/voronka-bench/large/inbox [--workdir DIR]

`benchmarks/run.py` measures the same path as its "rerun_unchanged" step after real runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib import run_inputs  # noqa: E402
from dagster_project.lib import warehouse as wh  # noqa: E402
from dagster_project.lib.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(dir=args.workdir, prefix="voronka-noop-"))
    try:
        settings = Settings.from_env(inbox=args.inbox.resolve(), warehouse=workdir / "w.duckdb")
        files = sum(1 for p in settings.inbox.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in settings.inbox.rglob("*") if p.is_file())
        print(f"inbox: {files} files, {size / 2**20:,.0f} MiB")
        with wh.session(settings.warehouse, "voronka run") as session:
            started = time.monotonic()
            hashes = run_inputs.FileHashes(settings.warehouse)
            inputs = run_inputs.current_inputs(settings, hashes)
            hashes.save()
            print(f"inputs with a cold hash cache: {time.monotonic() - started:.1f} s")
            session.mark_dirty()
            con = session.connect()
            con.execute("create table stand_in as select 1 as x")
            con.close()
            session.publish(run_record=run_inputs.record(inputs, settings.warehouse))
        env = {
            **os.environ,
            "VORONKA_INBOX": str(settings.inbox),
            "VORONKA_WAREHOUSE": str(settings.warehouse),
        }
        for attempt in (1, 2):
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "dagster_project.cli", "run", "--quiet"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            seconds = time.monotonic() - started
            skipped = "Nothing changed" in done.stdout
            print(
                f"voronka run {attempt}: {seconds:.1f} s, exit {done.returncode}, "
                f"{'skipped' if skipped else 'NOT skipped'}"
            )
            if not skipped:
                print(done.stdout[-2000:], done.stderr[-2000:])
                return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
