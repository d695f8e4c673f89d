"""Hostile inbox files: every physical line of every file is accounted for, file by file.

One inbox holds every case of `hostile_cases.py` and is loaded once (loader only, no dbt).
For each file, from the load log and the tables: `lines = 1 header + blank + continuation
lines + rows` and `rows = rows in raw + rows in the quarantine`, the physical lines counted
here on the bytes (a line ends at LF, CRLF or a lone CR), or the file is refused with its
reason. Decisions D70-D74.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.inbox_loader import InboxLoader, LoadError, forget_file, load_inbox
from dagster_project.lib.summary import summarize
from tests.conftest import query, write_inbox
from tests.integration.hostile_cases import BIG, CASES, ENTRIES, Case, call, calls_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_LINE_END = re.compile(r"\r\n|\n|\r")


def physical_lines(case: Case) -> int:
    """Lines counted on the text: LF, CRLF and a lone CR end a line; so does the end of file."""
    data = case.data or b""
    text = data.decode("utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else None
    if text is None:
        text = data.decode("latin-1")  # byte for byte: line ends are ASCII in every encoding
    ends = len(_LINE_END.findall(text))
    return ends + (1 if text and not text.endswith(("\n", "\r")) else 0)


def make(inbox: Path, case: Case) -> None:
    """Write a case's entry (a file, folder, link or pipe)."""
    path = inbox / case.rel.rstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if case.rel.endswith("/"):
        path.mkdir()
        (path / "inside.csv").write_bytes(calls_file([call("inside")]))
    elif case.id == "broken-link":
        path.symlink_to(inbox / "nowhere.csv")
    elif case.id == "link-loop":
        path.symlink_to(path)
    elif case.id == "link-to-a-file":
        target = inbox.parent / "outside" / "linked_target.csv"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(calls_file([call("linked")]))
        path.symlink_to(target)
    elif case.id == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(case.data)


