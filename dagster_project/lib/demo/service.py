"""Service requests (обращения) with their calls and CSAT surveys, quarterly relationship NPS,
account managers' check-in tasks, and the telephony traffic that is not about a deal: inbound
calls (answered, missed, called back or not) and cold calls.
"""

from __future__ import annotations

import numpy as np

from . import csvout
from .clients import STRANGER_CODES
from .sales import (
    ANSWERED,
    BUSY,
    CALL,
    CSAT,
    EMAIL,
    FAILED,
    MISSED,
    NEUTRAL,
    NO_ANSWER,
    NPS,
    POSITIVE,
    TASK,
    _activity_versions,
    call_rows,
    nps_scores,
    survey_rows,
)
from .staff import ACCOUNT, NEVER, SALES, SUPPORT
from .timeline import DAY, HOUR, LEAD_HOURS, MINUTE, OFFICE_HOURS, WORK_END, WORK_START
from .world import World, concat

PHONE, EMAIL_CH, CHAT, WEB = range(4)  # contract.REQUEST_CHANNELS order
_INBOUND_HOURS = OFFICE_HOURS + 0.08 * LEAD_HOURS  # people call a little before and after hours


def _existing_clients(w: World, before: int) -> tuple[np.ndarray, np.ndarray]:
    """(clients created before `before`, those of them who have bought)."""
    existing = np.flatnonzero(w.clients["created"] < before)
    buyers = existing[w.clients["wins"][existing] > 0]
    return existing, buyers


def _choose(rng, pool: np.ndarray, fallback: np.ndarray, n: int, p_pool: float) -> np.ndarray:
    use_pool = (rng.random(n) < p_pool) & (pool.size > 0)
    out = fallback[rng.integers(0, fallback.size, n)]
    if pool.size:
        out = np.where(use_pool, pool[rng.integers(0, pool.size, n)], out)
    return out


