"""The realistic demo inbox: `generate_demo` writes every inbox entity of `inbox.md`.

What the data looks like
    A Russian B2B sales department over `months` months ending on `end` (default 2026-10-31):
    managers with roles (sales, account, support), teams, extensions, clear differences in skill
    (win rate, talk time, speed to lead, task discipline, NPS), people leaving and being hired;
    companies (ООО «…», ИП …) and people with phones typed in several formats; three pipelines
    with different stages; deals that skip stages, are handed over between managers, are won or
    lost (with a reason) or still open; repeat buyers and clients who churn; calls on weekdays
    9-19 Moscow time with missed calls called back (or not); requests with complaints; NPS and
    CSAT surveys linked by deal, request, phone or e-mail; activities with overdue tasks; monthly
    plans and bonus pools; marketing spend per channel. Demand is seasonal (December peak,
    January and May dips). The same seed and arguments give byte-identical files; nothing
    depends on the wall clock.

    Details a loader meets: the CRM of "Продажи" and "Тендеры" logs a deal's creation as a
    stage change with an empty from_stage, "Повторные продажи" does not (its deals enter the
    first stage at creation, as the contract says); ~2 % of later stage changes have no
    manager_id (automation); a deal's manager_id is the responsible manager at the time of the
    row, so a handed-over deal changes manager between versions; a deal's client is always in
    a clients file of the same or an earlier month; a few inbound calls come from a withheld
    number (`Аноним`, no digits); due_at of open tasks may lie after the end day.

Files
    Event entities (deal_stage_changes, calls, survey_responses) and the mutable ones that change
    every day (clients, deals, activities, requests) get one file per month, `<entity>/YYYY-MM.csv`
    (a mutable entity's monthly file holds the rows that changed that month, in their state at
    the end of it, so a deal appears once per month it moved in); clients also have
    `clients/initial.csv` (the base before the period). managers: `initial.csv` plus
    `changes.csv` (hires, transfers, extension changes, leaves as new versions). sales_plans: one
    file per month; bonus_pools and marketing_spend: one per year; pipeline_stages: one file.
    Timestamps are written naive (Moscow time), with `+03:00` or in UTC with `Z`, one style per
    file, mixed across files; booleans as true/false, 1/0, да/нет or yes/no, one style per file.

Deliberate defects (`defects=True`; with `defects=False` the inbox is 100 % contract-clean)
    Rates are per row of the entities named; at least one of each kind is always present (the
    second-to-last month gets one if chance gave none), so even the tiny scale has them all.

    - duplicate rows, ~0.2 % of event rows (calls, deal_stage_changes, survey_responses): the
      exact line repeated, right after itself (~70 %) or at the end of next month's file (~30 %);
    - late-arriving rows, ~0.3 % of event rows: a row of month m written at the end of month
      m+1's file instead of its own (never in the last month);
    - NPS score 11, ~0.3 % of NPS responses;
    - negative durations, ~0.1 % of calls: a negative talk_seconds (answered calls) or
      ring_seconds;
    - unknown manager ids, ~0.2 % of rows of deals, activities and deal_stage_changes: a
      manager_id (`M9xx`) that is in no managers file;
    - one Excel-style Russian export: the marketing_spend file of the last year is written in
      Windows-1251 with `;` delimiters, decimal commas and CRLF line ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.lib.contract import (
    ACTIVITY_TYPES,
    CALL_DIRECTIONS,
    CALL_STATUSES,
    DEAL_STATUSES,
    ENTITIES,
    ENTITY_BY_NAME,
    OUTCOMES,
    REQUEST_CHANNELS,
    SURVEY_TYPES,
)

from . import csvout
from .names import CHANNELS, COMMENTS_BAD, COMMENTS_GOOD, COMMENTS_MID, LOSS_REASONS, SEGMENTS
from .sales import (
    EXHIBITION_MONTHS,
    LINES,
    NPS,
    PIPELINE_NAMES,
    STAGE_NAMES,
    STAGE_ROWS,
    generate_deals,
)
from .service import (
    generate_client_tasks,
    generate_other_calls,
    generate_relationship_nps,
    generate_requests,
)
from .staff import ACCOUNT, GHOST_IDS, NEVER, ROLES, SALES, SUPPORT
from .timeline import DAY, MSK_OFFSET, Timeline
from .world import Cols, Scale, World, nrows, take

log = logging.getLogger("voronka.demo")

DEFAULT_END = dt.date(2026, 10, 31)

SCALES: dict[str, Scale] = {
    # For tests: a few thousand rows in well under a second.
    "tiny": Scale(managers=4, months=2, leads_per_day=2.0, calls_per_day=10.0,
                  requests_per_day=2.0, chunk_rows=50_000),
    # `make run`: ~20 managers, a year, ~0.35 M rows (35 MB) in a few seconds.
    "small": Scale(managers=20, months=12, leads_per_day=3.0, calls_per_day=40.0,
                   requests_per_day=6.0),
    "medium": Scale(managers=100, months=24, leads_per_day=6.0, calls_per_day=70.0,
                    requests_per_day=10.0),
    # Load test: ~36 M calls, ~4 M deals, ~1 M survey responses.
    "large": Scale(managers=500, months=24, leads_per_day=17.0, calls_per_day=124.0,
                   requests_per_day=16.0),
}  # fmt: skip

# Defect rates per row (see the module docstring).
DEFECT_RATES = {
    "duplicate": 0.002,
    "late": 0.003,
    "nps_out_of_range": 0.003,
    "negative_duration": 0.001,
    "unknown_manager": 0.002,
}

EVENT_ENTITIES = ("deal_stage_changes", "calls", "survey_responses")
# Timestamp styles per entity, with weights: telephony exports are naive local time, survey
# tools speak UTC, CRM exports carry an offset more often than not.
_TS_STYLES = {
    "calls": (0.5, 0.2, 0.15, 0.15),
    "survey_responses": (0.0, 0.0, 0.4, 0.6),
}
_TS_DEFAULT = (0.2, 0.3, 0.4, 0.1)  # space, t, offset, z
_BOOLEANS = (("true", "false"), ("1", "0"), ("да", "нет"), ("yes", "no"))
_TEXT_COLUMNS = {"clients": ("name",), "survey_responses": ("comment",)}

# Enum texts in contract order: the generators' integer codes index into these.
_STATUS = pa.array(list(DEAL_STATUSES))
_DIRECTION = pa.array(list(CALL_DIRECTIONS))
_CALL_STATUS = pa.array(list(CALL_STATUSES))
_ACTIVITY = pa.array(list(ACTIVITY_TYPES))
_OUTCOME = pa.array(list(OUTCOMES))
_REQUEST_CHANNEL = pa.array(list(REQUEST_CHANNELS))
_SURVEY = pa.array(list(SURVEY_TYPES))
_CHANNELS = pa.array(list(CHANNELS))
_LOSS = pa.array(list(LOSS_REASONS))
_SEGMENTS = pa.array(list(SEGMENTS))
_CLIENT_TYPE = pa.array(["company", "company", "person"])  # a sole trader (ИП) is a company
_LINES = pa.array(list(LINES))
_COMMENTS = pa.array(list(COMMENTS_BAD + COMMENTS_MID + COMMENTS_GOOD))
_COMMENT_START = np.array([0, len(COMMENTS_BAD), len(COMMENTS_BAD) + len(COMMENTS_MID)])
_COMMENT_COUNT = np.array([len(COMMENTS_BAD), len(COMMENTS_MID), len(COMMENTS_GOOD)])
_CALL_PHONE_FORMATS = (0, 1, 4)  # what telephony writes: 79161234567, 9161234567, +79161234567


def generate_demo(
    out: Path,
    scale: str = "small",
    seed: int = 42,
    months: int | None = None,
    defects: bool = True,
    end: dt.date | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, dict]:
    """Writes an inbox per inbox.md into `out`; returns per entity {"files": n, "rows": n}.

    Args:
        out: the inbox folder; created if missing. It must not hold inbox files already,
            unless `overwrite` is set (then the CSV files of the entity folders are replaced).
        scale: a key of `SCALES` (tiny, small, medium, large).
        seed: the random seed; the same arguments always give byte-identical files.
        months: months of history (default: the scale's); the last is the month of `end`.
        defects: write the deliberate defects of the module docstring; False gives a clean
            inbox.
        end: the last day of data (default 2026-10-31, never the wall clock).
        overwrite: delete the `*.csv` files of the entity folders of `out` first.

    Returns:
        Per entity (contract order, without the optional overrides): files and data rows
        written (a duplicated line counts as a row).

    Raises:
        ValueError: unknown scale or months < 1.
        FileExistsError: `out` already holds inbox files and `overwrite` is not set.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; one of: {', '.join(SCALES)}")
    params = SCALES[scale]
    months = params.months if months is None else months
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    out = Path(out)
    _prepare(out, overwrite)
    tl = Timeline(end or DEFAULT_END, months)
    log.info(
        "demo inbox: scale %s, seed %s, %s months %s..%s, defects %s -> %s",
        scale, seed, months, tl.period(0), tl.period(months - 1), "on" if defects else "off", out,
    )  # fmt: skip
    world = World(params, seed, tl, defects)
    writer = InboxWriter(out, world)
    writer.pipeline_stages()
    writer.managers()
    writer.initial_clients(_initial_client_base(world))
    # Month m is formatted and written in a second thread while month m + 1 is generated:
    # numpy and Arrow release the GIL, so both cores work. At most one month waits to be
    # written, which bounds memory. Every draw comes from a stream keyed by its purpose and
    # month, so the interleaving of the two threads cannot change a byte of the output.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-writer") as executor:
        pending: Future | None = None
        for m in range(months):
            first_client = world.clients.n
            generate_deals(world, m)
            new_clients = np.arange(first_client, world.clients.n)
            generate_requests(world, m)
            generate_relationship_nps(world, m)
            generate_client_tasks(world, m)
            generate_other_calls(world, m)
            if pending is not None:
                pending.result()
            pending = executor.submit(writer.month, m, new_clients)
        if pending is not None:
            pending.result()
    writer.sales_plans()
    writer.bonus_pools()
    writer.marketing_spend()
    if defects:
        log.info("deliberate defects: %s", writer.defect_counts)
    return writer.summary()


def _prepare(out: Path, overwrite: bool) -> None:
    existing = [p for e in ENTITIES for p in sorted((out / e.name).glob("*.csv"))]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds {len(existing)} inbox files (e.g. {existing[0]}); "
            "write the demo into an empty folder, or delete that one first"
        )
    for path in existing:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _initial_client_base(w: World) -> np.ndarray:
    """Clients who bought before the period: some come back for repeat deals early on."""
    rng = w.rng("initial_clients")
    tl, st, sc = w.tl, w.staff, w.scale
    n_sales = int(st.count("sales")[0])
    k = max(5, round(sc.leads_per_day * n_sales * 21 * 1.5))
    created = tl.start_ts - rng.integers(30 * DAY, 1000 * DAY, k)
    idx = w.clients.add(rng, np.sort(created), rng.choice(len(CHANNELS) - 1, size=k))
    cl = w.clients
    cl.cols["wins"][idx] = 1
    cl.cols["owner"][idx] = st.pick("account", np.zeros(k, dtype=np.int64), rng.random(k))
    gap = cl["gap_days"][idx]
    first = tl.start_ts + (rng.random(k) * gap * DAY).astype(np.int64)
    cl.cols["next_repeat"][idx] = np.where(gap > 0, first, NEVER)
    return idx


