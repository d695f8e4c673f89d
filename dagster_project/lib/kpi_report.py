"""The KPI report: one self-contained HTML page of charts, read from the marts.

``<warehouse dir>/report/index.html``, written by every run (the Dagster asset
``reports/kpi_report``) and by ``voronka report --month YYYY-MM``. The page loads nothing from
the network: plotly.js is inlined once. Each chart is a plotly figure whose JSON is embedded in a
``<script type="application/json" class="voronka-chart">`` block and drawn by a few lines of
script, so what a chart draws is exactly the JSON a test can read back and compare with the marts
(tests/integration/test_kpi_report.py). Each chart states its source mart, its definition (the
wording of docs/kpi-definitions.md) and the as-of time of the run.

The period: the latest full month before the as-of time (or the month asked for) and the trend of
the `TREND_MONTHS` months ending with it. Labels are Russian or English (`VORONKA_LANGUAGE`).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib import warehouse as wh
from dagster_project.lib.kpi_summary import latest_full_month
from dagster_project.lib.text import tr

FOLDER = "report"
PAGE = "index.html"
TREND_MONTHS = 12

# Traffic-light colours of the bonus scheme's bands, by the band's premium coefficient: no
# premium, a reduced one, the full one, more than full (D105). The bands themselves (their
# thresholds) come from finance.bonus_lines, never from here.
BAND_COLOURS = (
    ("zero", "#d73027"),
    ("reduced", "#fdae61"),
    ("full", "#66bd63"),
    ("more", "#1a9850"),
)


class ReportError(Exception):
    """A report that cannot be written (no marts yet, a month with no data)."""


@dataclass
class Chart:
    """One chart: a plotly figure (as JSON-able dict) with its title, source and definition."""

    key: str
    title: str
    source: str
    definition: str
    figure: dict[str, Any]
    height: int = 420


@dataclass
class Report:
    month: date
    as_of: str
    language: str
    charts: list[Chart] = field(default_factory=list)


def report_path(warehouse: Path | str) -> Path:
    """``<warehouse dir>/report/index.html``."""
    return wh.local_folder(warehouse) / FOLDER / PAGE


def _num(value: Any) -> Any:
    """DuckDB's decimals as floats (JSON numbers); None stays None."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return [tuple(_num(v) for v in row) for row in con.execute(sql, params or []).fetchall()]


def _month_label(value: date) -> str:
    return f"{value:%Y-%m}"


