"""The extraction loop shared by the API sources: windows, page tokens, resume, high-water mark.

An object is read as a run of pages inside a window `[hwm - overlap, ∞)` on its version field
(`updated_at`), ordered by a stable key (`id` ascending), so that a record modified during the
run keeps its place and new records come last. After every page its rows and the state
(`in_progress`, the next page token, the largest version seen) are committed together:

- a crash or an error after page N leaves pages 1..N in raw and the token of page N+1 in
  `_state`; the next run resumes there with the same window;
- the last page sets `complete` and the new high-water mark: the smaller of the largest version
  seen and the run's start time (a record changed during the run is re-read next time);
- the next run starts at `hwm - overlap` (default 300 s, for clock skew and late commits on the
  API side); the rows read twice are not inserted twice (key + version dedupe).

Snapshot objects (users, pipelines) have no window: every run reads them whole and only changed
rows are inserted (their version is the row hash). Immutable objects paged by id (Bitrix24
stage history, call statistics) keep their last id across runs in `carry`.

Times are epoch seconds in the state; each source converts them to its API's format.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dagster_project.lib.settings import DEFAULT_TIMEZONE
from dagster_project.lib.sources.http import ApiError, Auth, HttpClient, RetryPolicy
from dagster_project.lib.sources.state import RawWriter, TableSpec

log = logging.getLogger("voronka.sources.engine")


@dataclass
class Run:
    """The window and position of one object's run (restored from `_state` on resume)."""

    window_from: float | None
    run_started_at: float
    page_token: Any = None
    max_seen: float | None = None
    carry: dict[str, Any] = field(default_factory=dict)
    pages: int = 0


@dataclass
class Page:
    """One page (or one batch of pages) as fetched.

    Attributes:
        tables: flattened rows per raw table.
        next_token: the token of the next page; None when this was the last.
        versions: the version (epoch seconds) of each record, for the high-water mark.
        carry: state kept across runs (e.g. the last id of an immutable object).
        requests: HTTP requests it took.
    """

    tables: dict[str, list[dict[str, str | None]]]
    next_token: Any = None
    versions: list[float] = field(default_factory=list)
    carry: dict[str, Any] | None = None


@dataclass
class ObjectReport:
    """What one object's extraction did."""

    source: str
    obj: str
    resumed: bool = False
    pages: int = 0
    received: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    window_from: float | None = None
    hwm: float | None = None
    seconds: float = 0.0

    @property
    def rows_received(self) -> int:
        return sum(self.received.values())

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted.values())


FetchPage = Callable[[Run, Any], Page]


def _window_from(
    hwm: float | None, incremental: bool, overlap_seconds: float, initial_from: float | None
) -> float | None:
    """Where a new run's window starts: the high-water mark less the overlap, else the first
    run's start; a snapshot object has no window."""
    if not incremental:
        return None
    return hwm - overlap_seconds if hwm is not None else initial_from


def _next_hwm(run: Run, previous_hwm: float | None) -> float | None:
    """The high-water mark after a complete run: the newest version seen, but never past the
    run's start; a run that saw nothing keeps the previous one (or its window's start)."""
    if run.max_seen is not None:
        return min(run.max_seen, run.run_started_at)
    if previous_hwm is None and run.window_from is not None:
        return run.window_from
    return previous_hwm


