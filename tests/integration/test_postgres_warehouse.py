"""The PostgreSQL warehouse through the one opener (D180-D186): connection, lock, loader, API
writer. Runs against the throwaway server of tests/pg_server.py (marked `postgres`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal

import pyarrow as pa
import pytest

from dagster_project.lib import warehouse as wh
from dagster_project.lib.inbox_loader import load_inbox
from dagster_project.lib.sources.state import RawWriter, TableSpec
from tests.conftest import FIXTURES

pytestmark = [pytest.mark.integration]


def test_the_opener_speaks_duckdbs_placeholders_on_postgresql(pg_url):
    with wh.open_warehouse(pg_url) as con:
        assert con.engine == "postgres"
        con.execute("create table t (a bigint, b varchar, c timestamp, d numeric(10, 2))")
        con.executemany(
            "insert into t values (?, ?, ?, ?)",
            [[1, "x%y", "2026-01-01 10:00:00", Decimal("1.50")], [2, None, None, None]],
        )
        assert con.execute("select a from t where b like '%y' and a > ?", [0]).fetchall() == [(1,)]
        assert con.execute("select a from t where a >= $low", {"low": 2}).fetchall() == [(2,)]
        assert con.changed("update t set b = ? where a = ?", ["z", 2]) == 1
        batches = list(con.arrow_reader("select * from t order by a", None, 1))
        assert [b.num_rows for b in batches] == [1, 1]
        assert batches[0].schema.field("c").type == pa.timestamp("us")
        with con.staged("page", pa.table({"k": [1, None], "s": ["", None]})):
            assert con.execute("select k, s from page order by k").fetchall() == [
                (1, ""),
                (None, None),
            ]
    with wh.open_warehouse(pg_url, read_only=True) as con:
        with pytest.raises(Exception, match="read-only"):
            con.execute("insert into t values (3, 'w', null, null)")


HOLDER = textwrap.dedent(
    """
    import sys, time
    from dagster_project.lib import warehouse as wh
    with wh.session(sys.argv[1], "voronka run (test holder)"):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_one_writer_at_a_time_by_an_advisory_lock(pg_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(wh.WarehouseBusy) as busy:
            with wh.session(pg_url, "voronka close-period 2026-01"):
                pass
        assert "voronka run (test holder)" in str(busy.value)
        assert f"voronka {holder.pid}@" in str(busy.value)
        holder.stdin.write("\n")
        holder.stdin.flush()
        with wh.session(pg_url, "voronka run", wait_seconds=30) as held:
            assert held.owner and held.publish() is None and held.dirty is None
            with wh.session(pg_url, "dagster run") as inner:  # nests in this process
                assert not inner.owner
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock(pg_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout.readline().strip() == b"held"
    holder.kill()
    holder.wait()
    with wh.session(pg_url, "voronka run", wait_seconds=30) as held:
        assert held.owner


def _tables(con, schema: str) -> dict[str, list[tuple]]:
    names = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1",
            [schema],
        ).fetchall()
    ]
    out = {}
    for name in names:
        columns = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by column_name",
                [schema, name],
            ).fetchall()
        ]
        # what differs by nature: ids made of the clock, and the clock itself
        kept = [c for c in columns if c not in VOLATILE]
        select = ", ".join(f'cast("{c}" as varchar)' for c in kept)
        rows = con.execute(f'select {select} from {schema}."{name}"').fetchall()
        out[name] = sorted(rows, key=lambda r: tuple((v is None, v or "") for v in r))
    return out


# batch and run ids hold a random part and the clock; timestamps are the load's clock
VOLATILE = {
    "run_id",
    "batch_id",
    "_batch_id",
    "_loaded_at",
    "started_at",
    "finished_at",
    "detected_at",
}


def test_the_loader_gives_the_same_rows_and_accounting_on_both_engines(tmp_path, pg_url):
    inbox = tmp_path / "inbox"
    shutil.copytree(FIXTURES / "mini_inbox", inbox)
    # a line that cannot be split, a blank line, a quoted multi-line value, a bad value
    (inbox / "calls" / "zz_hostile.csv").write_text(
        (inbox / "calls").glob("*.csv").__next__().read_text().splitlines()[0]
        + '\n\nk90,"unterminated\nk91,m1\n',
        encoding="utf-8",
    )
    # a deal whose client arrives only with the second load: quarantined, then released
    deals = (inbox / "deals" / "deals.csv").read_text(encoding="utf-8").splitlines()
    (inbox / "deals" / "zz-late.csv").write_text(
        deals[0] + "\n" + deals[1].replace("d1,c1,", "d90,c90,", 1) + "\n", encoding="utf-8"
    )
    duck = tmp_path / "w.duckdb"
    first = load_inbox(inbox, duck), load_inbox(inbox, pg_url)
    clients = (inbox / "clients").glob("*.csv").__next__().read_text(encoding="utf-8")
    (inbox / "clients" / "zz-late.csv").write_text(
        clients.splitlines()[0] + "\n" + clients.splitlines()[1].replace("c1,", "c90,", 1) + "\n",
        encoding="utf-8",
    )
    on_duckdb, on_postgres = load_inbox(inbox, duck), load_inbox(inbox, pg_url)

    def accounting(reports):
        return sorted(
            (
                f.source_file,
                f.status,
                f.rows_read,
                f.rows_loaded,
                f.rows_quarantined,
                f.lines_read,
                f.lines_blank,
                f.lines_continued,
            )
            for r in reports
            for f in r.files + r.others
        )

    assert accounting(first[1]) == accounting(first[0])
    assert accounting(on_postgres) == accounting(on_duckdb)
    released = {r.entity: r.rows_released for r in on_postgres}
    assert released == {r.entity: r.rows_released for r in on_duckdb}
    assert released["deals"] == 1
    with wh.open_warehouse(duck, read_only=True) as d, wh.open_warehouse(pg_url) as p:
        for schema in ("raw", "quarantine"):
            assert _tables(p, schema) == _tables(d, schema), schema
    # a second load changes nothing on either
    again = load_inbox(inbox, pg_url)
    assert {f.status for r in again for f in r.files} == {"skipped_unchanged"}


def test_the_api_writer_lands_pages_by_copy_and_skips_what_it_has(pg_url):
    spec = TableSpec("leads")
    rows = [
        {"id": "1", "updated_at": "10", "name": "a", "_row_hash": "h1"},
        {"id": "2", "updated_at": "10", "name": None, "_row_hash": "h2"},
    ]
    with wh.open_warehouse(pg_url) as con:
        writer = RawWriter(con, "amocrm")
        first = writer.write("leads", {"leads": rows}, {"leads": spec}, {"status": "ok"}, "/l")
        second = writer.write(
            "leads",
            {"leads": [*rows, {"id": "1", "updated_at": "11", "x": "new", "_row_hash": "h3"}]},
            {"leads": spec},
            {"status": "complete"},
            "/l",
        )
        assert first["leads"].inserted == 2 and second["leads"].inserted == 1
        assert writer.get_state("leads") == {"status": "complete"}
        assert con.execute(
            "select id, updated_at, name, x from raw_amocrm.leads order by 1, 2"
        ).fetchall() == [("1", "10", "a", None), ("1", "11", None, "new"), ("2", "10", None, None)]