def trend_start(month: date) -> date:
    """The first month of the trend that ends with `month` (`TREND_MONTHS` months in all)."""
    index = month.year * 12 + month.month - 1 - (TREND_MONTHS - 1)
    return date(index // 12, index % 12 + 1, 1)


# ------------------------------------------------------------------------------ the queries
# One query per chart. The test (tests/integration/test_kpi_report.py) reads the marts by its
# own SQL, not by these, and compares with what the page holds.

SQL = {
    "company": """
        select month, revenue, deals_won, win_rate, nps, csat_avg, churn_rate,
            service_level, cac
        from marts.kpi_company_monthly
        where month in (?, ?)
        order by month
    """,
    "revenue_trend": """
        select month, revenue, deals_won
        from marts.kpi_company_monthly
        where month between ? and ?
        order by month
    """,
    "plan_vs_fact": """
        select coalesce(managers.manager_name, plans.manager_id) as manager,
            plans.fact, plans.norm, plans.base, plans.kpi_pct
        from marts.kpi_plan_completion as plans
        left join marts.kpi_manager_monthly as managers
            on managers.month = plans.month and managers.manager_id = plans.manager_id
        where plans.month = ? and plans.kpi_code = 'revenue'
        order by plans.fact desc nulls last, manager
    """,
    "bands": """
        select coalesce(statements.manager_name, lines.manager_id) as manager, lines.kpi_code,
            lines.kpi_pct, lines.premium_coefficient, lines.band_lower_pct, lines.band_upper_pct
        from finance.bonus_lines as lines
        left join finance.bonus_statements as statements
            on statements.month = lines.month and statements.manager_id = lines.manager_id
        where lines.month = ?
        order by manager, lines.kpi_code
    """,
    "funnel": """
        select pipeline, stage, min(stage_order) as stage_order, sum(deals_reached),
            sum(deals_reached_next)
        from marts.kpi_funnel_stage_monthly
        where cohort_month = ?
        group by pipeline, stage
        order by pipeline, stage_order, stage
    """,
    "calls_heatmap": """
        select call_date, call_hour, sum(offered),
            sum(service_level * offered) / nullif(sum(offered), 0)
        from marts.kpi_calls_hourly
        where call_date >= ? and call_date < ? + interval '1 month'
        group by call_date, call_hour
        order by call_date, call_hour
    """,
    "missed_callbacks": """
        select cast(date_trunc('month', call_date) as date) as month, sum(offered), sum(missed),
            round(sum(callback_within_1h_rate * missed))
        from marts.kpi_calls_hourly
        where call_date >= ? and call_date < ? + interval '1 month'
        group by 1
        order by 1
    """,
    "nps_csat": """
        select month, nps, nps_responses, csat_avg, csat_satisfied_share
        from marts.kpi_company_monthly
        where month between ? and ?
        order by month
    """,
    "churn_lifecycle": """
        select month, churn_rate, clients_potential, clients_developing, clients_developed,
            clients_sleeping, clients_lost
        from marts.kpi_churn_monthly
        where segment = 'all' and month between ? and ?
        order by month
    """,
    "clv_cac": """
        select channel, clv, cac, clv_to_cac, new_clients, marketing_spend
        from marts.kpi_clv_cac_monthly
        where month = ?
        order by channel
    """,
    "statements": """
        select manager_name, manager_id, team, lines, bonus_amount, period_status
        from finance.bonus_statements
        where month = ?
        order by bonus_amount desc, manager_name, manager_id
    """,
}


def _layout(language: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "margin": {"l": 60, "r": 60, "t": 30, "b": 60},
        # months and dates are labels here: plotly would read "2026-08" as a date on a time axis
        "xaxis": {"type": "category"},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.2},
        "separators": ", " if language == "ru" else ".,",
    }
    layout.update(extra)
    return layout


def _figure(data: list[dict[str, Any]], language: str, **layout: Any) -> dict[str, Any]:
    """A figure validated by plotly (a wrong attribute raises here, not in the browser)."""
    import plotly.graph_objects as go

    figure = go.Figure(data=data, layout=_layout(language, **layout))
    return json.loads(figure.to_json())


