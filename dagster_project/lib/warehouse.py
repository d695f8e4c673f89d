"""The one way into the warehouse: a lock, a private working copy, and publishing (D80, D81).

Readers (BI tools, `voronka summary`, `voronka export`) open the *published* file, the
`--warehouse` path, read-only. The pipeline never writes it in place: every writer works on its
own working copy beside it, `<dir>/.voronka/<stem>.work.duckdb`, kept between runs so loads stay
incremental, and a successful run *publishes* it: checkpoint, copy to a temporary file in the
published file's folder, fsync, `os.replace` over the published file. A reader that holds the old
file keeps its consistent old view (its inode), a new connection sees the new run whole; a reader
never takes a lock the pipeline needs, so it cannot make a run fail.

One writer at a time (D81): a session takes an exclusive `flock` on `<dir>/.voronka/<stem>.lock`
and writes who holds it (pid, command, host, user, since when) into that file as JSON. A second
command refuses at once with :class:`WarehouseBusy` (exit 2, naming the holder) or waits up to
`wait_seconds`. The kernel drops the lock when its process dies, so a lock of a killed run is
taken over by the next one (which says so). Sessions nest within one process: the Dagster
resource opens one inside the run command's, and only the outermost session publishes.

Every module opens the warehouse through :func:`open_warehouse` (D180): one context manager
that knows the engine and yields a :class:`Connection` with the few operations the code needs
(`execute`, `executemany`, `arrow_reader`), so no module calls `duckdb.connect` on the warehouse
itself. The lock, the working copy and publishing sit beside it, unchanged.

A crashed or failed run leaves the published warehouse as it was; the working copy keeps what
the run did (loaded batches, their validation state), and the next run goes on from it. The
state file `<dir>/.voronka/<stem>.state.json` remembers the published file as last published
(inode, size, mtime) and whether the working copy holds unpublished changes:

- no working copy and a published file: the published file is adopted (copied);
- the published file was replaced or changed by something else since: adopted again;
- the published file was deleted after a publish: the working copy is discarded (a fresh start);
- never published (a first run that crashed): the working copy is kept;
- a publish killed before its rename leaves the published file as it was (its temporary copy is
  removed by the next session); one killed after the rename counts as published (D111).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import glob
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.lib.connection import Connection
from dagster_project.lib.postgres import PostgresTarget, UrlError, is_url

log = logging.getLogger("voronka.warehouse")

STATE_DIR = ".voronka"
# the file dbt builds (dbt_models/profiles.yml): the working copy during a run
WORKING_COPY_ENV = "VORONKA_WORKING_COPY"
# the folder the dbt launcher starts dbt in: the working copy's, named relative to it (D220)
DBT_CWD_ENV = "VORONKA_DBT_CWD"
POLL_SECONDS = 0.5
# the state file's record of the inputs of the run that published (lib/run_inputs.py, D150)
RUN_RECORD_KEY = "run"


class WarehouseError(Exception):
    """A warehouse command cannot go on; the message says what to do (CLI exit 2)."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (its holder record is in the message)."""


def state_dir(published: Path) -> Path:
    return local_folder(published) / STATE_DIR


def stem(published: Path | str | PostgresTarget) -> str:
    """The name the state files of the warehouse `published` start with (the file's stem, the
    database's name)."""
    target = parse_target(published)
    return target.dbname if isinstance(target, PostgresTarget) else target.stem


def working_path(published: Path | str) -> Path:
    """The pipeline's working copy of the published warehouse `published` (a PostgreSQL
    warehouse is its own: D183)."""
    if is_postgres(published):
        return parse_target(published)
    published = Path(published)
    return state_dir(published) / f"{published.stem}.work.duckdb"


def lock_path(published: Path | str) -> Path:
    return state_dir(published) / f"{stem(published)}.lock"


def state_path(published: Path | str) -> Path:
    return state_dir(published) / f"{stem(published)}.state.json"


# ------------------------------------------------------------------------------- the opener


