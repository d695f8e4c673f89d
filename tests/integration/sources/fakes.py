"""Local fake servers that speak the amoCRM v4, Bitrix24 REST and Mango Office VPBX protocols.

Each runs a `ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port (started and stopped by
the fixtures in `conftest.py`), keeps a log of the requests it served, and refuses to serve more
than `max_requests` (a runaway loop fails the test instead of spinning).

Faults are queued with `fail(...)`: the next matching requests get the given answer instead of
the real one (429 with `Retry-After`, 503 `QUERY_LIMIT_EXCEEDED`, 500, malformed JSON, ...).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit


@dataclass
class Fault:
    """Answer `times` requests whose path contains `path` (and whose query/body contains
    `contains`, when given) with `status`, `body` and `headers`."""

    path: str
    status: int
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    contains: str | None = None


@dataclass
class Request:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


class FakeServer:
    """Base of the fakes: the HTTP plumbing, the request log, faults and the request budget."""

    def __init__(self, max_requests: int = 5000):
        self.max_requests = max_requests
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.budget_exhausted = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = Request(method, split.path, split.query, body, dict(self.headers))
                status, headers, payload = fake._dispatch(request)
                data = payload if isinstance(payload, bytes) else payload.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, path: str, status: int, body: bytes | str = b"", times: int = 1, **kw) -> None:
        self.faults.append(Fault(path, status, body, times=times, **kw))

    def _dispatch(self, request: Request) -> tuple[int, dict[str, str], bytes | str]:
        with self.lock:
            self.requests.append(request)
            if len(self.requests) > self.max_requests:
                self.budget_exhausted = True
                return 500, {}, b"request budget of the fake server exhausted"
            for fault in self.faults:
                hay = request.query + request.body.decode(errors="replace")
                if (
                    fault.times > 0
                    and fault.path in request.path
                    and (fault.contains is None or fault.contains in unquote(hay))
                ):
                    fault.times -= 1
                    return fault.status, dict(fault.headers), fault.body
        return self.handle(request)

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes | str]:
        raise NotImplementedError

    @staticmethod
    def json_response(status: int, data: Any, content_type: str = "application/json"):
        return status, {"Content-Type": content_type}, json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------------- amoCRM


def make_amo_data(n_leads: int = 0, n_contacts: int = 0, base_time: int = 1_767_225_600) -> dict:
    """Deterministic amoCRM records: leads, contacts, companies, users, tasks, events, notes."""
    leads = [
        {
            "id": 1000 + i,
            "name": f"Сделка {i}",
            "price": 10000 + i,
            "responsible_user_id": 11 + i % 3,
            "group_id": 0,
            "status_id": 142 if i % 7 == 0 else 1001 + i % 3,
            "pipeline_id": 501,
            "loss_reason_id": None,
            "created_by": 11,
            "updated_by": 11,
            "created_at": base_time + i * 60,
            "updated_at": base_time + i * 60 + 30,
            "closed_at": None,
            "is_deleted": False,
            "custom_fields_values": [
                {
                    "field_id": 77,
                    "field_name": "Канал",
                    "field_code": None,
                    "field_type": "select",
                    "values": [{"value": "Сайт", "enum_id": 5}],
                }
            ],
            "account_id": 42,
            "_embedded": {
                "tags": [],
                "contacts": [{"id": 5000 + i % max(n_contacts, 1), "is_main": True}],
            },
        }
        for i in range(n_leads)
    ]
    contacts = [
        {
            "id": 5000 + i,
            "name": f"Клиент {i}",
            "responsible_user_id": 11,
            "created_at": base_time + i,
            "updated_at": base_time + i + 10,
            "custom_fields_values": [
                {
                    "field_id": 1,
                    "field_name": "Телефон",
                    "field_code": "PHONE",
                    "field_type": "multitext",
                    "values": [
                        {"value": f"8 (916) 000-{i:02d}-{i % 100:02d}", "enum_code": "WORK"}
                    ],
                },
                {
                    "field_id": 2,
                    "field_name": "Email",
                    "field_code": "EMAIL",
                    "field_type": "multitext",
                    "values": [{"value": f"Client{i}@Example.com", "enum_code": "WORK"}],
                },
            ],
            "account_id": 42,
        }
        for i in range(n_contacts)
    ]
    users = [
        {
            "id": 11 + i,
            "name": f"Менеджер {i}",
            "email": f"m{i}@example.com",
            "lang": "ru",
            "rights": {"is_admin": False, "is_active": True},
        }
        for i in range(3)
    ]
    pipelines = [
        {
            "id": 501,
            "name": "Продажи",
            "sort": 1,
            "is_main": True,
            "is_archive": False,
            "account_id": 42,
            "_embedded": {
                "statuses": [
                    {"id": 1001, "name": "Новая", "sort": 10, "pipeline_id": 501, "type": 0},
                    {"id": 1002, "name": "Переговоры", "sort": 20, "pipeline_id": 501, "type": 0},
                    {
                        "id": 142,
                        "name": "Успешно реализовано",
                        "sort": 10000,
                        "pipeline_id": 501,
                        "type": 0,
                    },
                    {
                        "id": 143,
                        "name": "Закрыто и не реализовано",
                        "sort": 11000,
                        "pipeline_id": 501,
                        "type": 0,
                    },
                ]
            },
        },
    ]
    events = [
        {
            "id": f"01ev{i:020d}",
            "type": "lead_status_changed",
            "entity_id": 1000 + i,
            "entity_type": "lead",
            "created_by": 11,
            "created_at": base_time + i * 60 + 30,
            "account_id": 42,
            "value_before": [{"lead_status": {"id": 1001, "pipeline_id": 501}}],
            "value_after": [{"lead_status": {"id": 1002, "pipeline_id": 501}}],
        }
        for i in range(n_leads)
    ]
    tasks = [
        {
            "id": 9000 + i,
            "entity_id": 1000 + i,
            "entity_type": "leads",
            "responsible_user_id": 11,
            "task_type_id": 1,
            "text": "Позвонить",
            "is_completed": i % 2 == 0,
            "complete_till": base_time + 86400,
            "created_at": base_time + i,
            "updated_at": base_time + i + 5,
        }
        for i in range(min(n_leads, 30))
    ]
    notes = {
        "contacts": [
            {
                "id": 70000 + i,
                "entity_id": 5000 + i,
                "created_by": 11,
                "updated_by": 11,
                "created_at": base_time + i,
                "updated_at": base_time + i,
                "responsible_user_id": 11,
                "note_type": "call_in" if i % 2 else "call_out",
                "params": {
                    "uniq": f"call-{i}",
                    "duration": 60 + i,
                    "source": "onlinepbx",
                    "phone": f"+7916000{i:04d}",
                    "call_status": 4,
                    "call_result": "",
                },
            }
            for i in range(min(n_contacts, 20))
        ],
        "leads": [],
        "companies": [],
    }
    return {
        "leads": leads,
        "contacts": contacts,
        "companies": [],
        "users": users,
        "tasks": tasks,
        "events": events,
        "pipelines": pipelines,
        "notes": notes,
    }


class FakeAmoCrm(FakeServer):
    """amoCRM API v4: bearer tokens, `/oauth2/access_token`, HAL pages, 204 when empty, the
    trash (`with=only_deleted`), `/api/v4/account`, and 402 for the notes of customers when the
    data has none (the feature switched off). `after_page` hooks run after each list page is
    answered (e.g. to delete a record mid-run)."""

    def __init__(self, data: dict | None = None, **kw):
        super().__init__(**kw)
        self.data = data or make_amo_data()
        self.after_page: list = []
        self.access_tokens = {"access-token-AAAA"}
        self.refresh_tokens = {"refresh-token-RRRR"}
        self.client_secret = "client-secret-SSSS"
        self.refreshes = 0
        self._counter = 0
        # a refresh that takes a while (so that two clients overlap) and, as Bitrix24 does,
        # invalidates every access token issued before it
        self.token_delay = 0.0
        self.invalidate_on_refresh = False

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (the refresh tokens still do)."""
        self.access_tokens = set()

    def handle(self, request: Request):
        if request.path == "/oauth2/access_token":
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return self.json_response(
                401,
                {
                    "title": "Unauthorized",
                    "type": "https://httpstatus.es/401",
                    "status": 401,
                    "detail": "Неверный логин или пароль",
                },
                "application/problem+json",
            )
        if request.path == "/api/v4/leads/pipelines":
            return self._hal(request, "pipelines", self.data["pipelines"], paged=False)
        if request.path == "/api/v4/account":
            account = self.data.get("account") or {
                "id": 42,
                "name": "Тестовый аккаунт",
                "subdomain": "test",
                "currency": "RUB",
                "currency_symbol": "₽",
            }
            return self.json_response(200, account, "application/hal+json")
        match = re.fullmatch(r"/api/v4/(leads|contacts|companies|customers)/notes", request.path)
        if match:
            notes = self.data["notes"].get(match.group(1))
            if notes is None:
                return self.json_response(
                    402, {"title": "Payment Required", "status": 402}, "application/problem+json"
                )
            return self._hal(request, "notes", notes)
        match = re.fullmatch(r"/api/v4/(leads|contacts|companies|users|tasks|events)", request.path)
        if match:
            key = match.group(1)
            records = self.data[key]
            if key == "leads" and "only_deleted" in (request.params.get("with") or [""])[0]:
                records = self.data.get("deleted_leads") or []
            answer = self._hal(request, key, records)
            for hook in self.after_page:
                hook(self, request)
            return answer
        return self.json_response(
            404, {"title": "Not Found", "status": 404}, "application/problem+json"
        )

    def _token(self, request: Request):
        body = request.json()
        if (
            body.get("grant_type") != "refresh_token"
            or body.get("client_secret") != self.client_secret
            or body.get("refresh_token") not in self.refresh_tokens
        ):
            return self.json_response(
                400, {"title": "Bad Request", "hint": "Token has been revoked"}
            )
        self.refresh_tokens.discard(body["refresh_token"])  # single use
        self._counter += 1
        self.refreshes += 1
        access, refresh = (
            f"access-token-N{self._counter:03d}",
            f"refresh-token-N{self._counter:03d}",
        )
        if self.token_delay:
            time.sleep(self.token_delay)
        if self.invalidate_on_refresh:
            self.access_tokens = set()
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return self.json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 86400,
                "access_token": access,
                "refresh_token": refresh,
            },
        )

    def _hal(self, request: Request, key: str, records: list[dict], paged: bool = True):
        params = request.params

        def one(name):
            values = params.get(name)
            return values[0] if values else None

        rows = _amo_filtered(list(records), params, one)
        if one("order[id]") == "asc":
            rows.sort(key=lambda r: r["id"])
        if one("order[updated_at]") == "asc":
            # ties in no useful order (the API promises none): the reader must not rely on it
            rows.sort(key=lambda r: (r.get("updated_at", 0), -int(r["id"])))
        limit = int(one("limit") or 50)
        page = int(one("page") or 1)
        if key == "events" and limit > 100:
            return self.json_response(400, {"title": "Bad Request", "detail": "limit > 100"})
        chunk = rows[(page - 1) * limit : page * limit] if paged else rows
        if not chunk:
            return 204, {}, b""
        links = {"self": {"href": f"{self.url}{request.path}?{request.query}"}}
        if paged and page * limit < len(rows):
            query = re.sub(r"(^|&)page=\d+", "", request.query).lstrip("&")
            links["next"] = {"href": f"{self.url}{request.path}?page={page + 1}&{query}"}
        body = {"_page": page, "_links": links, "_embedded": {key: chunk}}
        return self.json_response(200, body, "application/hal+json")


