"""The PostgreSQL warehouse: its URL, its connection, its lock (issue 19, D181-D186).

`--warehouse postgresql://user@host:port/dbname?sslmode=require` (or `VORONKA_WAREHOUSE`)
selects it. libpq conventions hold: the password comes from `PGPASSWORD` or `~/.pgpass`, never
from the URL (a URL with a password is refused, and never echoed: D182); `sslmode` and every
other URL parameter go to libpq unchanged (the URL is handed to it as it is).

:class:`PostgresConnection` is the PostgreSQL side of `warehouse.Connection` (D180): `?` and
`$name` placeholders are rewritten to psycopg's, large results stream out by `COPY ... TO
STDOUT` into Arrow batches, and rows made elsewhere go in by `COPY ... FROM STDIN` (D184), never
row by row. One writer at a time: a session holds a PostgreSQL advisory lock (D183).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from dagster_project.lib.connection import Connection

log = logging.getLogger("voronka.warehouse")

SCHEMES = ("postgresql", "postgres")
# every session of every voronka process takes this advisory lock key: one writer per database
LOCK_KEY = 0x766F726F6E6B61  # "voronka"
COPY_CHUNK = 1 << 20
# who reads what on a PostgreSQL warehouse (the roles: dbt_models/macros/roles.sql, D170)
READERS = (
    "BI connects as a login role in group `voronka_bi` (schema `marts`), finance as one in "
    "`voronka_finance` (`marts`, `finance`): README, 'PostgreSQL'"
)
# the URL parameters libpq takes from an environment variable too (libpq docs, 34.15): dbt's
# PostgreSQL adapter builds its own connection, so the run hands them over this way (D185)
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "requiressl": "PGREQUIRESSL",
    "passfile": "PGPASSFILE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "service": "PGSERVICE",
    "channel_binding": "PGCHANNELBINDING",
    "hostaddr": "PGHOSTADDR",
    "client_encoding": "PGCLIENTENCODING",
    "require_auth": "PGREQUIREAUTH",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
_PASSWORD_IN_URL = re.compile(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


class UrlError(ValueError):
    """A `postgresql://` URL that cannot be used (the message never holds a password)."""


def is_url(value: object) -> bool:
    return (
        isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and ("://" in value)
    )


def mask(text: str) -> str:
    """`text` with the password of every `postgresql://` URL in it replaced by `***`."""
    return _PASSWORD_PARAM.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1:***@", text))


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL warehouse. `url` never holds a password (D182).

    Attributes:
        url: the URL as given (libpq reads it as it is: host, port, user, database, params).
        host, port, user, dbname: its parts ('' when left to libpq's defaults).
        params: its query parameters (sslmode, ...), passed through.
    """

    url: str
    host: str
    port: str
    user: str
    dbname: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str) -> PostgresTarget:
        try:
            parts = urlsplit(url)
            port = str(parts.port or "")
        except ValueError as exc:
            raise UrlError(f"{mask(url)} is not a postgresql:// URL: {exc}") from None
        params = tuple(parse_qsl(parts.query, keep_blank_values=True))
        if parts.password is not None or any(k.lower() == "password" for k, _ in params):
            raise UrlError(
                f"the warehouse URL {mask(url)} holds a password: a URL is shown in logs, "
                "process lists and the Dagster UI. Give the URL without it and put the password "
                "in PGPASSWORD or ~/.pgpass (README, 'PostgreSQL')"
            )
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise UrlError(
                f"the warehouse URL {url} names no database: postgresql://user@host:port/dbname"
            )
        return cls(
            url=url,
            host=unquote(parts.hostname or ""),
            port=port,
            user=unquote(parts.username or ""),
            dbname=dbname,
            params=params,
        )

    def __str__(self) -> str:
        return self.url

    @property
    def local_dir(self) -> Path:
        """Where this machine keeps the run's local files for this warehouse (the Dagster home,
        the validation page, the KPI report): `data/postgres/<host>-<port>-<dbname>` (D181)."""
        name = "-".join(p for p in (self.host or "local", self.port or "5432", self.dbname) if p)
        return Path("data") / "postgres" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's `postgres` output reads (dbt_models/profiles.yml), and the URL's
        parameters as libpq's variables (D185). No password: libpq reads PGPASSWORD itself."""
        env = {
            "DBT_TARGET": "postgres",
            "VORONKA_PG_HOST": self.host or os.environ.get("PGHOST", "localhost"),
            "VORONKA_PG_PORT": self.port or os.environ.get("PGPORT", "5432"),
            "VORONKA_PG_USER": self.user or os.environ.get("PGUSER", _user()),
            "VORONKA_PG_DBNAME": self.dbname,
        }
        for key, value in self.params:
            if key in LIBPQ_ENV:
                env[LIBPQ_ENV[key]] = value
        return env


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return str(os.getuid())


