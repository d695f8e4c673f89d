"""The KPI report of a run: every figure the page draws equals its mart, and the page works in a
real browser (headless Chromium, when installed: `.ci/run` installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_project.cli import main
from dagster_project.lib.kpi_report import band_class, report_path
from tests.conftest import query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHART = re.compile(
    r"<script type='application/json' class='voronka-chart' data-target='[^']+' "
    r"data-key='(?P<key>[^']+)'[^>]*>(?P<json>.*?)</script>",
    re.S,
)
MONTH = date(2026, 9, 1)  # the demo ends 2026-10-31: its latest full month


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_run):
    """A copy of the session's run of the tiny demo, 3 months (tests/conftest.py, D282)."""
    root = tmp_path_factory.mktemp("report")
    return demo_run.copy_to(root / "run"), demo_run.run.returncode


def charts(page: Path) -> dict[str, dict]:
    return {m["key"]: json.loads(m["json"]) for m in CHART.finditer(page.read_text("utf-8"))}


def num(value):
    return float(value) if isinstance(value, Decimal) else value


def rows(warehouse: Path, sql: str) -> list[tuple]:
    return [tuple(num(v) for v in row) for row in query(warehouse, sql)]


def test_the_run_writes_the_report_of_the_latest_full_month(built):
    warehouse, code = built
    assert code == 0
    page = report_path(warehouse)
    text = page.read_text("utf-8")
    assert "2026-09" in text
    assert "<script src" not in text and "https://" not in text.split("</head>")[1]
    assert set(charts(page)) == {
        "company", "revenue_trend", "plan_vs_fact", "bands", "funnel", "calls_heatmap",
        "missed_callbacks", "nps_csat", "churn_lifecycle", "clv_cac", "statements",
    }  # fmt: skip
    for key, figure in charts(page).items():  # no chart without data
        assert figure["data"], key
        for trace in figure["data"]:
            values = trace.get("y") or trace.get("cells", {}).get("values") or trace.get("z")
            assert values and any(v is not None for v in values), (key, trace.get("name"))


# complexity (PLR0915): one reading of the page, figure after figure
def test_every_figure_equals_its_mart(built):  # noqa: PLR0915
    warehouse, _ = built
    shown = charts(report_path(warehouse))
    m = f"date '{MONTH}'"

    company = rows(warehouse, "select * from marts.kpi_company_monthly order by month")
    columns = [r[0] for r in query(warehouse, "describe marts.kpi_company_monthly")]
    by_month = {r[0]: dict(zip(columns, r, strict=True)) for r in company}
    cells = shown["company"]["data"][0]["cells"]["values"]
    measures = ["revenue", "deals_won", "win_rate", "nps", "csat_avg", "churn_rate",
                "service_level", "cac"]  # fmt: skip
    assert cells[-1] == [by_month[MONTH][c] for c in measures]
    assert cells[-2] == [by_month[date(2026, 8, 1)][c] for c in measures]

    revenue, won = shown["revenue_trend"]["data"]
    assert revenue["x"] == [f"{k:%Y-%m}" for k in by_month if k <= MONTH]
    assert revenue["y"] == [by_month[k]["revenue"] for k in by_month if k <= MONTH]
    assert won["y"] == [by_month[k]["deals_won"] for k in by_month if k <= MONTH]

    nps, csat = shown["nps_csat"]["data"]
    assert nps["y"] == [by_month[k]["nps"] for k in by_month if k <= MONTH]
    assert csat["y"] == [by_month[k]["csat_avg"] for k in by_month if k <= MONTH]

    names = dict(
        query(
            warehouse,
            f"select manager_id, manager_name from marts.kpi_manager_monthly where month = {m}",
        )
    )
    plans = rows(
        warehouse,
        f"select manager_id, fact, norm, base from marts.kpi_plan_completion "
        f"where month = {m} and kpi_code = 'revenue'",
    )
    fact, norm, base = shown["plan_vs_fact"]["data"]
    drawn = dict(zip(fact["x"], zip(fact["y"], norm["y"], base["y"], strict=True), strict=True))
    assert drawn == {names[r[0]]: r[1:] for r in plans}

    lines = rows(
        warehouse,
        f"select manager_id, kpi_code, kpi_pct, premium_coefficient from finance.bonus_lines "
        f"where month = {m}",
    )
    heat = shown["bands"]["data"][0]
    order = ["zero", "reduced", "full", "more"]
    drawn = {
        (manager, code): (heat["customdata"][i][j], order[heat["z"][i][j]])
        for i, manager in enumerate(heat["y"])
        for j, code in enumerate(heat["x"])
        if heat["z"][i][j] is not None
    }
    assert drawn == {(names[r[0]], r[1]): (r[2], band_class(r[3])) for r in lines}

    reached = defaultdict(int)
    for pipeline, stage, count in query(
        warehouse,
        f"select pipeline, stage, deals_reached from marts.kpi_funnel_stage_monthly "
        f"where cohort_month = {m}",
    ):
        reached[(pipeline, stage)] += count
    drawn = {
        (t["name"], s): x
        for t in shown["funnel"]["data"]
        for s, x in zip(t["y"], t["x"], strict=True)
    }
    assert drawn == dict(reached)

    offered, answered_in_time = defaultdict(int), defaultdict(float)
    for day, hour, count, level in query(
        warehouse,
        f"select call_date, call_hour, offered, service_level from marts.kpi_calls_hourly "
        f"where call_date between {m} and date '2026-09-30'",
    ):
        offered[(f"{day}", hour)] += count
        answered_in_time[(f"{day}", hour)] += num(level or 0) * count
    heat = shown["calls_heatmap"]["data"][0]
    drawn = {
        (day, hour): (heat["customdata"][i][j], heat["z"][i][j])
        for i, day in enumerate(heat["y"])
        for j, hour in enumerate(heat["x"])
        if heat["customdata"][i][j] is not None
    }
    assert drawn.keys() == offered.keys()
    for cell, (count, level) in drawn.items():
        assert count == offered[cell]
        expected = answered_in_time[cell] / count if count else None
        assert level == pytest.approx(expected), cell

    per_month = defaultdict(lambda: [0, 0, 0.0])
    for day, count, missed, rate in query(
        warehouse,
        "select call_date, offered, missed, callback_within_1h_rate from marts.kpi_calls_hourly "
        f"where call_date < {m} + interval 1 month",
    ):
        key = f"{day:%Y-%m}"
        per_month[key][0] += count
        per_month[key][1] += missed
        per_month[key][2] += num(rate or 0) * missed
    offered_trace, missed_trace, callbacks = shown["missed_callbacks"]["data"]
    assert offered_trace["x"] == sorted(per_month)
    assert offered_trace["y"] == [per_month[k][0] for k in sorted(per_month)]
    assert missed_trace["y"] == [per_month[k][1] for k in sorted(per_month)]
    assert callbacks["y"] == [round(per_month[k][2]) for k in sorted(per_month)]

    churn = rows(
        warehouse,
        "select month, clients_potential, clients_developing, clients_developed, "
        "clients_sleeping, clients_lost, churn_rate from marts.kpi_churn_monthly "
        f"where segment = 'all' and month <= {m} order by month",
    )
    traces = shown["churn_lifecycle"]["data"]
    for i, trace in enumerate(traces):
        assert trace["y"] == [r[1 + i] for r in churn], trace["name"]

    channels = rows(
        warehouse,
        f"select channel, clv, cac from marts.kpi_clv_cac_monthly where month = {m} order by channel",
    )
    clv, cac = shown["clv_cac"]["data"]
    assert list(zip(clv["x"], clv["y"], cac["y"], strict=True)) == channels

    statements = rows(
        warehouse,
        f"select manager_name, manager_id, team, lines, bonus_amount, period_status "
        f"from finance.bonus_statements where month = {m}",
    )
    columns = shown["statements"]["data"][0]["cells"]["values"]
    assert sorted(zip(*columns, strict=True)) == sorted(statements)
    amounts = columns[4]
    assert amounts == sorted(amounts, reverse=True)


