"""amoCRM API v4 into `raw_amocrm`.

Endpoints (GET, `application/hal+json`, 204 for an empty list):

- leads: `/api/v4/leads?with=contacts,loss_reason,source_id` → `leads`; 250 a page, window
  `filter[updated_at][from/to]`, read in `updated_at` order by key (see "Paging");
- deleted_leads: `/api/v4/leads?with=only_deleted` → `deleted_leads`: the leads in amoCRM's
  trash (deleted or merged away), a snapshot read in full every run (D96);
- events: `/api/v4/events` → `events`: of leads, contacts and companies, the types in
  `EVENT_TYPES` (stage changes, responsible changes, deletions and restorations, D96); 100 a
  page (the documented maximum), window `filter[created_at][from/to]`, page numbers (events are
  immutable and never deleted, so the pages cannot shift);
- contacts, companies: `/api/v4/contacts`, `/api/v4/companies` → `contacts` +
  `contact_channels`, `companies` + `company_channels`; 250, `updated_at`, by key;
- users: `/api/v4/users?with=role,group` → `users`; a snapshot;
- tasks: `/api/v4/tasks` → `tasks`; 250, `updated_at`, page numbers (tasks sort only by
  created_at, complete_till and id);
- pipelines: `/api/v4/leads/pipelines` → `pipelines` + `statuses`; one page, a snapshot;
- call_notes: `/api/v4/{leads,contacts,companies,customers}/notes`, `filter[note_type][]` =
  `call_in`, `call_out` → `call_notes`; 250, `updated_at`, by key (an account without the
  customers feature answers the customers' notes with 402/403/404: no notes there);
- account: `/api/v4/account` → `account`; one object, a snapshot: its `currency` is the currency
  of every amount of the account (D95).

Paging (D97): page numbers over a list that loses a record mid-run (deleted, merged) shift every
later record one place up, and the record at the page boundary is never read (until it changes
again). The mutable lists are therefore read by key: `order[updated_at]=asc` inside
`filter[updated_at][from]=t` (inclusive) and `[to]=<run start>`; the next request starts at the
page's largest `updated_at`, skipping the ids already read at that second. When a whole page has
one `updated_at` (a bulk update), that second is read on its own by page number and `order[id]`,
then the key goes on after it.

`contact_channels` / `company_channels` are the phones and e-mails of the `PHONE`/`EMAIL`
multi-fields, one row per value (the same data as in `custom_fields_values`, split here so that
staging needs no JSON). A stage change's responsible manager at the time is the lead's
responsible user as of the latest `entity_responsible_changed` event before it (phase 2).

Authorisation: a long-lived token (`VORONKA_AMOCRM_LONG_LIVED_TOKEN`), or OAuth 2.0 with
`VORONKA_AMOCRM_ACCESS_TOKEN`, `..._REFRESH_TOKEN`, `..._CLIENT_ID`, `..._CLIENT_SECRET`,
`..._REDIRECT_URI`: on 401 (or when the pair is known to be expired) the pair is refreshed once
at `/oauth2/access_token` and the new pair saved in the token store. Rate limit: 7 requests per
second per account is the documented limit; the client keeps 6 by default, so that a clock
jitter or another integration of the account does not earn 429s (D95); back-off on 429 and 5xx.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster_project.lib.sources.engine import ApiExtractor, ObjectReport, Page, Run, date_to_epoch
from dagster_project.lib.sources.http import ApiError, HttpClient
from dagster_project.lib.sources.secrets import Secret, env_secret
from dagster_project.lib.sources.state import RawWriter, TableSpec, channel_row, flatten
from dagster_project.lib.sources.tokens import (
    PairAuth,
    TokenPair,
    TokenStore,
    current_pair,
    token_store_path,
)

log = logging.getLogger("voronka.sources.amocrm")

SOURCE = "amocrm"
PAGE_LIMIT = 250
EVENTS_LIMIT = 100
EVENT_TYPES = (
    "lead_status_changed",
    "entity_responsible_changed",
    "lead_deleted",
    "lead_restored",
    "contact_deleted",
    "contact_restored",
    "company_deleted",
    "company_restored",
)
EVENT_ENTITIES = ("lead", "contact", "company")
NOTE_TYPES = ("call_in", "call_out")
NOTE_ENTITIES = ("leads", "contacts", "companies", "customers")
# the answers to the notes of an entity the account has switched off (customers)
OPTIONAL_ENTITY_STATUSES = (402, 403, 404)
OPTIONAL_ENTITIES = ("customers",)


@dataclass(frozen=True)
class AmoCrmSettings:
    """amoCRM connection settings (environment only; the secrets are `Secret`s).

    Attributes:
        base_url: `https://<subdomain>.amocrm.ru` (`VORONKA_AMOCRM_BASE_URL`).
        long_lived_token: `VORONKA_AMOCRM_LONG_LIVED_TOKEN` (used when set).
        access_token, refresh_token, client_id, client_secret, redirect_uri: the OAuth
            integration (`VORONKA_AMOCRM_ACCESS_TOKEN`, ...).
        token_store: `VORONKA_TOKEN_STORE`.
        per_second: the client-side rate limit (`VORONKA_AMOCRM_RPS`, default 6: amoCRM
            documents 7 a second, D95).
        overlap_seconds: incremental overlap (`VORONKA_AMOCRM_OVERLAP_SECONDS`, default 300).
        start_from: epoch seconds of the first run's window (`VORONKA_AMOCRM_START_DATE`,
            `YYYY-MM-DD`, midnight in the business time zone `VORONKA_TIMEZONE`; default:
            everything).
    """

    base_url: str
    long_lived_token: Secret | None = None
    access_token: Secret | None = None
    refresh_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    token_store: Path = field(default_factory=lambda: token_store_path({}))
    per_second: float = 6.0
    overlap_seconds: float = 300.0
    start_from: float | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AmoCrmSettings | None:
        """The settings, or None when amoCRM is not configured (the source is disabled)."""
        env = dict(os.environ if env is None else env)
        base_url = (env.get("VORONKA_AMOCRM_BASE_URL") or "").strip().rstrip("/")
        long_lived = env_secret(env, "VORONKA_AMOCRM_LONG_LIVED_TOKEN")
        access = env_secret(env, "VORONKA_AMOCRM_ACCESS_TOKEN")
        if not base_url or not (long_lived or access):
            return None
        return cls(
            base_url=base_url,
            long_lived_token=long_lived,
            access_token=access,
            refresh_token=env_secret(env, "VORONKA_AMOCRM_REFRESH_TOKEN"),
            client_id=(env.get("VORONKA_AMOCRM_CLIENT_ID") or "").strip() or None,
            client_secret=env_secret(env, "VORONKA_AMOCRM_CLIENT_SECRET"),
            redirect_uri=(env.get("VORONKA_AMOCRM_REDIRECT_URI") or "").strip() or None,
            token_store=token_store_path(env),
            per_second=float(env.get("VORONKA_AMOCRM_RPS") or 6),
            overlap_seconds=float(env.get("VORONKA_AMOCRM_OVERLAP_SECONDS") or 300),
            start_from=date_to_epoch(
                env.get("VORONKA_AMOCRM_START_DATE"), env.get("VORONKA_TIMEZONE")
            ),
        )


class AmoCrmAuth(PairAuth):
    """Bearer token: long-lived, or an OAuth pair refreshed once on 401 and persisted."""

    label = "amoCRM"
    log = log

    def __init__(self, settings: AmoCrmSettings, store: TokenStore | None = None):
        super().__init__(settings, SOURCE, store)
        if settings.long_lived_token:
            self.pair = TokenPair(settings.long_lived_token, None)
            self.oauth = False
        else:
            env_pair = TokenPair(settings.access_token, settings.refresh_token)
            self.pair = current_pair(self.store, self.key, env_pair)
            self.oauth = True

    def __repr__(self) -> str:
        return f"AmoCrmAuth(host={self.settings.host!r}, oauth={self.oauth})"

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self.pair.access_token.reveal()}"

    def can_refresh(self) -> bool:
        return self.oauth and super().can_refresh()

    def refresh(self, client: HttpClient) -> None:
        s = self.settings
        body = {
            "client_id": s.client_id,
            "client_secret": s.client_secret.reveal(),
            "grant_type": "refresh_token",
            "refresh_token": self.pair.refresh_token.reveal(),
        }
        if s.redirect_uri:
            body["redirect_uri"] = s.redirect_uri
        resp = client.post_json(
            f"{s.base_url}/oauth2/access_token",
            "POST /oauth2/access_token",
            json_body=body,
            authenticate=False,
        )
        self.keep_answer(
            resp.data,
            "POST /oauth2/access_token",
            lambda data: (
                time.time() + float(data["expires_in"]) if data.get("expires_in") else None
            ),
        )


@dataclass(frozen=True)
class AmoObject:
    """One extracted amoCRM object.

    Attributes:
        name: object (and main table) name.
        path: the endpoint path.
        embedded: the key under `_embedded` holding the records; None: the answer is one object.
        tables: the raw tables it fills.
        incremental_field: the field of the window filter (`updated_at`, `created_at`);
            None: a snapshot.
        params: fixed query parameters.
        limit: page size.
        order_by_id: page numbers in `order[id]=asc` (when not `by_key`).
        by_key: read in `updated_at` order by key instead of page numbers (D97).
        description: for the asset.
    """

    name: str
    path: str
    embedded: str | None
    tables: tuple[TableSpec, ...]
    incremental_field: str | None = "updated_at"
    params: tuple[tuple[str, str], ...] = ()
    limit: int = PAGE_LIMIT
    order_by_id: bool = True
    by_key: bool = False
    description: str = ""

    @property
    def endpoint(self) -> str:
        return f"GET {self.path}"


def _channel_rows(entity_type: str, records: list[dict]) -> list[dict[str, str | None]]:
    """Phones and e-mails of contacts/companies, one row per value."""
    rows = []
    for record in records:
        for cf in record.get("custom_fields_values") or []:
            code = (cf.get("field_code") or "").upper()
            if code not in ("PHONE", "EMAIL"):
                continue
            for value in cf.get("values") or []:
                text = str(value.get("value") or "").strip()
                if not text:
                    continue
                rows.append(
                    channel_row(
                        entity_type,
                        str(record.get("id")),
                        "phone" if code == "PHONE" else "email",
                        text,
                        ("enum_code", value.get("enum_code")),
                        str(record.get("updated_at")),
                    )
                )
    return rows


CHANNELS = {
    "contacts": TableSpec("contact_channels", ("entity_id", "channel", "value")),
    "companies": TableSpec("company_channels", ("entity_id", "channel", "value")),
}

OBJECTS: tuple[AmoObject, ...] = (
    AmoObject(
        "leads",
        "/api/v4/leads",
        "leads",
        (TableSpec("leads"),),
        params=(("with", "contacts,loss_reason,source_id"),),
        by_key=True,
        description="Deals (сделки) with their pipeline, status, responsible user, price, "
        "custom fields and linked contacts (`_embedded`, `is_main` marks the main contact).",
    ),
    AmoObject(
        "deleted_leads",
        "/api/v4/leads",
        "leads",
        (TableSpec("deleted_leads"),),
        incremental_field=None,
        params=(("with", "only_deleted"),),
        description="Deals in amoCRM's trash (deleted, or merged into another deal): a snapshot "
        "read in full every run; a deal here counts nowhere (D96).",
    ),
    AmoObject(
        "events",
        "/api/v4/events",
        "events",
        (TableSpec("events", ("id",), "created_at"),),
        incremental_field="created_at",
        params=(
            ("filter[type]", ",".join(EVENT_TYPES)),
            *(("filter[entity][]", e) for e in EVENT_ENTITIES),
        ),
        limit=EVENTS_LIMIT,
        order_by_id=False,
        description="Events of deals, contacts and companies: `lead_status_changed` (the stage "
        "history: value_before/value_after hold pipeline and status), "
        "`entity_responsible_changed` (who was responsible when), and `*_deleted` / "
        "`*_restored` (deletions, merges and restorations, D96).",
    ),
    AmoObject(
        "contacts",
        "/api/v4/contacts",
        "contacts",
        (TableSpec("contacts"), CHANNELS["contacts"]),
        by_key=True,
        description="Contacts (people) with custom fields; their phones and e-mails also one "
        "per row in `contact_channels`.",
    ),
    AmoObject(
        "companies",
        "/api/v4/companies",
        "companies",
        (TableSpec("companies"), CHANNELS["companies"]),
        by_key=True,
        description="Companies with custom fields; their phones and e-mails also one per row "
        "in `company_channels`.",
    ),
    AmoObject(
        "users",
        "/api/v4/users",
        "users",
        (TableSpec("users", ("id",), None),),
        incremental_field=None,
        params=(("with", "role,group"),),
        order_by_id=False,
        description="Users of the account (managers), with role and group; a snapshot, a "
        "changed user adds a row.",
    ),
    AmoObject(
        "tasks",
        "/api/v4/tasks",
        "tasks",
        (TableSpec("tasks"),),
        description="Tasks (calls to make, meetings, follow-ups) with their entity, "
        "responsible user, due time and result.",
    ),
    AmoObject(
        "pipelines",
        "/api/v4/leads/pipelines",
        "pipelines",
        (TableSpec("pipelines", ("id",), None), TableSpec("statuses", ("pipeline_id", "id"), None)),
        incremental_field=None,
        order_by_id=False,
        description="Sales pipelines and, in `statuses`, their stages in order (sort, type; "
        "142 = won, 143 = lost, type 1 = incoming leads (неразобранное)); a snapshot.",
    ),
    AmoObject(
        "call_notes",
        "/api/v4/{entity}/notes",
        "notes",
        (TableSpec("call_notes", ("entity_type", "id")),),
        params=tuple(("filter[note_type][]", t) for t in NOTE_TYPES),
        by_key=True,
        description="Calls logged by telephony integrations: `call_in`/`call_out` notes of "
        "leads, contacts, companies and customers (params: phone, duration, call_status, "
        "source).",
    ),
    AmoObject(
        "account",
        "/api/v4/account",
        None,
        (TableSpec("account", ("id",), None),),
        incremental_field=None,
        order_by_id=False,
        description="The account: its name, subdomain and `currency` (the currency of every "
        "deal amount, D95); a snapshot.",
    ),
)

OBJECT_BY_NAME = {o.name: o for o in OBJECTS}


class AmoCrmExtractor(ApiExtractor):
    """Extracts amoCRM objects into `raw_amocrm` through one rate-limited client."""

    source = SOURCE

    def __init__(self, settings: AmoCrmSettings, *, store: TokenStore | None = None, **options):
        """`store`: the OAuth token store (default: the settings'); `options`: those of
        `ApiExtractor` (retry, sleep, clock, monotonic; client)."""
        self.auth = AmoCrmAuth(settings, store)
        super().__init__(settings, settings.base_url, self.auth, **options)

    def extract(
        self,
        writer: RawWriter,
        name: str,
        progress: Callable[[ObjectReport], None] | None = None,
    ) -> list[ObjectReport]:
        """Extract one object (all its endpoints) into `writer`'s schema."""
        obj = OBJECT_BY_NAME[name]
        specs = {t.name: t for t in obj.tables}
        reports = []
        paths = (
            [(obj.path.format(entity=e), e) for e in NOTE_ENTITIES]
            if "{entity}" in obj.path
            else [(obj.path, None)]
        )
        for path, entity in paths:
            state_key = f"{obj.name}:{entity}" if entity else obj.name
            reports.append(
                self._extract_object(
                    writer,
                    state_key,
                    specs,
                    self._fetcher(obj, path, entity),
                    f"GET {path}",
                    incremental=obj.incremental_field is not None,
                    progress=progress,
                )
            )
        return reports

    # ------------------------------------------------------------------ paging

    def _first_params(self, obj: AmoObject, run: Run) -> list[tuple[str, Any]]:
        params: list[tuple[str, Any]] = [("limit", obj.limit)]
        if obj.embedded is None:
            return []
        if obj.name != "pipelines":
            params.append(("page", 1))
        params.extend(obj.params)
        if obj.order_by_id:
            params.append(("order[id]", "asc"))
        if obj.incremental_field and run.window_from is not None:
            params.append((f"filter[{obj.incremental_field}][from]", int(run.window_from)))
        if obj.incremental_field == "created_at":
            # events are immutable: bound the window so that no event enters it mid-run
            params.append(("filter[created_at][to]", int(run.run_started_at)))
        return params

    def _key_params(self, obj: AmoObject, run: Run, token: dict) -> list[tuple[str, Any]]:
        """The query of one page read by key (D97): from `token["from"]` (None: the start)
        to the run's start in `updated_at` order, or one second by page number and id."""
        params: list[tuple[str, Any]] = [("limit", obj.limit), *obj.params]
        start = token.get("from")
        if token.get("block"):
            params += [
                ("page", token["block"]),
                ("order[id]", "asc"),
                ("filter[updated_at][from]", start),
                ("filter[updated_at][to]", start),
            ]
            return params
        params += [("page", 1), ("order[updated_at]", "asc")]
        if start is not None:
            params.append(("filter[updated_at][from]", start))
        params.append(("filter[updated_at][to]", int(run.run_started_at)))
        return params

    # complexity (C901): builds `fetch` below
    def _fetcher(self, obj: AmoObject, path: str, entity: str | None):  # noqa: C901
        base = self.settings.base_url

        # complexity (C901, PLR0912): amoCRM's paging modes (keyed, by second, by page) in one
        # resumable token (D97); a split would spread the token's states over functions
        def fetch(run: Run, token: Any) -> Page:  # noqa: C901, PLR0912
            endpoint = f"GET {path}"
            if obj.by_key:
                if token is None:
                    start = run.window_from
                    token = {"from": int(start) if start is not None else None, "seen": []}
                params = self._key_params(obj, run, token)
                resp = self._get(base + path, endpoint, params, entity)
            elif token is None:
                resp = self._get(base + path, endpoint, self._first_params(obj, run), entity)
            else:
                resp = self._get(base + token, endpoint, None, entity)
            data = resp.data if resp is not None else None
            if data is None:  # 204 No Content (or an entity switched off): nothing (more)
                return Page({t.name: [] for t in obj.tables})
            if not isinstance(data, dict):
                raise ApiError(SOURCE, endpoint, "unexpected response shape (not an object)")
            if obj.embedded is None:
                records = [data]
            else:
                records = (data.get("_embedded") or {}).get(obj.embedded) or []
            if not isinstance(records, list):
                raise ApiError(SOURCE, endpoint, f"`_embedded.{obj.embedded}` is not a list")
            if obj.by_key:
                records, next_token = self._next_key(obj, run, token, records)
            else:
                next_token = self._next_token(data, endpoint)
            if entity:
                records = [{**r, "entity_type": entity} for r in records]
            tables = {obj.tables[0].name: [flatten(r) for r in records]}
            if obj.name == "pipelines":
                statuses = []
                for pipeline in records:
                    for status in (pipeline.get("_embedded") or {}).get("statuses") or []:
                        statuses.append(flatten({"pipeline_id": pipeline.get("id"), **status}))
                tables["statuses"] = statuses
            if obj.name in CHANNELS:
                tables[CHANNELS[obj.name].name] = _channel_rows(obj.name, records)
            versions = []
            if obj.incremental_field:
                for r in records:
                    value = r.get(obj.incremental_field)
                    if isinstance(value, (int, float)):
                        versions.append(float(value))
            return Page(tables, next_token=next_token, versions=versions)

        return fetch

    def _get(self, url: str, endpoint: str, params, entity: str | None):
        """One GET; None for the notes of an entity the account has switched off."""
        try:
            return self.client.get_json(url, endpoint, params=params)
        except ApiError as error:
            if entity in OPTIONAL_ENTITIES and error.status in OPTIONAL_ENTITY_STATUSES:
                log.info(
                    "amoCRM %s: HTTP %s, the account has no %s; nothing to read there",
                    endpoint,
                    error.status,
                    entity,
                )
                return None
            raise

    @staticmethod
    def _next_key(obj: AmoObject, run: Run, token: dict, records: list[dict]):
        """The page's new records and the next key token (None: the last page), D97."""
        start = token.get("from")
        full = len(records) >= obj.limit
        if token.get("block"):
            if full:
                return records, {"from": start, "seen": [], "block": token["block"] + 1}
            after = start + 1
            return records, (
                {"from": after, "seen": []} if after <= int(run.run_started_at) else None
            )
        seen = set(token.get("seen") or [])

        def version(record: dict) -> int:
            value = record.get("updated_at")
            return int(value) if isinstance(value, (int, float)) else (start or 0)

        fresh = [r for r in records if not (version(r) == start and r.get("id") in seen)]
        if not full:
            return fresh, None
        top = max(version(r) for r in records)
        if top == start:  # a whole page in one second: read that second on its own
            return fresh, {"from": start, "seen": [], "block": 1}
        at_top = sorted(r.get("id") for r in records if version(r) == top)
        return fresh, {"from": top, "seen": at_top}

    def _next_token(self, data: dict, endpoint: str) -> str | None:
        href = ((data.get("_links") or {}).get("next") or {}).get("href")
        if not href:
            return None
        split = urlsplit(href)
        if split.netloc and split.netloc != self.settings.host:
            raise ApiError(
                SOURCE, endpoint, f"`_links.next` points to another host ({split.netloc})"
            )
        return split.path + (f"?{split.query}" if split.query else "")