class Loaded:
    """The hostile inbox loaded once: the load log's latest row and the row counts per file."""

    def __init__(self, root: Path):
        self.inbox = root / "inbox"
        self.warehouse = root / "warehouse.duckdb"
        for case in CASES + ENTRIES:
            make(self.inbox, case)
        self.reports = load_inbox(self.inbox, self.warehouse)
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            cursor = con.execute(
                "select * from raw._load_log where source_file is not null "
                "qualify row_number() over (partition by source_file order by finished_at desc) = 1"
            )
            names = [d[0] for d in cursor.description]
            self.log = {row[3]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
            self.rows: dict[tuple[str, str], int] = {}
            self.reasons: dict[str, list[str]] = {}
            for entity in ("calls", "managers", "marketing_spend"):
                for schema in ("raw", "quarantine"):
                    for rel, n in con.execute(
                        f"select _source_file, count(*) from {schema}.{entity} group by 1"
                    ).fetchall():
                        self.rows[(schema, rel)] = n
                for rel, reason in con.execute(
                    f"select _source_file, _reason from quarantine.{entity}"
                ).fetchall():
                    self.reasons.setdefault(rel, []).append(reason)
            self.refused = {
                rel: reason
                for rel, reason in con.execute(
                    "select source_file, reason from quarantine.files"
                ).fetchall()
            }
        finally:
            con.close()

    def sql(self, text: str) -> list[tuple]:
        return query(self.warehouse, text)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Loaded:
    return Loaded(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_line_of_every_file_is_accounted_for(loaded, case):
    row = loaded.log[case.rel]
    assert row["status"] == case.status, row["message"]
    raw = loaded.rows.get(("raw", case.rel), 0)
    quarantined = loaded.rows.get(("quarantine", case.rel), 0)
    if case.status == "failed":
        assert (raw, quarantined) == (0, 0)
        assert case.reason in row["message"], row["message"]
        assert loaded.refused[case.rel] == row["message"]
        assert "sniffing" not in row["message"] and "CSV Error" not in row["message"]
        if row["lines_read"] is not None:  # counted when the file could be scanned
            assert row["lines_read"] == physical_lines(case)
        return
    lines = physical_lines(case)
    assert row["lines_read"] == lines
    assert lines == 1 + row["lines_blank"] + row["lines_continued"] + row["rows_read"]
    assert row["rows_read"] == raw + quarantined
    assert (row["rows_loaded"], row["rows_quarantined"]) == (raw, quarantined)
    if case.raw is not None:
        assert raw == case.raw
    if case.quarantined is not None:
        assert quarantined == case.quarantined, loaded.reasons.get(case.rel)
    if case.reason:
        reasons = loaded.reasons.get(case.rel, [])
        assert any(case.reason in reason for reason in reasons), reasons


@pytest.mark.parametrize("case", ENTRIES, ids=lambda c: c.id)
def test_every_other_entry_gets_a_message_and_a_load_log_row(loaded, case):
    row = loaded.log[case.rel]
    assert row["status"] == case.status, row["message"]
    if case.status in ("failed", "ignored"):
        assert case.reason in row["message"], row["message"]
        assert loaded.refused[case.rel] == row["message"]
        assert row["rows_loaded"] == row["rows_quarantined"] == 0
    else:
        assert loaded.rows.get(("raw", case.rel)) == case.raw


def test_source_lines_are_physical_lines(loaded):
    def lines(entity, rel, key):
        return loaded.sql(
            f"select {key}, _source_line from raw.{entity} "
            f"where _source_file = '{rel}' order by _source_line"
        )

    assert lines("calls", "calls/blanks.csv", "call_id") == [("k1", 2), ("k2", 5), ("k3", 7)]
    assert lines("calls", "calls/lead.csv", "call_id") == [("k1", 4), ("k2", 5), ("k3", 6)]
    assert lines("managers", "managers/multiline_blank.csv", "manager_id") == [
        ("m1", 2),
        ("m2", 6),
    ]
    assert lines("calls", "calls/cr.csv", "call_id") == [("k1", 2), ("k2", 3), ("k3", 4)]
    # the rows after an unterminated quote keep their lines; the quote's line is quarantined
    assert loaded.sql(
        "select _source_line, _raw_record from quarantine.calls "
        "where _source_file = 'calls/deep_quote.csv'"
    ) == [(25_002, call(25_001, direction='"inbound'))]
    assert loaded.sql(
        "select min(_source_line), max(_source_line), count(distinct _source_line) "
        "from raw.calls where _source_file = 'calls/deep_quote.csv'"
    ) == [(2, 30_001, 29_999)]


def test_a_malformed_row_has_one_reason_and_its_raw_text(loaded):
    rows = loaded.sql(
        "select _source_line, _reason, _raw_record from quarantine.calls "
        "where _source_file = 'calls/too_many.csv'"
    )
    assert rows == [
        (
            3,
            "malformed_row: 9 fields (comma-separated), the header has 8",
            call(2) + ",extra",
        )
    ]


def test_values_survive_quotes_sizes_and_encodings(loaded):
    def names(rel):
        return [
            r[0]
            for r in loaded.sql(
                f"select full_name from raw.managers where _source_file = '{rel}' "
                "order by manager_id"
            )
        ]

    assert names("managers/quoted.csv")[0] == 'Петров, Иван "Ваня"'
    # as DuckDB's reader: one space before a quoted value, any after; two before: literal
    assert names("managers/spaced.csv") == ["Иван", '"Пётр"']
    assert names("managers/multiline.csv")[0] == "Иван\nПетров"
    assert names("managers/latin1.csv") == ["Müller Café", "Zoë"]
    assert names("managers/numero.csv")[0] == "Team №1"
    assert names("managers/cp1251.csv") == ["Иван Петров", "Пётр Ёлкин"]
    assert names("managers/utf16.csv") == ["Иван Петров", "Иван Петров"]
    assert names("managers/big_quoted.csv")[0] == BIG
    assert names("managers/big_plain.csv")[0] == BIG
    assert loaded.sql(
        "select team from raw.managers where _source_file = 'managers/inch.csv' "
        "and manager_id = 'm1'"
    ) == [('Monitor 27"',)]
    assert loaded.log["managers/latin1.csv"]["encoding"] == "cp1252"
    assert loaded.log["marketing_spend/nbsp.csv"]["encoding"] == "cp1251"


def test_extra_and_unnamed_columns_keep_their_values(loaded):
    assert loaded.sql(
        "select \"custom field\" from raw.calls where _source_file = 'calls/extra.csv'"
    ) == [("hello",)]
    assert loaded.sql(
        "select call_id, unnamed_9 from raw.calls "
        "where _source_file = 'calls/unnamed.csv' order by 1"
    ) == [("k1", "note"), ("k2", None)]


def test_paths_are_never_patterns(loaded):
    rows = loaded.sql(
        "select _source_file, count(*) from raw.calls "
        "where call_id like 'kname-%' group by 1 order by 1"
    )
    expected = sorted((case.rel, case.raw) for case in CASES if case.id.startswith("name-"))
    assert rows == expected


def _calls_loader(inbox, warehouse):
    from dagster_project.lib.contract import ENTITY_BY_NAME
    from dagster_project.lib.inbox_loader import connect, ensure_tables

    con = connect(warehouse)
    try:
        ensure_tables(con)
        return InboxLoader(con, inbox).load_entity(ENTITY_BY_NAME["calls"])
    finally:
        con.close()


def test_the_line_reader_reads_what_duckdbs_reader_reads(tmp_path):
    """The same rows read fast (one record per line) and line by line (a blank line forces
    it) give the same values."""
    rows = [
        call(1, manager_extension='"10,1"'),
        call(2, manager_extension=' "a ""b"" "  '),
        call(7, manager_extension='  "two spaces"'),
        call(8, manager_extension=' x"'),
        call(3, manager_extension='x"y'),
        call(4, manager_extension="  spaced  "),
        call(5, manager_extension='""'),
        call(6, manager_extension="\u00a0nbsp\u00a0"),
    ]
    inbox = write_inbox(
        tmp_path / "inbox",
        {"calls/fast.csv": calls_file(rows), "calls/slow.csv": calls_file(["", *rows])},
    )
    report = _calls_loader(inbox, tmp_path / "w.duckdb")
    assert [f.lines_blank for f in report.files] == [0, 1]
    fast, slow = (
        query(
            tmp_path / "w.duckdb",
            f"select * exclude (_source_file, _source_line, _loaded_at, _batch_id) "
            f"from raw.calls where _source_file = 'calls/{name}.csv' order by call_id",
        )
        for name in ("fast", "slow")
    )
    assert fast == slow
    assert [r[4] for r in fast] == [
        "10,1",
        'a "b"',
        'x"y',
        "spaced",
        None,
        "nbsp",  # trim() takes no-break spaces too, on both paths
        '"two spaces"',
        'x"',
    ]


def test_a_vanished_file_keeps_its_rows_until_forgotten(tmp_path):
    inbox = write_inbox(
        tmp_path / "inbox",
        {
            "calls/keep.csv": calls_file([call(1)]),
            "calls/gone.csv": calls_file([call(2), call(3, direction="sideways")]),
        },
    )
    warehouse = tmp_path / "w.duckdb"
    load_inbox(inbox, warehouse, entities=["calls"])
    (inbox / "calls" / "gone.csv").unlink()
    report = load_inbox(inbox, warehouse, entities=["calls"])[0]
    assert [(f.source_file, f.status) for f in report.vanished] == [("calls/gone.csv", "vanished")]
    assert "forget-file calls/gone.csv" in report.vanished[0].message
    assert query(warehouse, "select count(*) from raw.calls") == [(2,)]
    assert [v[1] for v in summarize(warehouse).vanished_files] == ["calls/gone.csv"]

    with pytest.raises(LoadError, match="still in the inbox"):
        forget_file(warehouse, inbox, "calls/keep.csv")
    with pytest.raises(LoadError, match="holds no rows of it; did you mean calls/gone.csv"):
        forget_file(warehouse, inbox, "calls/gone2.csv")
    forgotten = forget_file(warehouse, inbox, "calls/gone.csv")
    assert (forgotten.rows_loaded, forgotten.rows_quarantined) == (-1, -1)
    for schema in ("raw", "quarantine"):
        assert query(
            warehouse, f"select count(*) from {schema}.calls where _source_file = 'calls/gone.csv'"
        ) == [(0,)]
    assert query(
        warehouse,
        "select status, rows_loaded, rows_quarantined from raw._load_log "
        "where source_file = 'calls/gone.csv' and status = 'forgotten'",
    ) == [("forgotten", -1, -1)]
    assert summarize(warehouse).vanished_files == []
    # a later run does not call it vanished again; if it comes back, it loads as new
    assert load_inbox(inbox, warehouse, entities=["calls"])[0].vanished == []
    write_inbox(inbox, {"calls/gone.csv": calls_file([call(2), call(3, direction="sideways")])})
    statuses = {f.source_file: f.status for f in load_inbox(inbox, warehouse, ["calls"])[0].files}
    assert statuses["calls/gone.csv"] == "loaded"
    assert query(warehouse, "select count(*) from raw.calls") == [(2,)]


def test_forget_file_on_the_command_line(tmp_path, capsys):
    from dagster_project.cli import main

    inbox = write_inbox(tmp_path / "inbox", {"calls/gone.csv": calls_file([call(1)])})
    warehouse = tmp_path / "w.duckdb"
    load_inbox(inbox, warehouse, entities=["calls"])
    args = ["forget-file", "calls/gone.csv", "--inbox", str(inbox), "--warehouse", str(warehouse)]
    assert main(args) == 2
    assert "still in the inbox" in capsys.readouterr().err
    (inbox / "calls" / "gone.csv").unlink()
    assert main(args) == 0
    assert "1 rows from raw.calls" in capsys.readouterr().out
    assert main(args) == 0  # already forgotten: nothing left, said again


def test_an_unreadable_file_is_refused_with_a_message(tmp_path, monkeypatch):
    """Root reads any file, so the permission error is simulated where the loader opens it."""
    from dagster_project.lib import inbox_loader

    inbox = write_inbox(
        tmp_path / "inbox",
        {"calls/locked.csv": calls_file([call(1)]), "calls/open.csv": calls_file([call(2)])},
    )
    real = inbox_loader.file_sha256

    def sha256(path):
        if path.name == "locked.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(inbox_loader, "file_sha256", sha256)
    report = load_inbox(inbox, tmp_path / "w.duckdb", entities=["calls"])[0]
    statuses = {f.source_file: (f.status, f.message) for f in report.files}
    assert statuses["calls/open.csv"] == ("loaded", None)
    assert statuses["calls/locked.csv"] == (
        "failed",
        "locked.csv: cannot be read (Permission denied); check that the file is readable",
    )


def test_only_files_duckdb_did_not_read_line_for_line_are_read_again(tmp_path, monkeypatch):
    """Blank lines at the end keep DuckDB's fast read (it skips them); one in the middle, a
    multi-line value or a malformed row make the loader read the file line by line."""
    slow: list[str] = []
    stage_slow = InboxLoader._stage_slow

    def recording(self, readable, n_fields):
        slow.append(readable.item.rel)
        return stage_slow(self, readable, n_fields)

    monkeypatch.setattr(InboxLoader, "_stage_slow", recording)
    rows = [call(1), call(2)]
    inbox = write_inbox(
        tmp_path / "inbox",
        {
            "calls/a_clean.csv": calls_file(rows),
            "calls/b_trailing.csv": calls_file(rows, end="\n\n \n\t\n"),
            "calls/c_trailing_crlf.csv": calls_file(rows, "\r\n", "\r\n\r\n"),
            "calls/d_middle.csv": calls_file([call(1), "", call(2)]),
            "calls/e_multiline.csv": calls_file([call(1, manager_extension='"1\n2"'), call(2)]),
            "calls/f_malformed.csv": calls_file([call(1) + ",x", call(2)]),
        },
    )
    report = _calls_loader(inbox, tmp_path / "w.duckdb")
    assert slow == ["calls/d_middle.csv", "calls/e_multiline.csv", "calls/f_malformed.csv"]
    accounting = {
        f.source_file: (f.lines_read, f.lines_blank, f.lines_continued, f.rows_loaded)
        for f in report.files
    }
    assert accounting == {
        "calls/a_clean.csv": (3, 0, 0, 2),
        "calls/b_trailing.csv": (6, 3, 0, 2),
        "calls/c_trailing_crlf.csv": (4, 1, 0, 2),
        "calls/d_middle.csv": (4, 1, 0, 2),
        "calls/e_multiline.csv": (4, 0, 1, 2),
        "calls/f_malformed.csv": (3, 0, 0, 1),
    }
