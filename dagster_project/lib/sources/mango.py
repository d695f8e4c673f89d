"""Mango Office VPBX API (call statistics and users) into `raw_mango`.

Every request is a form POST of `vpbx_api_key`, `json` (the parameters as a JSON string) and
`sign = sha256(api_key + json + api_salt)` (hex). Call statistics are asynchronous:

1. `POST <base>/stats/request` with `{"date_from", "date_to", "fields", "request_id"}` (unix
   seconds) answers `{"key": ...}`;
2. `POST <base>/stats/result` with `{"key": ...}` answers 204 while the report is being built
   (polled every `poll_seconds`), then 200 with the report: one call leg per line, fields
   separated by `;` in the order of `fields`; 404 when the key is unknown or expired (the
   request is made again once).

The period is read in windows (`VORONKA_MANGO_WINDOW_HOURS`, default 24): each window is one
committed "page", so an interrupted run resumes at the first window not written. A window
ends no later than the run's start; the next run starts `overlap` (default one hour) before the
last window's end, and lines already loaded are not loaded again (the line's hash is its key:
the report has no id per line; `entry_id` groups the legs of one call).

`raw_mango.users` is the `config/users/request` list (extension → employee), a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster_project.lib.sources.engine import (
    ObjectReport,
    Page,
    Run,
    date_to_epoch,
    extract_object,
)
from dagster_project.lib.sources.http import ApiError, HttpClient, RetryPolicy
from dagster_project.lib.sources.secrets import Secret, env_secret
from dagster_project.lib.sources.state import RawWriter, TableSpec, as_text, row_hash

log = logging.getLogger("voronka.sources.mango")

SOURCE = "mango"
DEFAULT_BASE_URL = "https://app.mango-office.ru/vpbx"
STATS_FIELDS = (
    "records",
    "start",
    "finish",
    "answer",
    "from_extension",
    "from_number",
    "to_extension",
    "to_number",
    "disconnect_reason",
    "line_number",
    "location",
    "create",
    "entry_id",
)
SUCCESS = 1000


@dataclass(frozen=True)
class MangoSettings:
    """Mango Office settings (environment only).

    Attributes:
        api_key: the VPBX unique code (`VORONKA_MANGO_API_KEY`), a secret.
        api_salt: the signing key (`VORONKA_MANGO_API_SALT`), a secret.
        base_url: `VORONKA_MANGO_BASE_URL` (default `https://app.mango-office.ru/vpbx`).
        window_hours: hours of statistics per request (`VORONKA_MANGO_WINDOW_HOURS`, 24).
        start_from: the first run's start (`VORONKA_MANGO_START_DATE`, midnight in the business
            time zone `VORONKA_TIMEZONE`; default 30 days ago).
        overlap_seconds: re-read before the last window's end (`VORONKA_MANGO_OVERLAP_SECONDS`,
            3600: a call's line appears once the call has ended).
        poll_seconds, max_polls: how the report is awaited (`VORONKA_MANGO_POLL_SECONDS`, 5;
            `VORONKA_MANGO_MAX_POLLS`, 60).
        per_second: client-side rate limit (`VORONKA_MANGO_RPS`, 1).
    """

    api_key: Secret
    api_salt: Secret
    base_url: str = DEFAULT_BASE_URL
    window_hours: float = 24.0
    start_from: float | None = None
    overlap_seconds: float = 3600.0
    poll_seconds: float = 5.0
    max_polls: int = 60
    per_second: float = 1.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MangoSettings | None:
        """The settings, or None when Mango Office is not configured (the source is disabled)."""
        env = dict(os.environ if env is None else env)
        key = env_secret(env, "VORONKA_MANGO_API_KEY")
        salt = env_secret(env, "VORONKA_MANGO_API_SALT")
        if not key or not salt:
            return None
        return cls(
            api_key=key,
            api_salt=salt,
            base_url=(env.get("VORONKA_MANGO_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/"),
            window_hours=float(env.get("VORONKA_MANGO_WINDOW_HOURS") or 24),
            start_from=date_to_epoch(
                env.get("VORONKA_MANGO_START_DATE"), env.get("VORONKA_TIMEZONE")
            ),
            overlap_seconds=float(env.get("VORONKA_MANGO_OVERLAP_SECONDS") or 3600),
            poll_seconds=float(env.get("VORONKA_MANGO_POLL_SECONDS") or 5),
            max_polls=int(env.get("VORONKA_MANGO_MAX_POLLS") or 60),
            per_second=float(env.get("VORONKA_MANGO_RPS") or 1),
        )


def sign(api_key: str, payload: str, api_salt: str) -> str:
    """The request signature: hex sha256 of key + JSON text + salt."""
    return hashlib.sha256((api_key + payload + api_salt).encode("utf-8")).hexdigest()


def parse_stats(text: str, fields: tuple[str, ...] = STATS_FIELDS) -> list[dict[str, str | None]]:
    """The report text as rows (`;`-separated fields, one call leg per line)."""
    rows = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        values = line.split(";")
        row: dict[str, str | None] = {}
        for i, name in enumerate(fields):
            value = values[i].strip() if i < len(values) else ""
            row[name] = value if value != "" else None
        if len(values) > len(fields):
            row["extra_fields"] = ";".join(values[len(fields) :])
        row["_row_hash"] = hashlib.md5(line.strip().encode()).hexdigest()
        rows.append(row)
    return rows


def body_check(status: int, parsed: Any) -> tuple[str, str, bool] | None:
    """Mango's `{"result": code, "message": ...}`: anything but 1000 is an error; 2xxx
    (limits) and 5xxx (server) are retried."""
    if not isinstance(parsed, dict) or "result" not in parsed:
        return None
    try:
        code = int(parsed["result"])
    except (TypeError, ValueError):
        return None
    if code == SUCCESS:
        return None
    family = code // 1000
    return str(code), str(parsed.get("message") or ""), family in (2, 5)


def _raise_json_error(text: str) -> None:
    """A report is `;`-separated text; a JSON object in its place is an error answer."""
    if not text.lstrip().startswith("{"):
        return
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    check = body_check(200, parsed)
    if check:
        raise ApiError(SOURCE, "POST stats/result", f"{check[0]}: {check[1]}", code=check[0])


CALLS = TableSpec("calls", ("_row_hash",), None)
USERS = TableSpec("users", ("extension",), None)

OBJECTS = {
    "calls": "Call legs of the Mango Office VPBX (stats/request → stats/result): start, "
    "answer and finish times (unix), from/to extension and number, line, disconnect reason, "
    "entry_id grouping the legs of one call.",
    "users": "Employees of the VPBX with their extension and numbers (config/users/request); a "
    "snapshot.",
}


class MangoExtractor:
    """Extracts Mango Office call statistics and users into `raw_mango`."""

    def __init__(
        self,
        settings: MangoSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.client = HttpClient(
            SOURCE,
            settings.base_url,
            per_second=settings.per_second,
            retry=retry,
            sleep=sleep,
            clock=monotonic,
        )

    def __repr__(self) -> str:
        return f"MangoExtractor(host={self.client.host!r})"

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, params: dict[str, Any], **kwargs):
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
        s = self.settings
        form = {
            "vpbx_api_key": s.api_key.reveal(),
            "sign": sign(s.api_key.reveal(), payload, s.api_salt.reveal()),
            "json": payload,
        }
        return self.client.post_json(
            f"{s.base_url}/{path}", f"POST {path}", data=form, body_check=body_check, **kwargs
        )

    def stats(self, date_from: int, date_to: int) -> str:
        """The statistics report text of `[date_from, date_to]` (unix seconds)."""
        for _ in range(2):  # a second request when the key has expired (404)
            resp = self._post(
                "stats/request",
                {
                    "date_from": str(date_from),
                    "date_to": str(date_to),
                    "fields": ",".join(STATS_FIELDS),
                    "request_id": f"voronka-{date_from}-{date_to}",
                },
            )
            key = resp.data.get("key") if isinstance(resp.data, dict) else None
            if not key:
                raise ApiError(SOURCE, "POST stats/request", "no `key` in the answer")
            for _poll in range(self.settings.max_polls):
                result = self._post(
                    "stats/result", {"key": key}, expect_json=False, allow_statuses=(204, 404)
                )
                if result.status == 200:
                    _raise_json_error(result.text)
                    return result.text
                if result.status == 404:
                    log.warning("Mango stats key expired or unknown; requesting the report again")
                    break
                self.sleep(self.settings.poll_seconds)
            else:
                raise ApiError(
                    SOURCE,
                    "POST stats/result",
                    f"the report was not ready after {self.settings.max_polls} polls",
                )
        raise ApiError(SOURCE, "POST stats/result", "the report key expired twice (HTTP 404)")

    def extract(
        self,
        writer: RawWriter,
        name: str,
        progress: Callable[[ObjectReport], None] | None = None,
    ) -> list[ObjectReport]:
        """Extract `calls` or `users` into `writer`'s schema."""
        if name == "users":
            return [
                extract_object(
                    writer,
                    "users",
                    {"users": USERS},
                    self._users_page,
                    "POST config/users/request",
                    incremental=False,
                    clock=self.clock,
                    progress=progress,
                )
            ]
        s = self.settings
        initial = s.start_from if s.start_from is not None else self.clock() - 30 * 86400
        return [
            extract_object(
                writer,
                "calls",
                {"calls": CALLS},
                self._calls_page,
                "POST stats/request",
                overlap_seconds=s.overlap_seconds,
                initial_from=initial,
                clock=self.clock,
                progress=progress,
            )
        ]

    def _calls_page(self, run: Run, token: Any) -> Page:
        start = float(token if token is not None else run.window_from)
        end = min(start + self.settings.window_hours * 3600, run.run_started_at)
        text = self.stats(int(start), int(end)) if end > start else ""
        rows = parse_stats(text)
        done = end >= run.run_started_at
        return Page({"calls": rows}, next_token=None if done else end, versions=[end])

    def _users_page(self, run: Run, token: Any) -> Page:
        resp = self._post("config/users/request", {})
        users = resp.data.get("users") if isinstance(resp.data, dict) else None
        rows = []
        for user in users or []:
            general = user.get("general") or {}
            telephony = user.get("telephony") or {}
            row = {
                "extension": as_text(telephony.get("extension")),
                "name": as_text(general.get("name")),
                "email": as_text(general.get("email")),
                "department": as_text(general.get("department")),
                "position": as_text(general.get("position")),
                "general": as_text(general),
                "telephony": as_text(telephony),
            }
            for key, value in user.items():
                if key not in ("general", "telephony"):
                    row.setdefault(key.lower(), as_text(value))
            row["_row_hash"] = row_hash(user)
            rows.append(row)
        return Page({"users": rows})
