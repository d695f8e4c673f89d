"""The inbox loader reads several files of an entity together (decisions D12): every file still
gets its own lines, reasons, counts, batch id and load-log row, and loads exactly as it would
alone."""

from __future__ import annotations

import pytest

from dagster_project.lib.contract import ENTITY_BY_NAME
from dagster_project.lib.inbox_loader import InboxLoader, connect, ensure_tables
from tests.conftest import query, write_inbox

pytestmark = pytest.mark.integration

HEADER = (
    "call_id,started_at,direction,client_phone,manager_extension,status,ring_seconds,talk_seconds"
)
ROW = "{id},2026-01-01 10:00,inbound,9161234567,101,answered,5,60"

JANUARY = "\n".join(
    [
        HEADER,
        ROW.format(id="a1"),
        ROW.format(id="a2").replace(",5,60", ",-1,60"),  # line 3: negative ring
        ROW.format(id="a3"),
    ]
)
FEBRUARY = "\n".join(
    [
        HEADER,
        ROW.format(id="b1"),
        ROW.format(id="b2") + ",one too many",  # line 3: DuckDB cannot split it
        ROW.format(id="b3"),
        ROW.format(id="b4").replace("inbound", "sideways"),  # line 5: bad enum
        ROW.format(id="b5"),
    ]
)
MARCH = "\n".join(
    [
        HEADER,
        ROW.format(id="c1").replace(",60", ",1.5"),  # line 2: not an integer
        ROW.format(id="c2"),
    ]
)
FILES = {
    "calls/2026-01.csv": JANUARY,
    "calls/2026-02.csv": FEBRUARY,
    "calls/2026-03.csv": MARCH,
}


@pytest.fixture
def reads(monkeypatch):
    """The number of files each batch read of the loader read."""
    calls: list[int] = []
    stage = InboxLoader._stage_fast

    def counting(self, batch, n_fields):
        calls.append(len(batch))
        return stage(self, batch, n_fields)

    monkeypatch.setattr(InboxLoader, "_stage_fast", counting)
    return calls


def _load(inbox, warehouse, batch_bytes=None):
    con = connect(warehouse)
    try:
        ensure_tables(con)
        kwargs = {} if batch_bytes is None else {"batch_bytes": batch_bytes}
        loader = InboxLoader(con, inbox, **kwargs)
        return loader.load_entity(ENTITY_BY_NAME["calls"])
    finally:
        con.close()


def _rows(warehouse, schema):
    return sorted(
        query(
            warehouse,
            f"select call_id, _source_file, _source_line, "
            f"{'_reason, _raw_record' if schema == 'quarantine' else 'null, null'} "
            f"from {schema}.calls",
        ),
        key=str,
    )


def test_files_read_together_keep_their_own_lines_reasons_and_counts(tmp_path, warehouse, reads):
    inbox = write_inbox(tmp_path / "inbox", FILES)
    report = _load(inbox, warehouse)
    assert reads == [3]

    files = {f.source_file: f for f in report.files}
    assert list(files) == list(FILES)
    counts = {
        rel: (f.status, f.rows_read, f.rows_loaded, f.rows_quarantined) for rel, f in files.items()
    }
    assert counts == {
        "calls/2026-01.csv": ("loaded", 3, 2, 1),
        "calls/2026-02.csv": ("loaded", 5, 3, 2),
        "calls/2026-03.csv": ("loaded", 2, 1, 1),
    }
    # one batch id per file, in the rows and in the load log
    assert len({f.batch_id for f in files.values()}) == 3
    log = query(
        warehouse,
        "select source_file, batch_id, rows_read, rows_loaded, rows_quarantined "
        "from raw._load_log order by source_file",
    )
    assert log == [
        (rel, f.batch_id, f.rows_read, f.rows_loaded, f.rows_quarantined)
        for rel, f in files.items()
    ]
    assert query(
        warehouse,
        "select distinct _source_file, _batch_id from raw.calls order by 1",
    ) == [(rel, f.batch_id) for rel, f in files.items()]

    quarantined = {
        (file, line): (call_id, reason.split(":")[0])
        for call_id, file, line, reason, _ in _rows(warehouse, "quarantine")
    }
    assert quarantined == {
        ("calls/2026-01.csv", 3): ("a2", "negative"),
        ("calls/2026-02.csv", 3): (None, "malformed_row"),
        ("calls/2026-02.csv", 5): ("b4", "invalid_enum"),
        ("calls/2026-03.csv", 2): ("c1", "invalid_integer"),
    }
    malformed = query(
        warehouse, "select _raw_record, _batch_id from quarantine.calls where call_id is null"
    )
    assert malformed == [(FEBRUARY.splitlines()[2], files["calls/2026-02.csv"].batch_id)]
    # the good rows after the malformed one keep their physical lines
    loaded = {(call_id, file, line) for call_id, file, line, _, _ in _rows(warehouse, "raw")}
    assert loaded == {
        ("a1", "calls/2026-01.csv", 2),
        ("a3", "calls/2026-01.csv", 4),
        ("b1", "calls/2026-02.csv", 2),
        ("b3", "calls/2026-02.csv", 4),
        ("b5", "calls/2026-02.csv", 6),
        ("c2", "calls/2026-03.csv", 3),
    }


