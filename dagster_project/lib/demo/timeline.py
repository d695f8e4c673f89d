"""The calendar of the demo period: days, months, working hours and timestamp sampling.

Times are int64 seconds of Moscow wall-clock time counted from 1970-01-01 00:00 ("local
seconds"). Moscow has been UTC+3 all year since 2014, so UTC is local - 3 h, with no DST gaps.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY = 86_400
HOUR = 3_600
MINUTE = 60
MSK_OFFSET = 3 * HOUR
WORK_START = 9 * HOUR  # calls are "mostly Mon-Fri 9-19 Moscow time"
WORK_END = 19 * HOUR

# Non-working public holidays (month, day); transfers between years are ignored.
HOLIDAYS = (
    (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8),
    (2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4), (12, 31),
)  # fmt: skip

# Demand by calendar month: the December peak (year-end budgets), January and May dips
# (long holidays), a calm summer.
SEASON = {
    1: 0.72, 2: 0.95, 3: 1.05, 4: 1.0, 5: 0.8, 6: 0.95,
    7: 0.9, 8: 0.88, 9: 1.05, 10: 1.1, 11: 1.12, 12: 1.3,
}  # fmt: skip

# Relative weight of each hour of the day for office events (calls, CRM work) ...
OFFICE_HOURS = np.array(
    [0.003, 0.002, 0.002, 0.002, 0.003, 0.005, 0.01, 0.03, 0.15, 0.75, 1.0, 1.0,
     0.9, 0.55, 0.9, 1.0, 0.95, 0.8, 0.45, 0.1, 0.04, 0.02, 0.01, 0.005]
)  # fmt: skip
# ... and for leads from web forms and ads, which arrive in the evening too.
LEAD_HOURS = np.array(
    [0.08, 0.04, 0.02, 0.02, 0.02, 0.03, 0.1, 0.25, 0.5, 0.8, 1.0, 1.0,
     0.95, 0.85, 0.95, 1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.18]
)  # fmt: skip


def epoch_day(day: dt.date) -> int:
    """Days from 1970-01-01 to `day`."""
    return (day - dt.date(1970, 1, 1)).days


def month_start(year: int, month: int) -> dt.date:
    """The first day of a month, months overflowing into the next years."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return dt.date(year, month, 1)