def build_report(
    con: duckdb.DuckDBPyConnection,
    timezone: str,
    language: str,
    month: date | None = None,
) -> Report:
    """Read the marts and build every chart of `month` (default: the latest full month).

    Raises:
        ReportError: the marts are not built, or the month has no data in them.
    """
    found = latest_full_month(con, timezone)
    if found is None:
        raise ReportError("the warehouse has no marts yet: run `voronka run` first")
    as_of, latest = found
    month = month or latest
    available = _rows(con, "select min(month), max(month) from marts.kpi_company_monthly")[0]
    if available[0] is None or not available[0] <= month <= available[1]:
        span = f"{available[0]:%Y-%m} to {available[1]:%Y-%m}" if available[0] else "no month"
        raise ReportError(f"no data for {month:%Y-%m}: the marts hold {span}")
    report = Report(month=month, as_of=as_of, language=language)
    start = trend_start(month)
    previous = _previous(month)
    t = lambda key: tr(key, language)  # noqa: E731
    add = report.charts.append

    # headline figures of the month and the month before
    rows = _rows(con, SQL["company"], [previous, month])
    measures = ("revenue", "deals_won", "win_rate", "nps", "csat_avg", "churn_rate",
                "service_level", "cac")  # fmt: skip
    header = [t("measure")] + [_month_label(r[0]) for r in rows]
    cells = [[t(m) for m in measures]] + [list(r[1:]) for r in rows]
    add(
        Chart(
            "company",
            t("chart.company"),
            "marts.kpi_company_monthly",
            t("def.company"),
            _figure(
                [
                    {
                        "type": "table",
                        "header": {"values": header, "align": "left"},
                        "cells": {
                            "values": cells,
                            "align": ["left"] + ["right"] * len(rows),
                            "format": [None] + [_company_formats(measures)] * len(rows),
                        },
                    }
                ],
                language,
                margin={"l": 10, "r": 10, "t": 10, "b": 10},
            ),
            height=280,
        )
    )

    rows = _rows(con, SQL["revenue_trend"], [start, month])
    add(
        Chart(
            "revenue_trend",
            t("chart.revenue_trend"),
            "marts.kpi_company_monthly",
            t("def.revenue"),
            _figure(
                [
                    {
                        "type": "bar",
                        "name": t("revenue"),
                        "x": [_month_label(r[0]) for r in rows],
                        "y": [r[1] for r in rows],
                    },
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": t("deals_won"),
                        "x": [_month_label(r[0]) for r in rows],
                        "y": [r[2] for r in rows],
                        "yaxis": "y2",
                    },
                ],
                language,
                yaxis={"title": {"text": t("rub")}},
                yaxis2={
                    "overlaying": "y",
                    "side": "right",
                    "title": {"text": t("deals")},
                    "rangemode": "tozero",
                    "tickformat": ",d",
                },
            ),
        )
    )

    rows = _rows(con, SQL["plan_vs_fact"], [month])
    managers = [r[0] for r in rows]
    add(
        Chart(
            "plan_vs_fact",
            t("chart.plan_vs_fact"),
            "marts.kpi_plan_completion",
            t("def.plan_vs_fact"),
            _figure(
                [
                    {"type": "bar", "name": t("fact"), "x": managers, "y": [r[1] for r in rows]},
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": t("norm"),
                        "x": managers,
                        "y": [r[2] for r in rows],
                        "marker": {"symbol": "line-ew-open", "size": 24, "line": {"width": 3}},
                    },
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": t("base"),
                        "x": managers,
                        "y": [r[3] for r in rows],
                        "marker": {"symbol": "line-ew-open", "size": 24, "line": {"width": 2}},
                    },
                ],
                language,
                yaxis={"title": {"text": t("rub")}},
                xaxis={"type": "category", "automargin": True},
            ),
        )
    )

    rows = _rows(con, SQL["bands"], [month])
    add(_bands_chart(rows, language))

    rows = _rows(con, SQL["funnel"], [month])
    pipelines = sorted({r[0] for r in rows})
    panels: dict[str, Any] = {}
    for i in range(len(pipelines)):  # one panel per pipeline: stages differ
        suffix = "" if i == 0 else str(i + 1)
        width = 1 / max(len(pipelines), 1)
        panels[f"xaxis{suffix}"] = {
            "domain": [i * width + 0.02, (i + 1) * width - 0.02],
            "showticklabels": False,
        }
        panels[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "automargin": True}
    add(
        Chart(
            "funnel",
            t("chart.funnel"),
            "marts.kpi_funnel_stage_monthly",
            t("def.funnel"),
            _figure(
                [
                    {
                        "type": "funnel",
                        "name": pipeline,
                        "y": [r[1] for r in rows if r[0] == pipeline],
                        "x": [r[3] for r in rows if r[0] == pipeline],
                        "customdata": [r[4] for r in rows if r[0] == pipeline],
                        "textinfo": "value+percent previous",
                        "xaxis": "x" if i == 0 else f"x{i + 1}",
                        "yaxis": "y" if i == 0 else f"y{i + 1}",
                        "hovertemplate": (
                            "%{y}: %{x} → %{customdata}<extra>%{fullData.name}</extra>"
                        ),
                    }
                    for i, pipeline in enumerate(pipelines)
                ],
                language,
                margin={"l": 30, "r": 30, "t": 30, "b": 60},
                **panels,
            ),
        )
    )

    rows = _rows(con, SQL["calls_heatmap"], [month, month])
    days = sorted({r[0] for r in rows})
    hours = sorted({r[1] for r in rows})
    by_cell = {(r[0], r[1]): r for r in rows}
    add(
        Chart(
            "calls_heatmap",
            t("chart.calls_heatmap"),
            "marts.kpi_calls_hourly",
            t("def.service_level"),
            _figure(
                [
                    {
                        "type": "heatmap",
                        "x": hours,
                        "y": [f"{d:%Y-%m-%d}" for d in days],
                        "z": [[_cell(by_cell, d, h, 3) for h in hours] for d in days],
                        "customdata": [[_cell(by_cell, d, h, 2) for h in hours] for d in days],
                        "zmin": 0,
                        "zmax": 1,
                        "colorscale": "RdYlGn",
                        "hovertemplate": (
                            "%{y} %{x}:00 · SL %{z:.0%} · " + t("offered") + " %{customdata}"
                            "<extra></extra>"
                        ),
                        "colorbar": {"tickformat": ".0%"},
                    }
                ],
                language,
                xaxis={"title": {"text": t("hour")}, "dtick": 1},
                yaxis={"autorange": "reversed", "type": "category"},
            ),
            height=max(420, 18 * len(days) + 120),
        )
    )

    rows = _rows(con, SQL["missed_callbacks"], [start, month])
    labels = [_month_label(r[0]) for r in rows]
    add(
        Chart(
            "missed_callbacks",
            t("chart.missed_callbacks"),
            "marts.kpi_calls_hourly",
            t("def.missed_callbacks"),
            _figure(
                [
                    {"type": "bar", "name": t("offered"), "x": labels, "y": [r[1] for r in rows]},
                    {"type": "bar", "name": t("missed"), "x": labels, "y": [r[2] for r in rows]},
                    {
                        "type": "bar",
                        "name": t("callbacks"),
                        "x": labels,
                        "y": [r[3] for r in rows],
                    },
                ],
                language,
                barmode="group",
                yaxis={"title": {"text": t("calls")}},
            ),
        )
    )

    rows = _rows(con, SQL["nps_csat"], [start, month])
    labels = [_month_label(r[0]) for r in rows]
    add(
        Chart(
            "nps_csat",
            t("chart.nps_csat"),
            "marts.kpi_company_monthly",
            t("def.nps_csat"),
            _figure(
                [
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": "NPS",
                        "x": labels,
                        "y": [r[1] for r in rows],
                        "customdata": [r[2] for r in rows],
                    },
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": "CSAT",
                        "x": labels,
                        "y": [r[3] for r in rows],
                        "yaxis": "y2",
                    },
                ],
                language,
                yaxis={"title": {"text": "NPS"}, "range": [-100, 100]},
                yaxis2={
                    "overlaying": "y",
                    "side": "right",
                    "title": {"text": "CSAT"},
                    "range": [1, 5],
                },
            ),
        )
    )

    rows = _rows(con, SQL["churn_lifecycle"], [start, month])
    labels = [_month_label(r[0]) for r in rows]
    phases = ("potential", "developing", "developed", "sleeping", "lost")
    add(
        Chart(
            "churn_lifecycle",
            t("chart.churn_lifecycle"),
            "marts.kpi_churn_monthly",
            t("def.churn_lifecycle"),
            _figure(
                [
                    {
                        "type": "bar",
                        "name": t(f"phase.{phase}"),
                        "x": labels,
                        "y": [r[2 + i] for r in rows],
                    }
                    for i, phase in enumerate(phases)
                ]
                + [
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": t("churn_rate"),
                        "x": labels,
                        "y": [r[1] for r in rows],
                        "yaxis": "y2",
                        "line": {"color": "black"},
                    }
                ],
                language,
                barmode="stack",
                yaxis={"title": {"text": t("clients")}},
                yaxis2={
                    "overlaying": "y",
                    "side": "right",
                    "tickformat": ".1%",
                    "rangemode": "tozero",
                },
            ),
        )
    )

    rows = _rows(con, SQL["clv_cac"], [month])
    channels = [r[0] for r in rows]
    add(
        Chart(
            "clv_cac",
            t("chart.clv_cac"),
            "marts.kpi_clv_cac_monthly",
            t("def.clv_cac"),
            _figure(
                [
                    {"type": "bar", "name": "CLV", "x": channels, "y": [r[1] for r in rows]},
                    {
                        "type": "bar",
                        "name": "CAC",
                        "x": channels,
                        "y": [r[2] for r in rows],
                        "customdata": [r[3] for r in rows],
                        "hovertemplate": "%{x}: CAC %{y:,.0f} · CLV/CAC %{customdata:.2f}"
                        "<extra></extra>",
                    },
                ],
                language,
                barmode="group",
                # CLV is years of purchases, CAC one client's cost: a log scale shows both
                yaxis={"title": {"text": t("rub")}, "type": "log"},
            ),
        )
    )

    rows = _rows(con, SQL["statements"], [month])
    add(
        Chart(
            "statements",
            t("chart.statements"),
            "finance.bonus_statements",
            t("def.statements"),
            _figure(
                [
                    {
                        "type": "table",
                        "header": {
                            "values": [
                                t("manager_name"),
                                t("manager_id"),
                                t("team"),
                                t("lines"),
                                t("bonus_amount"),
                                t("period_status"),
                            ],
                            "align": "left",
                        },
                        "cells": {
                            "values": [[r[i] for r in rows] for i in range(6)],
                            "align": ["left", "left", "left", "right", "right", "left"],
                            "format": [None, None, None, None, ",.2f", None],
                        },
                    }
                ],
                language,
                margin={"l": 10, "r": 10, "t": 10, "b": 10},
            ),
            height=max(200, 44 * len(rows) + 90),
        )
    )
    return report