# complexity (PLR0915): one month of a simulation drawing from one seeded stream in order (see
# generate_deals)
def generate_requests(w: World, m: int) -> None:  # noqa: PLR0915
    """Requests of month `m`: channel, assignee, first response, resolution, complaints; the
    inbound call that opened a phone request, follow-up calls, and the CSAT survey."""
    rng = w.rng("requests", m)
    tl, st, cl = w.tl, w.staff, w.clients
    days = tl.month_days(m)
    m_start = tl.month_start_ts[m]
    existing, buyers = _existing_clients(w, m_start)
    if existing.size == 0:
        return
    day_w = st.count("support")[days] * tl.day_weight[days]
    n = int(rng.poisson(w.scale.requests_per_day * day_w.sum()))
    if n == 0:
        return
    channel = rng.choice(4, size=n, p=[0.42, 0.25, 0.2, 0.13])
    phone_ch = channel == PHONE
    created = np.empty(n, dtype=np.int64)
    created[phone_ch] = tl.sample(rng, int(phone_ch.sum()), days, day_w, OFFICE_HOURS)
    created[~phone_ch] = tl.sample(rng, int((~phone_ch).sum()), days, day_w, LEAD_HOURS)
    order = csvout.sort_order(created)
    created, channel, phone_ch = created[order], channel[order], phone_ch[order]
    client = _choose(rng, buyers, existing, n, 0.85)
    number = w.new_ids("requests", n)

    day = tl.day_of(created)
    manager = st.pick("support", day, rng.random(n))
    owner = cl["owner"][client]
    owner_ok = owner >= 0
    owner_ok[owner_ok] = st.active[owner[owner_ok], day[owner_ok]]
    route = rng.random(n)
    manager = np.where((route < 0.1) & owner_ok, owner, manager)
    manager = np.where(route > 0.95, -1, manager)  # nobody assigned yet
    skill = np.where(manager >= 0, st.skill[np.maximum(manager, 0)], 0.5)
    complaint = rng.random(n) < 0.07

    median = np.array([0.5 * MINUTE, 70 * MINUTE, 4 * MINUTE, 3 * HOUR])[channel]
    delay = rng.lognormal(np.log(median * (1.6 - skill)), 0.9).astype(np.int64)
    first = np.where(
        phone_ch, created + rng.integers(0, 60, n), tl.to_working(rng, created + delay)
    )
    first = np.where(rng.random(n) < 0.03, NEVER, first)
    fix = rng.lognormal(np.log(np.where(complaint, 36 * HOUR, 5 * HOUR)), 1.1).astype(np.int64)
    resolved = tl.to_working(rng, np.where(first == NEVER, created, first) + fix, spread=True)
    resolved = np.where((first == NEVER) | (rng.random(n) < 0.04), NEVER, resolved)
    first = np.where(first <= tl.end_ts, first, NEVER)
    resolved = np.where(resolved <= tl.end_ts, resolved, NEVER)

    id_on = rng.random(n) < 0.88
    phone_on = rng.random(n) < np.where(phone_ch, 0.95, 0.4)
    phone_on |= ~id_on
    base = {
        "request": number,
        "client": client,
        "id_on": id_on,
        "phone_on": phone_on,
        "phone_fmt": np.where(cl["crm_fmt"][client] == 2, 1, 2).astype(np.int8),
        "manager": manager,
        "channel": channel.astype(np.int8),
        "created_at": created,
        "complaint": complaint,
    }
    # Versions: the request at the end of its creation month, and its final state if it
    # changed later.
    month_end = tl.month_start_ts[np.minimum(tl.month_of(created) + 1, tl.n_months)]
    f1 = np.where(first < month_end, first, NEVER)
    r1 = np.where(resolved < month_end, resolved, NEVER)

    def latest(*ts):
        stacked = np.stack([np.where(t == NEVER, -1, t) for t in ts])
        return stacked.max(axis=0)

    upd1 = latest(created, f1, r1)
    upd2 = latest(created, first, resolved)
    changed = upd2 != upd1
    v1 = {k: v[changed] for k, v in base.items()}
    v1.update(first_at=f1[changed], resolved_at=r1[changed], updated_at=upd1[changed])
    v2 = dict(base, first_at=first, resolved_at=resolved, updated_at=upd2)
    w.pools["requests"].add(concat([v1, v2]))

    # Calls: the inbound call a phone request came in with, and follow-ups before resolution.
    phone = cl["phone"][client]
    handler = np.where(manager >= 0, manager, st.pick("support", day, rng.random(n)))
    opened = np.flatnonzero(phone_ch)
    # The call started a few minutes before the request was registered (not before the month).
    t_open = np.maximum(created[opened] - rng.integers(60, 300, opened.size), m_start)
    follow = np.flatnonzero((resolved != NEVER) & (rng.random(n) < 0.3))
    t_follow = tl.working_between(rng, first[follow], resolved[follow])
    status_f = rng.choice([ANSWERED, NO_ANSWER], size=follow.size, p=[0.8, 0.2])
    w.pools["calls"].add(
        concat(
            [
                call_rows(
                    w,
                    rng,
                    t_open,
                    False,
                    phone[opened],
                    handler[opened],
                    np.full(opened.size, ANSWERED),
                ),
                call_rows(w, rng, t_follow, True, phone[follow], handler[follow], status_f),
            ]
        )
    )

    # CSAT after resolution: complaints and slow resolutions score lower.
    asked = np.flatnonzero((resolved != NEVER) & (rng.random(n) < w.scale.csat_rate))
    hours = (resolved[asked] - created[asked]) / HOUR
    p_slow, p_fast = [0.08, 0.12, 0.25, 0.3, 0.25], [0.02, 0.04, 0.1, 0.34, 0.5]
    p_bad = [0.25, 0.25, 0.25, 0.15, 0.1]
    score = (
        np.where(
            complaint[asked],
            rng.choice(5, size=asked.size, p=p_bad),
            np.where(
                hours < 8,
                rng.choice(5, size=asked.size, p=p_fast),
                rng.choice(5, size=asked.size, p=p_slow),
            ),
        )
        + 1
    )
    t_resp = resolved[asked] + rng.lognormal(np.log(3 * HOUR), 1.0, asked.size).astype(np.int64)
    w.pools["survey_responses"].add(
        survey_rows(
            w,
            rng,
            t_resp,
            CSAT,
            score,
            client[asked],
            (0.8, 0.12, 0.08),
            request=number[asked],
            manager=manager[asked],
        )
    )


