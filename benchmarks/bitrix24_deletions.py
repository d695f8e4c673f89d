"""What Bitrix24's deletion reconciliation costs (D100), counted against the fake Bitrix24.

An account of N deals is extracted once; then D of them are deleted and the live-id pass runs
alone (`select: ['ID']`, `>ID` paging, `start=-1`, 50 pages per `batch`; the windowed re-read
of a second extraction is not what is measured) and finds them. The script counts the
requests the pass took (the extractor's own count, kept in `_state`) and checks it against the
documented arithmetic: N - D live ids are (N - D) // 50 + 1 pages (the last, short or empty,
page ends the pass), in batches of 50 pages. Requests convert to seconds at Bitrix24's
documented 2 requests a second (standard plans; 5 on Enterprise). The fake answers instantly:
the seconds are the rate limit's, not a measurement of Bitrix24's latency nor of its
per-method time budget (an ids-only page is the cheapest list call there is).

    .venv/bin/python benchmarks/bitrix24_deletions.py [deals] [deletions]

Defaults: 100 000 deals, 1 000 deletions. Prints one JSON line.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib import warehouse as wh  # noqa: E402
from dagster_project.lib.sources.bitrix24 import (  # noqa: E402
    MAX_BATCH,
    OBJECT_BY_NAME,
    PAGE_SIZE,
    Bitrix24Extractor,
    Bitrix24Settings,
)
from dagster_project.lib.sources.state import RawWriter  # noqa: E402
from tests.integration.sources.fakes import FakeBitrix24, make_bitrix_data  # noqa: E402

DOCUMENTED_RPS = 2  # standard plans; Enterprise 5


def extract(server: FakeBitrix24, warehouse: str, tmp: str, only_pass=False, **env: str) -> list:
    """Extract deals (`only_pass`: run the deletion pass alone, not the windowed re-read, whose
    date filter the fake evaluates row by row)."""
    settings = Bitrix24Settings.from_env(
        {
            "VORONKA_BITRIX24_WEBHOOK_URL": server.webhook_url,
            "VORONKA_BITRIX24_RPS": "100000",  # count requests, do not wait
            "VORONKA_BITRIX24_BATCH_PAGES": "50",
            "VORONKA_TOKEN_STORE": f"{tmp}/tokens.json",
            **env,
        }
    )
    extractor = Bitrix24Extractor(settings)
    con = wh.connect(warehouse)
    try:
        writer = RawWriter(con, "bitrix24")
        if only_pass:
            return [extractor.reconcile(writer, OBJECT_BY_NAME["deals"])]
        return extractor.extract(writer, "deals")
    finally:
        con.close()
        extractor.close()


def main(argv: list[str]) -> None:
    deals = int(argv[1]) if len(argv) > 1 else 100_000
    deleted = int(argv[2]) if len(argv) > 2 else 1_000
    server = FakeBitrix24(make_bitrix_data(n_deals=deals), max_requests=10**6).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warehouse = f"{tmp}/wh.duckdb"
            extract(server, warehouse, tmp)
            rows = server.data["crm.deal.list"]
            step = max(1, deals // max(deleted, 1))
            gone = {r["ID"] for r in rows[::step][:deleted]}
            server.data["crm.deal.list"] = [r for r in rows if r["ID"] not in gone]
            started = time.perf_counter()
            reports = extract(
                server, warehouse, tmp, only_pass=True, VORONKA_BITRIX24_MAX_DELETED_SHARE="1"
            )
            seconds = time.perf_counter() - started
            con = wh.connect(warehouse)
            state = RawWriter(con, "bitrix24").get_state("deals:deletions")
            con.close()
    finally:
        server.stop()
    live = deals - deleted
    pages = live // PAGE_SIZE + 1  # the last page is short (or empty) and ends the pass
    expected = math.ceil(pages / MAX_BATCH)
    print(
        json.dumps(
            {
                "deals": deals,
                "deleted": deleted,
                "marked_deleted": state["deleted"],
                "id_pass_requests": state["requests"],
                "expected_requests": expected,
                "id_pages": pages,
                "seconds_at_2_rps": round(state["requests"] / DOCUMENTED_RPS, 1),
                "seconds_at_5_rps": round(state["requests"] / 5, 1),
                "without_batch_requests": pages,
                "without_batch_seconds_at_2_rps": round(pages / DOCUMENTED_RPS, 1),
                "pass_seconds_on_the_fake": round(seconds, 2),
                "reports": [r.obj for r in reports],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main(sys.argv)
