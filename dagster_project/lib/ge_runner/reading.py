"""Reading the warehouse for validation: the read-only connection, a table's columns, and a
query's rows as pandas DataFrames of at most ``chunk_rows`` rows, read ahead by a thread.

GE's SQL engine does not work on DuckDB (duckdb-engine returns no rows once GE closes the
connection), so a batch is read with DuckDB SQL and validated by GE's pandas engine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib.ge_runner.suites import TYPED_SUFFIX

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 1_000_000
DEFAULT_VALIDATION_MEMORY = "1GB"  # DuckDB's share of a validation (read_only_warehouse)
VALIDATION_MEMORY_ENV = "VORONKA_VALIDATION_MEMORY_LIMIT"
# pandas holds nanosecond timestamps only between 1677 and 2262; typed timestamps are clipped to
# these bounds (both far outside every range a suite accepts) so that a year-9999 typo fails a
# range expectation instead of crashing the conversion.
TIMESTAMP_CLIP = ("1800-01-01", "2200-01-01")


def to_pandas_types(df: pd.DataFrame) -> pd.DataFrame:
    """Typed timestamps as clipped ``datetime64[ns]`` (GE's vectorised path for datetimes)."""
    import pandas as pd

    for name in df.columns:
        if name.endswith(TYPED_SUFFIX) and pd.api.types.is_datetime64_any_dtype(df[name].dtype):
            low, high = (pd.Timestamp(t) for t in TIMESTAMP_CLIP)
            df[name] = df[name].clip(lower=low, upper=high).astype("datetime64[ns]")
    return df


def arrow_chunks(con: Any, sql: str, params: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``chunk_rows`` rows of a query on the warehouse (at least one):
    ``con.arrow_reader`` of the one opener (D180), on DuckDB or PostgreSQL alike.

    Decimals become doubles: pandas holds them as Python objects, which GE compares one by one.
    """
    reader = con.arrow_reader(sql, params or None, min(chunk_rows, 1_000_000))
    yield from arrow_frames(reader, reader.schema, chunk_rows)


def read_whole(con: Any, sql: str, params: Any, chunk_rows: int) -> Any:
    """The rows of a query as one Arrow table when they fit in one chunk (at most
    ``chunk_rows``), else None (what was read is dropped). A batch read once this way is
    fingerprinted and validated from the same rows (D390); database errors propagate."""
    import pyarrow as pa

    reader = con.arrow_reader(sql, params or None, min(chunk_rows, 1_000_000))
    batches, rows = [], 0
    for record_batch in reader:
        rows += record_batch.num_rows
        if rows > chunk_rows:
            reader.close()
            return None
        batches.append(record_batch)
    return pa.Table.from_batches(batches, reader.schema)


def table_frames(table: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The DataFrames :func:`arrow_chunks` makes of a query, made of its rows already read into
    an Arrow table (:func:`read_whole`)."""
    return arrow_frames(table.to_batches(), table.schema, chunk_rows)


def arrow_frames(batches: Iterable[Any], schema: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``chunk_rows`` rows of Arrow record batches (at least one)."""
    import pyarrow as pa

    as_double = pa.schema(
        [f.with_type(pa.float64()) if pa.types.is_decimal(f.type) else f for f in schema]
    )

    def frame(batches: list[Any]) -> pd.DataFrame:
        table = pa.Table.from_batches(batches, schema)
        if as_double != schema:
            table = table.cast(as_double)
        return to_pandas_types(table.to_pandas())

    pending: list[Any] = []
    pending_rows = 0
    yielded = False
    for record_batch in batches:
        offset = 0
        while offset < record_batch.num_rows:
            piece = record_batch.slice(offset, chunk_rows - pending_rows)
            offset += piece.num_rows
            pending.append(piece)
            pending_rows += piece.num_rows
            if pending_rows == chunk_rows:
                yield frame(pending)
                pending, pending_rows, yielded = [], 0, True
    if pending or not yielded:  # an empty batch is still one (empty) DataFrame
        yield frame(pending)


def read_ahead(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The same frames, the next one read by a helper thread while the caller validates this one.

    Reading (DuckDB's query, Arrow, the conversion to pandas) mostly runs without the GIL, GE's
    validation mostly with it: the two overlap on the second core (D67). At most one frame
    waits, so memory grows by one chunk. The reader's errors are raised here, where the frame
    would have been; a consumer that stops early stops the reader before this returns (the
    connection is then free for the caller again).
    """
    import queue

    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    taken = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
                del frame
                # the next read starts once this frame is taken: at most one frame waits or is
                # being read while the consumer validates its own
                while slot.unfinished_tasks and not stop.is_set():
                    taken.wait(0.05)
                    taken.clear()
            put(end)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    reader = threading.Thread(target=read, name="voronka-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = slot.get()
            slot.task_done()
            taken.set()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item
    finally:
        stop.set()
        reader.join()


def table_column_types(
    con: duckdb.DuckDBPyConnection, schema: str, table: str
) -> list[tuple[str, str]]:
    """The columns of a table or view, in order, with their types (none when it is missing)."""
    return con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [name for name, _ in table_column_types(con, schema, table)]


def chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


@contextmanager
def read_only_warehouse(path: Path | str, *, wait_seconds: float = 60.0) -> Iterator[Any]:
    """A read-only connection to the warehouse (the one opener, D180), closed on exit.

    DuckDB admits one writer process; while another process writes, opening fails with a lock
    error, so the open is retried for up to ``wait_seconds``.

    The connection's ``memory_limit`` (``VORONKA_VALIDATION_MEMORY_LIMIT``, default
    ``1GB``) bounds DuckDB's cache of table blocks and its queries, which spill to disk beyond
    it: the batches' DataFrames need the rest of the process's memory. Without a limit DuckDB
    allows itself 80 % of the machine and kept every block of ``raw.calls`` it had read (1 GB at
    the large scale, on top of the frames; D63).

    Raises:
        FileNotFoundError: there is no warehouse file (nothing has been loaded yet).
    """
    con = open_read_only(path, wait_seconds=wait_seconds)
    try:
        yield con
    finally:
        con.close()


def open_read_only(path: Path | str, *, wait_seconds: float = 60.0) -> Any:
    """The connection :func:`read_only_warehouse` yields; the caller closes it."""
    from dagster_project.lib import warehouse as wh

    target = wh.parse_target(path)
    if not wh.is_postgres(target) and not target.exists():
        raise FileNotFoundError(f"no warehouse at {target}: load the inbox first")
    return wh.connect(
        target, read_only=True, memory_limit=validation_memory_limit(), wait_seconds=wait_seconds
    )


def validation_memory_limit() -> str:
    """The memory limit of the validations' read-only connections: `VORONKA_VALIDATION_MEMORY_LIMIT`
    or the default (`DEFAULT_VALIDATION_MEMORY`)."""
    return os.environ.get(VALIDATION_MEMORY_ENV) or DEFAULT_VALIDATION_MEMORY