def generate_relationship_nps(w: World, m: int) -> None:
    """Quarterly NPS of buying clients: no deal link, only a phone or an e-mail to match on."""
    if w.tl.months[m][1] not in (3, 6, 9, 12):
        return
    rng = w.rng("relationship_nps", m)
    tl, st, cl = w.tl, w.staff, w.clients
    _, buyers = _existing_clients(w, tl.month_start_ts[m])
    k = int(rng.binomial(buyers.size, w.scale.relationship_nps))
    if k == 0:
        return
    chosen = rng.choice(buyers, size=k, replace=False)
    days = tl.month_days(m)[:14]
    t = tl.sample(rng, k, days, np.ones(days.size), LEAD_HOURS)
    owner = cl["owner"][chosen]
    skill = np.where(owner >= 0, st.skill[np.maximum(owner, 0)], 0.5)
    w.pools["survey_responses"].add(
        survey_rows(w, rng, t, NPS, nps_scores(rng, skill), chosen, (0.0, 0.6, 0.4))
    )


def generate_client_tasks(w: World, m: int) -> None:
    """Account managers' check-ins with their clients: activities with a client and no deal."""
    rng = w.rng("client_tasks", m)
    tl, st, cl = w.tl, w.staff, w.clients
    days = tl.month_days(m)
    _, buyers = _existing_clients(w, tl.month_start_ts[m])
    if buyers.size == 0:
        return
    day_w = st.count("account")[days] * tl.day_weight[days]
    n = int(rng.poisson(0.8 * day_w.sum()))
    if n == 0:
        return
    created = tl.sample(rng, n, days, day_w, OFFICE_HOURS)
    client = buyers[rng.integers(0, buyers.size, n)]
    day = tl.day_of(created)
    owner = cl["owner"][client]
    ok = owner >= 0
    ok[ok] = st.active[owner[ok], day[ok]] & (st.role_at[owner[ok], day[ok]] == ACCOUNT)
    manager = np.where(ok, owner, st.pick("account", day, rng.random(n)))
    skill = st.skill[manager]
    due = tl.to_working(rng, created + rng.integers(DAY, 5 * DAY, n), spread=True)
    done = rng.random(n) < 0.75 + 0.2 * skill
    late = rng.random(n) > 0.5 + 0.45 * skill
    overdue = tl.to_working(rng, due + rng.integers(HOUR, 3 * DAY, n), spread=True)
    completed = np.where(late, overdue, tl.working_between(rng, created, due))
    completed = np.where(done, np.maximum(completed, created + MINUTE), NEVER)
    w.pools["activities"].add(
        _activity_versions(
            w,
            rng,
            kind=rng.choice([TASK, CALL, EMAIL], size=n, p=[0.5, 0.3, 0.2]),
            manager=manager,
            deal=np.full(n, -1),
            client=client,
            created=created,
            due=due,
            completed=completed,
            outcome=rng.choice([POSITIVE, NEUTRAL], size=n, p=[0.4, 0.6]),
        )
    )


def _strangers(rng, n: int) -> np.ndarray:
    """Numbers of people who are not clients (cold-call targets, unknown callers)."""
    return STRANGER_CODES[rng.integers(0, STRANGER_CODES.size, n)] * 10_000_000 + rng.integers(
        0, 10_000_000, n
    )


