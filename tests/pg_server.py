"""A throwaway PostgreSQL server for the tests and the benchmarks (issue 19, D165).

`running_server()` finds the PostgreSQL 15+ binaries, `initdb`s a cluster into a fresh
`mktemp -d` folder, starts it on a free TCP port of 127.0.0.1 (and a unix socket in the same
folder), creates a role and a database for the product, yields a :class:`PgServer`, and at the
end (also on Ctrl-C or a failure) stops the server and removes the folder.

- `initdb` and `postgres` refuse to run as root: as root they run as the `postgres` system user
  (Debian's package creates it) and the folder is chowned to it.
- Every connection needs a password (scram-sha-256, local and TCP), so that the product's
  PGPASSWORD / ~/.pgpass handling is exercised: :attr:`PgServer.url` holds none, the password
  is :attr:`PgServer.password` (put in PGPASSWORD by the tests' fixture).
- The product's role `voronka` is not a superuser: it owns the database and may create roles
  (CREATEROLE, for the BI and finance group roles), as a DBA would set it up.
- The postmaster is this process's child and asks Linux to stop it (fast shutdown) when the
  thread that started it ends, so that a killed test run leaves no server behind; start it from
  a thread that lives as long as the server (the main thread).
- Test settings: fsync and synchronous_commit off (a throwaway cluster), messages in English,
  C collation (byte order, as DuckDB's). `durable=True` keeps PostgreSQL's defaults (benchmarks).

Binaries: $VORONKA_PG_BINDIR, else `pg_config --bindir`, else the newest
/usr/lib/postgresql/<n>/bin, else `initdb` on PATH. None found: :class:`PgUnavailable`
(.ci/run installs Debian's `postgresql` package on a fresh machine).

    .venv/bin/python -m tests.pg_server      # a server until Ctrl-C; prints its URL and password
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIN_MAJOR = 15
SYSTEM_USER = "postgres"  # who runs initdb and postgres when we are root
ADMIN_USER = "postgres"  # the cluster's superuser
APP_USER = "voronka"  # the product's role: owns the database, may create roles
APP_DATABASE = "voronka"
START_SECONDS = 60
STOP_SECONDS = 60
PR_SET_PDEATHSIG = 1


class PgUnavailable(RuntimeError):
    """No PostgreSQL 15+ binaries on this machine (or no user to run them as)."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    socket_dir: Path
    data_dir: Path
    log_file: Path
    bindir: Path
    version: str
    user: str
    password: str
    database: str
    admin_user: str
    admin_password: str

    @property
    def url(self) -> str:
        """The product's URL (no password: that comes from PGPASSWORD)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.admin_user}@{self.host}:{self.port}/{self.database}"

    def url_for(self, database: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{database}"

    def conninfo(self, *, database: str | None = None, admin: bool = False, **extra) -> str:
        """A libpq key=value string for psycopg (password included: for tests only)."""
        parts = {
            "host": self.host,
            "port": self.port,
            "dbname": database or self.database,
            "user": self.admin_user if admin else self.user,
            "password": self.admin_password if admin else self.password,
            **extra,
        }
        return " ".join(f"{key}={_quote(str(value))}" for key, value in parts.items())

    def connect(self, *, database: str | None = None, admin: bool = False, **kwargs):
        """A psycopg connection (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.conninfo(database=database, admin=admin), **kwargs)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database owned by the product's role, empty or a copy of `template` (its
        tables, rows and grants; nobody may be connected to it); returns its URL."""
        from psycopg import sql

        with self.connect(admin=True) as con:
            con.execute(sql.SQL("create database {} owner {} template {}").format(
                sql.Identifier(name), sql.Identifier(self.user),
                sql.Identifier(template or "template1"),
            ))  # fmt: skip
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect(admin=True) as con:
            con.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)
            ))  # fmt: skip

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that uses :attr:`url` (libpq reads PGPASSWORD)."""
        return {"PGPASSWORD": self.password}


def _quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------------- binaries


