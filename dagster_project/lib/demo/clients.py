"""The client base: companies, sole traders (ИП) and people, with their buying habits.

Clients are stored column-wise in growable numpy arrays (a large demo has over a million), and
their text (names, e-mails) is only built when a file is written, from small word lists.
Each client gets a unique phone number: the 7-digit subscriber part is an affine permutation of
the client's index modulo a prime, so no two clients ever share a number.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import csvout
from .names import (
    COMPANY_ENDINGS,
    COMPANY_ROOTS,
    EMAIL_BOXES,
    FEMALE_NAMES,
    LEGAL_FORM_WEIGHTS,
    LEGAL_FORMS,
    MAIL_DOMAINS,
    MALE_NAMES,
    PATRONYMICS,
    SURNAMES,
    translit,
)
from .staff import NEVER

COMPANY, SOLE_TRADER, PERSON = 0, 1, 2
BIG, MID, SMALL, PRIVATE = 0, 1, 2, 3  # index into names.SEGMENTS
SEGMENT_AMOUNT = np.array([4.0, 1.8, 1.0, 0.3])  # deal size multiplier per segment

_PRIME = 9_999_991  # > every client index; subscriber numbers stay within 7 digits
_STEP = 7_654_321
_MOBILE = np.array([916, 903, 925, 985, 926, 915, 905, 977, 967, 910, 917, 919, 921, 929])
_LANDLINE = np.array([495, 499, 812, 343, 383, 843, 846, 861, 863, 831])
# Codes never given to clients: cold-call targets and unknown callers come from here.
STRANGER_CODES = np.array([901, 902, 904, 906, 908, 909, 912, 950, 951, 952, 953, 958, 960,
                           961, 962, 963, 964, 980, 981, 982, 983, 987, 988, 989, 999])  # fmt: skip

_FIELDS: dict[str, type] = {
    "kind": np.int8,
    "female": np.bool_,
    "surname": np.int16,
    "first": np.int16,
    "patronymic": np.int16,
    "root": np.int16,
    "ending": np.int16,
    "legal": np.int8,
    "segment": np.int8,
    "phone": np.int64,
    "crm_fmt": np.int8,
    "has_phone": np.bool_,
    "has_email": np.bool_,
    "box": np.int8,
    "domain": np.int8,
    "full_patronymic": np.bool_,
    "channel": np.int8,
    "created": np.int64,
    "gap_days": np.float32,  # mean days between purchases; 0 = buys once
    "stop_p": np.float32,  # chance to stop buying after each purchase (churn)
    "next_repeat": np.int64,  # when the next repeat deal starts (NEVER: none planned)
    "owner": np.int64,  # account manager, -1 before the first win
    "wins": np.int32,
}


def _arr(values) -> pa.Array:
    return pa.array(list(values))


_SURNAME_ARR = _arr(s for pair in SURNAMES for s in pair)  # [m0, f0, m1, f1, ...]
_SURNAME_LAT = _arr(translit(s) for pair in SURNAMES for s in pair)
_FIRST_ARR = _arr(MALE_NAMES + FEMALE_NAMES)
_FIRST_INITIAL = _arr(translit(s)[0] for s in MALE_NAMES + FEMALE_NAMES)
_PATR_ARR = _arr(s for pair in PATRONYMICS for s in pair)
_ROOT_ARR, _END_ARR = _arr(COMPANY_ROOTS), _arr(COMPANY_ENDINGS)
_ROOT_LAT, _END_LAT = _arr(map(translit, COMPANY_ROOTS)), _arr(map(translit, COMPANY_ENDINGS))
_LEGAL_ARR = _arr(f"{form} «" for form in LEGAL_FORMS)
_BOX_ARR, _DOMAIN_ARR = _arr(EMAIL_BOXES), _arr(MAIL_DOMAINS)


class Clients:
    """All clients created so far (including the base that existed before the period)."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.cols = {name: np.zeros(capacity, dtype=dt) for name, dt in _FIELDS.items()}
        self.cols["next_repeat"][:] = NEVER
        self.cols["owner"][:] = -1

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def _grow(self, need: int) -> None:
        capacity = len(self.cols["kind"])
        if need <= capacity:
            return
        new = max(need, capacity * 2)
        for name, col in self.cols.items():
            grown = np.zeros(new, dtype=col.dtype)
            grown[:capacity] = col
            if name == "next_repeat":
                grown[capacity:] = NEVER
            elif name == "owner":
                grown[capacity:] = -1
            self.cols[name] = grown

    def add(self, rng: np.random.Generator, created: np.ndarray, channel: np.ndarray):
        """Create `len(created)` clients; return their indices.

        Args:
            rng: random generator.
            created: local creation timestamps.
            channel: acquisition channel code per client (-1: unknown).
        """
        k = len(created)
        lo, hi = self.n, self.n + k
        self._grow(hi)
        c = {name: col[lo:hi] for name, col in self.cols.items()}
        kind = rng.choice(3, size=k, p=[0.55, 0.15, 0.30]).astype(np.int8)
        c["kind"][:] = kind
        c["female"][:] = rng.random(k) < 0.45
        c["surname"][:] = rng.integers(0, len(SURNAMES), k)
        c["first"][:] = rng.integers(0, len(MALE_NAMES), k)
        female_first = rng.integers(0, len(FEMALE_NAMES), k) + len(MALE_NAMES)
        c["first"][:] = np.where(c["female"], female_first, c["first"])
        c["patronymic"][:] = rng.integers(0, len(PATRONYMICS), k)
        c["full_patronymic"][:] = rng.random(k) < 0.8
        c["root"][:] = rng.integers(0, len(COMPANY_ROOTS), k)
        c["ending"][:] = rng.integers(0, len(COMPANY_ENDINGS), k)
        c["legal"][:] = rng.choice(len(LEGAL_FORMS), size=k, p=LEGAL_FORM_WEIGHTS)
        segment = rng.choice([BIG, MID, SMALL], size=k, p=[0.1, 0.3, 0.6])
        segment = np.where(kind == SOLE_TRADER, SMALL, np.where(kind == PERSON, PRIVATE, segment))
        c["segment"][:] = segment
        index = np.arange(lo, hi, dtype=np.int64)
        subscriber = (index * _STEP + 1_234_567) % _PRIME
        landline = (kind == COMPANY) & (rng.random(k) < 0.5)
        code = np.where(
            landline,
            _LANDLINE[rng.integers(0, len(_LANDLINE), k)],
            _MOBILE[rng.integers(0, len(_MOBILE), k)],
        )
        c["phone"][:] = code * 10_000_000 + subscriber
        # How the CRM holds the number: typed by people, so mostly with brackets or spaces.
        c["crm_fmt"][:] = rng.choice([2, 3, 1], size=k, p=[0.55, 0.35, 0.10])
        c["has_phone"][:] = rng.random(k) < 0.97
        email_p = np.array([0.85, 0.7, 0.55])[kind]
        c["has_email"][:] = rng.random(k) < email_p
        c["box"][:] = rng.integers(0, len(EMAIL_BOXES), k)
        c["domain"][:] = rng.integers(0, len(MAIL_DOMAINS), k)
        c["channel"][:] = np.where(rng.random(k) < 0.9, channel, -1)
        c["created"][:] = created
        # Buying habits: most buy once; "regular" clients come back every 2-5 months and may
        # stop (churn); "loyal" ones come back monthly-ish and rarely stop. People buy once.
        habit = rng.random(k)
        habit = np.where(kind == PERSON, habit * 0.45 + 0.55 * (habit > 0.8), habit)
        regular = (habit >= 0.5) & (habit < 0.82)
        loyal = habit >= 0.82
        c["gap_days"][:] = np.where(
            loyal, rng.uniform(35, 70, k), np.where(regular, rng.uniform(60, 150, k), 0)
        )
        c["stop_p"][:] = np.where(loyal, 0.06, 0.22)
        c["next_repeat"][:] = NEVER
        c["owner"][:] = -1
        c["wins"][:] = 0
        self.n = hi
        return index

    def next_gap(self, rng: np.random.Generator, idx: np.ndarray, won: np.ndarray) -> np.ndarray:
        """Seconds until each client's next repeat deal, or NEVER (buys once, or churns).

        At least 35 days, so a repeat deal never falls in the month of the deal before it.
        About 8 % of the gaps are long (200-400 days): the client sleeps, churns, and returns.
        """
        gap = self["gap_days"][idx].astype(np.float64)
        stop = self["stop_p"][idx] * np.where(won, 1.0, 2.5)
        days = np.maximum(35.0, rng.lognormal(np.log(np.maximum(gap, 1.0)), 0.35))
        long_gap = rng.random(idx.size) < 0.08
        days = np.where(long_gap, rng.uniform(200, 400, idx.size), days)
        keep = (gap > 0) & (rng.random(idx.size) >= stop)
        return np.where(keep, (days * 86_400).astype(np.int64), NEVER)

    # ------------------------------------------------------------------ text

    def client_ids(self, idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        """`C0001234`."""
        return csvout.ids("C", np.asarray(idx) + 1, 7, valid)

    def names(self, idx: np.ndarray) -> pa.Array:
        """ООО «СтройСнаб», ИП Иванов Сергей Петрович, Петрова Анна Сергеевна."""
        kind = self["kind"][idx]
        female = self["female"][idx].astype(np.int64)
        surname = _SURNAME_ARR.take(pa.array(self["surname"][idx].astype(np.int64) * 2 + female))
        first = _FIRST_ARR.take(pa.array(self["first"][idx].astype(np.int64)))
        patr = _PATR_ARR.take(pa.array(self["patronymic"][idx].astype(np.int64) * 2 + female))
        person = csvout.join(surname, first, sep=" ")
        full = pc.if_else(
            pa.array(self["full_patronymic"][idx]), csvout.join(person, patr, sep=" "), person
        )
        company = csvout.join(
            _LEGAL_ARR.take(pa.array(self["legal"][idx].astype(np.int64))),
            _ROOT_ARR.take(pa.array(self["root"][idx].astype(np.int64))),
            _END_ARR.take(pa.array(self["ending"][idx].astype(np.int64))),
            "»",
        )
        trader = csvout.join("ИП ", full)
        out = pc.if_else(pa.array(kind == COMPANY), company, full)
        return pc.if_else(pa.array(kind == SOLE_TRADER), trader, out)

    def emails(self, idx: np.ndarray) -> pa.Array:
        """info@stroysnab-1234.ru for companies, ivanov.s1234@mail.ru for people; null if none."""
        number = pc.cast(pa.array(np.asarray(idx, dtype=np.int64) + 1), pa.string())
        kind = self["kind"][idx]
        female = self["female"][idx].astype(np.int64)
        company = csvout.join(
            _BOX_ARR.take(pa.array(self["box"][idx].astype(np.int64))),
            "@",
            _ROOT_LAT.take(pa.array(self["root"][idx].astype(np.int64))),
            _END_LAT.take(pa.array(self["ending"][idx].astype(np.int64))),
            "-",
            number,
            ".ru",
        )
        person = csvout.join(
            _SURNAME_LAT.take(pa.array(self["surname"][idx].astype(np.int64) * 2 + female)),
            ".",
            _FIRST_INITIAL.take(pa.array(self["first"][idx].astype(np.int64))),
            number,
            "@",
            _DOMAIN_ARR.take(pa.array(self["domain"][idx].astype(np.int64))),
        )
        out = pc.if_else(pa.array(kind == COMPANY), company, person)
        return pc.if_else(pa.array(self["has_email"][idx]), out, pa.scalar(None, pa.string()))