def test_a_batch_loads_exactly_what_the_files_load_one_by_one(tmp_path, reads):
    extra = {
        # another delimiter and encoding, then another column order: each starts a new batch
        "calls/2026-04.csv": (
            HEADER.replace(",", ";") + "\n" + ROW.format(id="d1").replace(",", ";") + "\n"
        ).encode("cp1251"),
        "calls/2026-05.csv": "status,call_id,started_at,direction,client_phone,ring_seconds,"
        "talk_seconds\nanswered,e1,2026-01-01,outbound,1,0,0\nanswered,e2,2026-01-01,outbound,"
        "1,0,-3\n",
        "calls/2026-06.csv": "\n".join([HEADER, ROW.format(id="f1"), ROW.format(id="f2") + ",x"]),
        # UTF-8 with a byte order mark: a batch of their own
        "calls/2026-07.csv": ("\ufeff" + HEADER + "\n" + ROW.format(id="g1") + "\n").encode(),
        "calls/2026-08.csv": ("\ufeff" + HEADER + "\n" + ROW.format(id="h1") + "\n").encode(),
    }
    inbox = write_inbox(tmp_path / "inbox", {**FILES, **extra})
    together, alone = tmp_path / "together.duckdb", tmp_path / "alone.duckdb"
    reports = [_load(inbox, together), _load(inbox, alone, batch_bytes=1)]
    assert reads == [3, 1, 1, 1, 2] + [1] * 8

    def counts(report):
        return [
            (f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in report.files
        ]

    assert counts(reports[0]) == counts(reports[1])
    assert len(reports[0].files) == 8
    for schema in ("raw", "quarantine"):
        assert _rows(together, schema) == _rows(alone, schema)
    assert len(_rows(together, "raw")) == 11


def test_a_changed_file_reloads_alone(tmp_path, warehouse, reads):
    inbox = write_inbox(tmp_path / "inbox", FILES)
    first = {f.source_file: f for f in _load(inbox, warehouse).files}
    write_inbox(inbox, {"calls/2026-02.csv": "\n".join([HEADER, ROW.format(id="b9")])})
    second = {f.source_file: f for f in _load(inbox, warehouse).files}
    assert reads == [3, 1]

    assert {rel: f.status for rel, f in second.items()} == {
        "calls/2026-01.csv": "skipped_unchanged",
        "calls/2026-02.csv": "reloaded",
        "calls/2026-03.csv": "skipped_unchanged",
    }
    changed = second["calls/2026-02.csv"]
    assert (changed.rows_read, changed.rows_loaded, changed.rows_quarantined) == (1, 1, 0)
    assert query(
        warehouse,
        "select call_id, _batch_id from raw.calls where _source_file = 'calls/2026-02.csv'",
    ) == [("b9", changed.batch_id)]
    assert query(
        warehouse, "select count(*) from quarantine.calls where _source_file = 'calls/2026-02.csv'"
    ) == [(0,)]
    # the other files' rows are untouched, batch ids included
    for rel in ("calls/2026-01.csv", "calls/2026-03.csv"):
        assert query(
            warehouse,
            f"select distinct _batch_id from (select _batch_id, _source_file from raw.calls "
            f"union all select _batch_id, _source_file from quarantine.calls) "
            f"where _source_file = '{rel}'",
        ) == [(first[rel].batch_id,)]
    assert query(warehouse, "select count(*) from raw.calls") == [(2 + 1 + 1,)]
    assert query(warehouse, "select count(*) from quarantine.calls") == [(1 + 1,)]


def test_an_unterminated_quote_costs_its_own_line_and_the_batch_still_loads(
    tmp_path, warehouse, reads
):
    bad = '"unterminated,2026-01-01 10:00,inbound,1,101,answered,5,60'
    inbox = write_inbox(
        tmp_path / "inbox",
        {
            **FILES,
            "calls/2026-02.csv": "\n".join(
                [HEADER, ROW.format(id="b1"), bad, ROW.format(id="b3"), ROW.format(id="b4")]
            ),
        },
    )
    report = _load(inbox, warehouse)
    assert reads == [3]  # one read of the batch; the file with the quote again line by line
    counts = {
        f.source_file: (f.status, f.lines_read, f.rows_loaded, f.rows_quarantined)
        for f in report.files
    }
    assert counts["calls/2026-02.csv"] == ("loaded", 5, 3, 1)
    assert query(
        warehouse,
        "select _source_line, _raw_record, _reason like 'malformed_row: a quoted field opens%' "
        "from quarantine.calls where _source_file = 'calls/2026-02.csv'",
    ) == [(3, bad, True)]
    assert query(
        warehouse,
        "select call_id, _source_line from raw.calls "
        "where _source_file = 'calls/2026-02.csv' order by 2",
    ) == [("b1", 2), ("b3", 4), ("b4", 5)]
    assert query(warehouse, "select count(*) from quarantine.files") == [(0,)]
