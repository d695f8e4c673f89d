"""What amoCRM's deletion reconciliation costs (D96), counted against the fake amoCRM.

An account of N deals of which D were deleted (deletion events) and T sit in the trash. The
script extracts `leads` (for the comparison: a full pass over every live deal, what a
reconciliation by listing ids would cost at least), `events` and `deleted_leads` (what the
extractor actually does) from the local fake and counts the requests each took; then converts
requests to seconds at amoCRM's documented 7 requests a second and at the client's 6. The fake
answers instantly: the seconds are the rate limit's, not a measurement of amoCRM's latency.

    .venv/bin/python benchmarks/amocrm_deletions.py [deals] [deletions] [trash]

Defaults: 100 000 deals, 1 000 deletions, 1 000 in the trash. Prints one JSON line.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib import warehouse as wh  # noqa: E402
from dagster_project.lib.sources.amocrm import (  # noqa: E402
    EVENTS_LIMIT,
    PAGE_LIMIT,
    AmoCrmExtractor,
    AmoCrmSettings,
)
from dagster_project.lib.sources.state import RawWriter  # noqa: E402
from tests.integration.sources.fakes import FakeAmoCrm, make_amo_data  # noqa: E402

DOCUMENTED_RPS = 7
CLIENT_RPS = 6


def requests_for(server: FakeAmoCrm, warehouse: str, store: str, name: str) -> int:
    settings = AmoCrmSettings.from_env(
        {
            "VORONKA_AMOCRM_BASE_URL": server.url,
            "VORONKA_AMOCRM_LONG_LIVED_TOKEN": "access-token-AAAA",
            "VORONKA_AMOCRM_RPS": "100000",  # count requests, do not wait
            "VORONKA_TOKEN_STORE": store,
        }
    )
    extractor = AmoCrmExtractor(settings)
    con = wh.connect(warehouse)
    try:
        extractor.extract(RawWriter(con, "amocrm"), name)
        return extractor.client.stats.requests
    finally:
        con.close()
        extractor.close()


def main(argv: list[str]) -> None:
    deals = int(argv[1]) if len(argv) > 1 else 100_000
    deletions = int(argv[2]) if len(argv) > 2 else 1_000
    trash = int(argv[3]) if len(argv) > 3 else 1_000
    data = make_amo_data(n_leads=deals)
    data["events"] = [
        {
            "id": f"del{i:08d}",
            "type": "lead_deleted",
            "entity_id": 1000 + i,
            "entity_type": "lead",
            "created_at": 1_767_225_600 + i,
            "value_before": [],
            "value_after": [],
        }
        for i in range(deletions)
    ]
    data["deleted_leads"] = [{**lead, "is_deleted": True} for lead in data["leads"][:trash]]
    server = FakeAmoCrm(data, max_requests=10**6).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            counted = {
                name: requests_for(server, f"{tmp}/wh.duckdb", f"{tmp}/tokens.json", name)
                for name in ("leads", "events", "deleted_leads")
            }
    finally:
        server.stop()
    reconciliation = counted["events"] + counted["deleted_leads"]
    result = {
        "deals": deals,
        "deletions": deletions,
        "trash": trash,
        "requests_counted": counted,
        "requests_expected": {
            # the key is inclusive: each page after the first re-reads one lead (D97)
            "leads": 1 + math.ceil(max(deals - PAGE_LIMIT, 0) / (PAGE_LIMIT - 1)),
            "events": math.ceil(deletions / EVENTS_LIMIT),
            "deleted_leads": math.ceil(trash / PAGE_LIMIT),
        },
        "reconciliation_requests": reconciliation,
        "reconciliation_seconds_at_7_rps": round(reconciliation / DOCUMENTED_RPS, 1),
        "reconciliation_seconds_at_6_rps": round(reconciliation / CLIENT_RPS, 1),
        "full_id_pass_requests": counted["leads"],
        "full_id_pass_seconds_at_7_rps": round(counted["leads"] / DOCUMENTED_RPS, 1),
        "full_id_pass_seconds_at_6_rps": round(counted["leads"] / CLIENT_RPS, 1),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv)