class Timeline:
    """Days and months of the demo period, with working-day weights and sampling helpers.

    Args:
        end: the last day of data.
        months: calendar months of history, the last being the month of `end`.
    """

    def __init__(self, end: dt.date, months: int):
        first = month_start(end.year, end.month - months + 1)
        self.start, self.end = first, end
        self.day0 = epoch_day(first)
        self.n_days = (end - first).days + 1
        self.start_ts = self.day0 * DAY
        self.end_ts = (self.day0 + self.n_days) * DAY - 1
        # Padded by 60 days so that "next working day" exists for events pushed past the end.
        pad = self.n_days + 60
        epoch_days = self.day0 + np.arange(pad)
        self.weekday = (epoch_days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        dates = [first + dt.timedelta(days=int(i)) for i in range(pad)]
        holiday = np.array([(d.month, d.day) in HOLIDAYS for d in dates])
        self.is_work = (self.weekday < 5) & ~holiday
        # Weekend and holiday activity is small but not zero (duty managers, web leads).
        self.day_weight = np.where(self.is_work, 1.0, np.where(self.weekday == 5, 0.1, 0.04))
        self.day_month = np.array([d.month for d in dates])
        nxt = np.empty(pad, dtype=np.int64)
        following = pad  # beyond the padding: treated as "never"
        for i in range(pad - 1, -1, -1):
            nxt[i] = following
            if self.is_work[i]:
                following = i
        self.next_work = nxt
        self.months: list[tuple[int, int]] = []
        bounds = []
        for k in range(months):
            m = month_start(first.year, first.month + k)
            self.months.append((m.year, m.month))
            bounds.append(epoch_day(m) - self.day0)
        bounds.append(self.n_days)
        self.month_first_day = np.array(bounds, dtype=np.int64)
        self.month_start_ts = (self.month_first_day + self.day0) * DAY

    @property
    def n_months(self) -> int:
        return len(self.months)

    def period(self, m: int) -> str:
        """`YYYY-MM` of month index `m`."""
        year, month = self.months[m]
        return f"{year:04d}-{month:02d}"

    def season(self, m: int) -> float:
        """Demand multiplier of month index `m`: seasonality and a slow growth trend."""
        return SEASON[self.months[m][1]] * (1.0 + 0.01 * m)

    def month_days(self, m: int) -> np.ndarray:
        """Day indices (0 = first day of the period) of month index `m`."""
        return np.arange(self.month_first_day[m], self.month_first_day[m + 1])

    def month_of(self, t: np.ndarray) -> np.ndarray:
        """Month index of local timestamps (-1 before the period, n_months after it)."""
        return np.searchsorted(self.month_start_ts, t, side="right") - 1

    def day_of(self, t: np.ndarray) -> np.ndarray:
        """Day index of local timestamps."""
        return t // DAY - self.day0

    def sample(
        self,
        rng: np.random.Generator,
        n: int,
        days: np.ndarray,
        day_weights: np.ndarray,
        hours: np.ndarray = OFFICE_HOURS,
    ) -> np.ndarray:
        """`n` local timestamps on `days` (weighted) at hours drawn from an hour profile."""
        if n == 0:
            return np.empty(0, dtype=np.int64)
        p = day_weights / day_weights.sum()
        day = rng.choice(days, size=n, p=p)
        hour = rng.choice(24, size=n, p=hours / hours.sum())
        return (day + self.day0) * DAY + hour * HOUR + rng.integers(0, HOUR, n)

    def to_working(self, rng: np.random.Generator, t: np.ndarray, spread: bool = False):
        """Move timestamps outside working hours (Mon-Fri 9-19, not holidays) into them.

        By default a moved event lands 0-45 minutes after 9:00 of the next working morning
        (skewed early: the morning queue of calls back and first responses). With `spread`, it
        lands at any office hour of that day (scheduled work: stage moves, due dates).
        """
        t = np.asarray(t, dtype=np.int64)
        day = np.clip(t // DAY - self.day0, 0, len(self.is_work) - 1)
        sod = t % DAY
        inside = self.is_work[day] & (sod >= WORK_START) & (sod < WORK_END)
        if inside.all():
            return t
        same_day_morning = self.is_work[day] & (sod < WORK_START)
        target = np.where(same_day_morning, day, self.next_work[day])
        if spread:
            offset = self._office_seconds(rng, t.size)
        else:
            offset = WORK_START + (rng.random(t.size) ** 2 * 45 * MINUTE).astype(np.int64)
        moved = (target + self.day0) * DAY + offset
        return np.where(inside, t, moved)

    def _office_seconds(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Seconds of the day within working hours, following the office hour profile."""
        hours = np.arange(WORK_START // HOUR, WORK_END // HOUR)
        p = OFFICE_HOURS[hours] / OFFICE_HOURS[hours].sum()
        return rng.choice(hours, size=n, p=p) * HOUR + rng.integers(0, HOUR, n)

    def working_between(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray):
        """A random working moment between `lo` and `hi` (uniform over the working days in
        between, office-hour profile within the day); the next working moment after `lo`
        when there is no working day in between."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.maximum(np.asarray(hi, dtype=np.int64), lo)
        last = len(self.is_work) - 1
        d_lo = np.clip(lo // DAY - self.day0, 0, last)
        d_hi = np.clip(hi // DAY - self.day0, 0, last)
        rank = np.cumsum(self.is_work) - self.is_work  # working days before each day
        work_days = np.flatnonzero(self.is_work)
        r_lo, r_hi = rank[d_lo], rank[d_hi] + self.is_work[d_hi] - 1
        r = r_lo + (rng.random(lo.size) * np.maximum(r_hi - r_lo + 1, 1)).astype(np.int64)
        day = work_days[np.clip(r, 0, work_days.size - 1)]
        t = (day + self.day0) * DAY + self._office_seconds(rng, lo.size)
        t = np.clip(t, lo, np.maximum(hi, lo))
        return self.to_working(rng, t, spread=True)