# ------------------------------------------------------------------------------ placeholders


_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def to_psycopg(sql: str, named: bool) -> str:
    """`sql` with DuckDB's placeholders (`?`, or `$name` when `named`) as psycopg's (`%s`,
    `%(name)s`) and every other `%` doubled; quoted text and comments are left alone."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and not sql.startswith(c * 2, j)):
                j += 2 if sql.startswith(c * 2, j) else 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?" and not named:
            out.append("%s")
            i += 1
        elif c == "$" and named and (m := _NAMED.match(sql, i)):
            out.append(f"%({m.group(1)})s")
            i = m.end()
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _bind(sql: str, params) -> tuple[str, object]:
    if params is None:
        return sql, None
    named = isinstance(params, dict)
    return to_psycopg(sql, named), (dict(params) if named else list(params))


# ------------------------------------------------------------------------------ Arrow <-> SQL

# PostgreSQL type OIDs -> Arrow types for results streamed out (anything else: text)
_INT_OIDS = {20, 21, 23, 26}
_FLOAT_OIDS = {700, 701, 1700}  # numeric comes out as double, as the validation wants it
_TEXT_TYPES = ("string", "large_string")


def _arrow_type(oid: int):
    import pyarrow as pa

    if oid == 16:
        return pa.bool_()
    if oid in _INT_OIDS:
        return pa.int64()
    if oid in _FLOAT_OIDS:
        return pa.float64()
    if oid == 1082:
        return pa.date32()
    if oid == 1114:
        return pa.timestamp("us")
    if oid == 1184:
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _sql_type(arrow_type) -> str:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision}, {t.scale})"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    return "text"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# PostgreSQL's types (format_type) as DuckDB's, for a DuckDB copy of a table (D231): the types
# dbt's contracts give the marts and finance tables on either engine
_DUCKDB_TYPES = {
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "character": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "numeric": "DOUBLE",  # no precision: as the Arrow reader reads it (_FLOAT_OIDS)
}


def duckdb_type(pg_type: str) -> str:
    """DuckDB's type for a PostgreSQL column type as `format_type` writes it (VARCHAR for any
    other: its text as PostgreSQL prints it)."""
    if match := re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type):
        return f"DECIMAL({match.group(1)},{match.group(2)})"
    return _DUCKDB_TYPES.get(re.sub(r"\(\d+\)", "", pg_type), "VARCHAR")


# -------------------------------------------------------------------------------- connection


def _connect_raw(target: PostgresTarget, application_name: str | None = None):
    import psycopg

    kwargs = {"autocommit": True}
    if application_name:
        kwargs["application_name"] = application_name[:63]
    try:
        con = psycopg.connect(target.url, **kwargs)
    except psycopg.OperationalError as exc:
        from dagster_project.lib.warehouse import WarehouseError

        raise WarehouseError(
            f"Cannot connect to the PostgreSQL warehouse {mask(target.url)}: "
            f"{mask(str(exc)).strip()}. Check the URL, that the server runs, and the password "
            "in PGPASSWORD or ~/.pgpass."
        ) from None
    con.execute("set datestyle = 'ISO, YMD'")
    con.execute("set intervalstyle = 'iso_8601'")
    con.execute("set timezone = 'UTC'")
    return con


class _Result:
    """A finished statement's rows (psycopg's cursor), as DuckDB's connection gives them."""

    def __init__(self, cursor) -> None:
        self.cursor = cursor

    def fetchall(self) -> list[tuple]:
        return self.cursor.fetchall() if self.cursor.description else []

    def fetchone(self):
        return self.cursor.fetchone() if self.cursor.description else None

    def fetchmany(self, size: int) -> list[tuple]:
        return self.cursor.fetchmany(size) if self.cursor.description else []

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


