"""The HTTP layer of the API sources: rate limit, retries with back-off, auth refresh, errors.

One `HttpClient` per extraction, on a `requests.Session`:

- a client-side rate limit (minimum interval between requests: amoCRM 7/s, Bitrix24 2/s);
- bounded retries with exponential back-off and full jitter on 429, 5xx, connection errors,
  timeouts and malformed JSON, honouring `Retry-After` (seconds or an HTTP date);
- on 401, one refresh of the credentials through the `Auth` object, then the request again;
- errors (`ApiError`) that name the endpoint (a name chosen by the caller, never the URL) and
  quote at most a short, redacted piece of the body: no token, no webhook URL.

`sleep`, `clock` and `random` are injectable so that tests run without waiting.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from dagster_project.lib.sources.secrets import install_log_redaction, redact

log = logging.getLogger("voronka.sources.http")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "voronka-extract/1.0"


class ApiError(RuntimeError):
    """A request that failed for good. The message names the source and the endpoint.

    Attributes:
        source: `amocrm`, `bitrix24`, `mango`.
        endpoint: the endpoint's name, e.g. `GET /api/v4/leads` or `crm.deal.list`.
        status: the last HTTP status, or None for a connection error.
        code: the API's own error code when it gave one (`QUERY_LIMIT_EXCEEDED`, ...).
        retryable: whether this kind of failure was retried before giving up.
    """

    def __init__(
        self,
        source: str,
        endpoint: str,
        message: str,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
        retryable: bool = False,
    ):
        self.source = source
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.attempts = attempts
        self.retryable = retryable
        where = f"{source} {endpoint}"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(redact(f"{where} failed{tries}: {message}"))


class AuthError(ApiError):
    """The API refused the credentials (after the one refresh we are allowed)."""


@dataclass
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: attempts per request, the first included.
        base_delay: the first back-off in seconds; doubled at every attempt.
        max_delay: the cap of one back-off (and of an honoured `Retry-After`).
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RetryPolicy:
        """`VORONKA_HTTP_MAX_ATTEMPTS` (6), `VORONKA_HTTP_BACKOFF_SECONDS` (1),
        `VORONKA_HTTP_MAX_BACKOFF_SECONDS` (60)."""
        env = os.environ if env is None else env
        return cls(
            max_attempts=max(1, int(env.get("VORONKA_HTTP_MAX_ATTEMPTS") or 6)),
            base_delay=float(env.get("VORONKA_HTTP_BACKOFF_SECONDS") or 1.0),
            max_delay=float(env.get("VORONKA_HTTP_MAX_BACKOFF_SECONDS") or 60.0),
        )

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full-jitter exponential back-off before attempt `attempt + 1` (attempt >= 1)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling * (0.5 + rng() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most one request every `min_interval` seconds (a client-side leaky bucket)."""

    def __init__(
        self,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.min_interval = 1.0 / per_second if per_second > 0 else 0.0
        self.sleep = sleep
        self.clock = clock
        self._next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self._next_at:
            self.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self.min_interval


class Auth:
    """Credentials of one source: how to apply them and how to refresh them once on 401."""

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Put the credentials into the request (header or query parameter)."""

    def apply_body(self, body: Any) -> Any:
        """The JSON body with the credentials in it, for APIs that take them there."""
        return body

    def can_refresh(self) -> bool:
        return False

    def refresh(self, client: HttpClient) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def refresh_due(self) -> bool:
        """True when the credentials are known to be expired (refresh before the request)."""
        return False

    def refresh_guarded(self, client: HttpClient) -> None:
        """`refresh`, guarded against other processes refreshing the same credentials (the
        OAuth pairs do it under the token store's lock, D98)."""
        self.refresh(client)


@dataclass
class Response:
    """A successful response: status, parsed JSON (None for an empty body), headers, text."""

    status: int
    data: Any
    headers: dict[str, str]
    text: str = ""


@dataclass
class HttpStats:
    """Counters of one client, for the asset metadata."""

    requests: int = 0
    retries: int = 0
    refreshes: int = 0
    waited_seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)


# A hook that inspects a 200 response and returns (retryable error code, message) or None;
# Bitrix24 reports some errors inside a body, and all its errors share the {"error": ...} shape.
BodyCheck = Callable[[int, Any], tuple[str, str, bool] | None]


class HttpClient:
    """Requests to one API host with the rate limit, retries and auth of its source.

    Args:
        source: source name for messages (`amocrm`, ...).
        base_url: scheme and host (and path prefix) every request must stay on.
        auth: the credentials; `Auth()` for none.
        per_second: client-side rate limit.
        retry: the retry policy.
        timeout: connect/read timeout in seconds.
        sleep, clock, rng: injectable for tests (`clock` is the rate limiter's monotonic
            clock: a test that fakes `sleep` fakes it too, so that waiting advances it).
        session: an existing `requests.Session` (tests), else a new one.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        auth: Auth | None = None,
        per_second: float = 5.0,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = _random.random,
        session: requests.Session | None = None,
    ):
        install_log_redaction()
        self.source = source
        self.base_url = base_url.rstrip("/")
        split = urlsplit(self.base_url)
        self.host = split.netloc
        self.scheme = split.scheme
        self.auth = auth or Auth()
        self.retry = retry or RetryPolicy.from_env()
        self.timeout = timeout
        self.sleep = sleep
        self.rng = rng
        self.limiter = RateLimiter(per_second, sleep=sleep, clock=clock)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.stats = HttpStats()

    def __repr__(self) -> str:
        return f"HttpClient(source={self.source!r}, host={self.host!r})"

    def close(self) -> None:
        self.session.close()

    def rebase(self, base_url: str) -> None:
        """Send the next requests to `base_url` (a REST address the API itself named, e.g.
        Bitrix24's OAuth `client_endpoint`); the host check follows it."""
        self.base_url = base_url.rstrip("/")
        split = urlsplit(self.base_url)
        self.host, self.scheme = split.netloc, split.scheme

    # ------------------------------------------------------------------ the one request loop

    # complexity (C901, PLR0912, PLR0915): the one request loop (rate limit, back-off, Retry-After,
    # refresh on 401, redacted errors, D9, D98): its order is the protocol
    def request(  # noqa: C901, PLR0912, PLR0915
        self,
        method: str,
        url: str,
        endpoint: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        data: dict[str, Any] | None = None,
        expect_json: bool = True,
        allow_statuses: tuple[int, ...] = (),
        body_check: BodyCheck | None = None,
        authenticate: bool = True,
    ) -> Response:
        """Send one request with retries; return the response or raise `ApiError`.

        Args:
            method: `GET` or `POST`.
            url: absolute URL; must be on the client's host (checked, so that credentials
                are never sent elsewhere, e.g. by a forged `_links.next`).
            endpoint: the name used in errors and logs.
            params, json_body, data: the query, a JSON body, or a form body.
            expect_json: parse the body as JSON (an empty body gives `data=None`).
            allow_statuses: non-2xx statuses returned to the caller instead of raised
                (e.g. Mango's 204/404 of a result not ready or expired).
            body_check: inspects parsed bodies for API errors reported with any status.
            authenticate: apply `self.auth` (False for the token endpoint itself).
        """
        self._check_host(url, endpoint)
        refreshed = False
        attempt = 0
        last_status: int | None = None
        last_message = ""
        last_code: str | None = None
        while True:
            attempt += 1
            if authenticate and self.auth.refresh_due() and not refreshed:
                self._refresh(endpoint)
                refreshed = True
            headers: dict[str, str] = {}
            query: Any = dict(params) if isinstance(params, dict) else list(params or [])
            if authenticate:
                if isinstance(query, dict):
                    self.auth.apply(headers, query)
                else:
                    extra: dict[str, Any] = {}
                    self.auth.apply(headers, extra)
                    query.extend(extra.items())
            body = self.auth.apply_body(json_body) if authenticate else json_body
            self.limiter.wait()
            self.stats.requests += 1
            outcome = self._send(method, url, endpoint, query, headers, body, data)
            retry_after: float | None = None
            if isinstance(outcome, str):  # a transport error, already redacted
                last_status, last_message, last_code = None, outcome, None
                retryable = True
            else:
                resp = outcome
                last_status = resp.status_code
                self.stats.statuses[resp.status_code] = (
                    self.stats.statuses.get(resp.status_code, 0) + 1
                )
                parsed, parse_error = _parse(resp, expect_json)
                check = (
                    body_check(resp.status_code, parsed) if body_check and not parse_error else None
                )
                if resp.status_code == 401 or (check and check[0] in _AUTH_CODES):
                    if authenticate and self.auth.can_refresh() and not refreshed:
                        self._refresh(endpoint)
                        refreshed = True
                        attempt -= 1  # the refresh is not a failed attempt
                        continue
                    code = check[0] if check else None
                    raise AuthError(
                        self.source,
                        endpoint,
                        "the API refused the credentials (HTTP 401"
                        + (f", {code}" if code else "")
                        + "); renew the token or re-authorise the integration",
                        status=401,
                        code=code,
                        attempts=attempt,
                    )
                if check is not None:
                    last_code, text, retryable = check
                    last_message = f"HTTP {resp.status_code}, {last_code}: {text}"
                    if not retryable:
                        raise ApiError(
                            self.source,
                            endpoint,
                            last_message,
                            status=resp.status_code,
                            code=last_code,
                            attempts=attempt,
                        )
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                elif 200 <= resp.status_code < 300 or resp.status_code in allow_statuses:
                    if parse_error:
                        last_message = parse_error
                        last_code = "malformed_json"
                        retryable = True
                    else:
                        return Response(
                            resp.status_code, parsed, dict(resp.headers), resp.text or ""
                        )
                else:
                    last_code = _error_code(parsed)
                    last_message = f"HTTP {resp.status_code}: {_snippet(resp)}"
                    retryable = resp.status_code in RETRYABLE_STATUSES
                    if not retryable:
                        raise ApiError(
                            self.source,
                            endpoint,
                            last_message,
                            status=resp.status_code,
                            code=last_code,
                            attempts=attempt,
                        )
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if attempt >= self.retry.max_attempts:
                raise ApiError(
                    self.source,
                    endpoint,
                    last_message or "no usable response",
                    status=last_status,
                    code=last_code,
                    attempts=attempt,
                    retryable=True,
                )
            delay = self.retry.backoff(attempt, self.rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry.max_delay))
            self.stats.retries += 1
            self.stats.waited_seconds += delay
            log.warning(
                "%s %s: %s; retry %d of %d in %.1f s",
                self.source,
                endpoint,
                redact(last_message),
                attempt,
                self.retry.max_attempts - 1,
                delay,
            )
            self.sleep(delay)

    def get_json(self, url: str, endpoint: str, **kwargs) -> Response:
        return self.request("GET", url, endpoint, **kwargs)

    def post_json(self, url: str, endpoint: str, **kwargs) -> Response:
        return self.request("POST", url, endpoint, **kwargs)

    # ------------------------------------------------------------------ helpers

    def _check_host(self, url: str, endpoint: str) -> None:
        split = urlsplit(url)
        if split.netloc != self.host or split.scheme != self.scheme:
            raise ApiError(
                self.source,
                endpoint,
                f"refusing to send credentials to another host ({split.netloc or 'none'}; "
                f"the source is configured for {self.host})",
            )

    def _refresh(self, endpoint: str) -> None:
        self.stats.refreshes += 1
        log.info("%s: refreshing the access token (%s)", self.source, endpoint)
        self.auth.refresh_guarded(self)

    def _send(self, method, url, endpoint, query, headers, body, data):
        error: str | None = None
        try:
            return self.session.request(
                method,
                url,
                params=query or None,
                json=body,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            error = f"timed out after {self.timeout:.0f} s"
        except requests.ConnectionError as exc:
            error = f"connection failed ({type(exc).__name__})"
        except requests.RequestException as exc:
            error = f"request failed ({type(exc).__name__})"
        # Built outside the `except` so that no exception (whose text holds the URL) is
        # chained to what the caller raises.
        return error


_AUTH_CODES = frozenset({"expired_token", "invalid_token", "NO_AUTH_FOUND", "INVALID_TOKEN"})


def _parse(resp: requests.Response, expect_json: bool) -> tuple[Any, str | None]:
    if not expect_json:
        return None, None
    if resp.status_code == 204 or not resp.content:
        return None, None
    try:
        return resp.json(), None
    except (ValueError, json.JSONDecodeError):
        return (
            None,
            f"malformed JSON in the response (HTTP {resp.status_code}, {len(resp.content)} bytes)",
        )


def _error_code(parsed: Any) -> str | None:
    if isinstance(parsed, dict):
        for key in ("error", "title", "result"):
            value = parsed.get(key)
            if isinstance(value, (str, int)) and value != "":
                return str(value)
    return None


def _snippet(resp: requests.Response, limit: int = 300) -> str:
    text = (resp.text or "").strip().replace("\n", " ")
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact(text) or "(empty body)"
