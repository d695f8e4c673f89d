"""Deals and everything a deal causes: stage changes, deal versions, calls, CRM activities,
the NPS survey after a win and the client's next purchase.

One call of `generate_deals(world, m)` draws every deal created in month `m` with its whole
future at once (vectorised over the deals, one matrix per pipeline), and queues the rows in the
month pools. Rows that would happen after the end of the period are dropped: the inbox is a
snapshot at the end day, so those deals are still open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import csvout
from .clients import COMPANY, MID, PERSON, SEGMENT_AMOUNT, SMALL
from .names import CHANNELS, LOSS_REASON_WEIGHTS, LOSS_REASONS
from .staff import ACCOUNT, NEVER, SALES, SUPPORT
from .timeline import DAY, HOUR, LEAD_HOURS, MINUTE, OFFICE_HOURS
from .world import Cols, World, concat

CALL, MEETING, EMAIL, DEMO, PROPOSAL, TASK = range(6)  # contract.ACTIVITY_TYPES order
ANSWERED, MISSED, BUSY, FAILED, NO_ANSWER = range(5)  # contract.CALL_STATUSES order
POSITIVE, NEGATIVE, NEUTRAL = range(3)  # contract.OUTCOMES order
OPEN, WON, LOST = range(3)
NPS, CSAT = 0, 1
LINK_DEAL, LINK_PHONE, LINK_EMAIL, LINK_REQUEST = range(4)
# Company lines: 0 main inbound number, 1-3 outbound trunks, 4 the free 8-800 number.
LINES = ("74951500000", "74951500001", "74951500002", "74951500003", "78005553535")


@dataclass(frozen=True)
class Pipeline:
    """A sales pipeline and how deals behave in it."""

    name: str
    open_stages: tuple[str, ...]
    won: str
    lost: str
    logs_creation: bool  # the CRM writes a change row (empty from_stage) when a deal is created
    base_win: float
    won_days: float  # median cycle of a won deal (an average manager)
    lost_days: float
    amount: float  # median amount, RUB, for a small-business client
    # For each open stage, the activity logged on entering it: (type a, type b, P(a)).
    activities: tuple[tuple[int, int, float], ...]


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        "Продажи",
        (
            "Новый лид",
            "Квалификация",
            "Встреча",
            "Коммерческое предложение",
            "Переговоры",
            "Договор",
        ),  # fmt: skip
        "Успешно",
        "Отказ",
        True,
        0.26,
        16,
        9,
        150_000,
        (
            (CALL, TASK, 0.7),
            (TASK, CALL, 0.6),
            (MEETING, DEMO, 0.6),
            (PROPOSAL, EMAIL, 0.85),
            (MEETING, EMAIL, 0.5),
            (EMAIL, TASK, 0.6),
        ),  # fmt: skip
    ),
    Pipeline(
        "Повторные продажи",
        ("Новый запрос", "Подбор решения", "Счёт выставлен"),
        "Оплачено",
        "Отказ",
        False,
        0.62,
        6,
        8,
        90_000,
        ((CALL, EMAIL, 0.6), (EMAIL, DEMO, 0.7), (TASK, EMAIL, 0.6)),
    ),
    Pipeline(
        "Тендеры",
        ("Подготовка заявки", "Заявка подана", "Рассмотрение", "Согласование договора"),
        "Выигран",
        "Проигран",
        True,
        0.22,
        40,
        30,
        900_000,
        ((TASK, EMAIL, 0.7), (PROPOSAL, EMAIL, 0.8), (EMAIL, CALL, 0.6), (MEETING, EMAIL, 0.6)),
    ),
)
SALES_PIPE, REPEAT_PIPE, TENDER_PIPE = 0, 1, 2


def _stage_table() -> tuple[list[tuple[str, str, int, str]], list[np.ndarray]]:
    """Rows of pipeline_stages and, per pipeline, the global stage id of each slot
    (open stages, then won, then lost)."""
    rows, ids = [], []
    for p in PIPELINES:
        slot_ids = []
        stages = [(s, "open") for s in p.open_stages] + [(p.won, "won"), (p.lost, "lost")]
        for order, (stage, kind) in enumerate(stages, start=1):
            slot_ids.append(len(rows))
            rows.append((p.name, stage, order, kind))
        ids.append(np.array(slot_ids, dtype=np.int64))
    return rows, ids


STAGE_ROWS, STAGE_IDS = _stage_table()
STAGE_NAMES = pa.array([r[1] for r in STAGE_ROWS])
PIPELINE_NAMES = pa.array([p.name for p in PIPELINES])

# Lead channels: share of new leads and effect on the win rate. Exhibitions happen in March and
# October; a few of their leads trickle in the month after.
_CHANNEL_SHARE = np.array([0.28, 0.25, 0.10, 0.15, 0.17, 0.05])
_CHANNEL_WIN = np.array([1.0, 0.85, 0.75, 1.6, 0.5, 1.2])
_WEB_CHANNELS = (0, 1, 2)
EXHIBITION_MONTHS = (3, 10)
assert len(_CHANNEL_SHARE) == len(CHANNELS)


def channel_shares(calendar_month: int) -> np.ndarray:
    """Share of new leads per channel in a calendar month."""
    share = _CHANNEL_SHARE.copy()
    if calendar_month in EXHIBITION_MONTHS:
        share[5] = 0.12
    elif calendar_month - 1 in EXHIBITION_MONTHS:
        share[5] = 0.02
    else:
        share[5] = 0.0
    return share / share.sum()


def call_rows(
    w: World,
    rng: np.random.Generator,
    t: np.ndarray,
    outbound: np.ndarray,
    phone: np.ndarray,
    manager: np.ndarray,
    status: np.ndarray,
) -> Cols:
    """Call records with ring and talk times that follow the manager's habits.

    A manager of -1 means nobody picked up (empty manager_extension).
    """
    st = w.staff
    n = t.size
    outbound = np.broadcast_to(np.asarray(outbound, dtype=bool), (n,))
    safe = np.maximum(manager, 0)
    skill = st.skill[safe]
    answered = status == ANSWERED
    ring = np.select(
        [
            answered & outbound,
            answered & ~outbound,
            status == NO_ANSWER,
            status == BUSY,
            status == MISSED,
        ],
        [
            rng.integers(3, 26, n),
            rng.lognormal(np.log(5 + 16 * (1 - skill)), 0.5).astype(np.int64),
            rng.integers(20, 46, n),
            rng.integers(0, 5, n),
            rng.integers(5, 91, n),
        ],
        0,
    )
    talk = rng.lognormal(np.log(st.talk_seconds[safe]), 0.75).astype(np.int64)
    talk = np.where(answered, np.clip(talk, 3, 5400), 0)
    line = np.where(outbound, rng.integers(1, 4, n), np.where(rng.random(n) < 0.7, 0, 4))
    return {
        "started_at": t.astype(np.int64),
        "outbound": outbound.copy(),
        "phone": phone.astype(np.int64),
        "ext": st.extension_at(manager, t),
        "line": line.astype(np.int8),
        "status": status.astype(np.int8),
        "ring": ring.astype(np.int64),
        "talk": talk.astype(np.int64),
    }


def nps_scores(rng: np.random.Generator, skill: np.ndarray) -> np.ndarray:
    """NPS answers 0-10: the better the manager, the more promoters."""
    n = skill.size
    promoter = 0.22 + 0.45 * skill
    passive = 0.33 * np.ones(n)
    u = rng.random(n)
    detractor_score = rng.choice(7, size=n, p=[0.04, 0.03, 0.05, 0.08, 0.12, 0.28, 0.4])
    return np.where(
        u < promoter,
        rng.choice([9, 10], size=n, p=[0.4, 0.6]),
        np.where(u < promoter + passive, rng.choice([7, 8], size=n), detractor_score),
    ).astype(np.int64)


def survey_rows(
    w: World,
    rng: np.random.Generator,
    t: np.ndarray,
    kind: int,
    score: np.ndarray,
    client: np.ndarray,
    link_p: tuple[float, float, float],
    deal: np.ndarray | None = None,
    request: np.ndarray | None = None,
    manager: np.ndarray | None = None,
) -> Cols:
    """Survey responses linked to a deal or request, or only to the client's phone or e-mail.

    `link_p` = P(linked by the deal/request id), P(phone only), P(e-mail only); an e-mail link
    falls back to the phone for clients without an e-mail. The phone is written in a format
    other than the one the CRM holds, so matching needs the normalisation.
    """
    cl = w.clients
    n = t.size
    mode = rng.choice([LINK_DEAL, LINK_PHONE, LINK_EMAIL], size=n, p=link_p)
    mode = np.where((mode == LINK_EMAIL) & ~cl["has_email"][client], LINK_PHONE, mode)
    by_id = mode == LINK_DEAL
    crm_fmt = cl["crm_fmt"][client]
    empty = np.full(n, -1, dtype=np.int64)
    with_manager = by_id & (rng.random(n) < 0.3) if manager is not None else None
    comment_p = np.where(score <= 6 if kind == NPS else score <= 3, 0.35, 0.15)
    return {
        "responded_at": t.astype(np.int64),
        "kind": np.full(n, kind, dtype=np.int8),
        "score": score.astype(np.int64),
        "client": client.astype(np.int64),
        "client_id_on": by_id & (rng.random(n) < 0.35),
        "phone_on": mode == LINK_PHONE,
        "phone_fmt": np.where(crm_fmt == 3, 4, 3).astype(np.int8),
        "email_on": mode == LINK_EMAIL,
        "deal": np.where(by_id, deal, -1) if deal is not None else empty,
        "request": np.where(by_id, request, -1) if request is not None else empty,
        "manager": np.where(with_manager, manager, -1) if manager is not None else empty,
        "comment": np.where(rng.random(n) < comment_p, rng.integers(0, 1000, n), -1),
    }


def _stage_paths(rng, p: Pipeline, won, created, closed, skill):
    """Visited slots and entry times of deals of one pipeline.

    Slots: 0 .. k-1 the open stages (0 is entered at creation), k the closing stage. A won deal
    may skip any middle stage (10 %: the "jump"); a lost deal stops at a reached stage.
    """
    n, k = won.size, len(p.open_stages)
    slots = np.arange(k + 1)
    reach = np.where(won, k - 1, np.minimum(k - 1, rng.geometric(0.42 + 0.1 * (1 - skill)) - 1))
    skip = rng.random((n, k + 1)) < 0.1
    inner = slots[1:k]
    visited = np.zeros((n, k + 1), dtype=bool)
    visited[:, 0] = True
    visited[:, k] = True
    reached = inner <= reach[:, None]
    visited[:, 1:k] = reached & (~skip[:, 1:k] | ((inner == reach[:, None]) & ~won[:, None]))
    weights = rng.exponential(1.0, (n, k + 1)) * visited
    weights[:, 0] = 0.0
    frac = np.cumsum(weights, axis=1) / weights.sum(axis=1)[:, None]
    times = created[:, None] + (frac * (closed - created)[:, None]).astype(np.int64)
    return visited, times, slots


# complexity (PLR0915): one month of a simulation drawing from one seeded stream in order: a split
# would reorder or thread dozens of arrays and risk the demo's byte-identical output
def generate_deals(w: World, m: int) -> None:  # noqa: PLR0915
    """Draw the deals created in month `m` and queue everything they cause."""
    rng = w.rng("deals", m)
    tl, st, cl, sc = w.tl, w.staff, w.clients, w.scale
    days = tl.month_days(m)
    m_start, m_end = tl.month_start_ts[m], tl.month_start_ts[m + 1]
    end = tl.end_ts

    # ---- new leads: volume follows active sales managers, working days and the season
    day_w = st.count("sales")[days] * tl.day_weight[days]
    n_new = int(rng.poisson(sc.leads_per_day * day_w.sum() * tl.season(m)))
    channel = rng.choice(len(CHANNELS), size=n_new, p=channel_shares(tl.months[m][1]))
    web = np.isin(channel, _WEB_CHANNELS)
    created_new = np.empty(n_new, dtype=np.int64)
    created_new[web] = tl.sample(rng, int(web.sum()), days, day_w, LEAD_HOURS)
    created_new[~web] = tl.sample(rng, int((~web).sum()), days, day_w, OFFICE_HOURS)
    manager_new = st.pick("sales", tl.day_of(created_new), rng.random(n_new))
    returning = (rng.random(n_new) < 0.12) & (cl.n > 0)
    client_new = np.empty(n_new, dtype=np.int64)
    client_new[returning] = rng.integers(0, max(cl.n, 1), int(returning.sum()))
    fresh = ~returning
    client_created = np.maximum(
        created_new[fresh] - rng.integers(0, 600, int(fresh.sum())), m_start
    )
    client_new[fresh] = cl.add(rng, client_created, channel[fresh])
    tender = (cl["kind"][client_new] != PERSON) & (rng.random(n_new) < 0.08)
    pipeline_new = np.where(tender, TENDER_PIPE, SALES_PIPE)
    np.add.at(w.leads_by_channel[m], channel, 1)

    # ---- repeat deals of existing clients, with their account manager
    next_repeat = cl["next_repeat"]
    due = np.flatnonzero((next_repeat >= m_start) & (next_repeat < m_end))
    t_rep = tl.to_working(rng, next_repeat[due])
    later = t_rep >= m_end
    cl.cols["next_repeat"][due[later]] = t_rep[later]
    due, t_rep = due[~later], t_rep[~later]
    cl.cols["next_repeat"][due] = NEVER
    owner = cl["owner"][due]
    rep_day = tl.day_of(t_rep)
    ok = owner >= 0
    ok[ok] = st.active[owner[ok], rep_day[ok]] & (st.role_at[owner[ok], rep_day[ok]] == ACCOUNT)
    owner = np.where(ok, owner, st.pick("account", rep_day, rng.random(due.size)))
    cl.cols["owner"][due] = owner
    pipeline_rep = np.where(rng.random(due.size) < 0.1, SALES_PIPE, REPEAT_PIPE)

    created = np.concatenate([created_new, t_rep])
    order = csvout.sort_order(created)
    created = created[order]
    client = np.concatenate([client_new, due])[order]
    first_mgr = np.concatenate([manager_new, owner])[order]
    pipeline = np.concatenate([pipeline_new, pipeline_rep])[order]
    channel = np.concatenate([channel, np.full(due.size, -1)])[order]
    is_repeat = np.concatenate([np.zeros(n_new, bool), np.ones(due.size, bool)])[order]
    n = created.size
    if n == 0:
        return
    deal_no = w.new_ids("deals", n)

    # ---- outcome, cycle and amount
    skill = st.skill[first_mgr]
    chan_win = np.where(channel >= 0, _CHANNEL_WIN[np.maximum(channel, 0)], 1.0)
    base_win = np.array([p.base_win for p in PIPELINES])[pipeline]
    won = rng.random(n) < np.clip(base_win * (0.55 + 0.9 * skill) * chan_win, 0.02, 0.92)
    won_days = np.array([p.won_days for p in PIPELINES])[pipeline] * (1.35 - 0.7 * skill)
    lost_days = np.array([p.lost_days for p in PIPELINES])[pipeline]
    cycle = rng.lognormal(np.log(np.where(won, won_days, lost_days)), 0.75) * DAY
    closed = tl.to_working(rng, created + np.maximum(cycle, 1800).astype(np.int64), spread=True)
    segment = cl["segment"][client]
    median = np.array([p.amount for p in PIPELINES])[pipeline] * SEGMENT_AMOUNT[segment]
    rub = rng.lognormal(np.log(median), 0.6)
    # Prices are mostly round (hundreds of roubles); a few amounts carry kopecks.
    kop = np.where(rng.random(n) < 0.8, np.round(rub / 100) * 10_000, np.round(rub * 100)).astype(
        np.int64
    )
    kop = np.maximum(kop, 100_000)
    discount = won & (rng.random(n) < 0.35)
    final = np.where(discount, (kop * rng.uniform(0.85, 0.98, n) / 100).astype(np.int64) * 100, kop)
    loss = rng.choice(len(LOSS_REASONS), size=n, p=LOSS_REASON_WEIGHTS)
    currency = (rng.random(n) < 0.55).astype(np.int8)  # 1: "RUB", 0: empty (= RUB)

    # ---- stage paths, per pipeline
    visited_count = np.zeros(n, dtype=np.int64)
    closed_final = closed.copy()
    paths = {}
    for pi, p in enumerate(PIPELINES):
        rows = np.flatnonzero(pipeline == pi)
        if rows.size == 0:
            continue
        visited, times, _ = _stage_paths(
            rng, p, won[rows], created[rows], closed[rows], skill[rows]
        )
        k = len(p.open_stages)
        # Stage moves are made at work; keep entries strictly increasing (a minute apart).
        inner = tl.to_working(rng, times[:, 1:k].ravel(), spread=True)
        times[:, 1:k] = inner.reshape(rows.size, k - 1)
        last = created[rows].copy()
        for j in range(1, k + 1):
            times[:, j] = np.where(visited[:, j], np.maximum(times[:, j], last + MINUTE), NEVER)
            last = np.where(visited[:, j], times[:, j], last)
        closed_final[rows] = times[:, k]
        visited_count[rows] = visited.sum(axis=1)
        paths[pi] = (rows, visited, times)
    closed = closed_final

    # ---- handovers: now and then, and always when the manager leaves before the deal closes
    handover = np.where(
        rng.random(n) < 0.07,
        tl.working_between(
            rng, created + (closed - created) // 6, closed - (closed - created) // 6
        ),
        NEVER,
    )
    leaves = st.left_ts(first_mgr)
    forced = leaves < np.minimum(closed, end)
    handover = np.where(
        forced, np.minimum(handover, np.maximum(leaves, created + MINUTE)), handover
    )
    handover = np.where(handover <= np.minimum(closed, end), handover, NEVER)
    second_mgr = first_mgr.copy()
    has_h = handover != NEVER
    h_day = tl.day_of(np.where(has_h, handover, created))
    role = st.role_at[first_mgr, np.clip(h_day, 0, st.role_at.shape[1] - 1)]
    for r, table in ((SALES, "sales_stay"), (ACCOUNT, "account_stay"), (SUPPORT, "any_stay")):
        sel = has_h & (role == r)
        second_mgr[sel] = st.pick_other(
            table, h_day[sel], rng.random(int(sel.sum())), first_mgr[sel]
        )
    handover = np.where(second_mgr == first_mgr, NEVER, handover)

    def manager_at(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(t >= handover[rows], second_mgr[rows], first_mgr[rows])

    # ---- stage changes and deal versions
    changes, versions = [], []
    for pi, (rows, visited, times) in paths.items():
        p = PIPELINES[pi]
        k = len(p.open_stages)
        ids = STAGE_IDS[pi]
        slot_stage = np.broadcast_to(ids[: k + 1], visited.shape).copy()
        slot_stage[:, k] = np.where(won[rows], ids[k], ids[k + 1])
        prev = np.zeros_like(visited, dtype=np.int64)
        last = np.zeros(rows.size, dtype=np.int64)
        for j in range(1, k + 1):
            prev[:, j] = last
            last = np.where(visited[:, j], j, last)
        happened = visited & (times <= end)
        happened[:, 0] = p.logs_creation
        r_idx, s_idx = np.nonzero(happened)
        t = np.where(s_idx == 0, created[rows][r_idx], times[r_idx, s_idx])
        mgr = manager_at(rows[r_idx], t)
        mgr = np.where((s_idx > 0) & (rng.random(t.size) < 0.02), -1, mgr)  # automation moves
        from_stage = np.where(s_idx == 0, -1, ids[prev[r_idx, s_idx]])
        changes.append(
            {
                "deal": deal_no[rows][r_idx],
                "from_stage": from_stage,
                "to_stage": slot_stage[r_idx, s_idx],
                "changed_at": t,
                "manager": mgr,
            }
        )
        # Versions: the deal as an export at the end of each month in which it changed.
        h = handover[rows]
        ev_t = np.concatenate([np.where(visited, times, NEVER), h[:, None]], axis=1)
        ev_t[:, 0] = created[rows]
        ev_ok = ev_t <= end
        stage_at_h = np.where(visited & (times <= h[:, None]), np.arange(k + 1), -1).max(axis=1)
        ev_slot = np.concatenate(
            [np.broadcast_to(np.arange(k + 1), visited.shape), stage_at_h[:, None]], axis=1
        )
        r_idx, e_idx = np.nonzero(ev_ok)
        t = ev_t[r_idx, e_idx]
        slot = ev_slot[r_idx, e_idx]
        key = r_idx * (tl.n_months + 1) + tl.month_of(t)
        order = np.lexsort((t, key))
        key, r_idx, t, slot = key[order], r_idx[order], t[order], slot[order]
        last_of_month = np.append(key[1:] != key[:-1], True)
        r_idx, t, slot = r_idx[last_of_month], t[last_of_month], slot[last_of_month]
        g = rows[r_idx]
        status = np.where(slot == k, np.where(won[g], WON, LOST), OPEN)
        versions.append(
            {
                "deal": deal_no[g],
                "client": client[g],
                "manager": manager_at(g, t),
                "pipeline": np.full(g.size, pi, dtype=np.int8),
                "stage": slot_stage[r_idx, slot],
                "status": status.astype(np.int8),
                "amount": np.where(status == WON, final[g], kop[g]),
                "currency": currency[g],
                "channel": channel[g],
                "created_at": created[g],
                "closed_at": np.where(status == OPEN, NEVER, closed[g]),
                "loss": np.where(status == LOST, loss[g], -1),
                "updated_at": t,
            }
        )
    w.pools["deal_stage_changes"].add(concat(changes))
    w.pools["deals"].add(concat(versions))

    all_rows = np.arange(n)
    _deal_calls(
        w,
        rng,
        all_rows,
        deal_no,
        created,
        closed,
        client,
        first_mgr,
        won,
        visited_count,
        manager_at,
    )
    _deal_activities(w, rng, paths, deal_no, created, closed, client, won, skill, manager_at)
    _after_close(
        w, rng, deal_no, created, closed, client, won, is_repeat, final, segment, manager_at
    )


# complexity (PLR0913): the arrays of one batch of deals, drawn together
def _deal_calls(  # noqa: PLR0913
    w, rng, rows, deal_no, created, closed, client, first_mgr, won, visited_count, manager_at
):
    """The first call to a new deal (speed to lead), a retry, and follow-ups until it closes."""
    tl, st, cl = w.tl, w.staff, w.clients
    n = rows.size
    phone = cl["phone"][client]
    has_call = rng.random(n) >= st.no_call_share[first_mgr]
    delay = rng.lognormal(np.log(st.stl_minutes[first_mgr] * MINUTE), 0.9).astype(np.int64)
    t1 = t_first = tl.to_working(rng, created + delay)
    status1 = rng.choice([ANSWERED, NO_ANSWER, BUSY], size=n, p=[0.62, 0.28, 0.10])
    retry = has_call & (status1 != ANSWERED) & (rng.random(n) < 0.8)
    t2 = tl.to_working(rng, t1 + rng.integers(20 * MINUTE, 3 * HOUR, n))
    status2 = rng.choice([ANSWERED, NO_ANSWER], size=n, p=[0.6, 0.4])

    n_follow = rng.poisson(0.45 * visited_count * np.where(won, 1.5, 0.8))
    rep = np.repeat(rows, n_follow)
    lo = np.where(has_call, t1, created)[rep]
    hi = np.maximum(np.minimum(closed, tl.end_ts)[rep], lo + HOUR)
    tf = tl.working_between(rng, lo, hi)
    inbound = rng.random(rep.size) < 0.2
    status_f = np.where(
        inbound,
        rng.choice([ANSWERED, NO_ANSWER], size=rep.size, p=[0.88, 0.12]),
        rng.choice([ANSWERED, NO_ANSWER, BUSY, FAILED], size=rep.size, p=[0.7, 0.22, 0.05, 0.03]),
    )
    first = np.flatnonzero(has_call)
    second = np.flatnonzero(retry)
    t1, t2 = t1[first], t2[second]
    parts = [
        call_rows(w, rng, t1, True, phone[first], manager_at(first, t1), status1[first]),
        call_rows(w, rng, t2, True, phone[second], manager_at(second, t2), status2[second]),
        call_rows(w, rng, tf, ~inbound, phone[rep], manager_at(rep, tf), status_f),
    ]
    w.pools["calls"].add(concat(parts))
    # Deals answered by e-mail instead of a call: a completed activity is the first response.
    by_mail = np.flatnonzero(~has_call & (rng.random(n) < 0.6))
    t_mail = t_first[by_mail]
    w.pools["activities"].add(
        _activity_versions(
            w,
            rng,
            kind=np.full(by_mail.size, EMAIL),
            manager=manager_at(by_mail, t_mail),
            deal=deal_no[by_mail],
            client=client[by_mail],
            created=t_mail,
            due=t_mail,
            completed=t_mail,
            outcome=np.full(by_mail.size, NEUTRAL),
        )
    )


def _activity_versions(w, rng, kind, manager, deal, client, created, due, completed, outcome):
    """Activity rows: an open version when it is created and, once completed, a completed
    version (one row if both fall in the same month). `deal` holds deal numbers or -1."""
    tl = w.tl
    n = kind.size
    if n == 0:
        return {}
    number = w.new_ids("activities", n)
    completed = np.where(completed <= tl.end_ts, completed, NEVER)
    done = completed != NEVER
    open_row = ~done | (tl.month_of(np.where(done, completed, 0)) > tl.month_of(created))
    with_client = rng.random(n) < 0.5
    base = {
        "activity": number,
        "kind": kind.astype(np.int8),
        "manager": manager,
        "deal": deal,
        "client": np.where(with_client | (deal < 0), client, -1),
        "created_at": created,
        "due_at": due,
    }
    first = {k: v[open_row] for k, v in base.items()}
    first["completed_at"] = np.full(int(open_row.sum()), NEVER)
    first["outcome"] = np.full(int(open_row.sum()), -1)
    first["updated_at"] = created[open_row]
    second = {k: v[done] for k, v in base.items()}
    second["completed_at"] = completed[done]
    second["outcome"] = outcome[done]
    second["updated_at"] = completed[done]
    return concat([first, second])


def _deal_activities(w, rng, paths, deal_no, created, closed, client, won, skill, manager_at):
    """One activity per reached stage (when the manager logs it), and a next task on most deals
    still open at the end. Good managers log more and finish on time."""
    tl = w.tl
    end = tl.end_ts
    parts_row, parts_t, parts_kind = [], [], []
    for pi, (rows, visited, times) in paths.items():
        p = PIPELINES[pi]
        k = len(p.open_stages)
        logged = visited[:, :k] & (rng.random((rows.size, k)) < 0.6 + 0.35 * skill[rows][:, None])
        r_idx, s_idx = np.nonzero(logged)
        a = np.array([x[0] for x in p.activities])[s_idx]
        b = np.array([x[1] for x in p.activities])[s_idx]
        pa_ = np.array([x[2] for x in p.activities])[s_idx]
        entered = np.where(s_idx == 0, created[rows][r_idx], times[r_idx, s_idx])
        parts_row.append(rows[r_idx])
        parts_t.append(entered)
        parts_kind.append(np.where(rng.random(r_idx.size) < pa_, a, b))
    row = np.concatenate(parts_row)
    entered = np.concatenate(parts_t)
    kind = np.concatenate(parts_kind)
    sk = skill[row]
    n = row.size
    t0 = tl.to_working(rng, entered + rng.integers(2 * MINUTE, 3 * HOUR, n), spread=True)
    wait = np.clip(rng.lognormal(np.log(1.5 * DAY), 0.6, n), HOUR, 14 * DAY).astype(np.int64)
    due = tl.to_working(rng, t0 + wait, spread=True)
    done = rng.random(n) < 0.78 + 0.2 * sk
    on_time = rng.random(n) < 0.5 + 0.45 * sk
    # On time: some working moment between creation and the due time.
    early = np.minimum(tl.working_between(rng, t0, due), due)
    late = due + rng.lognormal(np.log(20 * HOUR), 0.8, n).astype(np.int64)
    late = tl.to_working(rng, late, spread=True)
    completed = np.where(done, np.where(on_time, early, late), NEVER)
    status = np.where(closed[row] > end, OPEN, np.where(won[row], WON, LOST))
    outcome = _outcomes(rng, status)

    # Next steps on deals still open at the end: most have a task due after the end day.
    open_end = np.flatnonzero((closed > end) & (rng.random(closed.size) < 0.5 + 0.45 * skill))
    t_next = np.maximum(
        created[open_end] + 10 * MINUTE, end - rng.integers(0, 10 * DAY, open_end.size)
    )
    due_next = end + rng.integers(2 * HOUR, 12 * DAY, open_end.size)

    all_row = np.concatenate([row, open_end])
    created_a = np.concatenate([t0, t_next])
    created_a = np.where(created_a > end, end - rng.integers(60, HOUR, created_a.size), created_a)
    created_a = np.maximum(created_a, created[all_row] + MINUTE)
    keep = created_a <= end
    rows_k = all_row[keep]
    w.pools["activities"].add(
        _activity_versions(
            w,
            rng,
            kind=np.concatenate([kind, np.full(open_end.size, TASK)])[keep],
            manager=manager_at(rows_k, created_a[keep]),
            deal=deal_no[rows_k],
            client=client[rows_k],
            created=created_a[keep],
            due=np.concatenate([due, due_next])[keep],
            completed=np.concatenate([completed, np.full(open_end.size, NEVER)])[keep],
            outcome=np.concatenate([outcome, np.full(open_end.size, -1)])[keep],
        )
    )


def _outcomes(rng, status):
    n = status.size
    probs = {OPEN: [0.35, 0.15, 0.5], WON: [0.55, 0.1, 0.35], LOST: [0.2, 0.35, 0.45]}
    out = np.empty(n, dtype=np.int64)
    for s, p in probs.items():
        sel = status == s
        out[sel] = rng.choice(3, size=int(sel.sum()), p=p)
    return out


# complexity (PLR0913): the arrays of one batch of closed deals, drawn together
def _after_close(  # noqa: PLR0913
    w, rng, deal_no, created, closed, client, won, is_repeat, final, segment, manager_at
):
    """NPS after a win, the client's next purchase (or churn), an account owner, and a segment
    upgrade after a large first purchase."""
    tl, st, cl = w.tl, w.staff, w.clients
    end = tl.end_ts
    n = created.size
    rows = np.arange(n)
    closed_in = closed <= end
    # Survey a day or two after the win.
    asked = np.flatnonzero(won & closed_in & (rng.random(n) < w.scale.nps_rate))
    t_resp = closed[asked] + rng.lognormal(np.log(30 * HOUR), 0.9, asked.size).astype(np.int64)
    mgr_close = manager_at(asked, closed[asked])
    w.pools["survey_responses"].add(
        survey_rows(
            w,
            rng,
            t_resp,
            NPS,
            nps_scores(rng, st.skill[mgr_close]),
            client[asked],
            (0.7, 0.18, 0.12),
            deal=deal_no[asked],
            manager=manager_at(asked, t_resp),
        )
    )
    # Winning makes a client a buyer with an account owner; buyers come back (or churn).
    won_in = won & closed_in
    winners = client[won_in]
    np.add.at(cl.cols["wins"], winners, 1)
    no_owner = cl["owner"][winners] < 0
    owner_day = tl.day_of(closed[won_in][no_owner])
    cl.cols["owner"][winners[no_owner]] = st.pick("account", owner_day, rng.random(owner_day.size))
    again = won | is_repeat
    gap = cl.next_gap(rng, client, won)
    nxt = np.where(gap == NEVER, NEVER, closed + np.minimum(gap, NEVER // 2))
    sel = again & (nxt < NEVER)
    cl.cols["next_repeat"][client[sel]] = nxt[sel]
    # A big first purchase moves a small company up a segment (a new client version).
    big = rows[
        won_in & ~is_repeat & (segment == SMALL) & (final > 600_000 * 100) & (rng.random(n) < 0.5)
    ]
    big = big[cl["kind"][client[big]] == COMPANY]
    w.pools["clients"].add(
        {
            "client": client[big],
            "segment": np.full(big.size, MID, dtype=np.int8),
            "updated_at": closed[big] + DAY,
        }
    )