def _amo_filtered(rows: list[dict], params: dict, one) -> list[dict]:
    """The rows an amoCRM list's `filter[...]` parameters keep."""
    if one("filter[updated_at][from]") is not None:
        rows = [r for r in rows if r.get("updated_at", 0) >= int(one("filter[updated_at][from]"))]
    if one("filter[updated_at][to]") is not None:
        rows = [r for r in rows if r.get("updated_at", 0) <= int(one("filter[updated_at][to]"))]
    if params.get("filter[entity][]"):
        rows = [r for r in rows if r.get("entity_type") in params["filter[entity][]"]]
    if one("filter[created_at][from]") is not None:
        rows = [r for r in rows if r["created_at"] >= int(one("filter[created_at][from]"))]
    if one("filter[created_at][to]") is not None:
        rows = [r for r in rows if r["created_at"] <= int(one("filter[created_at][to]"))]
    if one("filter[type]"):
        types = one("filter[type]").split(",")
        rows = [r for r in rows if r["type"] in types]
    if params.get("filter[note_type][]"):
        rows = [r for r in rows if r["note_type"] in params["filter[note_type][]"]]
    return rows


# ------------------------------------------------------------------------------- Bitrix24


def make_bitrix_data(n_deals: int = 0, n_history: int = 0, n_calls: int = 0) -> dict:
    def ts(minutes: int) -> str:
        h, m = divmod(minutes, 60)
        d, h = divmod(h, 24)
        return f"2026-01-{1 + d % 28:02d}T{h:02d}:{m:02d}:00+03:00"

    deals = [
        {
            "ID": str(1 + i),
            "TITLE": f"Сделка {i}",
            "CATEGORY_ID": str(i % 2),
            "STAGE_ID": "NEW" if i % 2 == 0 else "C1:NEW",
            "OPPORTUNITY": f"{1000 + i}.00",
            "CURRENCY_ID": "RUB",
            "ASSIGNED_BY_ID": str(1 + i % 3),
            "CONTACT_ID": str(1 + i % 5),
            "DATE_CREATE": ts(i),
            "DATE_MODIFY": ts(i + 5),
            "CLOSED": "N",
            "UF_CRM_CHANNEL": "site",
        }
        for i in range(n_deals)
    ]
    contacts = [
        {
            "ID": str(1 + i),
            "NAME": f"Имя {i}",
            "LAST_NAME": "Фамилия",
            "DATE_CREATE": ts(i),
            "DATE_MODIFY": ts(i + 1),
            "PHONE": [
                {
                    "ID": str(100 + i),
                    "VALUE_TYPE": "WORK",
                    "VALUE": f"+7 916 000 {i:02d} {i:02d}",
                    "TYPE_ID": "PHONE",
                }
            ],
            "EMAIL": [
                {
                    "ID": str(200 + i),
                    "VALUE_TYPE": "WORK",
                    "VALUE": f"c{i}@example.ru",
                    "TYPE_ID": "EMAIL",
                }
            ],
        }
        for i in range(5)
    ]
    history = [
        {
            "ID": str(1 + i),
            "TYPE_ID": "2",
            "OWNER_ID": str(1 + i % max(n_deals, 1)),
            "CREATED_TIME": ts(i),
            "CATEGORY_ID": "0",
            "STAGE_SEMANTIC_ID": "P",
            "STAGE_ID": "PREPARATION",
        }
        for i in range(n_history)
    ]
    calls = [
        {
            "ID": str(1 + i),
            "CALL_ID": f"externalCall.{i}",
            "PORTAL_USER_ID": str(1 + i % 3),
            "PORTAL_NUMBER": "74950000000",
            "PHONE_NUMBER": f"7916000{i:04d}",
            "CALL_TYPE": str(1 + i % 2),
            "CALL_DURATION": str(i % 120),
            "CALL_START_DATE": ts(i),
            "CALL_FAILED_CODE": "200" if i % 4 else "304",
        }
        for i in range(n_calls)
    ]
    users = [
        {
            "ID": str(1 + i),
            "ACTIVE": i != 2,
            "NAME": f"Менеджер {i}",
            "EMAIL": f"m{i}@example.ru",
            "UF_PHONE_INNER": str(101 + i),
            "UF_DEPARTMENT": [1],
        }
        for i in range(3)
    ]
    statuses = [
        {
            "ID": str(1 + i),
            "ENTITY_ID": "DEAL_STAGE",
            "STATUS_ID": s,
            "NAME": s,
            "SORT": str(10 * (i + 1)),
            "EXTRA": {"SEMANTICS": "process"},
        }
        for i, s in enumerate(["NEW", "PREPARATION", "WON", "LOSE"])
    ]
    categories = [
        {"id": 0, "name": "Общая", "sort": 100, "entityTypeId": 2, "isDefault": "Y"},
        {"id": 1, "name": "Опт", "sort": 200, "entityTypeId": 2, "isDefault": "N"},
    ]
    return {
        "crm.deal.list": deals,
        "crm.contact.list": contacts,
        "crm.company.list": [],
        "crm.activity.list": [],
        "user.get": users,
        "crm.stagehistory.list": history,
        "voximplant.statistic.get": calls,
        "crm.status.list": statuses,
        "crm.category.list": categories,
    }