class InboxWriter:
    """Formats the generated rows and writes the inbox files, adding the deliberate defects."""

    def __init__(self, out: Path, world: World):
        self.out = out
        self.w = world
        self.written = {e.name: {"files": 0, "rows": 0} for e in ENTITIES if not e.optional}
        self.carry: dict[tuple[str, int], list[pa.Array]] = {}
        self.seq = {"deal_stage_changes": 0, "survey_responses": 0}
        self.defect_counts = {k: 0 for k in DEFECT_RATES}
        self.forced_month = max(0, world.tl.n_months - 2)

    # ------------------------------------------------------------------ plumbing

    def _file(self, entity: str, name: str) -> csvout.CsvFile:
        header = ENTITY_BY_NAME[entity].column_names
        return csvout.CsvFile(self.out / entity / name, header, _TEXT_COLUMNS.get(entity, ()))

    def _done(self, entity: str, f: csvout.CsvFile, label: str) -> None:
        f.close()
        self.written[entity]["files"] += 1
        self.written[entity]["rows"] += f.rows
        log.info("%-18s %-12s %10d rows", entity, label, f.rows)

    def _style(self, entity: str, key: int) -> str:
        """The timestamp style of one file (`key`: month index + 1, or 0 for a one-off file)."""
        rng = self.w.rng("ts_style", zlib_key(entity), key)
        p = np.array(_TS_STYLES.get(entity, _TS_DEFAULT))
        return csvout.TS_STYLES[int(rng.choice(4, p=p / p.sum()))]

    def summary(self) -> dict[str, dict]:
        return self.written

    def _rate(self, kind: str) -> float:
        return DEFECT_RATES[kind] * self.w.scale.defect_multiplier if self.w.defects else 0.0

    def _how_many(self, rng, kind: str, n: int, m: int, first_chunk: bool) -> int:
        """Defects of `kind` among `n` rows; at least one in the forced month if none so far."""
        if not self.w.defects or n == 0:
            return 0
        k = int(rng.binomial(n, self._rate(kind)))
        if m == self.forced_month and first_chunk and self.defect_counts[kind] == 0:
            k = max(k, 1)
        self.defect_counts[kind] += k
        return k

    def _write_monthly(
        self,
        entity: str,
        m: int,
        rows: Cols,
        sort_key: str,
        fmt: Callable[[Cols, str, np.random.Generator], dict[str, pa.Array]],
    ) -> None:
        """Sort a month's rows by time, format them in chunks and write `<entity>/YYYY-MM.csv`."""
        carry = self.carry.pop((entity, m), [])
        n = nrows(rows)
        if n == 0 and not carry:
            return
        if n:
            rows = take(rows, csvout.sort_order(rows[sort_key]))
            if entity == "calls":
                # Asterisk-style ids: UTC epoch "." a counter of the calls of that second.
                rows["rank"] = csvout.rank_within_second(rows["started_at"])
        rng = self.w.rng("write", zlib_key(entity), m)
        style = self._style(entity, m + 1)
        f = self._file(entity, f"{self.w.tl.period(m)}.csv")
        chunk = self.w.scale.chunk_rows
        for lo in range(0, n, chunk):
            part = take(rows, slice(lo, min(n, lo + chunk)))
            self._value_defects(entity, part, rng, m, lo == 0)
            lines = f.lines(fmt(part, style, rng), nrows(part))
            if entity in EVENT_ENTITIES:
                lines = self._line_defects(entity, lines, rng, m, lo == 0)
            f.write_lines(lines)
        for lines in carry:
            f.write_lines(lines)
        self._done(entity, f, self.w.tl.period(m))

    def _value_defects(self, entity: str, rows: Cols, rng, m: int, first: bool) -> None:
        n = nrows(rows)
        if entity in ("deals", "activities", "deal_stage_changes"):
            k = self._how_many(rng, "unknown_manager", n, m, first)
            idx = rng.choice(n, size=k, replace=False)
            rows["manager"] = rows["manager"].copy()
            rows["manager"][idx] = self.w.staff.ghost_base + rng.integers(0, GHOST_IDS, k)
        elif entity == "calls":
            k = self._how_many(rng, "negative_duration", n, m, first)
            idx = rng.choice(n, size=k, replace=False)
            talking = rows["talk"][idx] > 0
            rows["talk"][idx[talking]] *= -1
            rows["ring"][idx[~talking]] = -np.maximum(rows["ring"][idx[~talking]], 1)
        elif entity == "survey_responses":
            nps = np.flatnonzero(rows["kind"] == NPS)
            k = self._how_many(rng, "nps_out_of_range", nps.size, m, first)
            rows["score"][rng.choice(nps, size=k, replace=False)] = 11

    def _line_defects(self, entity: str, lines: pa.Array, rng, m: int, first: bool) -> pa.Array:
        """Duplicate and late rows of an event file (see the module docstring)."""
        n = len(lines)
        has_next = m + 1 < self.w.tl.n_months
        k_late = self._how_many(rng, "late", n, m, first) if has_next else 0
        k_dup = self._how_many(rng, "duplicate", n, m, first)
        k_late, k_dup = min(k_late, n), min(k_dup, n - min(k_late, n))
        if k_late + k_dup == 0:
            return lines
        idx = rng.choice(n, size=k_late + k_dup, replace=False)
        late, dup = idx[:k_late], idx[k_late:]
        to_next = (rng.random(k_dup) < 0.3) & has_next
        if has_next and m == self.forced_month and first and k_dup and not to_next.any():
            to_next[0] = k_dup > 1  # keep one in place and send one to the next file
        keep = np.ones(n, dtype=bool)
        keep[late] = False
        order = np.sort(np.concatenate([np.flatnonzero(keep), dup[~to_next]]), kind="stable")
        carried = [lines.take(pa.array(np.sort(late))), lines.take(pa.array(dup[to_next]))]
        self.carry.setdefault((entity, m + 1), []).extend(c for c in carried if len(c))
        return lines.take(pa.array(order))

    # ------------------------------------------------------------------ reference data

    def pipeline_stages(self) -> None:
        f = self._file("pipeline_stages", "pipelines.csv")
        cols = {
            "pipeline": pa.array([r[0] for r in STAGE_ROWS]),
            "stage": pa.array([r[1] for r in STAGE_ROWS]),
            "stage_order": pa.array([str(r[2]) for r in STAGE_ROWS]),
            "stage_type": pa.array([r[3] for r in STAGE_ROWS]),
        }
        f.write_lines(f.lines(cols, len(STAGE_ROWS)))
        self._done("pipeline_stages", f, "pipelines")

    def managers(self) -> None:
        st, tl = self.w.staff, self.w.tl
        for name, versions in zip(("initial", "changes"), st.versions(), strict=True):
            if not versions:
                continue
            idx = np.array([v.index for v in versions])
            left = np.array([-1 if v.left_day is None else v.left_day for v in versions])
            cols = {
                "manager_id": st.id_array.take(pa.array(idx)),
                "full_name": pa.array([st.full_name[i] for i in idx]),
                "team": pa.array([v.team for v in versions]),
                "role": pa.array([ROLES[v.role] for v in versions]),
                "extension": pa.array([str(v.extension) for v in versions]),
                "email": pa.array([st.email[i] for i in idx]),
                "hired_on": csvout.dates(tl.day0 + st.hired_day[idx]),
                "left_on": csvout.dates(tl.day0 + np.maximum(left, 0), left >= 0),
                "updated_at": csvout.timestamps(
                    np.array([v.updated_at for v in versions]),
                    self._style("managers", 0 if name == "initial" else 10_000),
                ),
            }
            f = self._file("managers", f"{name}.csv")
            f.write_lines(f.lines(cols, idx.size))
            self._done("managers", f, name)

    # ------------------------------------------------------------------ clients

    def _client_columns(self, idx: np.ndarray, segment: np.ndarray, updated: np.ndarray, style):
        cl = self.w.clients
        kind = cl["kind"][idx]
        channel = cl["channel"][idx]
        return {
            "client_id": cl.client_ids(idx),
            "client_type": csvout.pick(_CLIENT_TYPE, kind),
            "name": cl.names(idx),
            "phone": csvout.phones(cl["phone"][idx], cl["crm_fmt"][idx], cl["has_phone"][idx]),
            "email": cl.emails(idx),
            "segment": csvout.pick(_SEGMENTS, segment),
            "acquisition_channel": csvout.pick(_CHANNELS, channel),
            "created_at": csvout.timestamps(cl["created"][idx], style),
            "updated_at": csvout.timestamps(updated, style),
        }

    def initial_clients(self, idx: np.ndarray) -> None:
        cl = self.w.clients
        rng = self.w.rng("initial_clients_update")
        created = cl["created"][idx]
        updated = created + (rng.random(idx.size) * (self.w.tl.start_ts - created) * 0.9).astype(
            np.int64
        )
        f = self._file("clients", "initial.csv")
        style = self._style("clients", 0)
        for lo in range(0, idx.size, self.w.scale.chunk_rows):
            part = idx[lo : lo + self.w.scale.chunk_rows]
            seg = cl["segment"][part]
            up = updated[lo : lo + self.w.scale.chunk_rows]
            f.write_lines(f.lines(self._client_columns(part, seg, up, style), part.size))
        self._done("clients", f, "initial")

    def _clients_month(self, m: int, new: np.ndarray) -> None:
        cl = self.w.clients
        updates = self.w.pools["clients"].pop(m)
        rows = {
            "client": np.concatenate([new, updates.get("client", np.empty(0, np.int64))]),
            "segment": np.concatenate(
                [cl["segment"][new], updates.get("segment", np.empty(0, np.int8))]
            ),
            "updated_at": np.concatenate(
                [cl["created"][new], updates.get("updated_at", np.empty(0, np.int64))]
            ),
        }

        def fmt(r: Cols, style: str, rng) -> dict[str, pa.Array]:
            return self._client_columns(r["client"], r["segment"], r["updated_at"], style)

        self._write_monthly("clients", m, rows, "updated_at", fmt)

    # ------------------------------------------------------------------ monthly files

    def month(self, m: int, new_clients: np.ndarray) -> None:
        """Write every monthly entity of month `m` from the pools."""
        pools = self.w.pools
        self._clients_month(m, new_clients)
        self._write_monthly("deals", m, pools["deals"].pop(m), "updated_at", self._fmt_deals)
        self._write_monthly(
            "deal_stage_changes", m, pools["deal_stage_changes"].pop(m), "changed_at",
            self._fmt_changes,
        )  # fmt: skip
        self._write_monthly(
            "activities", m, pools["activities"].pop(m), "updated_at", self._fmt_activities
        )
        self._write_monthly("calls", m, pools["calls"].pop(m), "started_at", self._fmt_calls)
        self._write_monthly(
            "requests", m, pools["requests"].pop(m), "updated_at", self._fmt_requests
        )
        self._write_monthly(
            "survey_responses", m, pools["survey_responses"].pop(m), "responded_at",
            self._fmt_surveys,
        )  # fmt: skip

    def _manager_ids(self, manager: np.ndarray) -> pa.Array:
        return csvout.pick(self.w.staff.id_array, manager)

    def _next_seq(self, entity: str, n: int) -> np.ndarray:
        start = self.seq[entity]
        self.seq[entity] = start + n
        return np.arange(start + 1, start + n + 1, dtype=np.int64)

    def _fmt_deals(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        closed = r["closed_at"] != NEVER
        return {
            "deal_id": csvout.ids("D", r["deal"], 8),
            "client_id": self.w.clients.client_ids(r["client"]),
            "manager_id": self._manager_ids(r["manager"]),
            "pipeline": csvout.pick(PIPELINE_NAMES, r["pipeline"]),
            "stage": csvout.pick(STAGE_NAMES, r["stage"]),
            "status": csvout.pick(_STATUS, r["status"]),
            "amount": csvout.money(r["amount"]),
            "currency": csvout.pick(pa.array(["RUB"]), np.zeros(nrows(r)), r["currency"] == 1),
            "channel": csvout.pick(_CHANNELS, r["channel"]),
            "created_at": csvout.timestamps(r["created_at"], style),
            "closed_at": csvout.timestamps(r["closed_at"], style, closed),
            "loss_reason": csvout.pick(_LOSS, r["loss"]),
            "updated_at": csvout.timestamps(r["updated_at"], style),
        }

    def _fmt_changes(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        return {
            "change_id": csvout.ids("CHG", self._next_seq("deal_stage_changes", nrows(r)), 9),
            "deal_id": csvout.ids("D", r["deal"], 8),
            "from_stage": csvout.pick(STAGE_NAMES, r["from_stage"]),
            "to_stage": csvout.pick(STAGE_NAMES, r["to_stage"]),
            "changed_at": csvout.timestamps(r["changed_at"], style),
            "manager_id": self._manager_ids(r["manager"]),
        }

    def _fmt_activities(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        due, done = r["due_at"] != NEVER, r["completed_at"] != NEVER
        return {
            "activity_id": csvout.ids("A", r["activity"], 9),
            "activity_type": csvout.pick(_ACTIVITY, r["kind"]),
            "manager_id": self._manager_ids(r["manager"]),
            "deal_id": csvout.ids("D", r["deal"], 8, r["deal"] >= 0),
            "client_id": self.w.clients.client_ids(r["client"], r["client"] >= 0),
            "created_at": csvout.timestamps(r["created_at"], style),
            "due_at": csvout.timestamps(r["due_at"], style, due),
            "completed_at": csvout.timestamps(r["completed_at"], style, done),
            "outcome": csvout.pick(_OUTCOME, r["outcome"]),
            "updated_at": csvout.timestamps(r["updated_at"], style),
        }

    def _fmt_calls(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        n = nrows(r)
        utc = r["started_at"] - MSK_OFFSET
        fmt = np.array(_CALL_PHONE_FORMATS)[rng.choice(3, size=n, p=[0.7, 0.15, 0.15])]
        return {
            "call_id": csvout.join(csvout.ids("", utc, 10), csvout.integers(r["rank"]), sep="."),
            "started_at": csvout.timestamps(r["started_at"], style),
            "direction": csvout.pick(_DIRECTION, r["outbound"].astype(np.int64)),
            "client_phone": csvout.phones(r["phone"], fmt),
            "manager_extension": csvout.integers(r["ext"], r["ext"] >= 0),
            "line": csvout.pick(_LINES, r["line"]),
            "status": csvout.pick(_CALL_STATUS, r["status"]),
            "ring_seconds": csvout.integers(r["ring"]),
            "talk_seconds": csvout.integers(r["talk"]),
        }

    def _fmt_requests(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        cl = self.w.clients
        yes, no = _BOOLEANS[int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))]
        return {
            "request_id": csvout.ids("R", r["request"], 7),
            "client_id": cl.client_ids(r["client"], r["id_on"]),
            "client_phone": csvout.phones(cl["phone"][r["client"]], r["phone_fmt"], r["phone_on"]),
            "manager_id": self._manager_ids(r["manager"]),
            "channel": csvout.pick(_REQUEST_CHANNEL, r["channel"]),
            "created_at": csvout.timestamps(r["created_at"], style),
            "first_response_at": csvout.timestamps(r["first_at"], style, r["first_at"] != NEVER),
            "resolved_at": csvout.timestamps(r["resolved_at"], style, r["resolved_at"] != NEVER),
            "is_complaint": pc.if_else(pa.array(r["complaint"]), yes, no),
            "updated_at": csvout.timestamps(r["updated_at"], style),
        }

    def _fmt_surveys(self, r: Cols, style: str, rng) -> dict[str, pa.Array]:
        cl = self.w.clients
        n = nrows(r)
        score, nps = r["score"], r["kind"] == NPS
        bucket = np.where(
            nps,
            np.digitize(score, [7, 9]),  # 0-6 detractor, 7-8 passive, 9-10 promoter
            np.digitize(score, [3, 4]),  # 1-2 bad, 3 so-so, 4-5 good
        )
        comment = _COMMENT_START[bucket] + np.maximum(r["comment"], 0) % _COMMENT_COUNT[bucket]
        return {
            "response_id": csvout.ids("RSP", self._next_seq("survey_responses", n), 8),
            "survey_type": csvout.pick(_SURVEY, r["kind"]),
            "score": csvout.integers(score),
            "responded_at": csvout.timestamps(r["responded_at"], style),
            "client_id": cl.client_ids(r["client"], r["client_id_on"]),
            "client_phone": csvout.phones(cl["phone"][r["client"]], r["phone_fmt"], r["phone_on"]),
            "client_email": pc.if_else(
                pa.array(r["email_on"]), cl.emails(r["client"]), pa.scalar(None, pa.string())
            ),
            "deal_id": csvout.ids("D", r["deal"], 8, r["deal"] >= 0),
            "request_id": csvout.ids("R", r["request"], 7, r["request"] >= 0),
            "manager_id": self._manager_ids(r["manager"]),
            "comment": csvout.pick(_COMMENTS, comment, r["comment"] >= 0),
        }

    # ------------------------------------------------------------------ plans, pools, spend

    def _planned(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(managers with a plan in month m, their role on the 1st, share of the month worked).

        A manager has a plan when at work on the 1st or hired by the 15th."""
        st, tl = self.w.staff, self.w.tl
        first = tl.month_first_day[m]
        last = tl.month_first_day[m + 1] - 1
        at_work = (st.hired_day <= first + 14) & (st.left_day >= first)
        idx = np.flatnonzero(at_work)
        start = np.maximum(st.hired_day[idx], first)
        stop = np.minimum(st.left_day[idx], last)
        share = (stop - start + 1) / (last - first + 1)
        role = st.role_at[idx, np.maximum(start, 0)]
        return idx, role, share

    def sales_plans(self) -> None:
        """Monthly plans per manager: base < norm, except speed to lead (lower is better).

        Norms are set about 5 % above what an average manager achieves (calibrated on the
        generated data), so attainment spreads around 100 % and every premium band occurs.
        """
        st, tl, sc = self.w.staff, self.w.tl, self.w.scale
        for m in range(tl.n_months):
            idx, role, share = self._planned(m)
            days = tl.month_days(m)
            work_days = float(tl.is_work[days].sum())
            leads = sc.leads_per_day * work_days * tl.season(m)
            rows: list[tuple[str, str, float, float]] = []
            for i, r, s in zip(idx, role, share, strict=True):
                tenure = (tl.month_first_day[m] - st.hired_day[i]) / 365
                load = s * (1.1 if tenure > 1 else 1.0) * (0.6 if tenure < 0.1 else 1.0)
                mid = st.ids[i]
                if r == SALES:
                    won = max(2, round(leads * 0.233 * load))
                    calls = max(20, round(sc.calls_per_day * work_days * 1.05 * load / 10) * 10)
                    rows += [
                        (mid, "deals_won", _base(won), won),
                        (mid, "revenue", _base(won * 230_000, 10_000), won * 230_000),
                        (mid, "calls_outbound", _base(calls, 10), calls),
                        (mid, "speed_to_lead_minutes", 60, 15),
                    ]
                elif r == ACCOUNT:
                    won = max(2, round(leads * 0.47 * load))
                    rows += [
                        (mid, "deals_won", _base(won), won),
                        (mid, "revenue", _base(won * 130_000, 10_000), won * 130_000),
                        (mid, "nps", 20, 50),
                    ]
                else:
                    calls = max(20, round(sc.calls_per_day * work_days * 0.94 * load / 10) * 10)
                    rows += [
                        (mid, "calls_inbound", _base(calls, 10), calls),
                        (mid, "csat_avg", 4.0, 4.5),
                        (mid, "nps", 20, 50),
                    ]
            period = tl.period(m)
            cols = {
                "period": pa.array([period] * len(rows)),
                "manager_id": pa.array([r[0] for r in rows]),
                "kpi_code": pa.array([r[1] for r in rows]),
                "base": pa.array([_num(r[2]) for r in rows]),
                "norm": pa.array([_num(r[3]) for r in rows]),
            }
            f = self._file("sales_plans", f"{period}.csv")
            f.write_lines(f.lines(cols, len(rows)))
            self._done("sales_plans", f, period)

    def bonus_pools(self) -> None:
        """Monthly variable-pay budgets: by role and grade, raised every January."""
        st, tl = self.w.staff, self.w.tl
        base = {SALES: 40_000, ACCOUNT: 50_000, SUPPORT: 25_000}
        by_year: dict[int, list[tuple[str, str, int]]] = {}
        for m in range(tl.n_months):
            idx, role, share = self._planned(m)
            year = tl.months[m][0]
            raise_ = 1.07 ** (year - tl.months[0][0])
            for i, r, s in zip(idx, role, share, strict=True):
                grade = 1 + round(st.skill[i] * 4) / 8  # 1.0 .. 1.5 in steps of 1/8
                pool = round(base[int(r)] * grade * raise_ * min(1.0, s) / 500) * 500
                by_year.setdefault(year, []).append((tl.period(m), st.ids[i], pool * 100))
        for year, rows in by_year.items():
            cols = {
                "period": pa.array([r[0] for r in rows]),
                "manager_id": pa.array([r[1] for r in rows]),
                "pool_amount": csvout.money(np.array([r[2] for r in rows], dtype=np.int64)),
            }
            f = self._file("bonus_pools", f"{year}.csv")
            f.write_lines(f.lines(cols, len(rows)))
            self._done("bonus_pools", f, str(year))

    def marketing_spend(self) -> None:
        """Spend per month and channel, from the leads each channel brought and its cost per
        lead. With defects, the last year's file is an Excel export (cp1251, `;`, `,`)."""
        tl = self.w.tl
        rng = self.w.rng("marketing_spend")
        # Cost per lead, RUB: site (SEO, content), Direct, VK, referral bonuses, cold-call lists
        # and telephony, exhibitions (booth fees, in exhibition months only).
        cpl = np.array([600.0, 1800.0, 1300.0, 500.0, 250.0, 4500.0])
        by_year: dict[int, list[tuple[str, str, int, bool]]] = {}
        for m in range(tl.n_months):
            year, month = tl.months[m]
            for c, channel in enumerate(CHANNELS):
                leads = self.w.leads_by_channel[m, c]
                if channel == "Выставка" and month not in EXHIBITION_MONTHS:
                    continue
                if leads == 0:
                    continue
                rub = cpl[c] * leads * rng.lognormal(0.0, 0.15)
                # Ad platforms bill to the kopeck; the other costs are round invoices.
                kop = round(rub * 100) if c in (1, 2) else round(rub / 100) * 10_000
                by_year.setdefault(year, []).append(
                    (tl.period(m), channel, kop, rng.random() < 0.7)
                )
        years = sorted(by_year)
        for year in years:
            rows = by_year[year]
            if self.w.defects and year == years[-1]:
                self._excel_export(year, rows)
                continue
            cols = {
                "period": pa.array([r[0] for r in rows]),
                "channel": pa.array([r[1] for r in rows]),
                "amount": csvout.money(np.array([r[2] for r in rows], dtype=np.int64)),
                "currency": pa.array(["RUB" if r[3] else None for r in rows], pa.string()),
            }
            f = self._file("marketing_spend", f"{year}.csv")
            f.write_lines(f.lines(cols, len(rows)))
            self._done("marketing_spend", f, str(year))

    def _excel_export(self, year: int, rows: list[tuple[str, str, int, bool]]) -> None:
        """The one Windows-1251 file: what "Save as CSV" in a Russian Excel produces."""
        header = ENTITY_BY_NAME["marketing_spend"].column_names
        lines = [";".join(header)]
        for period, channel, kop, rub in rows:
            amount = f"{kop // 100},{kop % 100:02d}"
            lines.append(";".join([period, channel, amount, "RUB" if rub else ""]))
        path = self.out / "marketing_spend" / f"{year}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
        self.written["marketing_spend"]["files"] += 1
        self.written["marketing_spend"]["rows"] += len(rows)
        log.info("%-18s %-12s %10d rows (cp1251, ';', decimal comma)", "marketing_spend",
                 str(year), len(rows))  # fmt: skip


def _base(norm: float, step: float = 1) -> float:
    """The minimum result: 70 % of the norm, rounded to `step`, strictly below the norm."""
    base = round(norm * 0.7 / step) * step
    return min(base, norm - step)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}".rstrip("0")


def zlib_key(text: str) -> int:
    """A stable integer key for a name (Python's `hash` of a str changes between runs)."""
    return zlib.crc32(text.encode())
