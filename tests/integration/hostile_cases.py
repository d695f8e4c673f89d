"""The hostile inbox files of `test_hostile_files.py`: one case per file (or entry), each with
what the loader must make of it.

Every case is a file of an entity folder written as bytes; `raw` / `quarantined` are the rows
expected in `raw.<entity>` / `quarantine.<entity>` (None: not pinned here, e.g. a value whose
acceptance belongs to the parsing rules), `status` the load-log status, `reason` a fragment of
the quarantine reason or of the refusal message.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLS = (
    "call_id,started_at,direction,client_phone,manager_extension,status,ring_seconds,talk_seconds"
)
MANAGERS = "manager_id,full_name,team,role,extension,email,hired_on,left_on,updated_at"
SPEND = "period,channel,amount,currency"


def call(i: int | str, **changes: str) -> str:
    """A valid calls row; keyword arguments replace fields."""
    row = {
        "call_id": f"k{i}",
        "started_at": "2026-01-01 10:00",
        "direction": "inbound",
        "client_phone": "9161234567",
        "manager_extension": "101",
        "status": "answered",
        "ring_seconds": "5",
        "talk_seconds": "60",
    }
    row.update(changes)
    return ",".join(row.values())


def manager(i: int | str, name: str = "Иван Петров", team: str = "Продажи", sep: str = ",") -> str:
    return sep.join([f"m{i}", name, team, "sales", "101", "", "2025-01-01", "", "2026-01-01 10:00"])


def calls_file(rows: list[str], newline: str = "\n", end: str = "\n") -> bytes:
    return (newline.join([CALLS, *rows]) + end).encode()


def calls_rows(n: int) -> list[str]:
    return [call(i) for i in range(1, n + 1)]


@dataclass(frozen=True)
class Case:
    id: str
    rel: str
    data: bytes | None  # None: the entry is made by `make` in the test (folders, links)
    status: str = "loaded"
    raw: int | None = 0
    quarantined: int | None = 0
    reason: str | None = None
    lines: int | None = None  # physical lines, when the test cannot count them from `data`


def _unterminated_at(n: int, bad_row: int) -> bytes:
    rows = calls_rows(n)
    rows[bad_row - 1] = call(bad_row, direction='"inbound')
    return calls_file(rows)


BIG = "x" * (3 << 20)

CASES: list[Case] = [
    # ---- line endings and blank lines
    Case("lf", "calls/lf.csv", calls_file(calls_rows(3)), raw=3),
    Case("crlf", "calls/crlf.csv", calls_file(calls_rows(3), "\r\n", "\r\n"), raw=3),
    Case("cr-only", "calls/cr.csv", calls_file(calls_rows(3), "\r", "\r"), raw=3),
    Case(
        "mixed-crlf-lf",
        "calls/mixed.csv",
        (CALLS + "\r\n" + call(1) + "\n" + call(2) + "\r\n" + call(3) + "\n").encode(),
        raw=3,
    ),
    Case(
        "lone-cr-inside-a-line",
        "calls/lone_cr.csv",
        calls_file([call(1, manager_extension="10\r1"), call(2), call(3)]),
        raw=2,
        quarantined=2,
        reason="fields (comma-separated), the header has 8",
    ),
    Case("no-final-newline", "calls/noeol.csv", calls_file(calls_rows(3), end=""), raw=3),
    Case(
        "trailing-blank-lines", "calls/trailing.csv", calls_file(calls_rows(3), end="\n\n\n"), raw=3
    ),
    Case(
        "blank-and-space-lines-inside",
        "calls/blanks.csv",
        calls_file([call(1), "", "   ", call(2), "\t", call(3)]),
        raw=3,
    ),
    Case("blank-lines-before-header", "calls/lead.csv", b"\n\n" + calls_file(calls_rows(3)), raw=3),
    Case("utf8-bom", "calls/bom.csv", b"\xef\xbb\xbf" + calls_file(calls_rows(3)), raw=3),
    Case(
        "utf8-bom-crlf",
        "calls/bom_crlf.csv",
        b"\xef\xbb\xbf" + calls_file(calls_rows(3), "\r\n", "\r\n"),
        raw=3,
    ),
    Case(
        "crlf-with-blank-line",
        "calls/crlf_blank.csv",
        calls_file([call(1), "", call(2)], "\r\n", "\r\n"),
        raw=2,
    ),
    # ---- empty and header-only files
    Case("header-only", "calls/header_only.csv", (CALLS + "\n").encode(), raw=0),
    Case("header-only-no-newline", "calls/header_only_noeol.csv", CALLS.encode(), raw=0),
    Case("empty-file", "calls/empty.csv", b"", status="failed", raw=0, reason="empty"),
    Case(
        "only-blank-lines", "calls/blank_only.csv", b"\n\n  \n", status="failed", reason="no lines"
    ),
    Case(
        "no-header",
        "calls/no_header.csv",
        ("\n".join(calls_rows(2)) + "\n").encode(),
        status="failed",
        reason="has no calls columns",
    ),
    Case(
        "required-column-missing",
        "calls/missing.csv",
        b"call_id,started_at\nk1,2026-01-01\n",
        status="failed",
        reason="required column(s) missing",
    ),
    # ---- quotes
    Case(
        "unterminated-quote-deep",
        "calls/deep_quote.csv",
        _unterminated_at(30_000, 25_001),
        raw=29_999,
        quarantined=1,
        reason="never closed",
    ),
    Case(
        "unterminated-quote-first-row",
        "calls/top_quote.csv",
        _unterminated_at(50, 1),
        raw=49,
        quarantined=1,
        reason="never closed",
    ),
    Case(
        "unterminated-quote-last-row",
        "calls/last_quote.csv",
        _unterminated_at(50, 50),
        raw=49,
        quarantined=1,
        reason="never closed",
    ),
    Case(
        "two-stray-opening-quotes",
        "calls/two_quotes.csv",
        calls_file(
            [call(1), call(2, direction='"inbound'), call(3), call(4), call(5, status='"x')]
        ),
        raw=3,
        quarantined=2,
        reason="never closed",
    ),
    Case(
        "text-after-closing-quote",
        "calls/after_quote.csv",
        calls_file([call(1), call(2, direction='"in"bound'), call(3)]),
        raw=2,
        quarantined=1,
        reason="text after a closing quote",
    ),
    Case(
        "quote-inside-unquoted-value",
        "managers/inch.csv",
        ("\n".join([MANAGERS, manager(1, team='Monitor 27"'), manager(2)]) + "\n").encode(),
        raw=2,
    ),
    Case(
        "quoted-delimiter-and-doubled-quotes",
        "managers/quoted.csv",
        (
            "\n".join([MANAGERS, manager(1, name='"Петров, Иван ""Ваня"""'), manager(2)]) + "\n"
        ).encode(),
        raw=2,
    ),
    Case(
        "spaces-around-a-quoted-value",
        "managers/spaced.csv",
        (
            "\n".join([MANAGERS, manager(1, name=' "Иван"  '), manager(2, name='  "Пётр"')]) + "\n"
        ).encode(),
        raw=2,
    ),
    Case(
        "multi-line-quoted-value",
        "managers/multiline.csv",
        ("\n".join([MANAGERS, manager(1, name='"Иван\nПетров"'), manager(2)]) + "\n").encode(),
        raw=2,
    ),
    Case(
        "multi-line-value-with-blank-line-and-crlf",
        "managers/multiline_blank.csv",
        (
            "\r\n".join([MANAGERS, manager(1, name='"Иван\r\n\r\nПетров"'), "", manager(2)])
            + "\r\n"
        ).encode(),
        raw=2,
    ),
    Case(
        "multi-line-value-then-broken-row",
        "managers/multiline_broken.csv",
        (
            "\n".join([MANAGERS, manager(1, name='"a\nb"'), manager(2) + ",extra", manager(3)])
            + "\n"
        ).encode(),
        raw=2,
        quarantined=1,
        reason="10 fields",
    ),
    # ---- field counts
    Case(
        "one-field-too-many",
        "calls/too_many.csv",
        calls_file([call(1), call(2) + ",extra", call(3)]),
        raw=2,
        quarantined=1,
        reason="9 fields (comma-separated), the header has 8",
    ),
    Case(
        "fields-missing",
        "calls/too_few.csv",
        calls_file([call(1), "k2,2026-01-01 10:00,inbound", call(3)]),
        raw=2,
        quarantined=1,
        reason="3 fields",
    ),
    Case(
        "trailing-delimiter-on-every-line",
        "calls/trailing_comma.csv",
        ("\n".join([CALLS + ",", call(1) + ",", call(2) + ","]) + "\n").encode(),
        raw=2,
    ),
    Case(
        "unnamed-column-with-values-is-kept",
        "calls/unnamed.csv",
        ("\n".join([CALLS + ",", call(1) + ",note", call(2) + ","]) + "\n").encode(),
        raw=2,
    ),
    # ---- sizes
    Case(
        "3-mb-quoted-field",
        "managers/big_quoted.csv",
        ("\n".join([MANAGERS, manager(1, name=f'"{BIG}"'), manager(2)]) + "\n").encode(),
        raw=2,
    ),
    Case(
        "3-mb-unquoted-field",
        "managers/big_plain.csv",
        ("\n".join([MANAGERS, manager(1, name=BIG), manager(2)]) + "\n").encode(),
        raw=2,
    ),
    Case(
        "3-mb-field-with-a-blank-line",
        "managers/big_blank.csv",
        ("\n".join([MANAGERS, manager(1, name=BIG), "", manager(2)]) + "\n").encode(),
        raw=2,
    ),
    Case("wide-file-100k-rows", "calls/many.csv", calls_file(calls_rows(100_000)), raw=100_000),
    # ---- encodings
    Case(
        "cp1251-russian",
        "managers/cp1251.csv",
        ("\n".join([MANAGERS, manager(1), manager(2, "Пётр Ёлкин")]) + "\n").encode("cp1251"),
        raw=2,
    ),
    Case(
        "cp1251-semicolon-crlf",
        "managers/cp1251_excel.csv",
        (
            "\r\n".join([MANAGERS.replace(",", ";"), manager(1, sep=";"), manager(2, sep=";")])
            + "\r\n"
        ).encode("cp1251"),
        raw=2,
    ),
    Case(
        "latin1-western-names",
        "managers/latin1.csv",
        (
            "\n".join([MANAGERS, manager(1, "Müller Café", "Señor"), manager(2, "Zoë", "Ås")])
            + "\n"
        ).encode("latin-1"),
        raw=2,
    ),
    Case(
        "cp1251-no-letters-nbsp-amounts",
        "marketing_spend/nbsp.csv",
        "period;channel;amount\n2026-01;web;1\u00a0234,50\n2026-02;web;99,5\n".encode("cp1251"),
        raw=None,
        quarantined=None,
    ),
    Case(
        "cp1251-only-numero-sign",
        "managers/numero.csv",
        (
            "\n".join([MANAGERS, manager(1, "Team №1", "Desk №2"), manager(2, "a", "b")]) + "\n"
        ).encode("cp1251"),
        raw=2,
    ),
    Case(
        "utf16-with-bom",
        "managers/utf16.csv",
        ("\n".join([MANAGERS, manager(1), manager(2)]) + "\n").encode("utf-16"),
        raw=2,
    ),
    Case(
        "shift-jis-refused",
        "managers/sjis.csv",
        ("\n".join([MANAGERS, manager(1, "日本語の名前")]) + "\n").encode("shift_jis"),
        status="failed",
        reason="not valid UTF-8",
    ),
    Case(
        "binary-refused",
        "calls/binary.csv",
        b"\x00\x01\x02\x03 not a csv",
        status="failed",
        reason="binary",
    ),
    Case(
        "utf8-invalid-byte-deep",
        "managers/late_cp1251.csv",
        (
            "\n".join(
                [MANAGERS] + [manager(i, "Ivan") for i in range(1, 2000)] + [manager(2000, "Ёлкин")]
            )
            + "\n"
        ).encode("cp1251"),
        raw=2000,
    ),
    # ---- delimiters
    Case(
        "semicolon",
        "calls/semicolon.csv",
        (
            "\n".join([CALLS.replace(",", ";")] + [r.replace(",", ";") for r in calls_rows(3)])
            + "\n"
        ).encode(),
        raw=3,
    ),
    Case(
        "tab",
        "calls/tab.csv",
        (
            "\n".join([CALLS.replace(",", "\t")] + [r.replace(",", "\t") for r in calls_rows(3)])
            + "\n"
        ).encode(),
        raw=3,
    ),
    Case(
        "pipe",
        "calls/pipe.csv",
        (
            "\n".join([CALLS.replace(",", "|")] + [r.replace(",", "|") for r in calls_rows(3)])
            + "\n"
        ).encode(),
        raw=3,
    ),
    Case(
        "semicolon-with-a-comma-row",
        "calls/semicolon_mixed.csv",
        ("\n".join([CALLS.replace(",", ";"), call(1).replace(",", ";"), call(2)]) + "\n").encode(),
        raw=1,
        quarantined=1,
        reason="1 fields (semicolon-separated)",
    ),
    # ---- headers
    Case(
        "header-case-and-spaces",
        "calls/header_case.csv",
        (
            "\n".join(
                [
                    " CALL_ID , Started_At,direction,client_phone,manager_extension,STATUS,"
                    "ring_seconds,talk_seconds"
                ]
                + calls_rows(2)
            )
            + "\n"
        ).encode(),
        raw=2,
    ),
    Case(
        "reserved-column-reason",
        "calls/reserved_reason.csv",
        ("\n".join([CALLS + ",_reason", call(1) + ",mine"]) + "\n").encode(),
        status="failed",
        reason="_reason are reserved",
    ),
    Case(
        "reserved-column-source-file",
        "calls/reserved_source.csv",
        ("\n".join([CALLS + ",_source_file,_loaded_at", call(1) + ",a.csv,2026"]) + "\n").encode(),
        status="failed",
        reason="_source_file, _loaded_at are reserved",
    ),
    Case(
        "duplicate-column",
        "calls/duplicate_column.csv",
        ("\n".join([CALLS + ",status", call(1) + ",missed"]) + "\n").encode(),
        status="failed",
        reason="both named 'status'",
    ),
    Case(
        "extra-column-kept",
        "calls/extra.csv",
        ("\n".join([CALLS + ",Custom Field", call(1) + ",hello"]) + "\n").encode(),
        raw=1,
    ),
    Case(
        "columns-in-another-order",
        "calls/reordered.csv",
        b"talk_seconds,ring_seconds,status,client_phone,direction,started_at,call_id\n"
        b"60,5,answered,9161234567,inbound,2026-01-01 10:00,k1\n",
        raw=1,
    ),
    Case(
        "header-with-unclosed-quote",
        "calls/header_quote.csv",
        ('"' + CALLS + "\n" + call(1) + "\n").encode(),
        status="failed",
        reason="never closed",
    ),
    # ---- values (the accounting only: the parsing rules decide raw or quarantine)
    Case(
        "numbers-every-way",
        "marketing_spend/numbers.csv",
        (
            "period;channel;amount\n2026-01;a;1 234,56\n2026-01;b;1\u202f234,56\n2026-01;c;inf\n"
            "2026-01;d;1e30\n2026-01;e;-0\n2026-01;f;12.345.678,9\n2026-01;g;\n"
        ).encode(),
        raw=None,
        quarantined=None,
    ),
    Case(
        "dates-every-way",
        "calls/dates.csv",
        calls_file(
            [
                call(1, started_at="2026-01-01T10:00:00+03:00"),
                call(2, started_at="2026-01-01 10:00Z"),
                call(3, started_at="01.01.2026 10:00"),
                call(4, started_at="2026-02-30 10:00"),
                call(5, started_at="2030-01-01 10:00"),
            ]
        ),
        raw=None,
        quarantined=None,
    ),
    Case(
        "bad-values-quarantined-with-lines",
        "calls/bad_values.csv",
        calls_file([call(1, direction="sideways"), "", call(2, ring_seconds="-5"), call(3)]),
        raw=1,
        quarantined=2,
        reason="invalid_enum:direction",
    ),
    Case(
        "duplicate-rows-kept",
        "calls/duplicates.csv",
        calls_file([call(1), call(1), call(1)]),
        raw=3,
    ),
    Case(
        "all-empty-fields-row",
        "calls/empty_fields.csv",
        calls_file([call(1), ",,,,,,,", call(2)]),
        raw=2,
        quarantined=1,
        reason="missing_required",
    ),
]