def parse_php_query(query: str) -> dict:
    """PHP's `parse_str`: `a[b][c]=1&s[0]=x` → `{"a": {"b": {"c": "1"}}, "s": {"0": "x"}}`."""
    out: dict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        head, _, rest = key.partition("[")
        keys = [head] + re.findall(r"\[([^\]]*)\]", "[" + rest if rest else "")
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return out


_DATE_FIELDS = ("DATE_MODIFY", "LAST_UPDATED", "CREATED_TIME", "CALL_START_DATE")


class FakeBitrix24(FakeServer):
    """Bitrix24 REST: webhook `/rest/<user>/<code>/<method>` or OAuth `/rest/<method>` with
    `auth` in the body, list methods (50 a page, `>ID` filters, `start=-1`), `batch` with
    `$result[...]` references, errors as `{"error", "error_description"}`, and the OAuth server
    `/oauth/token/`.

    `select` as documented for `crm.*.list`: `*` gives the standard single fields, `UF_*` the
    single user fields, a multiple field (a list in the data) only when named; `crm.*.fields`
    describes the fields. `operating[method]` is reported as the method's `time.operating`;
    `time_limit(method, n)` answers the next n calls of a method (also inside a batch)
    `OPERATION_TIME_LIMIT`."""

    def __init__(self, data: dict | None = None, webhook_code: str = "webhook-code-WWWW1234", **kw):
        super().__init__(**kw)
        self.data = data or make_bitrix_data()
        self.webhook_code = webhook_code
        self.access_tokens = {"b24-access-AAAA"}
        self.refresh_tokens = {"b24-refresh-RRRR"}
        self.client_secret = "b24-secret-SSSS"
        self.refreshes = 0
        self.calls: list[tuple[str, dict]] = []
        self.operating: dict[str, float] = {}
        self.blocked: dict[str, int] = {}
        self.client_endpoint: str | None = None  # default: this server's /rest/

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/rest/1/{self.webhook_code}/"

    def time_limit(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` get `OPERATION_TIME_LIMIT` (429)."""
        self.blocked[method] = self.blocked.get(method, 0) + times

    def handle(self, request: Request):
        if request.path == "/oauth/token/":
            return self._token(request)
        match = re.fullmatch(r"/rest/(?:1/([^/]+)/)?([a-z.]+?)(?:\.json)?", request.path)
        if not match:
            return self.json_response(
                404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
            )
        code, method = match.groups()
        params = request.json() if request.body else {}
        if code is not None:
            if code != self.webhook_code:
                return self.json_response(
                    401, {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}
                )
        elif params.get("auth") not in self.access_tokens:
            return self.json_response(
                401,
                {
                    "error": "expired_token",
                    "error_description": "The access token provided has expired.",
                },
            )
        params.pop("auth", None)
        if method == "batch":
            return self.json_response(200, {"result": self._batch(params), "time": self._time()})
        result = self._call(method, params)
        if "error" in result:
            status = 429 if result["error"] == "OPERATION_TIME_LIMIT" else 400
            return self.json_response(status, result)
        return self.json_response(200, {**result, "time": self._time(method)})

    def _sorted(self, method: str) -> list[dict]:
        key = (method, id(self.data[method]), len(self.data[method]))
        if getattr(self, "_sorted_key", {}).get(method) != key:
            self._sorted_cache = getattr(self, "_sorted_cache", {})
            self._sorted_key = getattr(self, "_sorted_key", {})
            self._sorted_cache[method] = sorted(self.data[method], key=lambda r: int(r["ID"]))
            self._sorted_ids = getattr(self, "_sorted_ids", {})
            self._sorted_ids[method] = [int(r["ID"]) for r in self._sorted_cache[method]]
            self._sorted_key[method] = key
        return self._sorted_cache[method]

    def _token(self, request: Request):
        params = {k: v[0] for k, v in request.params.items()}
        if (
            params.get("client_secret") != self.client_secret
            or params.get("refresh_token") not in self.refresh_tokens
        ):
            return self.json_response(
                400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            )
        self.refresh_tokens.discard(params["refresh_token"])
        self.refreshes += 1
        access, refresh = f"b24-access-N{self.refreshes:03d}", f"b24-refresh-N{self.refreshes:03d}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return self.json_response(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 3600,
                "client_endpoint": self.client_endpoint or f"{self.url}/rest/",
                "domain": "oauth.bitrix.info",
            },
        )

    def _time(self, method: str | None = None) -> dict:
        spent = {
            "start": 1.0,
            "finish": 1.1,
            "duration": 0.1,
            "date_start": "2026-02-01T10:00:00+03:00",
        }
        if method in self.operating:
            spent["operating"] = self.operating[method]
            spent["operating_reset_at"] = int(time.time()) + 30
        return spent

    def multiple_fields(self, method: str) -> set[str]:
        """The fields of a list method's records that are multiple (lists in the data); cached
        like `_sorted` (the data is replaced, not edited in place, when fields change)."""
        rows = self.data.get(method, [])
        key = (method, id(rows), len(rows))
        cache = self.__dict__.setdefault("_multiple_cache", {})
        if cache.get(method, (None,))[0] != key:
            found = {k for r in rows for k, v in r.items() if isinstance(v, list)}
            cache[method] = (key, found)
        return cache[method][1]

    def _fields(self, method: str) -> dict:
        multiple = self.multiple_fields(method)
        names = dict.fromkeys(k for r in self.data.get(method, []) for k in r)
        return {
            "result": {
                k: {"type": "string", "isMultiple": k in multiple, "title": k} for k in names
            }
        }

    def _call(self, method: str, params: dict) -> dict:
        self.calls.append((method, params))
        if self.blocked.get(method):
            self.blocked[method] -= 1
            return {
                "error": "OPERATION_TIME_LIMIT",
                "error_description": "Method is blocked due to operation time limit.",
            }
        if method.endswith(".fields") and method.replace(".fields", ".list") in self.data:
            return self._fields(method.replace(".fields", ".list"))
        if method not in self.data:
            return {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
        flt = dict(params.get("filter") or params.get("FILTER") or {})
        start = int(params.get("start") or 0)
        rows = self._listed(method, flt)
        conditions = []
        for key, value in flt.items():
            m = re.fullmatch(r"(>=|<=|>|<|=)?(.+)", key)
            conditions.append((m.group(2), m.group(1) or "=", value))
        rows, page = _filtered_page(rows, conditions, start)
        if method.startswith("crm.") and params.get("select"):
            page = self._selected(method, params["select"], page)
        result: Any = page
        if method == "crm.stagehistory.list":
            result = {"items": page}
        elif method == "crm.category.list":
            result = {"categories": page}
        out: dict[str, Any] = {"result": result}
        if start >= 0:
            out["total"] = len(rows)
            if start + 50 < len(rows):
                out["next"] = start + 50
        else:
            out["total"] = 0
        return out

    def _listed(self, method: str, flt: dict) -> list[dict]:
        """The method's rows in its order, after `>ID` (popped from `flt`)."""
        if method == "crm.status.list":
            return sorted(self.data[method], key=lambda r: int(r["SORT"]))
        if method == "crm.category.list":
            return list(self.data[method])
        rows = self._sorted(method)
        after = flt.pop(">ID", None)
        if after not in (None, ""):
            ids = self._sorted_ids[method]
            rows = rows[bisect.bisect_right(ids, int(float(after))) :]
        return rows

    def _selected(self, method: str, select, page: list[dict]) -> list[dict]:
        """The page's rows with the fields `select` names (`*` and `UF_*` leave out multiple
        user fields, as Bitrix24 documents)."""
        select = set(select.values() if isinstance(select, dict) else select)
        multiple = self.multiple_fields(method)

        def selected(name: str) -> bool:
            if name in select:
                return True
            if name in multiple:
                return False
            user = name.startswith("UF_")
            return ("UF_*" if user else "*") in select

        return [{k: v for k, v in r.items() if selected(k)} for r in page]

    def _batch(self, params: dict) -> dict:
        commands = params.get("cmd") or {}
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for name, text in commands.items():
            method, _, query = text.partition("?")
            call_params = parse_php_query(query)
            _substitute(call_params, results)
            result = self._call(method, call_params)
            if "error" in result:
                errors[name] = result
                continue
            results[name] = result["result"]
            times[name] = self._time(method)
            totals[name] = result.get("total", 0)
            if "next" in result:
                nexts[name] = result["next"]
        return {
            "result": results,
            "result_error": errors or [],
            "result_total": totals,
            "result_next": nexts or [],
            "result_time": times or [],
        }


def _substitute(params: dict, results: dict) -> None:
    for key, value in list(params.items()):
        if isinstance(value, dict):
            _substitute(value, results)
        elif isinstance(value, str) and value.startswith("$result["):
            path = re.findall(r"\[([^\]]*)\]", value)
            node: Any = results
            try:
                for part in path:
                    node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                node = ""
            params[key] = node


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False
    if isinstance(expected, str) and re.match(r"\d{4}-\d{2}-\d{2}T", expected):
        from datetime import datetime

        a, b = datetime.fromisoformat(str(actual)), datetime.fromisoformat(expected)
    else:
        try:
            a, b = float(actual), float(expected if expected != "" else 0)
        except (TypeError, ValueError):
            a, b = str(actual), str(expected)
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b, "=": a == b}[op]


# ---------------------------------------------------------------------------------- Mango


def make_mango_calls(n: int, start: int = 1_767_225_600, every: int = 600) -> list[dict]:
    return [
        {
            "records": f"[rec{i}]" if i % 3 == 0 else "",
            "start": start + i * every,
            "finish": start + i * every + 90,
            "answer": start + i * every + 10 if i % 4 else 0,
            "from_extension": "" if i % 2 else "101",
            "from_number": f"7916000{i:04d}" if i % 2 else "74950000000",
            "to_extension": "102" if i % 2 else "",
            "to_number": "74950000000" if i % 2 else f"7916000{i:04d}",
            "disconnect_reason": "1100",
            "line_number": "74950000000",
            "location": "abonent",
            "create": start + i * every,
            "entry_id": f"MTox{i:08d}",
        }
        for i in range(n)
    ]


class FakeMango(FakeServer):
    """Mango Office VPBX: signed form posts, `stats/request` → key, `stats/result` 204 until
    ready then `;`-separated text, 404 for an unknown key; `config/users/request`."""

    FIELDS = (
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

    def __init__(
        self,
        calls: list[dict] | None = None,
        api_key: str = "mango-key-KKKK1234",
        api_salt: str = "mango-salt-SSSS1234",
        polls_before_ready: int = 1,
        **kw,
    ):
        super().__init__(**kw)
        self.calls = calls or []
        self.api_key = api_key
        self.api_salt = api_salt
        self.polls_before_ready = polls_before_ready
        self.keys: dict[str, dict] = {}
        self.stats_requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/vpbx"

    def handle(self, request: Request):
        form = request.form()
        payload = form.get("json", "")
        expected = hashlib.sha256((self.api_key + payload + self.api_salt).encode()).hexdigest()
        if form.get("vpbx_api_key") != self.api_key or form.get("sign") != expected:
            return self.json_response(401, {"result": 3102, "message": "invalid key or sign"})
        params = json.loads(payload or "{}")
        if request.path == "/vpbx/stats/request":
            key = f"key{len(self.keys) + 1}"
            self.keys[key] = {
                "from": int(params["date_from"]),
                "to": int(params["date_to"]),
                "fields": params["fields"].split(","),
                "polls": 0,
            }
            self.stats_requests.append(params)
            return self.json_response(200, {"key": key})
        if request.path == "/vpbx/stats/result":
            entry = self.keys.get(params.get("key"))
            if entry is None:
                return 404, {}, b""
            if entry["polls"] < self.polls_before_ready:
                entry["polls"] += 1
                return 204, {}, b""
            lines = [
                ";".join(str(call[f]) for f in entry["fields"])
                for call in self.calls
                if entry["from"] <= call["start"] < entry["to"]
            ]
            return 200, {"Content-Type": "text/plain"}, "".join(line + "\r\n" for line in lines)
        if request.path == "/vpbx/config/users/request":
            users = [
                {
                    "general": {"name": f"Менеджер {i}", "email": f"m{i}@example.ru"},
                    "telephony": {
                        "extension": str(101 + i),
                        "outgoingline": "74950000000",
                        "numbers": [{"number": f"sip:m{i}@example", "protocol": "sip"}],
                    },
                }
                for i in range(3)
            ]
            return self.json_response(200, {"users": users})
        return self.json_response(404, {"result": 4001, "message": "unknown command"})


def _filtered_page(rows: list[dict], conditions: list, start: int) -> tuple[list[dict], list[dict]]:
    """The rows that meet every condition and the page of 50 from `start`; with `start` < 0
    (no total count) the first 50 only, without filtering the rest."""

    def keep(row):
        return all(_compare(row.get(f), op, v) for f, op, v in conditions)

    if start < 0:
        page = []
        for row in rows:
            if keep(row):
                page.append(row)
                if len(page) == 50:
                    break
        return rows, page
    rows = [r for r in rows if keep(r)]
    return rows, rows[start : start + 50]
