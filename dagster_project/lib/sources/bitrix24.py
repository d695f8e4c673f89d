"""Bitrix24 REST into `raw_bitrix24`.

Methods (POST, JSON body; through an inbound webhook URL or an OAuth application):

- deals: `crm.deal.list` (select `*`, `UF_*`) → `deals`; by id, window `>=DATE_MODIFY`;
- deal_stage_history: `crm.stagehistory.list` (entityTypeId 2) → `deal_stage_history`; by id,
  append-only (the last id is kept across runs);
- contacts, companies: `crm.contact.list`, `crm.company.list` (select `*`, `UF_*`, `PHONE`,
  `EMAIL`) → `contacts` + `contact_channels`, `companies` + `company_channels`; by id,
  `>=DATE_MODIFY`;
- users: `user.get` → `users`; by id, a snapshot;
- activities: `crm.activity.list` (select `*`, `COMMUNICATIONS`) → `activities`; by id,
  `>=LAST_UPDATED`;
- statuses: `crm.status.list` (deal stages of every pipeline, sources, ...) → `statuses`;
  `start`/`next`, a snapshot;
- deal_categories: `crm.category.list` (entityTypeId 2: the pipelines) → `deal_categories`;
  `start`/`next`, a snapshot;
- calls: `voximplant.statistic.get` → `calls`; by id, append-only.

Paging. List methods return 50 records a page. The documented way to read large volumes
(`settings/performance/huge-data`) is used: order by `ID`, filter `>ID` = the last id read,
`start=-1` (no total count), until a page has fewer than 50 records; it cannot skip or repeat a
record when records change or are deleted mid-run, and its resume token is a plain id. For
throughput, `batch` chains up to 50 such pages in one HTTP request (`filter[>ID]=$result[p0][49]
[ID]`: each page starts after the previous page's 50th record); the pages after the first short
one are discarded. The small reference lists (`crm.status.list`, `crm.category.list`) use the
standard `start`/`next` navigation.

User fields. `select: ['*', 'UF_*']` leaves the multiple fields out (both masks exclude them:
`crm-deal-list`), so the first page of a run asks `crm.<entity>.fields` which user fields are
`isMultiple` and names them in `select` as well (decision D101).

Deletions and merges. A list method simply leaves a deleted record out (a merge deletes the
records merged away), so after each run of deals, contacts, companies and activities a cheap
pass reads the live ids (`select: ['ID']`, `>ID` paging, `start=-1`, 50 pages per `batch`) and
compares them with the ids in raw: an id no longer listed gets a `deleted` row in
`<table>_deletions`, a deleted id listed again a `restored` row (decision D100). A pass that
would delete more than `max_deleted_share` of the live records stops the run instead (a
webhook whose user lost rights lists nothing).

Immutable objects (stage history, calls) restart `overlap_ids` ids below the last id read: a
row committed out of id order after the previous run read past it is still picked up; rows
read twice are not inserted twice (decision D103).

Errors: `{"error": CODE, "error_description": ...}`. `QUERY_LIMIT_EXCEEDED` (503; leaky bucket,
2 requests/s sustained, 50 burst on the standard plans) and 5xx are retried with back-off;
`expired_token` (401) refreshes an OAuth pair once (at `oauth.bitrix.info`, persisted in the
token store) and the answer's `client_endpoint` becomes the REST base; `OVERLOAD_LIMIT`,
`ACCESS_DENIED`, `insufficient_scope`, ... fail at once.

Time budget. Bitrix24 adds up each method's execution time per application or webhook (10
one-minute baskets); past the limit (480 s in the cloud) the method answers 429
`OPERATION_TIME_LIMIT` until the oldest basket expires (`operating_reset_at`). Every answer's
`time.operating` (a batch's per command in `result_time`) is read: a method whose accumulated
time reaches `operating_budget` waits for its reset before the next call, and
`OPERATION_TIME_LIMIT` (also on a batch's first command) waits for the reset and tries again,
up to `operating_max_wait` seconds per call (decision D102).

The webhook URL is itself the credential: it is a `Secret`, only its host is ever logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from dagster_project.lib.sources.engine import ApiExtractor, ObjectReport, Page, Run, date_to_epoch
from dagster_project.lib.sources.http import ApiError, Auth, HttpClient
from dagster_project.lib.sources.secrets import Secret, env_secret, register
from dagster_project.lib.sources.state import RawWriter, TableSpec, channel_row, flatten
from dagster_project.lib.sources.tokens import (
    PairAuth,
    TokenPair,
    TokenStore,
    current_pair,
    token_store_path,
)

log = logging.getLogger("voronka.sources.bitrix24")

SOURCE = "bitrix24"
PAGE_SIZE = 50
MAX_BATCH = 50
# the time budget: 10 one-minute baskets per method (`limits`)
OPERATING_WINDOW = 600.0
BASKET_SECONDS = 60.0
# a deletion pass never refuses to mark this many records deleted, whatever their share
MIN_GUARDED_DELETIONS = 10
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"

RETRYABLE_CODES = frozenset(
    {
        "QUERY_LIMIT_EXCEEDED",
        "INTERNAL_SERVER_ERROR",
        "ERROR_UNEXPECTED_ANSWER",
    }
)
# waits for the method's time budget to be freed (not a back-off): handled by the extractor
TIME_LIMIT_CODE = "OPERATION_TIME_LIMIT"
# a batch command failing with one of these is tried again with the whole batch
BATCH_RETRY_CODES = RETRYABLE_CODES | {TIME_LIMIT_CODE}


@dataclass(frozen=True)
class Bitrix24Settings:
    """Bitrix24 connection settings (environment only).

    Attributes:
        webhook_url: the inbound webhook `https://<portal>/rest/<user>/<code>/`
            (`VORONKA_BITRIX24_WEBHOOK_URL`), a secret.
        base_url: the portal `https://<portal>` for an OAuth application
            (`VORONKA_BITRIX24_BASE_URL`).
        access_token, refresh_token, client_id, client_secret: the OAuth application
            (`VORONKA_BITRIX24_ACCESS_TOKEN`, ...).
        oauth_url: the authorisation server (`VORONKA_BITRIX24_OAUTH_URL`).
        per_second: client-side rate limit (`VORONKA_BITRIX24_RPS`, default 2).
        batch_pages: list pages per `batch` request (`VORONKA_BITRIX24_BATCH_PAGES`, 1–50,
            default 10; 1 disables `batch`).
        overlap_seconds, start_from: as for amoCRM (`VORONKA_BITRIX24_OVERLAP_SECONDS`,
            `VORONKA_BITRIX24_START_DATE`, a date in the business time zone).
        overlap_ids: how many ids below the last one the immutable objects re-read
            (`VORONKA_BITRIX24_OVERLAP_IDS`, default 500).
        operating_budget: a method's accumulated execution time (`time.operating`, seconds)
            at which the extractor waits for its reset (`VORONKA_BITRIX24_OPERATING_BUDGET`,
            default 420 of the cloud's 480).
        operating_max_wait: the longest wait for a method's time budget per call
            (`VORONKA_BITRIX24_OPERATING_MAX_WAIT`, default 1800 s).
        reconcile: read the live ids after deals, contacts, companies and activities to find
            deletions (`VORONKA_BITRIX24_RECONCILE`, default on; `0` turns it off).
        max_deleted_share: the largest share of the live records one pass may mark deleted
            (`VORONKA_BITRIX24_MAX_DELETED_SHARE`, default 0.5; 1 allows any).
    """

    webhook_url: Secret | None = None
    base_url: str | None = None
    access_token: Secret | None = None
    refresh_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    oauth_url: str = DEFAULT_OAUTH_URL
    token_store: Path = field(default_factory=lambda: token_store_path({}))
    per_second: float = 2.0
    batch_pages: int = 10
    overlap_seconds: float = 300.0
    start_from: float | None = None
    overlap_ids: int = 500
    operating_budget: float = 420.0
    operating_max_wait: float = 1800.0
    reconcile: bool = True
    max_deleted_share: float = 0.5

    @property
    def host(self) -> str:
        if self.webhook_url:
            return urlsplit(self.webhook_url.reveal()).netloc
        return urlsplit(self.base_url or "").netloc

    @property
    def origin(self) -> str:
        url = self.webhook_url.reveal() if self.webhook_url else (self.base_url or "")
        split = urlsplit(url)
        return f"{split.scheme}://{split.netloc}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Bitrix24Settings | None:
        """The settings, or None when Bitrix24 is not configured (the source is disabled)."""
        env = dict(os.environ if env is None else env)
        webhook = env_secret(env, "VORONKA_BITRIX24_WEBHOOK_URL")
        base_url = (env.get("VORONKA_BITRIX24_BASE_URL") or "").strip().rstrip("/") or None
        access = env_secret(env, "VORONKA_BITRIX24_ACCESS_TOKEN")
        if not webhook and not (base_url and access):
            return None
        batch_pages = int(env.get("VORONKA_BITRIX24_BATCH_PAGES") or 10)
        return cls(
            webhook_url=webhook,
            base_url=base_url,
            access_token=access,
            refresh_token=env_secret(env, "VORONKA_BITRIX24_REFRESH_TOKEN"),
            client_id=(env.get("VORONKA_BITRIX24_CLIENT_ID") or "").strip() or None,
            client_secret=env_secret(env, "VORONKA_BITRIX24_CLIENT_SECRET"),
            oauth_url=(env.get("VORONKA_BITRIX24_OAUTH_URL") or DEFAULT_OAUTH_URL).strip(),
            token_store=token_store_path(env),
            per_second=float(env.get("VORONKA_BITRIX24_RPS") or 2),
            batch_pages=max(1, min(MAX_BATCH, batch_pages)),
            overlap_seconds=float(env.get("VORONKA_BITRIX24_OVERLAP_SECONDS") or 300),
            start_from=date_to_epoch(
                env.get("VORONKA_BITRIX24_START_DATE"), env.get("VORONKA_TIMEZONE")
            ),
            overlap_ids=max(0, int(env.get("VORONKA_BITRIX24_OVERLAP_IDS") or 500)),
            operating_budget=float(env.get("VORONKA_BITRIX24_OPERATING_BUDGET") or 420),
            operating_max_wait=float(env.get("VORONKA_BITRIX24_OPERATING_MAX_WAIT") or 1800),
            reconcile=(env.get("VORONKA_BITRIX24_RECONCILE") or "1").strip() not in ("0", "no"),
            max_deleted_share=float(env.get("VORONKA_BITRIX24_MAX_DELETED_SHARE") or 0.5),
        )


def php_query(params: dict[str, Any], prefix: str = "") -> list[str]:
    """`params` as PHP `http_build_query` pairs (`filter[>ID]=5`, `select[0]=*`).

    Keys are percent-encoded except the brackets; `$result[...]` references of `batch` are
    left as they are so that Bitrix24 can substitute them.
    """
    pairs: list[str] = []
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list, tuple)):
            pairs.extend(php_query(value if isinstance(value, dict) else list(value), name))
            continue
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "Y" if value else "N"
        else:
            text = str(value)
        encoded = text if text.startswith("$result[") else quote(text, safe="")
        pairs.append(f"{quote(name, safe='[]')}={encoded}")
    return pairs


def command(method: str, params: dict[str, Any]) -> str:
    """One `batch` command: `method?query`."""
    return f"{method}?{'&'.join(php_query(params))}"


def iso(epoch: float) -> str:
    """Epoch seconds as the ISO 8601 text Bitrix24 filters accept (UTC offset)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def epoch(value: Any) -> float | None:
    """A Bitrix24 timestamp (`2024-08-29T10:29:54+03:00`) as epoch seconds, or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def body_check(status: int, parsed: Any) -> tuple[str, str, bool] | None:
    """Bitrix24's error body `{"error": ..., "error_description": ...}` as (code, text, retry)."""
    if not isinstance(parsed, dict) or not parsed.get("error"):
        return None
    code = str(parsed["error"])
    text = str(parsed.get("error_description") or "")
    retryable = code in RETRYABLE_CODES or (code not in ("OVERLOAD_LIMIT",) and status >= 500)
    return code, text, retryable


class WebhookAuth(Auth):
    """The webhook URL carries the credential: nothing to add, nothing to refresh."""

    def __repr__(self) -> str:
        return "WebhookAuth()"


class Bitrix24OAuth(PairAuth):
    """An OAuth access token in the JSON body (`auth`), refreshed once on `expired_token`."""

    label = "Bitrix24"
    log = log

    def __init__(self, settings: Bitrix24Settings, store: TokenStore | None = None, **http):
        super().__init__(settings, SOURCE, store)
        env_pair = TokenPair(settings.access_token, settings.refresh_token)
        self.pair = current_pair(self.store, self.key, env_pair)
        self._http = http

    @property
    def endpoint(self) -> str | None:
        """The REST base the token answer of the current pair named (`client_endpoint`), kept
        in the token store with the pair; None: the configured portal's."""
        return self.pair.rest_url

    def rest_url_of(self, answer: dict) -> str | None:
        return client_endpoint(answer, self.settings.base_url or "")

    def __repr__(self) -> str:
        return f"Bitrix24OAuth(host={self.settings.host!r})"

    def apply_body(self, body: Any) -> Any:
        body = dict(body or {})
        body["auth"] = self.pair.access_token.reveal()
        return body

    def refresh(self, client: HttpClient) -> None:
        s = self.settings
        oauth = HttpClient(
            SOURCE,
            s.oauth_url,
            per_second=2.0,
            retry=client.retry,
            sleep=client.sleep,
            **self._http,
        )
        try:
            resp = oauth.get_json(
                s.oauth_url,
                "GET oauth/token",
                params={
                    "grant_type": "refresh_token",
                    "client_id": s.client_id,
                    "client_secret": s.client_secret.reveal(),
                    "refresh_token": self.pair.refresh_token.reveal(),
                },
                authenticate=False,
                body_check=lambda status, parsed: (
                    (str(parsed["error"]), str(parsed.get("error_description") or ""), False)
                    if isinstance(parsed, dict) and parsed.get("error")
                    else None
                ),
            )
        finally:
            oauth.close()
        self.keep_answer(resp.data, "GET oauth/token", _expires_at)


def client_endpoint(answer: Any, base_url: str) -> str | None:
    """The REST base the OAuth answer names (`client_endpoint`, e.g. `https://<portal>/rest/`)
    when it is a URL of the configured portal's scheme (an access token never goes to plain
    HTTP when the portal was configured as HTTPS), else None."""
    value = answer.get("client_endpoint") if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    split = urlsplit(value.strip())
    if not split.netloc or split.scheme != urlsplit(base_url).scheme:
        log.warning(
            "Bitrix24: ignoring the OAuth answer's client_endpoint (not a %s URL)",
            urlsplit(base_url).scheme or "portal",
        )
        return None
    return value.strip().rstrip("/")


def _expires_at(answer: dict) -> float | None:
    """A Bitrix24 token answer's expiry: `expires` (epoch seconds), else now + `expires_in`."""
    expires = answer.get("expires") or (
        time.time() + float(answer["expires_in"]) if answer.get("expires_in") else None
    )
    return float(expires) if expires else None


@dataclass(frozen=True)
class BitrixObject:
    """One extracted Bitrix24 object.

    Attributes:
        name: object (and main table) name.
        method: the REST method.
        tables: the raw tables it fills.
        params: fixed parameters (entityTypeId, select, ...).
        version_field: the raw column of the record's version (`date_modify`); also the
            window filter (`>=DATE_MODIFY`). None: a snapshot or an immutable object.
        paging: `id` (keyset by `>ID`, the default) or `offset` (`start`/`next`).
        immutable: an append-only object: its last id is kept across runs.
        no_count: send `start=-1` (no total count) in keyset mode.
        items_key: the key under `result` holding the records (`items`, `categories`).
        param_style: how the method spells filter and sort: `crm` (`filter`, `order` object),
            `voximplant` (`FILTER`, `SORT`, `ORDER`) or `user` (`FILTER`, `sort`, `order`).
        fields_method: the method describing the fields (`crm.deal.fields`): its multiple
            user fields are added to `select` (the `UF_*` mask leaves them out).
        reconcile: after the run, read the live ids and record deletions and restorations
            in the object's `<name>_deletions` table (its last table).
    """

    name: str
    method: str
    tables: tuple[TableSpec, ...]
    params: tuple[tuple[str, Any], ...] = ()
    version_field: str | None = None
    paging: str = "id"
    immutable: bool = False
    no_count: bool = True
    items_key: str | None = None
    param_style: str = "crm"
    description: str = ""
    fields_method: str | None = None
    reconcile: bool = False

    @property
    def deletions(self) -> TableSpec | None:
        """The table of deletions and restorations (reconciled objects only)."""
        return self.tables[-1] if self.reconcile else None

    @property
    def incremental(self) -> bool:
        return self.version_field is not None


CHANNELS = {
    "contacts": TableSpec("contact_channels", ("entity_id", "channel", "value"), "updated_at"),
    "companies": TableSpec("company_channels", ("entity_id", "channel", "value"), "updated_at"),
}

_SELECT_CRM = ("*", "UF_*")
_SELECT_CLIENT = ("*", "UF_*", "PHONE", "EMAIL")
DELETION_EVENTS = ("deleted", "restored")


def deletions_spec(table: str) -> TableSpec:
    """`<table>_deletions`: one row per id and time a pass saw it vanish (`deleted`) or come
    back (`restored`)."""
    return TableSpec(f"{table}_deletions", ("id", "event"), "observed_at")


OBJECTS: tuple[BitrixObject, ...] = (
    BitrixObject(
        "deals",
        "crm.deal.list",
        (TableSpec("deals", ("id",), "date_modify"), deletions_spec("deals")),
        params=(("select", _SELECT_CRM),),
        version_field="date_modify",
        fields_method="crm.deal.fields",
        reconcile=True,
        description="Deals (сделки) with pipeline (CATEGORY_ID), stage, responsible user "
        "(ASSIGNED_BY_ID), amount, contact/company and user fields (UF_*).",
    ),
    BitrixObject(
        "deal_stage_history",
        "crm.stagehistory.list",
        (TableSpec("deal_stage_history", ("id",), None),),
        params=(("entityTypeId", 2),),
        immutable=True,
        no_count=False,
        items_key="items",
        description="Every move of a deal to a stage (OWNER_ID, STAGE_ID, CATEGORY_ID, "
        "STAGE_SEMANTIC_ID, CREATED_TIME); append-only.",
    ),
    BitrixObject(
        "contacts",
        "crm.contact.list",
        (
            TableSpec("contacts", ("id",), "date_modify"),
            CHANNELS["contacts"],
            deletions_spec("contacts"),
        ),
        params=(("select", _SELECT_CLIENT),),
        version_field="date_modify",
        fields_method="crm.contact.fields",
        reconcile=True,
        description="Contacts (people) with phones and e-mails (multi-fields, also one per "
        "row in `contact_channels`) and user fields.",
    ),
    BitrixObject(
        "companies",
        "crm.company.list",
        (
            TableSpec("companies", ("id",), "date_modify"),
            CHANNELS["companies"],
            deletions_spec("companies"),
        ),
        params=(("select", _SELECT_CLIENT),),
        version_field="date_modify",
        fields_method="crm.company.fields",
        reconcile=True,
        description="Companies with phones and e-mails (also one per row in "
        "`company_channels`) and user fields.",
    ),
    BitrixObject(
        "users",
        "user.get",
        (TableSpec("users", ("id",), None),),
        param_style="user",
        description="Users (managers), terminated ones included (ACTIVE=false), with "
        "department and internal phone number (UF_PHONE_INNER); a snapshot.",
    ),
    BitrixObject(
        "activities",
        "crm.activity.list",
        (TableSpec("activities", ("id",), "last_updated"), deletions_spec("activities")),
        params=(("select", ("*", "COMMUNICATIONS")),),
        version_field="last_updated",
        reconcile=True,
        description="CRM activities (calls, meetings, e-mails, tasks) with owner, "
        "responsible user, direction, times and completion.",
    ),
    BitrixObject(
        "statuses",
        "crm.status.list",
        (TableSpec("statuses", ("id",), None),),
        params=(("order", {"SORT": "ASC"}),),
        paging="offset",
        description="Reference lists: deal stages of every pipeline (ENTITY_ID DEAL_STAGE, "
        "DEAL_STAGE_<n>) with order and semantics, sources, ...; a snapshot.",
    ),
    BitrixObject(
        "deal_categories",
        "crm.category.list",
        (TableSpec("deal_categories", ("id",), None),),
        params=(("entityTypeId", 2),),
        paging="offset",
        items_key="categories",
        description="Deal pipelines (categories), the default one included; a snapshot.",
    ),
    BitrixObject(
        "calls",
        "voximplant.statistic.get",
        (TableSpec("calls", ("id",), None),),
        immutable=True,
        no_count=False,
        param_style="voximplant",
        description="Call statistics of Bitrix24 telephony: direction (CALL_TYPE), line, "
        "number, user, duration, result code (CALL_FAILED_CODE), start time; append-only.",
    ),
)

OBJECT_BY_NAME = {o.name: o for o in OBJECTS}


def _channel_rows(entity_type: str, records: list[dict]) -> list[dict[str, str | None]]:
    rows = []
    for record in records:
        for field_name, channel in (("PHONE", "phone"), ("EMAIL", "email")):
            values = record.get(field_name)
            if not isinstance(values, list):
                continue
            for value in values:
                text = str((value or {}).get("VALUE") or "").strip()
                if not text:
                    continue
                rows.append(
                    channel_row(
                        entity_type,
                        str(record.get("ID")),
                        channel,
                        text,
                        ("value_type", (value or {}).get("VALUE_TYPE")),
                        record.get("DATE_MODIFY"),
                    )
                )
    return rows


class Bitrix24Extractor(ApiExtractor):
    """Extracts Bitrix24 objects into `raw_bitrix24` through one rate-limited client."""

    source = SOURCE

    def __init__(self, settings: Bitrix24Settings, *, store: TokenStore | None = None, **options):
        """`store`: the OAuth token store (default: the settings'); `options`: those of
        `ApiExtractor` (retry, sleep, clock, monotonic; client)."""
        if settings.webhook_url:
            register(settings.webhook_url.reveal())
            self.auth: Auth = WebhookAuth()
            self.rest_url = settings.webhook_url.reveal().rstrip("/")
        else:
            self.auth = Bitrix24OAuth(settings, store)
            self.rest_url = f"{settings.base_url}/rest"
        super().__init__(settings, settings.origin, self.auth, **options)
        self.sleep: Callable[[float], None] = options.get("sleep", time.sleep)
        # per method: its accumulated execution time and when its oldest basket expires
        self.operating: dict[str, tuple[float, float | None]] = {}
        self._multiple_fields: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ calls

    def call(
        self, method: str, params: dict[str, Any], budget_of: str | None = None
    ) -> dict[str, Any]:
        """One REST call; the whole answer (`result`, `next`, `total`, `time`).

        `budget_of`: the method whose time budget the call spends (a batch's commands').
        `OPERATION_TIME_LIMIT` waits for the budget's reset and tries again.
        """
        budget = budget_of or method
        waited = 0.0
        while True:
            self._follow_endpoint()
            self._respect_budget(budget)
            try:
                resp = self.client.post_json(
                    f"{self.rest_url}/{method}", method, json_body=params, body_check=body_check
                )
            except ApiError as error:
                if error.code != TIME_LIMIT_CODE:
                    raise
                waited = self._wait_for_reset(budget, waited)
                continue
            self._follow_endpoint()
            if not isinstance(resp.data, dict) or "result" not in resp.data:
                raise ApiError(SOURCE, method, "unexpected response shape (no `result`)")
            self._note_time(method, resp.data.get("time"))
            return resp.data

    def batch(self, commands: dict[str, str], method: str) -> dict[str, Any]:
        """A `batch` of `method` commands; `result` holds `result`, `result_error`, ...

        The batch itself spends no time budget, its commands spend `method`'s: their
        `result_time` is read like a single call's `time`."""
        data = self.call("batch", {"halt": 0, "cmd": commands}, budget_of=method)
        result = data.get("result")
        if not isinstance(result, dict):
            raise ApiError(SOURCE, "batch", "unexpected response shape (no `result.result`)")
        times = result.get("result_time")
        if isinstance(times, dict):
            for name in commands:
                self._note_time(method, times.get(name))
        return result

    def _follow_endpoint(self) -> None:
        """After an OAuth refresh, call the REST base its answer named (`client_endpoint`)."""
        endpoint = getattr(self.auth, "endpoint", None)
        if endpoint and endpoint != self.rest_url:
            split = urlsplit(endpoint)
            log.info(
                "Bitrix24: REST calls go to %s (the OAuth answer's client_endpoint)", split.netloc
            )
            self.rest_url = endpoint
            self.client.rebase(f"{split.scheme}://{split.netloc}")

    def _note_time(self, method: str, spent: Any) -> None:
        """Keep a method's accumulated time (`operating`) and its reset from a `time` object."""
        if not isinstance(spent, dict) or spent.get("operating") is None:
            return
        try:
            used = float(spent["operating"])
            reset_at = (
                float(spent["operating_reset_at"]) if spent.get("operating_reset_at") else None
            )
        except (TypeError, ValueError):
            return
        self.operating[method] = (used, reset_at)

    def _respect_budget(self, method: str) -> None:
        """Wait for the oldest basket of `method` to expire when its time is nearly used up."""
        used, reset_at = self.operating.get(method, (0.0, None))
        if used < self.settings.operating_budget or reset_at is None:
            return
        delay = min(reset_at - self.clock() + 1.0, OPERATING_WINDOW + 1.0)
        self.operating.pop(method)  # unknown until the next answer says
        if delay > 0:
            log.warning(
                "Bitrix24 %s: %.0f s of its time budget used; waiting %.0f s for its reset",
                method,
                used,
                delay,
            )
            self._wait(delay)

    def _wait_for_reset(self, method: str, waited: float) -> float:
        """After `OPERATION_TIME_LIMIT`: wait until the method's oldest basket expires (the
        last answer's `operating_reset_at`, else a basket's minute); the total waited so far."""
        _, reset_at = self.operating.pop(method, (0.0, None))
        delay = reset_at - self.clock() + 1.0 if reset_at is not None else 0.0
        if delay <= 1.0:  # unknown, or already past: the next basket
            delay = BASKET_SECONDS
        delay = min(delay, OPERATING_WINDOW + 1.0)
        if waited + delay > self.settings.operating_max_wait:
            raise ApiError(
                SOURCE,
                method,
                f"{TIME_LIMIT_CODE}: the method's time budget was still used up after waiting "
                f"{waited:.0f} s; run again later, or allow a longer wait "
                "(VORONKA_BITRIX24_OPERATING_MAX_WAIT)",
                status=429,
                code=TIME_LIMIT_CODE,
                retryable=True,
            )
        log.warning(
            "Bitrix24 %s: %s (its time budget is used up); waiting %.0f s for the reset",
            method,
            TIME_LIMIT_CODE,
            delay,
        )
        self._wait(delay)
        return waited + delay

    def _wait(self, seconds: float) -> None:
        self.client.stats.waited_seconds += seconds
        self.sleep(seconds)

    # ------------------------------------------------------------------ objects

    def extract(
        self,
        writer: RawWriter,
        name: str,
        progress: Callable[[ObjectReport], None] | None = None,
    ) -> list[ObjectReport]:
        """Extract one object into `writer`'s schema (and its deletions, when reconciled)."""
        obj = OBJECT_BY_NAME[name]
        fetch = self._offset_fetcher(obj) if obj.paging == "offset" else self._id_fetcher(obj)
        specs = {t.name: t for t in obj.tables if t is not obj.deletions}
        reports = [
            self._extract_object(
                writer,
                obj.name,
                specs,
                fetch,
                obj.method,
                incremental=obj.incremental,
                progress=progress,
            )
        ]
        if obj.deletions is not None:
            writer.ensure_empty_table(obj.deletions)
            if self.settings.reconcile:
                reports.append(self.reconcile(writer, obj))
        return reports

    def live_ids(self, obj: BitrixObject) -> set[int]:
        """Every id `obj`'s list method returns now (ids only, 50 pages a batch)."""
        pages = MAX_BATCH if self.settings.batch_pages > 1 else 1
        ids: set[int] = set()
        after = 0
        while True:
            records, full = self._keyset_pages(obj, None, after, pages)
            ids.update(int(r["ID"]) for r in records)
            if not full or not records:
                return ids
            after = int(records[-1]["ID"])

    def reconcile(self, writer: RawWriter, obj: BitrixObject) -> ObjectReport:
        """Compare the live ids with those in raw: record the vanished ones `deleted` and the
        deleted ones listed again `restored`, in one transaction (decision D100)."""
        started = time.perf_counter()
        spec = obj.deletions
        table = obj.tables[0].name
        requests_before = self.client.stats.requests
        live = self.live_ids(obj)
        known = {
            int(value)
            for (value,) in writer.con.execute(
                f"select distinct try_cast(id as bigint) from {writer.schema}.{table} "
                "where try_cast(id as bigint) is not null"
            ).fetchall()
        }
        deleted = {
            int(value)
            for (value,) in writer.con.execute(
                f"""
                select try_cast(id as bigint) from {writer.schema}.{spec.name}
                group by id
                having arg_max(event, observed_at) = 'deleted'
                """
            ).fetchall()
            if value is not None
        }
        gone = sorted(known - live - deleted)
        back = sorted(deleted & live)
        alive = len(known - deleted)
        share = self.settings.max_deleted_share
        if len(gone) > max(MIN_GUARDED_DELETIONS, share * alive):
            raise ApiError(
                SOURCE,
                f"{obj.method} (live ids)",
                f"{len(gone)} of the {alive} {table} in the warehouse are no longer listed; "
                f"marking more than {share:.0%} of them deleted at once was refused. If the "
                "webhook's or application's user lost access rights, give them back; if the "
                "records really were deleted, run again with VORONKA_BITRIX24_MAX_DELETED_SHARE=1",
            )
        observed = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="microseconds")
        rows = [flatten({"id": str(i), "event": "deleted", "observed_at": observed}) for i in gone]
        rows += [
            flatten({"id": str(i), "event": "restored", "observed_at": observed}) for i in back
        ]
        requests = self.client.stats.requests - requests_before
        state = {
            "status": "complete",
            "observed_at": observed,
            "live": len(live),
            "known": len(known),
            "deleted": len(gone),
            "restored": len(back),
            "requests": requests,
        }
        results = writer.write(
            f"{obj.name}:deletions",
            {spec.name: rows},
            {spec.name: spec},
            state,
            f"{obj.method} ids",
        )
        if gone or back:
            log.info(
                "Bitrix24 %s: %d no longer listed (deleted or merged), %d listed again",
                table,
                len(gone),
                len(back),
            )
        report = ObjectReport(SOURCE, f"{obj.name}:deletions", pages=requests)
        report.received = {spec.name: results[spec.name].received}
        report.inserted = {spec.name: results[spec.name].inserted}
        report.seconds = time.perf_counter() - started
        return report

    # ------------------------------------------------------------------ pages

    def _records(self, obj: BitrixObject, result: Any) -> list[dict]:
        if obj.items_key:
            result = (result or {}).get(obj.items_key) if isinstance(result, dict) else None
        if result is None or result == {}:
            return []
        if not isinstance(result, list):
            raise ApiError(SOURCE, obj.method, "unexpected response shape (`result` not a list)")
        return result

    def _page(self, obj: BitrixObject, records: list[dict], next_token: Any, carry=None) -> Page:
        tables = {obj.tables[0].name: [flatten(r) for r in records]}
        if obj.name in CHANNELS:
            tables[CHANNELS[obj.name].name] = _channel_rows(obj.name, records)
        versions = []
        if obj.version_field:
            field_name = obj.version_field.upper()
            versions = [v for v in (epoch(r.get(field_name)) for r in records) if v is not None]
        return Page(tables, next_token=next_token, versions=versions, carry=carry)

    def multiple_user_fields(self, obj: BitrixObject) -> tuple[str, ...]:
        """The user fields of `obj` that are multiple (`isMultiple` in `crm.<entity>.fields`),
        asked once per extractor: `UF_*` in `select` leaves them out (decision D101)."""
        if obj.fields_method is None:
            return ()
        if obj.fields_method not in self._multiple_fields:
            fields = self.call(obj.fields_method, {}).get("result")
            if not isinstance(fields, dict):
                raise ApiError(SOURCE, obj.fields_method, "unexpected response shape")
            self._multiple_fields[obj.fields_method] = tuple(
                sorted(
                    name
                    for name, info in fields.items()
                    if str(name).upper().startswith("UF_")
                    and isinstance(info, dict)
                    and str(info.get("isMultiple")).lower() in ("true", "y", "1")
                )
            )
        return self._multiple_fields[obj.fields_method]

    def _list_params(self, obj: BitrixObject, run: Run | None, after: Any) -> dict[str, Any]:
        """A list call's parameters after id `after`; `run` None: the ids-only pass."""
        params: dict[str, Any] = dict(obj.params)
        flt: dict[str, Any] = {">ID": after}
        if run is None:
            params["select"] = ["ID"]
        else:
            if obj.version_field and run.window_from is not None:
                flt[f">={obj.version_field.upper()}"] = iso(run.window_from)
            if "select" in params:
                params["select"] = [*params["select"], *self.multiple_user_fields(obj)]
        if obj.param_style == "voximplant":
            params.update({"FILTER": flt, "SORT": "ID", "ORDER": "ASC"})
        elif obj.param_style == "user":
            params.update({"FILTER": flt, "sort": "ID", "order": "ASC"})
        else:
            params.update({"filter": flt, "order": {"ID": "ASC"}})
        params["start"] = -1 if (obj.no_count or run is None) else 0
        return params

    def _id_fetcher(self, obj: BitrixObject):
        pages = self.settings.batch_pages
        margin = self.settings.overlap_ids

        def fetch(run: Run, token: Any) -> Page:
            last_id = int(run.carry.get("last_id", 0)) if obj.immutable else 0
            # an immutable object restarts `overlap_ids` below its last id (decision D103)
            after = token if token is not None else max(0, last_id - margin)
            records, full = self._keyset_pages(obj, run, after, pages)
            last = records[-1].get("ID") if records else None
            next_token = int(last) if (full and last is not None) else None
            carry = (
                {"last_id": max(last_id, int(last))}
                if (obj.immutable and last is not None)
                else None
            )
            return self._page(obj, records, next_token, carry)

        return fetch

    def _keyset_pages(
        self, obj: BitrixObject, run: Run | None, after: Any, pages: int
    ) -> tuple[list[dict], bool]:
        """Up to `pages` consecutive pages after id `after`; and whether the last was full."""
        if pages <= 1:
            data = self.call(obj.method, self._list_params(obj, run, after))
            records = self._records(obj, data["result"])
            return records, len(records) >= PAGE_SIZE
        path = f"[{obj.items_key}]" if obj.items_key else ""
        commands = {}
        for i in range(pages):
            ref = after if i == 0 else f"$result[p{i - 1}]{path}[{PAGE_SIZE - 1}][ID]"
            commands[f"p{i}"] = command(obj.method, self._list_params(obj, run, ref))
        result = self._batch_until_first_succeeds(obj, commands)
        results = result.get("result") or {}
        errors = result.get("result_error") or {}
        records: list[dict] = []
        for i in range(1, pages + 1):
            name = f"p{i - 1}"
            if i > 1 and isinstance(errors, dict) and errors.get(name):
                log.warning(
                    "%s batch page %d failed (%s); continuing from the last full page",
                    obj.method,
                    i - 1,
                    _error_code(errors[name])[0],
                )
                return records, True
            page = self._records(obj, results.get(name) if isinstance(results, dict) else None)
            records.extend(page)
            if len(page) < PAGE_SIZE:
                return records, False
        return records, True

    def _batch_until_first_succeeds(self, obj: BitrixObject, commands: dict[str, str]) -> dict:
        """The batch's answer once its first command succeeded: a retryable error there (the
        time budget, the request rate, a server error) is waited out and the batch sent again,
        like a single call's; any other error fails the run."""
        attempt, waited = 0, 0.0
        while True:
            result = self.batch(commands, obj.method)
            errors = result.get("result_error")
            first = errors.get("p0") if isinstance(errors, dict) else None
            if not first:
                return result
            code, text = _error_code(first)
            endpoint = f"batch {obj.method}"
            if code == TIME_LIMIT_CODE:
                waited = self._wait_for_reset(obj.method, waited)
                continue
            attempt += 1
            if code not in BATCH_RETRY_CODES or attempt >= self.client.retry.max_attempts:
                raise ApiError(
                    SOURCE,
                    endpoint,
                    f"{code}: {text}",
                    code=code,
                    attempts=attempt,
                    retryable=code in BATCH_RETRY_CODES,
                )
            delay = self.client.retry.backoff(attempt, self.client.rng)
            self.client.stats.retries += 1
            log.warning(
                "%s: first command failed (%s); retry %d of %d in %.1f s",
                endpoint,
                code,
                attempt,
                self.client.retry.max_attempts - 1,
                delay,
            )
            self._wait(delay)

    def _offset_fetcher(self, obj: BitrixObject):
        def fetch(run: Run, token: Any) -> Page:
            params = dict(obj.params)
            params["start"] = token or 0
            data = self.call(obj.method, params)
            records = self._records(obj, data.get("result"))
            next_start = data.get("next")
            return self._page(obj, records, int(next_start) if next_start else None)

        return fetch


def _error_code(error: Any) -> tuple[str, str]:
    """A batch command's error (`{"error", "error_description"}` or a bare code) as
    (code, description)."""
    if isinstance(error, dict):
        return str(error.get("error") or ""), str(error.get("error_description") or "")
    return str(error), ""