def extract_object(
    writer: RawWriter,
    obj: str,
    specs: dict[str, TableSpec],
    fetch: FetchPage,
    endpoint: str,
    *,
    incremental: bool = True,
    overlap_seconds: float = 300.0,
    initial_from: float | None = None,
    clock: Callable[[], float] = time.time,
    progress: Callable[[ObjectReport], None] | None = None,
) -> ObjectReport:
    """Read one object page by page into raw, resuming an unfinished run.

    Args:
        writer: the source's raw writer.
        obj: the state key.
        specs: the raw tables the pages fill.
        fetch: `fetch(run, token)` → `Page`; `token` is None for the first page.
        endpoint: recorded in `_source` and used in messages.
        incremental: False for snapshot objects (no window, no high-water mark).
        overlap_seconds: how far before the high-water mark the next window starts.
        initial_from: the window start of the very first run (None: everything).
        clock: epoch seconds (injectable).
        progress: called after every committed page.
    """
    started = time.perf_counter()
    for spec in specs.values():
        writer.ensure_empty_table(spec)
    state = writer.get_state(obj) or {}
    report = ObjectReport(writer.source, obj)
    report.resumed = state.get("status") == "in_progress"
    if report.resumed:
        run = Run(
            window_from=state.get("window_from"),
            run_started_at=state["run_started_at"],
            page_token=state.get("page_token"),
            max_seen=state.get("max_seen"),
            carry=state.get("carry") or {},
            pages=state.get("pages", 0),
        )
        log.info("%s %s: resuming after page %s", writer.source, obj, run.pages)
    else:
        window_from = _window_from(state.get("hwm"), incremental, overlap_seconds, initial_from)
        run = Run(window_from=window_from, run_started_at=clock(), carry=state.get("carry") or {})
    report.window_from = run.window_from
    previous_hwm = state.get("hwm")
    token = run.page_token
    while True:
        page = fetch(run, token)
        if page.versions:
            top = max(page.versions)
            run.max_seen = top if run.max_seen is None else max(run.max_seen, top)
        if page.carry is not None:
            run.carry = {**run.carry, **page.carry}
        run.pages += 1
        done = page.next_token is None
        if not done and page.next_token == token:
            raise ApiError(writer.source, endpoint, "pagination did not advance (same page token)")
        new_state: dict[str, Any] = {
            "status": "complete" if done else "in_progress",
            "window_from": run.window_from,
            "run_started_at": run.run_started_at,
            "page_token": None if done else page.next_token,
            "max_seen": run.max_seen,
            "carry": run.carry,
            "pages": run.pages,
            "hwm": previous_hwm,
        }
        if done and incremental:
            new_state["hwm"] = _next_hwm(run, previous_hwm)
        results = writer.write(obj, page.tables, specs, new_state, endpoint)
        for name, result in results.items():
            report.received[name] = report.received.get(name, 0) + result.received
            report.inserted[name] = report.inserted.get(name, 0) + result.inserted
        report.pages += 1
        report.hwm = new_state["hwm"]
        if progress:
            progress(report)
        if done:
            break
        token = page.next_token
    report.seconds = time.perf_counter() - started
    return report


def date_to_epoch(value: str | None, timezone: str | None = None) -> float | None:
    """A `YYYY-MM-DD` start date (`VORONKA_<SOURCE>_START_DATE`) as epoch seconds, or None: the
    date's midnight in the business time zone (`timezone`, else `VORONKA_TIMEZONE`, else the
    default), as every date a person types is read (D95); a value with its own offset keeps it."""
    if not value or not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        zone = timezone or os.environ.get("VORONKA_TIMEZONE") or DEFAULT_TIMEZONE
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.timestamp()


class ApiExtractor:
    """What the CRM extractors (amoCRM, Bitrix24) share: one rate-limited `HttpClient` for the
    whole extraction, and `extract_object` with the settings' overlap and first window.

    `settings` must have `host`, `per_second`, `overlap_seconds` and `start_from`.
    """

    source: str = ""

    def __init__(
        self,
        settings: Any,
        base_url: str,
        auth: Auth | None,
        *,
        client: HttpClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.client = client or HttpClient(
            self.source,
            base_url,
            auth=auth,
            per_second=settings.per_second,
            retry=retry,
            sleep=sleep,
            clock=monotonic,
        )
        self.clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.settings.host!r})"

    def close(self) -> None:
        self.client.close()

    def _extract_object(
        self,
        writer: RawWriter,
        state_key: str,
        specs: dict[str, TableSpec],
        fetch: FetchPage,
        endpoint: str,
        *,
        incremental: bool,
        progress: Callable[[ObjectReport], None] | None,
    ) -> ObjectReport:
        return extract_object(
            writer,
            state_key,
            specs,
            fetch,
            endpoint,
            incremental=incremental,
            overlap_seconds=self.settings.overlap_seconds,
            initial_from=self.settings.start_from,
            clock=self.clock,
            progress=progress,
        )
