"""amoCRM extraction rows per second, two revisions alternating, against the fake amoCRM (D99).

Each revision is extracted with `git archive` into a temporary folder, whose extractor loads
N leads from one fake amoCRM (this checkout's `tests/integration/sources/bench.py`, the same
server for both revisions, in its own process), with the client's rate limit lifted (the
extractor's cost, not amoCRM's quota). Reported: wall rows/s (the fake's work included) and
rows per CPU second of the extracting process alone (parsing, flattening, DuckDB writes: less
sensitive to a machine shared by eight). The revisions alternate `--repeats` times so that the
load falls on both alike; the medians are printed.

    .venv/bin/python benchmarks/amocrm_throughput.py --before 388c65d --after HEAD [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, tempfile, time
from dagster_project.lib import warehouse as wh
from dagster_project.lib.sources.amocrm import AmoCrmExtractor, AmoCrmSettings
from dagster_project.lib.sources.state import RawWriter

url = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    settings = AmoCrmSettings.from_env({
        "VORONKA_AMOCRM_BASE_URL": url,
        "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "access-token-AAAA",
        "VORONKA_AMOCRM_RPS": "100000",
        "VORONKA_TOKEN_STORE": tmp + "/tokens.json",
    })
    extractor = AmoCrmExtractor(settings)
    con = wh.connect(tmp + "/wh.duckdb")
    wall, cpu = time.perf_counter(), time.process_time()
    [report] = extractor.extract(RawWriter(con, "amocrm"), "leads")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    con.close()
    print(json.dumps({
        "rows": report.rows_inserted,
        "requests": extractor.client.stats.requests,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "rows_per_second": round(report.rows_inserted / wall),
        "rows_per_cpu_second": round(report.rows_inserted / cpu),
    }))
"""


def extract_revision(revision: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def measure(tree: Path, url: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, url],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.integration.sources import bench

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=bench._serve, args=("amocrm", args.rows, queue), daemon=True)
    server.start()
    url, _ = queue.get(timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for label in ("before", "after"):
            trees[label] = Path(tmp) / label
            trees[label].mkdir()
            extract_revision(getattr(args, label), trees[label])
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(args.repeats):
            for label in ("before", "after"):
                result = measure(trees[label], url)
                runs[label].append(result)
                print(label, json.dumps(result), flush=True)
    server.terminate()
    server.join(10)
    summary = {
        label: {
            "revision": getattr(args, label),
            "rows": args.rows,
            "requests": results[0]["requests"],
            "rows_per_second": [r["rows_per_second"] for r in results],
            "median_rows_per_second": statistics.median(r["rows_per_second"] for r in results),
            "rows_per_cpu_second": [r["rows_per_cpu_second"] for r in results],
            "median_rows_per_cpu_second": statistics.median(
                r["rows_per_cpu_second"] for r in results
            ),
        }
        for label, results in runs.items()
    }
    for measure_name in ("median_rows_per_second", "median_rows_per_cpu_second"):
        ratio = summary["after"][measure_name] / summary["before"][measure_name]
        summary[f"after_vs_before_{measure_name[7:]}"] = round(ratio - 1, 3)
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
