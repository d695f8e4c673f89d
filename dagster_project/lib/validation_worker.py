"""Great Expectations validations in a child process during `voronka run` (D68, D123).

In one process, GE's modules and what its pandas and Arrow chunks leave in the heap
(`malloc_trim` returns none of it) stayed in the run process while `dbt build` ran beside it, a
good part of the run's peak (D68; figures in docs/performance.md). With
the worker, the run process holds no GE at all. On large warehouses (the dbt asset decides:
20 M raw rows or more) `release` ends the worker before dbt starts, and with it everything GE
left behind; the checks after dbt start a new one (GE's start-up again). On
smaller ones the worker stays through dbt.

The worker is spawned (not forked: the run process has threads), imports GE and builds its
context on another core while the extract runs, and validates one suite at a time, the way the
in-process executor runs the checks. Each task carries the caller's `VORONKA_*` settings, so a
setting changed after the worker started still applies.

A :class:`ValidationWorker` is owned by whoever starts it: the Dagster resource
`defs.resources.ValidationResource` starts one when a run starts (`voronka run` configures it
with `in_worker=True`) and closes it when the run ends. Elsewhere (the Dagster UI, the tests of
single checks, `voronka validate`) :func:`validate_here` validates in the calling process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from dagster_project.lib import child_guard
from dagster_project.lib import warehouse as wh
from dagster_project.lib.ge_runner import reuse
from dagster_project.lib.ge_runner.gx_engine import warm_up
from dagster_project.lib.ge_runner.reading import (
    open_read_only,
    read_only_warehouse,
    validation_memory_limit,
)
from dagster_project.lib.ge_runner.results import SuiteResult
from dagster_project.lib.ge_runner.run import validate_suite

log = logging.getLogger(__name__)

_ENV_PREFIX = "VORONKA_"


class ValidationWorker:
    """One worker process for validations: started by :meth:`start`, ended by :meth:`release`
    (the next validation starts a new one) or for good by :meth:`close`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False
        self._holds = False  # the worker may hold a read-only connection (D393)

    def start(self) -> None:
        """Start the worker now (GE's import begins at once, not awaited: the first validation
        waits for it if it must)."""
        with self._lock:
            self._submit(_warm_up)

    def release(self) -> None:
        """End the worker process, if one runs (its memory goes with it); the next validation
        starts one."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._holds = False  # the worker's connection ends with its process
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            log.debug("validation worker ended")

    def close(self) -> None:
        """End the worker for good: later validations run in the calling process."""
        self.release()
        with self._lock:
            self._closed = True

    def is_running(self) -> bool:
        """Whether a worker pool is open: its process started, or starts with the next
        validation (a process killed since is only noticed then). For tests and logs."""
        with self._lock:
            return self._pool is not None

    def validate(
        self,
        warehouse: Path | str,
        suite: str,
        *,
        as_of: str | None = None,
        business_timezone: str | None = None,
        root: Path | str | None = None,
    ) -> SuiteResult:
        """Validate one suite (e.g. ``raw.calls``) of a warehouse opened read-only, in the worker
        (in this process once closed). Same arguments and result as :func:`validate_here`."""
        args = (str(warehouse), suite, as_of, business_timezone, str(root) if root else None)
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
        try:
            # submitted with the lock held: a concurrent `release` cannot shut the pool between
            with self._lock:
                future = None if self._closed else self._submit(_validate_in_worker, env, *args)
                self._holds = future is not None  # its connection stays open in the worker
            if future is not None:
                return future.result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            self.release()
            raise RuntimeError(
                f"the validation worker process ended while validating {suite} (killed, e.g. by "
                "the system when memory ran out); the next check starts a new worker"
            ) from exc
        return _validate(*args)

    def let_go(self) -> None:
        """Close the read-only connection the worker holds between validations (D393), if one
        is held: called before a writer opens the warehouse (``wh.before_write``). Waits for
        the worker (a validation under way ends first)."""
        with self._lock:
            # only after a validation: no round trip (nor a wait for GE's start-up) otherwise
            future = self._submit(_let_go_in_worker) if self._pool and self._holds else None
            self._holds = False
        if future is not None:
            with contextlib.suppress(concurrent.futures.process.BrokenProcessPool):
                future.result()

    def _submit(self, fn, *args) -> concurrent.futures.Future:
        """Submit a task to the worker (started here if need be); call with `_lock` held."""
        with _main_module_hidden():
            return self._open_pool().submit(fn, *args)

    def _open_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        """The worker pool (one process), created on first use; call with `_lock` held."""
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                # the worker ends with the run process, even a killed one (D83)
                initializer=child_guard.watch_parent,
                initargs=(os.getpid(),),
            )
        return self._pool


def validate_here(
    warehouse: Path | str,
    suite: str,
    *,
    as_of: str | None = None,
    business_timezone: str | None = None,
    root: Path | str | None = None,
) -> SuiteResult:
    """Validate one suite of a warehouse opened read-only, in this process: the same arguments
    and result as :func:`ge_runner.run.validate_suite`."""
    return _validate(str(warehouse), suite, as_of, business_timezone, str(root) if root else None)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While the worker is spawned, `__main__` shows neither a file nor a module name.

    Spawn starts a child by running the parent's main script or module again (as
    `__mp_main__`): a script that calls `run_pipeline` without an `if __name__ == "__main__":`
    guard would start a run there too, and the worker would die before its first task. Its tasks
    live in this module, so it needs nothing of `__main__`. The pool spawns in `submit`, in the
    calling thread (Python 3.11, `ProcessPoolExecutor._adjust_process_count`).
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: v for k, v in vars(main).items() if k in ("__file__", "__spec__")}
    vars(main).pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        vars(main).update(saved)


def _validate(
    warehouse: str,
    suite: str,
    as_of: str | None,
    business_timezone: str | None,
    root: str | None,
) -> SuiteResult:
    with read_only_warehouse(warehouse) as con:  # a file or a postgresql:// URL (D181)
        return _validate_on(con, warehouse, suite, as_of, business_timezone, root)


def _validate_on(con, warehouse: str, suite: str, as_of, business_timezone, root) -> SuiteResult:
    return validate_suite(
        con,
        suite,
        as_of=as_of,
        business_timezone=business_timezone,
        root=root,
        results=reuse.results_folder(warehouse),  # the checks' results given again (D330)
    )


# ----------------------------------------------------------------------------- in the worker


def _warm_up() -> None:
    warm_up().join()


# the worker's read-only connection, kept from one validation to the next while nothing writes
# (D393): (warehouse, memory limit) -> connection
_held: dict[tuple, object] = {}


def _validate_in_worker(env: dict[str, str], *args) -> SuiteResult:
    for key in [k for k in os.environ if k.startswith(_ENV_PREFIX) and k not in env]:
        del os.environ[key]
    os.environ.update(env)
    warehouse, suite, as_of, business_timezone, root = args
    if wh.is_postgres(wh.parse_target(warehouse)):
        # each validation its own connection: one held open would keep its transaction's
        # locks, which dbt's swap of a table waits for
        return _validate(*args)
    con = _held_connection(warehouse)
    try:
        return _validate_on(con, warehouse, suite, as_of, business_timezone, root)
    except BaseException:
        _let_go_in_worker()  # a connection left mid-query is not used again
        raise


def _held_connection(warehouse: str):
    """The read-only connection of ``warehouse`` the worker holds, opened if need be (the
    validation's memory limit read now: a task may change it). Another warehouse's, another
    limit's, or a file's replaced since (a publish renames a copy over it) is closed first:
    while the connection is open no writer can change the file, but a rename can."""
    try:
        stat = os.stat(warehouse)
        identity: tuple = (stat.st_dev, stat.st_ino)
    except OSError:  # no file: the open reports it, as before
        identity = ()
    key = (warehouse, validation_memory_limit(), identity)
    if key not in _held:
        _let_go_in_worker()
        _held[key] = open_read_only(warehouse)
    return _held[key]


def _let_go_in_worker() -> None:
    while _held:
        _, con = _held.popitem()
        with contextlib.suppress(Exception):
            con.close()
