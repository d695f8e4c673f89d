"""Shared state of one demo generation: scale, random streams, calendar, staff, clients and the
per-month pools of rows waiting to be written.

Rows are generated when their cause happens (a deal's calls, stage changes, activities and
survey are all drawn when the deal is created) but written in the file of the month they fall
in, so they wait in a `MonthPool` as numeric columns. Only future months are ever held: a pool
is emptied month by month as the files are written.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .clients import Clients
from .staff import Staff
from .timeline import Timeline

Cols = dict[str, np.ndarray]


@dataclass(frozen=True)
class Scale:
    """Size and intensity of a demo inbox.

    Attributes:
        managers: headcount at the start of the period.
        months: months of history (the default of `generate_demo(months=None)`).
        leads_per_day: new deals per active sales manager per working day.
        calls_per_day: calls of all kinds per active manager per working day (the volume
            driver: deal calls come first, cold calls and inbound calls fill up to it).
        requests_per_day: service requests per active support manager per working day.
        nps_rate: share of won deals whose client answers the NPS survey.
        csat_rate: share of resolved requests whose client answers the CSAT survey.
        relationship_nps: share of buying clients asked for NPS each quarter (no deal link).
        chunk_rows: rows formatted and written at once (bounds memory for the large scale).
        defect_multiplier: multiplies every defect rate (1.0 = the documented rates).
    """

    managers: int
    months: int
    leads_per_day: float
    calls_per_day: float
    requests_per_day: float
    nps_rate: float = 0.35
    csat_rate: float = 0.4
    relationship_nps: float = 0.07
    chunk_rows: int = 200_000
    defect_multiplier: float = 1.0


def concat(parts: list[Cols]) -> Cols:
    """Row-wise concatenation of column dicts with the same keys."""
    parts = [p for p in parts if p and len(next(iter(p.values())))]
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def take(cols: Cols, idx: np.ndarray) -> Cols:
    """Rows `idx` (indices or boolean mask) of every column."""
    return {k: v[idx] for k, v in cols.items()}


def nrows(cols: Cols) -> int:
    return len(next(iter(cols.values()))) if cols else 0


class MonthPool:
    """Rows waiting for the file of their month, keyed by a timestamp column."""

    def __init__(self, tl: Timeline, key: str):
        self.tl = tl
        self.key = key
        self.parts: list[list[Cols]] = [[] for _ in range(tl.n_months)]
        self.written = -1  # months up to this one have been popped (written)

    def add(self, cols: Cols) -> None:
        """Queue rows; rows after the end of the period are dropped (they have not happened)."""
        if not cols or nrows(cols) == 0:
            return
        month = self.tl.month_of(cols[self.key])
        ok = (month >= 0) & (month < self.tl.n_months)
        if (month[ok] <= self.written).any():
            # A row in a file already written would be lost: a generator bug, not data.
            raise RuntimeError(f"{self.key} rows for a month already written")
        if not ok.all():
            cols, month = take(cols, ok), month[ok]
        order = np.argsort(month.astype(np.int16), kind="stable")  # radix sort
        month = month[order]
        bounds = np.searchsorted(month, np.arange(self.tl.n_months + 1))
        for m in range(self.tl.n_months):
            lo, hi = bounds[m], bounds[m + 1]
            if hi > lo:
                self.parts[m].append(take(cols, order[lo:hi]))

    def pop(self, m: int) -> Cols:
        """All rows of month `m`, in no particular order; the pool forgets them."""
        rows = concat(self.parts[m])
        self.parts[m] = []
        self.written = max(self.written, m)
        return rows

    def count(self, m: int) -> int:
        return sum(nrows(p) for p in self.parts[m])


class World:
    """Everything one generation shares."""

    def __init__(self, scale: Scale, seed: int, tl: Timeline, defects: bool):
        self.scale = scale
        self.seed = seed
        self.tl = tl
        self.defects = defects
        self.staff = Staff(self.rng("staff"), tl, scale.managers)
        self.clients = Clients()
        self.pools = {
            "clients": MonthPool(tl, "updated_at"),
            "deals": MonthPool(tl, "updated_at"),
            "deal_stage_changes": MonthPool(tl, "changed_at"),
            "activities": MonthPool(tl, "updated_at"),
            "calls": MonthPool(tl, "started_at"),
            "requests": MonthPool(tl, "updated_at"),
            "survey_responses": MonthPool(tl, "responded_at"),
        }
        self.next_id = {"deals": 0, "activities": 0, "requests": 0}
        # Per month and channel: leads, for the marketing spend.
        self.leads_by_channel = np.zeros((tl.n_months, 6), dtype=np.int64)

    def rng(self, stream: str, *keys: int) -> np.random.Generator:
        """An independent random generator per stream and key (e.g. month): adding a stream
        or a draw to one generator never changes what the others produce."""
        entropy = [self.seed & 0xFFFFFFFF, zlib.crc32(stream.encode()), *keys]
        return np.random.default_rng(np.random.SeedSequence(entropy))

    def new_ids(self, entity: str, n: int) -> np.ndarray:
        """`n` consecutive numbers for a mutable entity's key."""
        start = self.next_id[entity]
        self.next_id[entity] = start + n
        return np.arange(start + 1, start + n + 1, dtype=np.int64)
