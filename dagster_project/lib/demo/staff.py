"""The sales department's staff: managers, their history, skill, and who works on which day.

Managers are few (hundreds at most), so they are built row by row in Python. Everything the
vectorised generators need is then exposed as arrays: per-manager skill and habits, and per-day
"who is at work" tables from which a manager is picked for millions of events with one fancy
index (`Staff.pick`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .names import (
    ACCOUNT_TEAM,
    FEMALE_NAMES,
    MALE_NAMES,
    PATRONYMICS,
    SALES_TEAMS,
    SUPPORT_TEAM,
    SURNAMES,
    translit,
)
from .timeline import DAY, HOUR, Timeline

ROLES = ("sales", "account", "support")
SALES, ACCOUNT, SUPPORT = 0, 1, 2
NEVER = np.iinfo(np.int64).max // 4  # a timestamp / day that never comes
GHOST_IDS = 5  # unknown manager ids used by the "unknown manager" defect


@dataclass
class Version:
    """One row of the managers file: the state of a manager from `updated_at` on."""

    index: int
    updated_at: int  # local seconds
    team: str
    role: int
    extension: int
    left_day: int | None


class Staff:
    """Managers of the demo company over the period.

    Args:
        rng: the random generator of the staff stream.
        tl: the period.
        headcount: managers at the start of the period.
    """

    # complexity (C901, PLR0915): the staff's history drawn from one seeded stream in order (see
    # sales.generate_deals)
    def __init__(self, rng: np.random.Generator, tl: Timeline, headcount: int):  # noqa: C901, PLR0915
        self.tl = tl
        years = tl.n_days / 365.0
        n_support = max(1, round(0.15 * headcount))
        n_account = max(1, round(0.2 * headcount))
        n_sales = max(1, headcount - n_support - n_account)
        self.n_sales_teams = max(1, math.ceil(n_sales / 8))

        roles = [SALES] * n_sales + [ACCOUNT] * n_account + [SUPPORT] * n_support
        teams = [self._team(SALES, i % self.n_sales_teams) for i in range(n_sales)]
        teams += [self._team(ACCOUNT, i // 12) for i in range(n_account)]
        teams += [self._team(SUPPORT, i // 12) for i in range(n_support)]
        hired = [-int(rng.integers(60, 2500)) for _ in roles]
        left: list[int | None] = [None] * len(roles)

        # Turnover: ~12 % of the staff leave per year, each replaced by a hire in the same team
        # (a few weeks of overlap or gap); plus ~5 % growth hires. Small teams keep everyone.
        n_leave = round(0.12 * headcount * years) if headcount >= 8 else 0
        n_grow = round(0.05 * headcount * years) if headcount >= 8 else 0
        protected = {0, 1, n_sales, n_sales + n_account}  # the star, the weak one, a stayer each
        candidates = [i for i in range(len(roles)) if i not in protected]
        leavers = sorted(rng.choice(candidates, size=min(n_leave, len(candidates)), replace=False))
        for i in leavers:
            left[i] = int(rng.integers(10, max(11, tl.n_days - 5)))
        for i in leavers:
            roles.append(roles[i])
            teams.append(teams[i])
            hired.append(int(np.clip(left[i] - 10 + rng.integers(0, 35), 1, tl.n_days - 2)))
            left.append(None)
        n_teams = {
            SALES: self.n_sales_teams,
            ACCOUNT: math.ceil(n_account / 12),
            SUPPORT: math.ceil(n_support / 12),
        }
        for _ in range(n_grow):
            role = int(rng.choice(3, p=[0.7, 0.15, 0.15]))
            roles.append(role)
            teams.append(self._team(role, int(rng.integers(0, n_teams[role]))))
            hired.append(int(rng.integers(1, tl.n_days - 2)))
            left.append(None)

        n = len(roles)
        self.n = n
        self.role = np.array(roles, dtype=np.int8)
        self.hired_day = np.array(hired, dtype=np.int64)
        self.left_day = np.array([NEVER if d is None else d for d in left], dtype=np.int64)
        self.stayer = self.left_day == NEVER

        # Skill drives win rate, speed to lead, talk time, task discipline and NPS. Manager 0 is
        # a clear star and manager 1 a clear laggard, so the scorecard always shows a spread.
        skill = rng.beta(2.2, 2.2, n)
        skill[0] = 0.95
        if n_sales > 1:
            skill[1] = 0.08
        self.skill = skill
        self.diligence = 1 + np.minimum(3, (rng.random(n) * 2 + skill * 2.5).astype(np.int64))
        # Median minutes from a new deal to the first call: ~3 min for the best, ~4 h for the
        # worst (before the push to working hours).
        self.stl_minutes = 240.0 * np.exp(-4.4 * skill)
        self.talk_seconds = 80.0 + 220.0 * skill
        self.no_call_share = 0.14 - 0.12 * skill

        # People: unique full names (ФИО) and e-mails.
        self.full_name: list[str] = []
        self.email: list[str] = []
        used_names: set[str] = set()
        used_mails: set[str] = set()
        for _ in range(n):
            while True:
                female = bool(rng.random() < 0.5)
                surname = SURNAMES[int(rng.integers(len(SURNAMES)))][int(female)]
                names = FEMALE_NAMES if female else MALE_NAMES
                first = names[int(rng.integers(len(names)))]
                patronymic = PATRONYMICS[int(rng.integers(len(PATRONYMICS)))][int(female)]
                full = f"{surname} {first} {patronymic}"
                if full not in used_names:
                    break
            used_names.add(full)
            self.full_name.append(full)
            base = f"{translit(first)[0]}.{translit(surname)}"
            mail, k = base, 1
            while mail in used_mails:
                k += 1
                mail = f"{base}{k}"
            used_mails.add(mail)
            self.email.append(f"{mail}@voronka-demo.ru")

        # Extensions: unique over all versions, never reused after someone leaves.
        first_ext = 101 if n < 600 else 1001
        pool = iter(range(first_ext, first_ext + 10 * n + 100, 1))
        order = rng.permutation(n)
        ext1 = np.zeros(n, dtype=np.int64)
        for i in order:
            ext1[i] = next(pool)
        self.ext1 = ext1
        self.ext2 = ext1.copy()
        self.ext_switch = np.full(n, NEVER, dtype=np.int64)
        self.role2 = self.role.copy()
        self.role_switch_day = np.full(n, NEVER, dtype=np.int64)
        self.team1 = list(teams)
        self.team2 = list(teams)
        self.team_switch_day = np.full(n, NEVER, dtype=np.int64)

        # Transfers (another sales team, or sales -> key accounts) and extension changes: the
        # "changes" file holds their new versions; the warehouse keeps them as validity ranges.
        movable = [i for i in range(n) if self.stayer[i] and self.role[i] == SALES and i > 1]
        n_move = min(len(movable), max(1, round(0.06 * n * years)))
        for i in rng.choice(movable, size=n_move, replace=False) if movable else []:
            day = int(rng.integers(max(15, self.hired_day[i] + 15), max(16, tl.n_days - 5)))
            if day >= tl.n_days - 1:
                continue
            self.team_switch_day[i] = day
            if rng.random() < 0.3 and n_sales > 2:
                self.role2[i] = ACCOUNT
                self.role_switch_day[i] = day
                self.team2[i] = self._team(ACCOUNT, 0)
            else:
                choices = [self._team(SALES, k) for k in range(max(2, self.n_sales_teams))]
                choices = [t for t in choices if t != self.team1[i]]
                self.team2[i] = choices[int(rng.integers(len(choices)))]
        staying = [i for i in range(n) if self.stayer[i]]
        n_ext = min(len(staying), max(1, round(0.04 * n * years)))
        for i in rng.choice(staying, size=n_ext, replace=False):
            day = int(rng.integers(max(5, self.hired_day[i] + 5), max(6, tl.n_days - 3)))
            if day >= tl.n_days - 1:
                continue
            self.ext2[i] = next(pool)
            self.ext_switch[i] = (tl.day0 + day) * DAY + 8 * HOUR  # before the working day

        width = 3 if n < 900 else 4
        self.ids = [f"M{i + 1:0{width}d}" for i in range(n)]
        ghosts = [f"M{9 * 10 ** (width - 1) + 17 * k + 3:0{width}d}" for k in range(GHOST_IDS)]
        self.ghost_base = n
        self.id_array = pa.array(self.ids + ghosts)
        self.ext_strings = None
        self._build_tables()

    def _team(self, role: int, k: int) -> str:
        if role == SALES:
            if k < len(SALES_TEAMS):
                return SALES_TEAMS[k]
            return f"Продажи-{k + 1}"
        base = ACCOUNT_TEAM if role == ACCOUNT else SUPPORT_TEAM
        return base if k == 0 else f"{base}-{k + 1}"

    # ------------------------------------------------------------------ per-day tables

    def _build_tables(self) -> None:
        """Who works on each day, by role: padded (days, k) tables picked from by index."""
        pad = len(self.tl.is_work)
        day = np.arange(pad)
        active = (self.hired_day[:, None] <= day) & (day <= self.left_day[:, None])
        role_at = np.where(
            day >= self.role_switch_day[:, None], self.role2[:, None], self.role[:, None]
        )
        self.active = active
        self.role_at = role_at
        self.tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        anyone = active
        for name, mask, weight in (
            ("any", anyone, None),
            ("sales", active & (role_at == SALES), None),
            ("account", active & (role_at == ACCOUNT), None),
            ("support", active & (role_at == SUPPORT), None),
            ("sales_weighted", active & (role_at == SALES), self.diligence),
            ("sales_stay", active & (role_at == SALES) & self.stayer[:, None], None),
            ("account_stay", active & (role_at == ACCOUNT) & self.stayer[:, None], None),
            ("any_stay", active & self.stayer[:, None], None),
        ):
            self.tables[name] = self._table(mask, weight, fallback=anyone)

    @staticmethod
    def _table(mask: np.ndarray, weight: np.ndarray | None, fallback: np.ndarray):
        rows = []
        for d in range(mask.shape[1]):
            members = np.flatnonzero(mask[:, d])
            if members.size == 0:
                members = np.flatnonzero(fallback[:, d])
            if members.size == 0:
                members = np.array([0])
            if weight is not None:
                members = np.repeat(members, weight[members])
            rows.append(members)
        width = max(len(r) for r in rows)
        table = np.zeros((len(rows), width), dtype=np.int64)
        for d, r in enumerate(rows):
            table[d, : len(r)] = r
        counts = np.array([len(r) for r in rows], dtype=np.int64)
        return table, counts

    def count(self, table: str) -> np.ndarray:
        """Number of entries per day of a table (for `sales`: active sales managers)."""
        return self.tables[table][1]

    def pick(self, table: str, day: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One manager per event from the managers of `table` at work on `day` (uniform `u`)."""
        tab, counts = self.tables[table]
        day = np.clip(day, 0, len(counts) - 1)
        k = np.minimum((u * counts[day]).astype(np.int64), counts[day] - 1)
        return tab[day, k]

    def pick_other(self, table: str, day: np.ndarray, u: np.ndarray, current: np.ndarray):
        """Like `pick`, but a manager other than `current` when the table allows it."""
        tab, counts = self.tables[table]
        day = np.clip(day, 0, len(counts) - 1)
        k = np.minimum((u * counts[day]).astype(np.int64), counts[day] - 1)
        chosen = tab[day, k]
        same = chosen == current
        k2 = (k + 1) % counts[day]
        return np.where(same, tab[day, k2], chosen)

    def extension_at(self, manager: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The extension of each manager at local time `t` (-1 where manager is -1)."""
        safe = np.maximum(manager, 0)
        ext = np.where(t >= self.ext_switch[safe], self.ext2[safe], self.ext1[safe])
        return np.where(manager >= 0, ext, -1)

    def left_ts(self, manager: np.ndarray) -> np.ndarray:
        """Midday of each manager's last working day (NEVER for stayers)."""
        day = self.left_day[manager]
        return np.where(day == NEVER, NEVER, (day + self.tl.day0) * DAY + 12 * HOUR)

    # ------------------------------------------------------------------ the managers files

    def versions(self) -> tuple[list[Version], list[Version]]:
        """(versions valid at the start: the initial file, versions from changes in the period).

        An initial version is stamped the day before the period; a hire on the hire date; a
        transfer or extension change at 08:00-10:00 of its day; a leave at 18:00 of the last day.
        """
        tl = self.tl
        initial, changes = [], []
        before = (tl.day0 - 1) * DAY + 9 * HOUR
        for i in range(self.n):
            state = Version(i, 0, self.team1[i], int(self.role[i]), int(self.ext1[i]), None)
            events: list[tuple[int, str]] = []
            if self.team_switch_day[i] != NEVER:
                events.append(((tl.day0 + int(self.team_switch_day[i])) * DAY + 10 * HOUR, "team"))
            if self.ext_switch[i] != NEVER:
                events.append((int(self.ext_switch[i]), "ext"))
            if self.left_day[i] != NEVER:
                events.append(((tl.day0 + int(self.left_day[i])) * DAY + 18 * HOUR, "left"))
            if self.hired_day[i] <= 0:
                state.updated_at = before
                initial.append(state)
            else:
                state.updated_at = (tl.day0 + int(self.hired_day[i])) * DAY + 9 * HOUR
                changes.append(state)
            for ts, kind in sorted(events):
                state = Version(i, ts, state.team, state.role, state.extension, state.left_day)
                if kind == "team":
                    state.team, state.role = self.team2[i], int(self.role2[i])
                elif kind == "ext":
                    state.extension = int(self.ext2[i])
                else:
                    state.left_day = int(self.left_day[i])
                changes.append(state)
        changes.sort(key=lambda v: (v.updated_at, v.index))
        return initial, changes