class PostgresConnection(Connection):
    """A PostgreSQL warehouse connection (autocommit, as DuckDB's: `begin transaction` ...
    `commit` in SQL make a transaction)."""

    engine = "postgres"

    def execute(self, sql: str, params=None):
        query, values = _bind(sql, params)
        return _Result(self.raw.execute(query, values))

    def executemany(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            query, _ = _bind(sql, rows[0])
            with self.raw.cursor() as cur:
                cur.executemany(query, [list(r) for r in rows])

    def changed(self, sql: str, params=None) -> int:
        return self.execute(sql, params).rowcount

    def literal_sql(self, sql: str, params=None) -> str:
        """`sql` with its parameters bound on the client (COPY takes no parameters)."""
        import psycopg

        query, values = _bind(sql, params)
        if values is None:
            return sql
        return psycopg.ClientCursor(self.raw).mogrify(query, values)

    def arrow_reader(self, sql: str, params=None, batch_rows: int = 1_000_000):
        return _arrow_reader(self, self.literal_sql(sql, params), batch_rows)

    @contextlib.contextmanager
    def staged(self, name: str, table) -> Iterator[None]:
        columns = ", ".join(f"{quote(f.name)} {_sql_type(f.type)}" for f in table.schema)
        self.raw.execute(f"create temp table {quote(name)} ({columns})")
        try:
            self.copy_arrow(name, table)
            yield
        finally:
            self.raw.execute(f"drop table if exists {quote(name)}")

    def copy_arrow(self, table_name: str, table) -> int:
        """COPY an Arrow table into `table_name` (its columns by name); rows copied."""
        import io

        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(quote(c) for c in table.column_names)
        return self.copy_in(f"{table_name} ({columns})", buffer)

    def copy_in(self, relation: str, stream) -> int:
        """`COPY relation FROM STDIN (csv)` fed from a binary stream in chunks."""
        with self.raw.cursor() as cur:
            with cur.copy(f"copy {relation} from stdin (format csv)") as copy:
                while chunk := stream.read(COPY_CHUNK):
                    copy.write(chunk)
            return cur.rowcount

    def copy_out(self, sql: str, stream, params=None) -> None:
        """`COPY (sql) TO STDOUT (csv, header)` written to a binary stream."""
        query = self.literal_sql(sql, params)
        with self.raw.cursor() as cur:
            with cur.copy(f"copy ({query}) to stdout (format csv, header)") as copy:
                for chunk in copy:
                    stream.write(chunk)

    @contextlib.contextmanager
    def in_duckdb(self, relations: list[str]) -> Iterator[Connection]:
        """A private DuckDB file holding a copy of `relations` (D231): each read by `COPY ...
        TO STDOUT` into a CSV file and loaded by DuckDB's CSV reader with the DuckDB types of
        its columns (`duckdb_type`), all inside one read-only REPEATABLE READ transaction, so
        the tables agree with one another even while a run publishes; removed at the end."""
        from dagster_project.lib import warehouse as wh

        with tempfile.TemporaryDirectory(prefix="voronka_copy_") as folder:
            local = wh.connect(Path(folder) / "exported.duckdb")
            try:
                self.raw.execute("begin isolation level repeatable read read only")
                try:
                    for n, relation in enumerate(relations):
                        schema, name = relation.split(".")
                        self._copy_to_duckdb(local, schema, name, Path(folder) / f"{n}.csv")
                finally:
                    self.raw.execute("commit")
                yield local
            finally:
                local.close()

    def _copy_to_duckdb(self, local, schema: str, name: str, path: Path) -> None:
        relation = f"{quote(schema)}.{quote(name)}"
        columns = self.raw.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_catalog.pg_attribute "
            "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
            [relation],
        ).fetchall()
        with path.open("wb") as handle:
            self.copy_out(f"select * from {relation}", handle)
        spec = ", ".join(f"{_literal(c)}: {_literal(duckdb_type(t))}" for c, t in columns)
        local.execute(f"create schema if not exists {quote(schema)}")
        local.execute(
            f"create table {relation} as select * from read_csv({_literal(str(path))}, "
            f"header = true, auto_detect = false, columns = {{{spec}}}, delim = ',', "
            "quote = '\"', escape = '\"', allow_quoted_nulls = false, new_line = '\\n')"
        )
        path.unlink()

    def result_types(self, sql: str) -> list[tuple[str, int]]:
        """The columns of `sql` (a query without parameters) and their type OIDs."""
        with self.raw.cursor() as cur:
            cur.execute(f"select * from ({sql}) as _q limit 0")
            return [(d.name, d.type_code) for d in cur.description]


