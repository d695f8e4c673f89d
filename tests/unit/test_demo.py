"""The demo generator (`dagster_project.lib.demo`) on the tiny scale: layout, determinism,
contract cleanliness without defects, the deliberate defects with them, and the realism the
KPIs rely on (phones in several formats, references between entities)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from pathlib import Path

import pytest

from dagster_project.lib.contract import ENTITIES, ENTITY_BY_NAME
from dagster_project.lib.demo import SCALES, generate_demo
from dagster_project.lib.phones import normalize_phone
from dagster_project.lib.timestamps import parse_timestamp

REQUIRED_ENTITIES = [e.name for e in ENTITIES if not e.optional]
EVENTS = {"calls": "call_id", "deal_stage_changes": "change_id", "survey_responses": "response_id"}
EVENT_TIME = {"calls": "started_at", "deal_stage_changes": "changed_at",
              "survey_responses": "responded_at"}  # fmt: skip
BOOLEANS = {"true", "false", "1", "0", "yes", "no", "да", "нет"}


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "inbox"
    return out, generate_demo(out, scale="tiny", seed=7)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo_clean") / "inbox"
    return out, generate_demo(out, scale="tiny", seed=7, defects=False)


def read_file(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of an inbox file (UTF-8 with commas, or the cp1251 Excel export)."""
    raw = path.read_bytes()
    try:
        text, delimiter = raw.decode("utf-8"), ","
    except UnicodeDecodeError:
        text, delimiter = raw.decode("cp1251"), ";"
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = rows[0]
    return header, [dict(zip(header, r, strict=True)) for r in rows[1:]]


def rows_of(root: Path, entity: str) -> list[dict[str, str]]:
    out = []
    for path in sorted((root / entity).glob("*.csv")):
        out += [dict(r, _file=path.stem) for r in read_file(path)[1]]
    return out