class DuckDBConnection(Connection):
    """A DuckDB warehouse file (the embedded default)."""

    engine = "duckdb"

    def execute(self, sql: str, params=None):
        return self.raw.execute(sql, params) if params is not None else self.raw.execute(sql)

    def executemany(self, sql: str, rows) -> None:
        self.raw.executemany(sql, rows)

    def changed(self, sql: str, params=None) -> int:
        return self.execute(sql, params).fetchone()[0]

    def arrow_reader(self, sql: str, params=None, batch_rows: int = 1_000_000):
        relation = self.raw.sql(sql, params=params) if params else self.raw.sql(sql)
        return relation.to_arrow_reader(batch_rows)

    @contextlib.contextmanager
    def staged(self, name: str, table) -> Iterator[None]:
        self.raw.register(name, table)
        try:
            yield
        finally:
            self.raw.unregister(name)

    def in_duckdb(self, relations: list[str]):
        return contextlib.nullcontext(self)


def parse_target(value: Path | str | PostgresTarget) -> Path | PostgresTarget:
    """The warehouse a `--warehouse` value names: a `postgresql://` URL (D181), else a DuckDB
    file. Raises WarehouseError for a URL that cannot be used (one with a password, D182)."""
    if isinstance(value, PostgresTarget):
        return value
    if is_url(str(value)):
        try:
            return PostgresTarget.parse(str(value))
        except UrlError as exc:
            raise WarehouseError(str(exc)) from None
    return Path(value)


def database_errors() -> tuple[type[Exception], ...]:
    """What a statement on the warehouse raises: DuckDB's errors, and psycopg's (PostgreSQL)."""
    import psycopg

    return (duckdb.Error, psycopg.Error)


def is_postgres(target: object) -> bool:
    return isinstance(target, PostgresTarget) or is_url(target)


def exists(target: Path | str | PostgresTarget) -> bool:
    """Whether there is a warehouse to read: the DuckDB file exists; a PostgreSQL database is
    taken to (connecting says clearly when it does not, D181)."""
    target = parse_target(target)
    return isinstance(target, PostgresTarget) or target.exists()


def local_folder(target: Path | str | PostgresTarget) -> Path:
    """The folder of the warehouse's local files (Dagster's home, the validation page, the KPI
    report, exports): the DuckDB file's folder, or this machine's folder for a PostgreSQL
    warehouse (`PostgresTarget.local_dir`, D181)."""
    target = parse_target(target)
    if isinstance(target, PostgresTarget):
        return target.local_dir.resolve()
    return target.resolve().parent


def connect(
    target: Path | str | PostgresTarget,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    wait_seconds: float = 0.0,
) -> Connection:
    """Open the warehouse `target` (see :func:`open_warehouse`); the caller closes it."""
    target = parse_target(target)
    if isinstance(target, PostgresTarget):
        from dagster_project.lib.postgres import make_connection

        # a reader's connection is read-only by the session's default (D181); PostgreSQL
        # readers never block a writer, so there is nothing to wait for
        con = make_connection(target, "voronka reader" if read_only else "voronka")
        if read_only:
            con.execute("set default_transaction_read_only = on")
        return con
    path = target
    if read_only:
        config = {"memory_limit": memory_limit} if memory_limit else {}
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                return DuckDBConnection(duckdb.connect(str(path), read_only=True, config=config))
            except duckdb.IOException as err:
                # a writer process holds the file (DuckDB admits one): retry until the deadline
                if "lock" not in str(err).lower() or time.monotonic() >= deadline:
                    raise
                log.info("warehouse %s is locked by a writer; retrying", path)
                time.sleep(1.0)
    before_write()
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": memory_limit} if memory_limit else {}
    con = duckdb.connect(str(path), config=config)
    con.execute("set enable_progress_bar = false")
    return DuckDBConnection(con)


# what must let go of a DuckDB file before a writer opens it: the validation worker's read-only
# connection, held from one check to the next during a run (D393)
_before_write: list[Callable[[], None]] = []


@contextlib.contextmanager
def yielding_to_writers(release: Callable[[], None]) -> Iterator[None]:
    """Within the block, :func:`before_write` (every writer's open in this process, and the
    dbt step before dbt starts) calls ``release`` first: a reader held open in another process
    closes, so the writer is not refused DuckDB's lock."""
    _before_write.append(release)
    try:
        yield
    finally:
        _before_write.remove(release)


def before_write() -> None:
    """Let the readers this process holds open elsewhere go before a writer opens the file."""
    for release in list(_before_write):
        release()