def make_connection(target: PostgresTarget, application_name: str | None = None):
    """A :class:`PostgresConnection` to `target` (`application_name` shows in pg_stat_activity)."""
    return PostgresConnection(_connect_raw(target, application_name))


def _arrow_reader(con, sql: str, batch_rows: int):
    """The result of `sql` as Arrow record batches: `COPY TO STDOUT` into a temporary CSV file,
    read back by Arrow's CSV reader with the result's own types (D186)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = con.result_types(sql)
    schema = pa.schema([(name, _arrow_type(oid)) for name, oid in types])
    handle = tempfile.TemporaryFile(prefix="voronka_pg_")
    con.copy_out(sql, handle)
    handle.seek(0)
    if not types:
        handle.close()
        return pa.RecordBatchReader.from_batches(schema, iter(()))
    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(
            column_names=[n for n, _ in types], skip_rows=1, block_size=1 << 24
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )

    def batches() -> Iterator:
        try:
            pending = []
            rows = 0
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                if rows >= batch_rows:
                    yield from pa.Table.from_batches(pending, schema).to_batches(batch_rows)
                    pending, rows = [], 0
            if pending:
                yield from pa.Table.from_batches(pending, schema).to_batches(batch_rows)
        finally:
            handle.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


# -------------------------------------------------------------------------------------- lock


def holder_label(command: str) -> str:
    """The lock holder's `application_name`: what, which process, where (63 bytes at most)."""
    return f"voronka {os.getpid()}@{socket.gethostname()[:20]} {command}"[:63]


def acquire_lock(target: PostgresTarget, command: str, wait_seconds: float):
    """A connection holding the warehouse's advisory lock (closing it releases the lock).

    Raises:
        WarehouseBusy: another session holds it after `wait_seconds` (its holder named).
    """
    from dagster_project.lib.warehouse import WarehouseBusy

    con = _connect_raw(target, holder_label(command))
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    waited = False
    while True:
        if con.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]:
            return con
        holder = describe_holder(con)
        if time.monotonic() >= deadline:
            con.close()
            hint = (
                f" Waited {wait_seconds:g} s."
                if wait_seconds > 0
                else " Wait for it to end, or pass --wait SECONDS to wait for it."
            )
            raise WarehouseBusy(f"The warehouse {target.url} is in use by {holder}." + hint)
        if not waited:
            log.warning("waiting for the warehouse: held by %s", holder)
            waited = True
        time.sleep(0.5)


def describe_holder(con) -> str:
    row = con.execute(
        """
        select a.application_name, a.usename, coalesce(host(a.client_addr), 'local socket'),
            to_char(a.backend_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted
            and ((l.classid::bigint << 32) | l.objid::bigint) = %s
        limit 1
        """,
        [LOCK_KEY],
    ).fetchone()
    if not row:
        return "another session (it ended meanwhile, or its holder is not visible to this role)"
    name, user, address, since = row
    return f"`{name}` (PostgreSQL user {user}, from {address}) since {since} UTC"
