"""Throughput and memory of the extractors against their local fake servers.

    python -m tests.integration.sources.bench [rows]        # default 100000

Each fake runs in its own process (so its data does not count); each extraction runs in a fresh
process that reports its rows per second and its peak resident memory (VmHWM) next to the
memory of the same process before extracting. The client-side rate limit is lifted: this
measures the extractor (HTTP parsing, flattening, DuckDB writes), not the APIs' quotas (amoCRM
7 requests/s × 250 = 1,750 rows/s; Bitrix24 2 requests/s × 10 pages × 50 = 1,000 rows/s per
batch setting; those are the real ceilings).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    return 0


def _serve(kind: str, rows: int, queue) -> None:
    from tests.integration.sources import fakes

    if kind == "amocrm":
        server = fakes.FakeAmoCrm(fakes.make_amo_data(n_leads=rows), max_requests=10**6)
    elif kind == "bitrix24":
        server = fakes.FakeBitrix24(fakes.make_bitrix_data(n_deals=rows), max_requests=10**6)
    else:
        server = fakes.FakeMango(
            fakes.make_mango_calls(rows, every=30), max_requests=10**6, polls_before_ready=0
        )
    server.start()
    queue.put((server.url, getattr(server, "webhook_url", None)))
    while True:
        time.sleep(3600)


def _extract(kind: str, url: str, webhook: str | None, warehouse: str, queue) -> None:
    from dagster_project.lib import warehouse as wh
    from dagster_project.lib.sources.state import RawWriter

    baseline = _vm("VmRSS")
    con = wh.connect(warehouse)
    if kind == "amocrm":
        from dagster_project.lib.sources.amocrm import AmoCrmExtractor, AmoCrmSettings

        settings = AmoCrmSettings.from_env(
            {
                "VORONKA_AMOCRM_BASE_URL": url,
                "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "access-token-AAAA",
                "VORONKA_AMOCRM_RPS": "100000",
                "VORONKA_TOKEN_STORE": warehouse + ".tokens",
            }
        )
        extractor, name, table = AmoCrmExtractor(settings), "leads", "leads"
    elif kind == "bitrix24":
        from dagster_project.lib.sources.bitrix24 import Bitrix24Extractor, Bitrix24Settings

        settings = Bitrix24Settings.from_env(
            {
                "VORONKA_BITRIX24_WEBHOOK_URL": webhook,
                "VORONKA_BITRIX24_RPS": "100000",
                "VORONKA_BITRIX24_BATCH_PAGES": "10",
            }
        )
        extractor, name, table = Bitrix24Extractor(settings), "deals", "deals"
    else:
        from dagster_project.lib.sources.mango import MangoExtractor, MangoSettings

        settings = MangoSettings.from_env(
            {
                "VORONKA_MANGO_API_KEY": "mango-key-KKKK1234",
                "VORONKA_MANGO_API_SALT": "mango-salt-SSSS1234",
                "VORONKA_MANGO_BASE_URL": url + "/vpbx",
                "VORONKA_MANGO_START_DATE": "2026-01-01",
                "VORONKA_MANGO_RPS": "100000",
                "VORONKA_MANGO_WINDOW_HOURS": "168",
            }
        )
        extractor = MangoExtractor(settings, clock=lambda: 1_767_225_600 + 60 * 86400)
        name, table = "calls", "calls"
    started = time.perf_counter()
    # Bitrix24's deals add the deletion pass's report (D100): timed here, rows from the first
    report, *extra = extractor.extract(RawWriter(con, kind), name)
    seconds = time.perf_counter() - started
    queue.put(
        {
            "source": kind,
            "rows": report.rows_inserted,
            "requests": extractor.client.stats.requests,
            "deletion_pass_requests": sum(r.pages for r in extra),
            "deletion_pass_seconds": round(sum(r.seconds for r in extra), 1),
            "seconds": round(seconds, 1),
            "rows_per_second": round(report.rows_inserted / seconds),
            "rss_before_mib": baseline,
            "peak_rss_mib": _vm("VmHWM"),
            "table_rows": RawWriter(con, kind).row_count(table),
        }
    )
    con.close()


def run(kind: str, rows: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(kind, rows, queue), daemon=True)
    server.start()
    try:
        url, webhook = queue.get(timeout=300)
        with tempfile.TemporaryDirectory() as tmp:
            worker = ctx.Process(
                target=_extract, args=(kind, url, webhook, f"{tmp}/wh.duckdb", queue)
            )
            worker.start()
            result = queue.get(timeout=1800)
            worker.join(60)
        return result
    finally:
        server.terminate()
        server.join(10)


def main(argv: list[str]) -> None:
    rows = int(argv[1]) if len(argv) > 1 else 100_000
    for kind in ("amocrm", "bitrix24", "mango"):
        print(run(kind, rows), flush=True)


if __name__ == "__main__":
    main(sys.argv)
