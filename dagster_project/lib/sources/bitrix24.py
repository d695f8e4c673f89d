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

Errors: `{"error": CODE, "error_description": ...}`. `QUERY_LIMIT_EXCEEDED` (503; leaky bucket,
2 requests/s sustained, 50 burst on the standard plans) and 5xx are retried with back-off;
`expired_token` (401) refreshes an OAuth pair once (at `oauth.bitrix.info`, persisted in the
token store); `OVERLOAD_LIMIT`, `ACCESS_DENIED`, `insufficient_scope`, ... fail at once.

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
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"

RETRYABLE_CODES = frozenset(
    {
        "QUERY_LIMIT_EXCEEDED",
        "INTERNAL_SERVER_ERROR",
        "ERROR_UNEXPECTED_ANSWER",
        "OPERATION_TIME_LIMIT",
    }
)


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
            `VORONKA_BITRIX24_START_DATE`).
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
            start_from=date_to_epoch(env.get("VORONKA_BITRIX24_START_DATE")),
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

    @property
    def incremental(self) -> bool:
        return self.version_field is not None


CHANNELS = {
    "contacts": TableSpec("contact_channels", ("entity_id", "channel", "value"), "updated_at"),
    "companies": TableSpec("company_channels", ("entity_id", "channel", "value"), "updated_at"),
}

_SELECT_CRM = ("*", "UF_*")
_SELECT_CLIENT = ("*", "UF_*", "PHONE", "EMAIL")

OBJECTS: tuple[BitrixObject, ...] = (
    BitrixObject(
        "deals",
        "crm.deal.list",
        (TableSpec("deals", ("id",), "date_modify"),),
        params=(("select", _SELECT_CRM),),
        version_field="date_modify",
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
        (TableSpec("contacts", ("id",), "date_modify"), CHANNELS["contacts"]),
        params=(("select", _SELECT_CLIENT),),
        version_field="date_modify",
        description="Contacts (people) with phones and e-mails (multi-fields, also one per "
        "row in `contact_channels`) and user fields.",
    ),
    BitrixObject(
        "companies",
        "crm.company.list",
        (TableSpec("companies", ("id",), "date_modify"), CHANNELS["companies"]),
        params=(("select", _SELECT_CLIENT),),
        version_field="date_modify",
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
        (TableSpec("activities", ("id",), "last_updated"),),
        params=(("select", ("*", "COMMUNICATIONS")),),
        version_field="last_updated",
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

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One REST call; the whole answer (`result`, `next`, `total`, `time`)."""
        resp = self.client.post_json(
            f"{self.rest_url}/{method}", method, json_body=params, body_check=body_check
        )
        if not isinstance(resp.data, dict) or "result" not in resp.data:
            raise ApiError(SOURCE, method, "unexpected response shape (no `result`)")
        return resp.data

    def batch(self, commands: dict[str, str]) -> dict[str, Any]:
        """A `batch` of commands; `result` holds `result`, `result_error`, `result_next`, ..."""
        data = self.call("batch", {"halt": 0, "cmd": commands})
        result = data.get("result")
        if not isinstance(result, dict):
            raise ApiError(SOURCE, "batch", "unexpected response shape (no `result.result`)")
        return result

    def extract(
        self,
        writer: RawWriter,
        name: str,
        progress: Callable[[ObjectReport], None] | None = None,
    ) -> list[ObjectReport]:
        """Extract one object into `writer`'s schema."""
        obj = OBJECT_BY_NAME[name]
        fetch = self._offset_fetcher(obj) if obj.paging == "offset" else self._id_fetcher(obj)
        return [
            self._extract_object(
                writer,
                obj.name,
                {t.name: t for t in obj.tables},
                fetch,
                obj.method,
                incremental=obj.incremental,
                progress=progress,
            )
        ]

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

    def _list_params(self, obj: BitrixObject, run: Run, after: Any) -> dict[str, Any]:
        params: dict[str, Any] = dict(obj.params)
        flt: dict[str, Any] = {">ID": after}
        if obj.version_field and run.window_from is not None:
            flt[f">={obj.version_field.upper()}"] = iso(run.window_from)
        if obj.param_style == "voximplant":
            params.update({"FILTER": flt, "SORT": "ID", "ORDER": "ASC"})
        elif obj.param_style == "user":
            params.update({"FILTER": flt, "sort": "ID", "order": "ASC"})
        else:
            params.update({"filter": flt, "order": {"ID": "ASC"}})
        params["start"] = -1 if obj.no_count else 0
        return params

    def _id_fetcher(self, obj: BitrixObject):
        pages = self.settings.batch_pages

        def fetch(run: Run, token: Any) -> Page:
            after = (
                token
                if token is not None
                else (run.carry.get("last_id", 0) if obj.immutable else 0)
            )
            records, full = self._keyset_pages(obj, run, after, pages)
            last = records[-1].get("ID") if records else None
            next_token = int(last) if (full and last is not None) else None
            carry = {"last_id": int(last)} if (obj.immutable and last is not None) else None
            return self._page(obj, records, next_token, carry)

        return fetch

    def _keyset_pages(
        self, obj: BitrixObject, run: Run, after: Any, pages: int
    ) -> tuple[list[dict], bool]:
        """Up to `pages` consecutive pages after id `after`; and whether the last was full."""
        if pages <= 1:
            records = self._records(
                obj, self.call(obj.method, self._list_params(obj, run, after))["result"]
            )
            return records, len(records) >= PAGE_SIZE
        path = f"[{obj.items_key}]" if obj.items_key else ""
        commands = {}
        for i in range(pages):
            ref = after if i == 0 else f"$result[p{i - 1}]{path}[{PAGE_SIZE - 1}][ID]"
            commands[f"p{i}"] = command(obj.method, self._list_params(obj, run, ref))
        result = self.batch(commands)
        results = result.get("result") or {}
        errors = result.get("result_error") or {}
        records: list[dict] = []
        for i in range(pages):
            name = f"p{i}"
            if isinstance(errors, dict) and name in errors and errors[name]:
                error = errors[name]
                code = error.get("error") if isinstance(error, dict) else str(error)
                if i == 0:
                    text = error.get("error_description", "") if isinstance(error, dict) else ""
                    raise ApiError(SOURCE, f"batch {obj.method}", f"{code}: {text}", code=code)
                log.warning(
                    "%s batch page %d failed (%s); continuing from the last full page",
                    obj.method,
                    i,
                    code,
                )
                return records, True
            page = self._records(obj, results.get(name) if isinstance(results, dict) else None)
            records.extend(page)
            if len(page) < PAGE_SIZE:
                return records, False
        return records, True

    def _offset_fetcher(self, obj: BitrixObject):
        def fetch(run: Run, token: Any) -> Page:
            params = dict(obj.params)
            params["start"] = token or 0
            data = self.call(obj.method, params)
            records = self._records(obj, data.get("result"))
            next_start = data.get("next")
            return self._page(obj, records, int(next_start) if next_start else None)

        return fetch