@contextlib.contextmanager
def open_warehouse(
    target: Path | str | PostgresTarget,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    wait_seconds: float = 0.0,
) -> Iterator[Connection]:
    """The one way to open the warehouse (D180): a :class:`Connection`, closed on exit.

    Args:
        target: the warehouse: a DuckDB file (the working copy during a session, the
            published file for readers), or a PostgreSQL database (a `postgresql://` URL or
            its :class:`PostgresTarget`, D181).
        read_only: a reader's connection (a reader never takes the writer's lock).
        memory_limit: the engine's memory limit (DuckDB: `memory_limit`).
        wait_seconds: a read-only open retries this long while a writer holds the file.

    Writers are opened read-write with the parent folder created and no progress bar.
    """
    con = connect(target, read_only=read_only, memory_limit=memory_limit, wait_seconds=wait_seconds)
    try:
        yield con
    finally:
        con.close()


# ----------------------------------------------------------------------------------- the lock


@dataclass
class _Held:
    fd: int
    holder: dict
    depth: int = 1


_held: dict[Path, _Held] = {}
_held_lock = threading.Lock()


def read_holder(published: Path | str) -> dict | None:
    """The holder record in the lock file (of the current or the last holder), if readable."""
    try:
        text = lock_path(published).read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process (no holder record)"
    return (
        f"`{holder.get('command', '?')}` (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, user {holder.get('user', '?')}) since "
        f"{holder.get('since', '?')} UTC"
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return str(os.getuid())


def _acquire(published: Path, command: str, wait_seconds: float) -> bool:
    """Take the lock (True) or, if this process holds it already, nest (False)."""
    path = lock_path(published)
    with _held_lock:
        held = _held.get(path)
        if held is not None:
            held.depth += 1
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(published)
                if time.monotonic() >= deadline:
                    os.close(fd)
                    hint = (
                        f" Waited {wait_seconds:g} s."
                        if wait_seconds > 0
                        else " Wait for it to end, or pass --wait SECONDS to wait for it."
                    )
                    raise WarehouseBusy(
                        f"The warehouse {published} is in use by {describe_holder(holder)}." + hint
                    ) from None
                if not waited:
                    log.warning("waiting for the warehouse: held by %s", describe_holder(holder))
                    waited = True
                time.sleep(POLL_SECONDS)
        previous = read_holder(published)
        if previous and previous.get("pid") != os.getpid() and not previous.get("released"):
            log.warning(
                "taking over the warehouse lock of %s, which ended without releasing it "
                "(killed?); its unfinished work stays in the working copy and is not published",
                describe_holder(previous),
            )
        holder = {
            "pid": os.getpid(),
            "command": command,
            "host": socket.gethostname(),
            "user": _user(),
            "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        _held[path] = _Held(fd=fd, holder=holder)
        return True


def _release(published: Path) -> None:
    path = lock_path(published)
    with _held_lock:
        held = _held[path]
        held.depth -= 1
        if held.depth:
            return
        del _held[path]
        try:
            record = {**held.holder, "released": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(held.fd, 0)
            os.pwrite(held.fd, json.dumps(record).encode(), 0)
        finally:
            os.close(held.fd)  # closing the descriptor drops the flock


def holds_lock(published: Path | str) -> bool:
    """Whether this process holds the warehouse's lock (a session is open)."""
    with _held_lock:
        return lock_path(Path(published)) in _held


# ------------------------------------------------------------------------------ the state file


def _stat_record(path: Path) -> dict | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


stat_record = _stat_record  # what the state file keeps of the published file


def read_state(published: Path | str) -> dict:
    try:
        return json.loads(state_path(published).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_state(published: Path, state: dict) -> None:
    path = state_path(published)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _remove_database(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def _copy_database(source: Path, target: Path) -> None:
    """Copy a closed DuckDB file (and its WAL, if any) to `target`, atomically."""
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    _remove_database(target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    os.replace(tmp, target)


def _leftover_copies(published: Path, work: Path) -> list[Path]:
    """Temporary copies of a killed process: a publish's `.<name>.<pid>.publishing` beside the
    published file, an adoption's `<work>.<pid>.tmp` beside the working copy (D111)."""
    return sorted(
        [
            *published.parent.glob(f".{glob.escape(published.name)}.*.publishing"),
            *work.parent.glob(f"{glob.escape(work.name)}.*.tmp"),
        ]
    )


def _prepare_working_copy(published: Path, work: Path) -> str:
    """Make the working copy match the rules of the module docstring; returns what was done."""
    # the lock is held: no other process is copying (D111)
    for leftover in _leftover_copies(published, work):
        log.warning("removing %s, left by a copy that was killed", leftover)
        leftover.unlink(missing_ok=True)
    state = read_state(published)
    seen = _stat_record(published)
    if seen is not None and state.get("publishing") == seen:
        # killed after its rename and before its state was written: the publish completed, and
        # the working copy is what it published (D111)
        state = {"published": seen, "dirty": None}
        _write_state(published, state)
    if seen is None:
        if work.exists() and state.get("published"):
            log.warning(
                "the warehouse %s was deleted after it was published: its working copy is "
                "discarded and the pipeline starts from an empty warehouse",
                published,
            )
            _remove_database(work)
            _write_state(published, {})
            return "discarded"
        return "kept" if work.exists() else "new"
    if not work.exists() or state.get("published") != seen:
        if work.exists():
            log.warning(
                "the warehouse %s was changed outside voronka since it was last published: "
                "the pipeline goes on from it (its working copy is replaced)",
                published,
            )
        started = time.monotonic()
        _copy_database(published, work)
        _write_state(published, {"published": seen, "dirty": None})
        log.info("adopted %s as the working copy (%.1f s)", published, time.monotonic() - started)
        return "adopted"
    return "kept"


# ------------------------------------------------------------------------------------ sessions


@dataclass
class Session:
    """An open hold on the warehouse: the lock, and the working copy to read and write.

    Attributes:
        published: the file readers open (the `--warehouse` path).
        path: the working copy every connection of the session opens.
        owner: True for the outermost session of this process (it publishes); False nested.
        command: what holds the warehouse (for the holder record and the state file).
    """

    published: Path
    path: Path
    owner: bool
    command: str
    memory_limit: str | None = None
    publish_seconds: float | None = field(default=None)

    def connect(self, read_only: bool = False) -> Connection:
        """Open the working copy (read-write unless `read_only`); the caller closes it."""
        if read_only:
            return connect(self.path, read_only=True)
        return connect(self.path, memory_limit=self.memory_limit)

    def mark_dirty(self) -> None:
        """Record that the working copy is about to change (it differs from the published file
        until the next publish)."""
        state = read_state(self.published)
        if state.get("dirty"):
            return
        state["dirty"] = {"command": self.command, "since": _now()}
        _write_state(self.published, state)

    @property
    def dirty(self) -> dict | None:
        """Unpublished changes of the working copy: who made them and since when, or None."""
        return read_state(self.published).get("dirty") or None

    def publish(self, run_record: dict | None = None) -> float | None:
        """Publish the working copy over the published file; seconds it took, or None for a
        nested session (its outermost session publishes) and when nothing changed.

        `run_record`: the inputs of the run that publishes (`lib/run_inputs.py`), kept in the
        state file so that the next run with the same inputs is skipped (D150); any publish
        without one drops the previous record."""
        if not self.owner or (not self.dirty and self.published.exists()):
            return None
        started = time.monotonic()
        con = self.connect()
        try:
            con.execute("checkpoint")
        finally:
            con.close()
        target = self.published
        tmp = target.with_name(f".{target.name}.{os.getpid()}.publishing")
        try:
            shutil.copyfile(self.path, tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            # the copy's identity (a rename keeps it): a run killed right after the rename is
            # known to have published, not taken for a change made outside voronka (D111)
            _write_state(target, {**read_state(target), "publishing": _stat_record(tmp)})
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        state = {"published": _stat_record(target), "dirty": None}
        if run_record is not None:
            state[RUN_RECORD_KEY] = {**run_record, "published_at": _now()}
        _write_state(self.published, state)
        self.publish_seconds = time.monotonic() - started
        log.info("published %s (%.2f s)", target, self.publish_seconds)
        return self.publish_seconds


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@contextlib.contextmanager
def session(
    published: Path | str,
    command: str,
    *,
    wait_seconds: float = 0.0,
    memory_limit: str | None = None,
) -> Iterator[Session]:
    """Hold the warehouse for `command`: lock it, bring the working copy up to date, yield.

    A PostgreSQL warehouse has no working copy: see :func:`_postgres_session` (D183).

    Raises:
        WarehouseBusy: another process holds it (after `wait_seconds`).
    """
    target = parse_target(published)
    if isinstance(target, PostgresTarget):
        with _postgres_session(target, command, wait_seconds, memory_limit) as held:
            yield held
        return
    published = Path(published).resolve()
    work = working_path(published)
    owner = _acquire(published, command, wait_seconds)
    try:
        if owner:
            _prepare_working_copy(published, work)
        yield Session(published, work, owner, command, memory_limit)
    finally:
        _release(published)


@dataclass
class PostgresSession:
    """A hold on a PostgreSQL warehouse (D183): its advisory lock, held by one connection of
    this process for the session's length (a second session of the process nests in it).

    There is no working copy and no file to publish: the pipeline writes the database, and the
    mart and finance tables are each swapped in whole by the dbt build (h19-server's atomic
    publish), so `publish` does nothing and nothing is ever 'not yet published' (`dirty` None).
    """

    published: PostgresTarget
    owner: bool
    command: str
    memory_limit: str | None = None
    publish_seconds: float | None = field(default=None)

    @property
    def path(self) -> PostgresTarget:
        return self.published

    def connect(self, read_only: bool = False) -> Connection:
        return connect(self.published, read_only=read_only)

    def mark_dirty(self) -> None:
        pass

    @property
    def dirty(self) -> dict | None:
        return None

    def publish(self, run_record: dict | None = None) -> float | None:
        return None  # nothing to publish; no run record either (D150 is for DuckDB files)


_pg_held: dict[str, list] = {}


@contextlib.contextmanager
def _postgres_session(
    target: PostgresTarget, command: str, wait_seconds: float, memory_limit: str | None
) -> Iterator[PostgresSession]:
    from dagster_project.lib.postgres import acquire_lock

    with _held_lock:
        held = _pg_held.get(target.url)
        if held is not None:
            held[1] += 1
    owner = held is None
    if owner:
        lock = acquire_lock(target, command, wait_seconds)
        with _held_lock:
            _pg_held[target.url] = [lock, 1]
    try:
        yield PostgresSession(target, owner, command, memory_limit)
    finally:
        with _held_lock:
            held = _pg_held[target.url]
            held[1] -= 1
            if not held[1]:
                del _pg_held[target.url]
                held[0].close()  # ending the connection releases the advisory lock


def require_built(published: Path | str) -> None:
    """Raise WarehouseError when there is neither a published warehouse nor a working copy."""
    if is_postgres(published):
        return  # a database that holds nothing yet says so when its tables are read
    if not Path(published).exists() and not working_path(published).exists():
        raise WarehouseError(f"No warehouse at {published}: run `voronka run` first.")


def connect_published(published: Path | str) -> Connection:
    """A read-only connection to the published warehouse, as a reader (BI) opens it."""
    if is_postgres(published):
        return connect(published, read_only=True)
    published = Path(published)
    if not published.exists():
        raise WarehouseError(f"No warehouse at {published}: run `voronka run` first.")
    try:
        return connect(published, read_only=True)
    except duckdb.IOException as err:
        raise WarehouseError(
            f"The warehouse {published} cannot be opened for reading: {err}. A program holds it "
            "open for writing; readers must open it read-only (README, 'Reading the warehouse')."
        ) from None


@contextlib.contextmanager
def dbt_target(path: Path | str | PostgresTarget) -> Iterator[None]:
    """Have the dbt processes started inside the block build `path` (profiles.yml reads
    `VORONKA_WORKING_COPY`; for a PostgreSQL warehouse `DBT_TARGET=postgres` and the
    `VORONKA_PG_*` variables, with the URL's parameters as libpq's variables, D185); the
    variables are restored after, so no later dbt call of this process (a test's, a user's
    script's) builds a warehouse it did not ask for.

    A DuckDB file is named relative to its folder, `DBT_CWD_ENV`, where the dbt launcher
    (`dagster_project/bin/dbt`) starts dbt: dbt reuses a parse only for the same profile, so a
    profile that names the same file the same way in every folder lets every warehouse reuse
    one parse (D220)."""
    target = parse_target(path)
    if isinstance(target, PostgresTarget):
        values = target.dbt_env()
    else:
        file = Path(path).absolute()
        values = {WORKING_COPY_ENV: file.name, DBT_CWD_ENV: str(file.parent)}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def active_file(published: Path | str) -> Path:
    """The file to work on: the working copy while this process holds a session, else the
    published file itself (library use on a file of one's own, e.g. in tests). A PostgreSQL
    warehouse is its own working copy (D183)."""
    if is_postgres(published):
        return parse_target(published)
    return working_path(published) if holds_lock(published) else Path(published)