def _previous(month: date) -> date:
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


def _cell(by_cell: dict, day: date, hour: int, index: int) -> Any:
    row = by_cell.get((day, hour))
    return None if row is None else row[index]


def _company_formats(measures: tuple[str, ...]) -> list[str]:
    kinds = {"win_rate": ".1%", "churn_rate": ".1%", "service_level": ".1%", "nps": ".1f",
             "csat_avg": ".2f", "deals_won": ",d"}  # fmt: skip
    return [kinds.get(m, ",.2f") for m in measures]


def band_class(coefficient: float | None) -> str:
    """The traffic-light class of a premium coefficient (D105)."""
    if coefficient is None or coefficient <= 0:
        return "zero"
    if coefficient < 1:
        return "reduced"
    return "full" if coefficient == 1 else "more"


def _bands_chart(rows: list[tuple], language: str) -> Chart:
    """KPI % per manager and KPI, coloured by the band (premium coefficient) it falls in."""
    t = lambda key: tr(key, language)  # noqa: E731
    managers = sorted({r[0] for r in rows})
    codes = sorted({r[1] for r in rows})
    cell = {(r[0], r[1]): r for r in rows}
    order = [name for name, _ in BAND_COLOURS]
    z, text, pct = [], [], []
    for manager in managers:
        z_row, text_row, pct_row = [], [], []
        for code in codes:
            row = cell.get((manager, code))
            if row is None:
                z_row.append(None)
                text_row.append("")
                pct_row.append(None)
                continue
            z_row.append(order.index(band_class(row[3])))
            pct_row.append(row[2])
            text_row.append("n/a" if row[2] is None else f"{row[2]:.0f} % × {row[3]:g}")
        z.append(z_row)
        text.append(text_row)
        pct.append(pct_row)
    scale = []
    for i, (_, colour) in enumerate(BAND_COLOURS):
        scale += [[i / len(BAND_COLOURS), colour], [(i + 1) / len(BAND_COLOURS), colour]]
    bands = sorted({(r[4], r[5], r[3]) for r in rows if r[4] is not None})
    legend = "; ".join(
        f"{'' if lower is None or lower < -1e6 else f'{lower:g}'}…"
        f"{'' if upper is None else f'{upper:g}'} % → × {coefficient:g}"
        for lower, upper, coefficient in bands
    )
    return Chart(
        "bands",
        t("chart.bands"),
        "finance.bonus_lines",
        t("def.bands") + (f" {t('bands_of_month')}: {legend}." if legend else ""),
        _figure(
            [
                {
                    "type": "heatmap",
                    "x": codes,
                    "y": managers,
                    "z": z,
                    "text": text,
                    "customdata": pct,
                    "texttemplate": "%{text}",
                    "zmin": -0.5,
                    "zmax": len(BAND_COLOURS) - 0.5,
                    "colorscale": scale,
                    "showscale": False,
                    "xgap": 2,
                    "ygap": 2,
                    "hovertemplate": "%{y} · %{x}: %{text}<extra></extra>",
                }
            ],
            language,
            margin={"l": 180, "r": 30, "t": 30, "b": 120},
            yaxis={"autorange": "reversed"},
        ),
        height=max(420, 26 * len(managers) + 160),
    )