# ---- names: paths are never patterns; each beside the file its pattern would match

NAMES = [
    ("name-brackets", "calls[1].csv", "calls1.csv"),
    ("name-question-mark", "calls?.csv", "callsX.csv"),
    ("name-star", "c*.csv", "cc.csv"),
    ("name-braces", "{a,b}.csv", "a.csv"),
    ("name-quotes", 'it\'s "q".csv', None),
    ("name-spaces", "  spaced name .csv", None),
    ("name-cyrillic", "звонки январь.csv", None),
    ("name-very-long", "x" * 240 + ".csv", None),
    ("name-upper-case-extension", "UPPER.CSV", None),
]
for case_id, name, beside in NAMES:
    CASES.append(Case(case_id, f"calls/{name}", calls_file([call(f"{case_id}-1")]), raw=1))
    if beside:
        CASES.append(
            Case(
                case_id + "-neighbour",
                f"calls/{beside}",
                calls_file([call(f"{case_id}-n1"), call(f"{case_id}-n2")]),
                raw=2,
            )
        )

# ---- entries that are not CSV files: made by the test (`make`), no rows
ENTRIES: list[Case] = [
    Case(
        "workbook-in-entity-folder",
        "calls/export.xlsx",
        b"PK\x03\x04 not really",
        status="ignored",
        reason="Save As",
    ),
    Case(
        "text-file-in-entity-folder",
        "calls/notes.txt",
        b"hello",
        status="ignored",
        reason="rename it",
    ),
    Case("unknown-folder", "dealz/", None, status="ignored", reason="did you mean deals/"),
    Case(
        "file-at-inbox-top",
        "calls.csv",
        calls_file([call(1)]),
        status="ignored",
        reason="top of the inbox",
    ),
    Case(
        "folder-named-csv",
        "calls/folder.csv/",
        None,
        status="failed",
        reason="folder named like a CSV",
    ),
    Case("subfolder", "calls/archive/", None, status="ignored", reason="subfolder"),
    Case("broken-link", "calls/broken_link.csv", None, status="failed", reason="does not exist"),
    Case("link-loop", "calls/loop.csv", None, status="failed", reason="does not exist"),
    Case("link-to-a-file", "calls/linked.csv", None, raw=1),
    Case("fifo", "calls/pipe_fifo.csv", None, status="failed", reason="not a regular file"),
    Case("hidden-file", "calls/.DS_Store", b"\x00", status="ignored", reason="hidden"),
]
