"""Split a CSV file into records in SQL, line by line, so that every physical line is accounted for.

The inbox loader reads most files with DuckDB's own CSV reader (fast) and checks that it gave
one record per physical line. A file where it did not (a blank line, a quoted field over several
lines, an unterminated quote, a row with the wrong number of fields, a field DuckDB refuses) is
read again here (decisions D70-D71):

1. every physical line is read as one text value (`read_csv` with no quote and a delimiter
   byte the file does not hold), numbered from 1;
2. lines are grouped into records by quote parity: a line with an odd number of `"` opens a
   quoted field that the next such line closes;
3. each record is checked against the CSV grammar as DuckDB's reader applies it (a quoted
   field is `"..."` with `""` for a quote, spaces around it allowed; an unquoted field does not
   start with `"`, a quote later in it is kept) and split into fields; a record with the wrong
   number of fields is malformed;
4. a malformed record spanning several lines is not trusted as a whole: each of its lines is
   taken on its own, so an unterminated quote costs its own line only, and the lines after it
   still load.

Blank lines (outside a quoted field) are counted and skipped. The result: `_stage` rows with
their physical line, `_malformed` rows (line, raw text, one reason), and the counts that let
the loader check `lines = header line + blank lines + continuation lines + records`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from dagster_project.lib.sql import literal

# the longest physical line read (DuckDB's default is 2 MB; a 3 MB comment is legitimate)
MAX_LINE_BYTES = 256 << 20


def char_literal(char: str) -> str:
    """A SQL expression for one character, control characters included."""
    return f"chr({ord(char)})"


@dataclass(frozen=True)
class SplitCounts:
    """What the line reader found in one file."""

    lines: int  # physical lines read
    blank: int  # blank lines outside quoted fields, before or after the header
    continued: int  # lines that continue a record begun on an earlier line
    records: int  # records written to `_stage`
    malformed: int  # records (or lines) written to `_malformed`


def _field_patterns(delimiter: str) -> tuple[str, str]:
    """RE2 patterns of a quoted and an unquoted field, as DuckDB's reader takes them (tried on
    DuckDB 2.0): a quoted field is `"..."` with `""` for a quote, one space allowed before it
    and spaces after it; any other field is taken as written (a quote after its start, or after
    two spaces, is kept) and holds no line break."""
    d = re.escape(delimiter)
    quoted = ' ?"(?:[^"]|"")*" *'
    unquoted = f'(?:[^{d}" \\n][^{d}\\n]*| [^{d}" \\n][^{d}\\n]*|  [^{d}\\n]*| ?)'
    return quoted, unquoted


def _grammar(delimiter: str) -> str:
    """RE2 pattern of a whole record: fields separated by the delimiter."""
    quoted, unquoted = _field_patterns(delimiter)
    field = f"(?:{quoted}|{unquoted})"
    return f"{field}(?:{re.escape(delimiter)}{field})*"


def _fields_expr(text: str, delimiter: str) -> str:
    """SQL list of a grammatical record's field values, quotes removed.

    A record without quotes is split on the delimiter; otherwise each field is matched after
    a delimiter put in front of the record (so that no field is an empty match) and unquoted.
    """
    d = literal(delimiter)
    quoted, unquoted = _field_patterns(delimiter)
    pattern = literal(f"{re.escape(delimiter)}({quoted}|{unquoted})")
    inner = literal('(?s)^ ?"(.*)" *$')
    unquote = (
        f"lambda f: case when regexp_full_match(f, {literal(quoted)}) "
        f"then replace(regexp_extract(f, {inner}, 1), '\"\"', '\"') else f end"
    )
    return (
        f"case when strpos({text}, '\"') = 0 then string_split({text}, {d}) "
        f"else list_transform(regexp_extract_all({d} || {text}, {pattern}, 1), {unquote}) end"
    )


def _classify_sql(source: str, delimiter: str, n_fields: int) -> str:
    """SQL adding `fields` and `reason` (null: a good record; 'blank'; or why it is malformed)
    to `source` (columns `ln`, `span`, `text`)."""
    fields = _fields_expr("text", delimiter)
    grammar = literal(_grammar(delimiter))
    name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, delimiter)
    return f"""
        with r as (
            select *,
                strpos(text, '"') = 0 or regexp_full_match(text, {grammar}) as grammatical
            from {source}
        ),
        f as (select *, case when grammatical then {fields} end as fields from r)
        select ln, span, text, fields,
            case
                when span = 1 and trim(text, ' ' || chr(9)) = '' then 'blank'
                when not grammatical
                    and (length(text) - length(replace(text, '"', ''))) % 2 = 1
                    then 'malformed_row: a quoted field opens on this line and is never '
                    || 'closed (quote a value with " whole, and write "" for each " inside)'
                when not grammatical then 'malformed_row: text after a closing quote (quote '
                    || 'a value with " whole, and write "" for each " inside)'
                when len(fields) <> {n_fields} then 'malformed_row: ' || len(fields)
                    || ' fields ({name}-separated), the header has {n_fields}'
            end as reason
        from f
    """


def read_lines(con: duckdb.DuckDBPyConnection, path: str, free_byte: str) -> int:
    """Read every physical line of a UTF-8 file into `_lines` (`ln`, `line`); return the count.

    Lines end at LF or CRLF (the loader rewrites a file with lone CRs first).
    """
    # rows keep the file's order (DuckDB preserves insertion order), so the row id is the line
    con.execute(
        f"""
        create temp table _line_text as
        select line
        from read_csv(
            {literal(path)},
            columns = {{'line': 'varchar'}},
            header = false,
            auto_detect = false,
            strict_mode = false,
            delim = {char_literal(free_byte)},
            quote = '',
            escape = '',
            new_line = '\\r\\n',
            max_line_size = {MAX_LINE_BYTES}
        )
        """
    )
    con.execute(
        "create temp view _lines as "
        "select (rowid + 1)::bigint as ln, coalesce(line, '') as line from _line_text"
    )
    return con.execute("select count(*), coalesce(max(ln), 0) from _lines").fetchone()[0]


def split_lines(
    con: duckdb.DuckDBPyConnection,
    *,
    header_line: int,
    delimiter: str,
    n_fields: int,
) -> SplitCounts:
    """Split the lines of `_lines` after the header into `_split` (`ln`, `span`, `text`,
    `fields`, `reason`); the caller moves good records to its stage and the others to
    `_malformed`."""
    lines, odd = con.execute(
        "select count(*), count(*) filter ("
        "(length(line) - length(replace(line, '\"', ''))) % 2 = 1) from _lines"
    ).fetchone()
    data = f"select ln, line from _lines where ln > {int(header_line)}"
    if odd:
        # a record starts on a line where every quote opened before it was closed
        records = f"""
            with l as (
                select ln, line,
                    ((length(line) - length(replace(line, '"', ''))) % 2)::int as odd
                from ({data})
            ),
            g as (
                select *, coalesce(sum(odd) over (
                    order by ln rows between unbounded preceding and 1 preceding), 0) % 2 = 1
                    as inside
                from l
            ),
            s as (
                select *, max(case when not inside then ln end) over (
                    order by ln rows between unbounded preceding and current row) as start
                from g
            )
            select start as ln, count(*)::bigint as span,
                string_agg(line, chr(10) order by ln) as text
            from s group by start
        """
    else:
        records = f"select ln, 1::bigint as span, line as text from ({data})"
    con.execute(f"create temp table _split as {_classify_sql(f'({records})', delimiter, n_fields)}")
    broken = con.execute(
        "select count(*) from _split where span > 1 and reason is not null"
    ).fetchone()[0]
    if broken:
        # a malformed record over several lines: each of its lines on its own (D71)
        con.execute(
            f"""
            insert into _split
            {
                _classify_sql(
                    "(select l.ln, 1::bigint as span, l.line as text from _lines l "
                    "join _split s on l.ln >= s.ln and l.ln < s.ln + s.span "
                    "where s.span > 1 and s.reason is not null)",
                    delimiter,
                    n_fields,
                )
            }
            """
        )
        con.execute("delete from _split where span > 1 and reason is not null")
    blank, continued, records_n, malformed = con.execute(
        """
        select
            count(*) filter (where reason = 'blank'),
            coalesce(sum(span - 1) filter (where reason is distinct from 'blank'), 0),
            count(*) filter (where reason is null),
            count(*) filter (where reason <> 'blank')
        from _split
        """
    ).fetchone()
    return SplitCounts(
        lines=lines,
        blank=int(blank) + max(0, int(header_line) - 1),
        continued=int(continued),
        records=int(records_n),
        malformed=int(malformed),
    )