def generate_other_calls(w: World, m: int) -> None:
    """Inbound calls and cold calls of month `m`, filling up to the scale's call volume.

    Inbound calls are missed more at lunch, in the evening and at weekends. A missed call is
    called back within the hour (~45 %), later (~25 %) or never (~30 %); the call back is an
    outbound call to the same number, by whoever is free.
    """
    rng = w.rng("calls", m)
    tl, st, cl = w.tl, w.staff, w.clients
    days = tl.month_days(m)
    m_start = tl.month_start_ts[m]
    day_w = st.count("any")[days] * tl.day_weight[days]
    target = w.scale.calls_per_day * day_w.sum() * np.sqrt(tl.season(m))
    remaining = max(0.0, target - w.pools["calls"].count(m))
    n_in = int(rng.poisson(0.42 * remaining))
    n_out = int(rng.poisson(0.58 * remaining))

    # Inbound: clients and strangers; a few withheld numbers.
    t_in = tl.sample(rng, n_in, days, tl.day_weight[days] + 0.02, _INBOUND_HOURS)
    existing = np.flatnonzero(cl["created"] < m_start)
    phone = _strangers(rng, n_in)
    if existing.size:
        is_client = rng.random(n_in) < 0.55
        known = cl["phone"][existing[rng.integers(0, existing.size, n_in)]]
        phone = np.where(is_client, known, phone)
    phone = np.where(rng.random(n_in) < 0.003, -1, phone)
    day = tl.day_of(t_in)
    sod = t_in % DAY
    off = ~tl.is_work[day] | (sod < WORK_START) | (sod >= WORK_END)
    lunch = (sod >= 13 * HOUR) & (sod < 14 * HOUR)
    missed = rng.random(n_in) < np.where(off, 0.8, np.where(lunch, 0.16, 0.07))
    role = rng.choice([SUPPORT, SALES, ACCOUNT], size=n_in, p=[0.5, 0.3, 0.2])
    manager = np.empty(n_in, dtype=np.int64)
    for r, table in ((SUPPORT, "support"), (SALES, "sales"), (ACCOUNT, "account")):
        sel = role == r
        manager[sel] = st.pick(table, day[sel], rng.random(int(sel.sum())))
    abandoned = missed & (off | (rng.random(n_in) < 0.65))
    status = np.where(abandoned, MISSED, np.where(missed, NO_ANSWER, ANSWERED))
    manager = np.where(abandoned, -1, manager)
    inbound = call_rows(w, rng, t_in, False, phone, manager, status)

    # Call-backs of missed calls.
    u = rng.random(n_in)
    back = missed & (phone >= 0) & (u < 0.7)
    within = u < 0.45
    delay = np.where(
        within,
        rng.integers(2 * MINUTE, 58 * MINUTE, n_in),
        rng.integers(61 * MINUTE, 26 * HOUR, n_in),
    )
    idx = np.flatnonzero(back)
    t_back = tl.to_working(rng, t_in[idx] + delay[idx])
    who = st.pick("any", tl.day_of(t_back), rng.random(idx.size))
    status_b = rng.choice([ANSWERED, NO_ANSWER, BUSY], size=idx.size, p=[0.72, 0.2, 0.08])
    callbacks = call_rows(w, rng, t_back, True, phone[idx], who, status_b)

    # Cold calls by sales managers, the diligent ones more.
    t_out = tl.sample(rng, n_out, days, tl.is_work[days] + 0.02, OFFICE_HOURS)
    caller = st.pick("sales_weighted", tl.day_of(t_out), rng.random(n_out))
    status_o = rng.choice([ANSWERED, NO_ANSWER, BUSY, FAILED], size=n_out, p=[0.3, 0.45, 0.15, 0.1])
    cold = call_rows(w, rng, t_out, True, _strangers(rng, n_out), caller, status_o)
    cold["talk"] = (cold["talk"] * 0.35).astype(np.int64) + (cold["talk"] > 0)
    w.pools["calls"].add(concat([inbound, callbacks, cold]))
