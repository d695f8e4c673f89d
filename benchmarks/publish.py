"""Benchmark publishing the warehouse for readers (D80): checkpoint, copy, fsync, rename.

`voronka run` reports the time of its own publish ("published for readers in X s", also parsed
by `benchmarks/run.py`); this script times the publish alone on a given warehouse file, or on
a synthetic DuckDB file of a given size (to stand in for the large scale without running it):

    .venv/bin/python benchmarks/publish.py --warehouse data/warehouse.duckdb [--repeat 3]
    .venv/bin/python benchmarks/publish.py --synthetic-mb 6000 [--workdir DIR]

The file is copied into a temporary folder first (the original is not touched). Not a test:
the machine is shared, the figure is the disk's copy speed of the moment.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib import warehouse as wh  # noqa: E402


def synthetic(path: Path, megabytes: int) -> None:
    """A DuckDB file of about `megabytes` MB of incompressible rows."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        # ~30 bytes per row of random doubles and hashes, after DuckDB's compression (measured)
        rows = megabytes * 2**20 // 30
        con.execute(
            "create table t as select random() as a, random() as b, hash(range) as c,"
            f" hash(range + 1) as d from range({rows})"
        )
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--warehouse", type=Path, help="a published warehouse to copy and time")
    source.add_argument("--synthetic-mb", type=int, help="a synthetic file of this many MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(dir=args.workdir, prefix="voronka-publish-"))
    try:
        published = workdir / "warehouse.duckdb"
        started = time.monotonic()
        if args.warehouse:
            shutil.copyfile(args.warehouse, published)
        else:
            synthetic(published, args.synthetic_mb)
        size = published.stat().st_size
        print(f"file: {size / 2**20:,.0f} MiB, prepared in {time.monotonic() - started:.1f} s")
        with wh.session(published, "benchmark") as session:  # adopts it (a copy)
            for i in range(args.repeat):
                session.mark_dirty()
                seconds = session.publish()
                print(f"publish {i + 1}: {seconds:.2f} s ({size / 2**20 / seconds:,.0f} MiB/s)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