def _major(bindir: Path) -> tuple[int, str] | None:
    postgres = bindir / "postgres"
    if not (os.access(postgres, os.X_OK) and os.access(bindir / "initdb", os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)(?:\.(\d+))?", out)
    return (int(found.group(1)), found.group(0)) if found else None


def candidate_bindirs() -> list[Path]:
    """Where PostgreSQL's server binaries may be, in the order they are tried."""
    found: list[Path] = []
    if os.environ.get("VORONKA_PG_BINDIR"):
        found.append(Path(os.environ["VORONKA_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if out:
                found.append(Path(out))

    def version_key(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else 0

    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).resolve().parent)
    return found


def find_bindir() -> tuple[Path, str]:
    """The first directory with PostgreSQL 15+ `postgres` and `initdb`, and the version."""
    seen: list[str] = []
    for bindir in candidate_bindirs():
        major = _major(bindir)
        if major is None:
            continue
        if major[0] >= MIN_MAJOR:
            return bindir, major[1]
        seen.append(f"{bindir} ({major[1]})")
    older = f"; too old: {', '.join(seen)}" if seen else ""
    raise PgUnavailable(
        f"no PostgreSQL {MIN_MAJOR}+ server binaries (initdb, postgres) found in "
        f"$VORONKA_PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin or PATH{older}. "
        "Install them (Debian/Ubuntu: apt-get install -y postgresql; .ci/run does) or point "
        "VORONKA_PG_BINDIR at them."
    )


# ---------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> tuple[int | None, int | None]:
    """(uid, gid) to run the server as: the `postgres` user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError as exc:
        raise PgUnavailable(
            f"running as root, and there is no '{SYSTEM_USER}' user to run initdb and postgres "
            "as (they refuse root): install Debian's postgresql package, which creates it, or "
            "run the tests as a non-root user"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# looked up here: the child runs _die_with_parent after switching to the postgres user, who
# may not read this Python's files (no import may happen there)
_PRCTL = _prctl()


def _die_with_parent() -> None:
    """In the postmaster before exec: SIGINT (fast shutdown) when our starter thread ends."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)


def _initdb(bindir: Path, data: Path, pwfile: Path, uid, gid) -> None:
    result = subprocess.run(
        [
            str(bindir / "initdb"),
            f"--pgdata={data}",
            f"--username={ADMIN_USER}",
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--lc-ctype=C.UTF-8",  # lower() and upper() of Cyrillic (D169)
            "--no-instructions",
            "--no-sync",
        ],
        user=uid,
        group=gid,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _settings(port: int, socket_dir: Path, durable: bool) -> list[str]:
    settings = {
        "port": str(port),
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(socket_dir),
        "max_connections": "40",
        "shared_buffers": "64MB",
        "lc_messages": "C",
        "timezone": "UTC",
        "log_min_messages": "warning",
        "log_min_error_statement": "panic",  # statements may hold test passwords: not logged
    }
    if not durable:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    args: list[str] = []
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    return args


def _wait_ready(server: PgServer, process: subprocess.Popen) -> None:
    import psycopg

    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"postgres exited ({process.returncode}) on start:\n{_tail(server.log_file)}"
            )
        try:
            with psycopg.connect(
                server.conninfo(admin=True, database="postgres"), connect_timeout=5
            ):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres did not accept connections within {START_SECONDS} s:\n"
                    f"{_tail(server.log_file)}"
                ) from None
            time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients, then exits
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGQUIT)  # immediate shutdown
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _bootstrap(server: PgServer) -> None:
    from psycopg import sql

    with server.connect(admin=True, database="postgres") as con:
        con.execute(
            sql.SQL("create role {} login createrole password {}").format(
                sql.Identifier(server.user), sql.Literal(server.password)
            )
        )
        con.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(server.database), sql.Identifier(server.user)
            )
        )


@contextlib.contextmanager
def running_server(*, durable: bool = False) -> Iterator[PgServer]:
    """Start a fresh PostgreSQL server; stop it and delete its files on leaving (see above)."""
    bindir, version = find_bindir()
    uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="voronka-pg-"))
    process: subprocess.Popen | None = None
    try:
        if uid is not None:
            os.chown(root, uid, gid)
        admin_password = secrets.token_urlsafe(18)
        pwfile = root / "pwfile"
        pwfile.write_text(admin_password + "\n")
        if uid is not None:
            os.chown(pwfile, uid, gid)
        data = root / "data"
        _initdb(bindir, data, pwfile, uid, gid)
        pwfile.unlink()
        log_file = root / "postgres.log"
        for attempt in range(5):
            port = free_port()
            server = PgServer(
                host="127.0.0.1",
                port=port,
                socket_dir=root,
                data_dir=data,
                log_file=log_file,
                bindir=bindir,
                version=version,
                user=APP_USER,
                password=secrets.token_urlsafe(18),
                database=APP_DATABASE,
                admin_user=ADMIN_USER,
                admin_password=admin_password,
            )
            with open(log_file, "ab") as log:
                process = subprocess.Popen(
                    [str(bindir / "postgres"), "-D", str(data), *_settings(port, root, durable)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    user=uid,
                    group=gid,
                    preexec_fn=_die_with_parent,  # runs after the switch of user (PDEATHSIG)
                    env={**os.environ, "LC_ALL": "C", "LANG": "C"},
                )
            try:
                _wait_ready(server, process)
                break
            except RuntimeError:
                _stop(process)
                # another process took the port between free_port() and the bind: try another
                if attempt == 4 or "could not bind" not in _tail(log_file):
                    raise
        _bootstrap(server)
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """A server until Ctrl-C or SIGTERM (for benchmarks and trying things by hand)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    durable = "--durable" in sys.argv[1:]
    try:
        with running_server(durable=durable) as server:
            print(f"VORONKA_WAREHOUSE={server.url}", flush=True)
            print(f"PGPASSWORD={server.password}", flush=True)
            print(f"# superuser: {server.admin_url} password {server.admin_password}", flush=True)
            print(f"# PostgreSQL {server.version}, data in {server.data_dir}; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except PgUnavailable as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