def latest(rows: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    """The newest version per key of a mutable entity."""
    best: dict[str, dict[str, str]] = {}
    for r in rows:
        if r[key] not in best or parse_timestamp(r["updated_at"]) > parse_timestamp(
            best[r[key]]["updated_at"]
        ):
            best[r[key]] = r
    return best


def month_of(timestamp: str) -> str:
    """The Moscow month (`YYYY-MM`) of an inbox timestamp."""
    return (parse_timestamp(timestamp) + dt.timedelta(hours=3)).strftime("%Y-%m")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


# ------------------------------------------------------------------------------------ layout


def test_scales_and_arguments(tmp_path):
    assert {"tiny", "small", "medium", "large"} <= set(SCALES)
    assert SCALES["tiny"].managers < SCALES["small"].managers < SCALES["large"].managers
    with pytest.raises(ValueError, match="unknown scale"):
        generate_demo(tmp_path / "x", scale="huge")
    with pytest.raises(ValueError, match="months"):
        generate_demo(tmp_path / "x", scale="tiny", months=0)


def test_layout_and_summary(inbox):
    root, summary = inbox
    assert list(summary) == REQUIRED_ENTITIES
    for entity in REQUIRED_ENTITIES:
        files = sorted((root / entity).glob("*.csv"))
        assert len(files) == summary[entity]["files"] > 0, entity
        assert sum(len(read_file(f)[1]) for f in files) == summary[entity]["rows"], entity
    for optional in ("kpi_weights", "premium_coefficients"):
        assert not (root / optional).exists()
    # one file per month for events, named after the month; the default end is 2026-10-31
    for entity in EVENTS:
        assert [f.stem for f in sorted((root / entity).glob("*.csv"))] == ["2026-09", "2026-10"]
    assert sum(s["rows"] for s in summary.values()) > 2000


def test_headers_are_the_contract_columns(inbox):
    root, _ = inbox
    for path in sorted(root.rglob("*.csv")):
        header, _ = read_file(path)
        assert header == ENTITY_BY_NAME[path.parent.name].column_names, path


def test_months_and_end(tmp_path):
    out = tmp_path / "inbox"
    generate_demo(out, scale="tiny", months=3, end=dt.date(2026, 3, 31), defects=False)
    assert [f.stem for f in sorted((out / "calls").glob("*.csv"))] == [
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    last = max(parse_timestamp(r["started_at"]) for r in rows_of(out, "calls"))
    assert last < dt.datetime(2026, 3, 31, 21, 0)  # 2026-04-01 00:00 Moscow time


def test_refuses_a_folder_with_inbox_files(inbox, tmp_path):
    root, _ = inbox
    with pytest.raises(FileExistsError):
        generate_demo(root, scale="tiny")


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_other_seed_other_bytes(inbox, tmp_path):
    root, _ = inbox
    again = tmp_path / "again"
    generate_demo(again, scale="tiny", seed=7)
    assert tree_bytes(again) == tree_bytes(root)
    other = tmp_path / "other"
    generate_demo(other, scale="tiny", seed=8)
    assert tree_bytes(other)["calls/2026-10.csv"] != tree_bytes(root)["calls/2026-10.csv"]


# ---------------------------------------------------------------------- clean without defects


def test_no_defects_means_contract_clean(clean):
    root, _ = clean
    for entity in REQUIRED_ENTITIES:
        spec = ENTITY_BY_NAME[entity]
        for path in sorted((root / entity).glob("*.csv")):
            path.read_bytes().decode("utf-8")  # no cp1251 file
            for row in read_file(path)[1]:
                for col in spec.columns:
                    value = row[col.name]
                    if col.required:
                        assert value, (path, col.name, row)
                    if value and col.type == "enum":
                        assert value in col.values, (path, col.name, value)
                    if value and col.type == "boolean":
                        assert value in BOOLEANS, (path, col.name, value)
                    if value and col.type == "timestamp":
                        parse_timestamp(value)
                    if value and col.min_value is not None:
                        assert float(value) >= col.min_value, (path, col.name, value)


def test_no_defects_means_no_bad_values(clean):
    root, _ = clean
    for r in rows_of(root, "survey_responses"):
        low, high = (0, 10) if r["survey_type"] == "nps" else (1, 5)
        assert low <= int(r["score"]) <= high
    for r in rows_of(root, "calls"):
        assert int(r["ring_seconds"]) >= 0 and int(r["talk_seconds"]) >= 0
    for entity, key in EVENTS.items():
        rows = rows_of(root, entity)
        assert len({r[key] for r in rows}) == len(rows), entity
        # no late rows: every event is in the file of its month
        assert all(month_of(r[EVENT_TIME[entity]]) == r["_file"] for r in rows), entity
    managers = {r["manager_id"] for r in rows_of(root, "managers")}
    for entity in ("deals", "activities", "deal_stage_changes"):
        used = {r["manager_id"] for r in rows_of(root, entity) if r["manager_id"]}
        assert used <= managers, entity


def test_closed_deals_have_closed_at(clean):
    root, _ = clean
    for r in rows_of(root, "deals"):
        assert bool(r["closed_at"]) == (r["status"] in ("won", "lost")), r
        assert r["currency"] in ("", "RUB")
        assert bool(r["loss_reason"]) == (r["status"] == "lost")


# ----------------------------------------------------------------------- deliberate defects


def test_defects_are_present(inbox):
    root, _ = inbox
    surveys = rows_of(root, "survey_responses")
    assert any(r["survey_type"] == "nps" and int(r["score"]) > 10 for r in surveys)
    calls = rows_of(root, "calls")
    assert any(int(r["ring_seconds"]) < 0 or int(r["talk_seconds"]) < 0 for r in calls)
    duplicated = late = 0
    for entity, key in EVENTS.items():
        rows = rows_of(root, entity)
        duplicated += sum(n - 1 for n in Counter(r[key] for r in rows).values())
        late += sum(month_of(r[EVENT_TIME[entity]]) != r["_file"] for r in rows)
    assert duplicated > 0 and late > 0
    managers = {r["manager_id"] for r in rows_of(root, "managers")}
    unknown = [
        r
        for entity in ("deals", "activities", "deal_stage_changes")
        for r in rows_of(root, entity)
        if r["manager_id"] and r["manager_id"] not in managers
    ]
    assert unknown
    # exactly one Excel-style export: cp1251, `;`, decimal comma
    not_utf8 = []
    for path in sorted(root.rglob("*.csv")):
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            not_utf8.append(path)
    assert [p.parent.name for p in not_utf8] == ["marketing_spend"]
    header, rows = read_file(not_utf8[0])
    assert header == ENTITY_BY_NAME["marketing_spend"].column_names
    assert all("," in r["amount"] and "." not in r["amount"] for r in rows)


def test_defects_are_rare(inbox):
    root, _ = inbox
    calls = rows_of(root, "calls")
    negative = sum(int(r["ring_seconds"]) < 0 or int(r["talk_seconds"]) < 0 for r in calls)
    assert negative / len(calls) < 0.01


# -------------------------------------------------------------------------------- realism


def test_a_client_phone_appears_in_several_formats(inbox):
    root, _ = inbox
    formats: dict[str, set[str]] = {}
    for entity, column in (
        ("clients", "phone"),
        ("calls", "client_phone"),
        ("requests", "client_phone"),
        ("survey_responses", "client_phone"),
    ):
        for r in rows_of(root, entity):
            if r[column] and (key := normalize_phone(r[column])):
                formats.setdefault(key, set()).add(r[column])
    client_phones = {normalize_phone(r["phone"]) for r in rows_of(root, "clients") if r["phone"]}
    several = [p for p in client_phones if len(formats.get(p, ())) >= 2]
    assert len(several) > 10
    assert all(len(k) == 11 and k.startswith("7") for k in client_phones)


def test_references_between_entities(inbox):
    root, _ = inbox
    clients = {r["client_id"] for r in rows_of(root, "clients")}
    deals = rows_of(root, "deals")
    deal_ids = {r["deal_id"] for r in deals}
    assert {r["client_id"] for r in deals} <= clients
    assert {r["deal_id"] for r in rows_of(root, "deal_stage_changes")} <= deal_ids
    assert {r["deal_id"] for r in rows_of(root, "activities") if r["deal_id"]} <= deal_ids
    requests = {r["request_id"] for r in rows_of(root, "requests")}
    surveys = rows_of(root, "survey_responses")
    assert {r["deal_id"] for r in surveys if r["deal_id"]} <= deal_ids
    assert {r["request_id"] for r in surveys if r["request_id"]} <= requests
    extensions = {r["extension"] for r in rows_of(root, "managers")}
    assert {r["manager_extension"] for r in rows_of(root, "calls")} - {""} <= extensions


def test_pipelines_and_stages(inbox):
    root, _ = inbox
    stages = rows_of(root, "pipeline_stages")
    by_pipeline: dict[str, list[str]] = {}
    for r in stages:
        by_pipeline.setdefault(r["pipeline"], []).append(r["stage_type"])
    assert len(by_pipeline) >= 2
    for types in by_pipeline.values():
        assert types.count("won") == 1 and types.count("lost") == 1 and "open" in types
    known = {(r["pipeline"], r["stage"]) for r in stages}
    assert {(r["pipeline"], r["stage"]) for r in rows_of(root, "deals")} <= known
    statuses = Counter(r["status"] for r in latest(rows_of(root, "deals"), "deal_id").values())
    assert statuses["won"] and statuses["lost"] and statuses["open"]


def test_working_hours_and_plans(inbox):
    root, _ = inbox
    calls = rows_of(root, "calls")
    local = [parse_timestamp(r["started_at"]) + dt.timedelta(hours=3) for r in calls]
    office = sum(t.weekday() < 5 and 9 <= t.hour < 19 for t in local)
    assert office / len(local) > 0.85
    # timestamps are naive, +03:00 or Z: one notation per file, mixed across files
    notations = set()
    for path in sorted(root.rglob("*.csv")):
        header, rows = read_file(path)
        stamp = next((c for c in header if c.endswith("_at")), None)
        if stamp and rows:
            value = rows[0][stamp]
            notations.add("Z" if value.endswith("Z") else "+03" if "+" in value else "naive")
    assert len(notations) >= 2
    plans = rows_of(root, "sales_plans")
    for r in plans:
        lower_is_better = r["kpi_code"] == "speed_to_lead_minutes"
        assert (float(r["base"]) > float(r["norm"])) == lower_is_better, r
    assert {"deals_won", "revenue", "calls_outbound", "speed_to_lead_minutes"} <= {
        r["kpi_code"] for r in plans
    }