# ------------------------------------------------------------------------------ the page
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em;
       color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
section { border-top: 1px solid #ddd; padding-top: 0.5em; margin-top: 1.5em; }
h2 { font-size: 1.15em; margin: 0.3em 0; }
p.definition { margin: 0.2em 0; color: #444; font-size: 0.92em; }
p.meta { margin: 0.2em 0; color: #777; font-size: 0.85em; }
#voronka-errors { color: #b00; white-space: pre-wrap; }
nav a { margin-right: 1em; font-size: 0.9em; }
"""

# Records a script error of the page where a person (and the browser test) sees it.
_ERRORS_SCRIPT = """
window.voronkaErrors = [];
window.addEventListener('error', function (event) {
  window.voronkaErrors.push(String(event.message || event));
  var box = document.getElementById('voronka-errors');
  if (box) { box.textContent = window.voronkaErrors.join('\\n'); }
});
"""

_DRAW_SCRIPT = """
document.querySelectorAll('script.voronka-chart').forEach(function (spec) {
  var target = document.getElementById(spec.dataset.target);
  try {
    var figure = JSON.parse(spec.textContent);
    Plotly.newPlot(target, figure.data, figure.layout,
                   {responsive: true, displaylogo: false}).then(function () {
      target.dataset.drawn = 'yes';
    });
  } catch (error) {
    window.voronkaErrors.push(spec.dataset.target + ': ' + error);
    document.getElementById('voronka-errors').textContent = window.voronkaErrors.join('\\n');
  }
});
"""


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` can end it early)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def render_html(report: Report) -> str:
    """The page: inlined plotly.js, one section per chart, the figures as JSON."""
    from plotly.offline import get_plotlyjs

    esc = html.escape
    t = lambda key: tr(key, report.language)  # noqa: E731
    month = _month_label(report.month)
    trend = f"{_month_label(trend_start(report.month))} – {month}"
    parts = [
        f"<!doctype html><html lang='{report.language}'><head><meta charset='utf-8'>",
        f"<title>{esc(t('title'))} {month}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{_ERRORS_SCRIPT}</script>",
        f"<script>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>{esc(t('title'))}: {month}</h1>",
        f"<p class='meta'>{esc(t('period'))}: {month}; {esc(t('trend'))}: {trend}; "
        f"{esc(t('as_of'))}: {esc(report.as_of)}</p>",
        "<div id='voronka-errors'></div>",
        "<nav>"
        + "".join(f"<a href='#{c.key}'>{esc(c.title)}</a>" for c in report.charts)
        + "</nav>",
    ]
    for chart in report.charts:
        parts += [
            f"<section id='{chart.key}'>",
            f"<h2>{esc(chart.title)}</h2>",
            f"<p class='definition'>{esc(chart.definition)}</p>",
            f"<p class='meta'>{esc(t('source'))}: <code>{esc(chart.source)}</code>; "
            f"{esc(t('as_of'))}: {esc(report.as_of)}</p>",
            f"<div id='chart-{chart.key}' class='chart' style='height:{chart.height}px'></div>",
            f"<script type='application/json' class='voronka-chart' "
            f"data-target='chart-{chart.key}' data-key='{chart.key}' "
            f"data-source='{esc(chart.source)}'>{_json_for_script(chart.figure)}</script>",
            "</section>",
        ]
    parts += [f"<script>{_DRAW_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts)


def write_report(
    warehouse: Path | str,
    timezone: str,
    language: str,
    month: date | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[Path, Report]:
    """Build the report from the warehouse's marts and write the page (replacing the last one).

    Raises:
        ReportError: see `build_report`.
    """
    own = con is None
    if own:
        if not wh.exists(warehouse):
            raise ReportError(f"no warehouse at {warehouse}: run `voronka run` first")
        con = wh.connect(warehouse, read_only=True)
    try:
        report = build_report(con, timezone, language, month)
    finally:
        if own:
            con.close()
    path = report_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(render_html(report), encoding="utf-8")
    os.replace(partial, path)
    return path, report