def test_report_command(built, capsys):
    warehouse, _ = built
    code = main(["report", "--month", "2026-08", "--language", "en", "--warehouse", str(warehouse)])
    assert code == 0
    text = report_path(warehouse).read_text("utf-8")
    assert "Voronka KPI report: 2026-08" in text and "<html lang='en'>" in text
    # the marts start with 2026-08: no month before it to compare with
    header = charts(report_path(warehouse))["company"]["data"][0]["header"]["values"]
    assert header == ["Measure", "2026-08"]
    capsys.readouterr()
    for args, message in (
        (["--month", "2026-13"], "is not a month"),
        (["--month", "2020-01"], "no data for 2020-01: the marts hold 2026-08 to 2026-10"),
        (["--language", "de"], "VORONKA_LANGUAGE must be one of ru, en"),
        (["--warehouse", str(warehouse.parent / "none.duckdb")], "no warehouse at"),
    ):
        assert main(["report", "--warehouse", str(warehouse), *args]) == 2, args
        assert message in capsys.readouterr().err, args


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_draws_every_chart_in_chromium(built, tmp_path):
    """Headless Chromium runs the page's scripts; the DOM it dumps shows every chart drawn (an
    SVG by plotly in each chart's element) and no script error recorded by the page."""
    if CHROMIUM is None:
        if os.environ.get("VORONKA_REQUIRE_BROWSER"):  # set by .ci/run, which installs it
            pytest.fail("chromium is not installed")
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    warehouse, _ = built
    main(["report", "--warehouse", str(warehouse)])
    page = report_path(warehouse)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    errors = re.search(r"<div id=\"voronka-errors\">(.*?)</div>", dom, re.S)
    assert errors is not None and errors.group(1).strip() == ""
    keys = set(charts(page))
    for key in keys:
        element = re.search(rf'<div id="chart-{key}"[^>]*>', dom)
        assert element is not None and 'data-drawn="yes"' in element.group(0), key
        body = dom[element.end() : element.end() + 5000]
        assert "main-svg" in body, key


def test_the_run_is_in_the_dagster_instance_next_to_the_warehouse(built):
    """`make dev` points the UI at `.dagster` next to the warehouse: the UI shows the runs and
    the checks of `voronka run` (D107); the run also wrote the exports and the summary."""
    import dagster as dg

    warehouse, _ = built
    with dg.DagsterInstance.from_config(str(warehouse.parent / ".dagster")) as instance:
        runs = instance.get_run_records()
        assert len(runs) == 1 and runs[0].dagster_run.is_success
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["inbox", "calls"]), "ge_raw_calls"), limit=5
        )
        assert len(checks) == 1
    assert (warehouse.parent / "exports" / "finance.xlsx").exists()
    assert "Bonus scheme" in (warehouse.parent / "summary.txt").read_text("utf-8")
