"""Detect how an inbox CSV file is written: encoding, delimiter and decimal comma.

Russian Excel exports are the usual trouble: Windows-1251 text, `;` delimiters and decimal
commas. Everything here reads the file in chunks (bounded memory) and either returns a
:class:`CsvDialect` or raises :class:`UnreadableFile` with a message that names the file and
says what to change. Nothing is guessed silently: a file that is neither valid UTF-8 nor
plausibly Windows-1251 is refused.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"(?:^|[;\t|])\s*\"?-?\d[\d \u00a0]{0,20},\d{1,6}\"?\s*(?=[;\t|]|$)")


class UnreadableFile(ValueError):
    """The file cannot be read as an inbox CSV; the message says why and what to change."""


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written.

    Attributes:
        encoding: Python codec name: `utf-8`, `utf-8-sig`, `cp1251`, `cp1252`, `latin-1` or
            `utf-16`.
        delimiter: the field delimiter.
        decimal_comma: numbers in the sampled lines use a decimal comma.
        header: the header cells, stripped and lowercased.
        header_line: the header's physical line number (the first line that is not blank).
        header_text: the header line as written.
    """

    encoding: str
    delimiter: str
    decimal_comma: bool
    header: tuple[str, ...]
    header_line: int = 1
    header_text: str = ""

    @property
    def needs_transcoding(self) -> bool:
        """DuckDB reads UTF-8 (with or without BOM) itself; anything else is transcoded first."""
        return self.encoding not in ("utf-8", "utf-8-sig")


def detect_encoding(path: Path) -> str:
    """Return the encoding of a text file: BOM first, then strict UTF-8, then a single-byte
    Windows code page chosen by :func:`single_byte_encoding`.

    The whole file is checked in 1 MiB chunks, so a non-UTF-8 byte deep in a large file is
    still found.

    Raises:
        UnreadableFile: the file is empty, binary, or in no encoding the inbox accepts.
    """
    return scan(path, count_lines=False).encoding


# Candidate delimiters of the line reader (D71): control characters no CSV text holds.
_FREE_BYTES = (b"\x1f", b"\x1e", b"\x1d", b"\x1c")


@dataclass(frozen=True)
class LineCounts:
    """How a file's lines end, counted on its bytes.

    A physical line ends at LF, CRLF or a lone CR (the universal-newline rule); the last line
    counts even without an ending. `free_byte` is a control character absent from the file.
    """

    lines: int
    crlf: int
    bare_lf: int
    lone_cr: int
    free_byte: str | None

    @property
    def newline(self) -> str | None:
        """The one line ending DuckDB's CSV reader is given, or None when the file mixes them."""
        if self.lone_cr:
            return None
        if self.crlf and self.bare_lf:
            return None
        return "\r\n" if self.crlf else "\n"


@dataclass(frozen=True)
class FileScan:
    """One pass over a file's bytes: its digest, size, encoding and line endings.

    `wide_spaces`: the file may hold a space separator other than U+0020 (`WIDE_SPACES`, D405):
    False only for a UTF-8 file found to hold none."""

    sha256: str
    size: int
    encoding: str
    counts: LineCounts | None  # None for UTF-16 (counted after transcoding)
    wide_spaces: bool = True


# The space separators (Unicode category Zs) other than U+0020, in UTF-8: with the space, what
# DuckDB's `trim` removes (D405; a unit test asks DuckDB). Each begins with a byte in _WIDE_LEADS
# and goes on with bytes of 0x80 and above.
WIDE_SPACES = tuple(
    chr(code).encode() for code in (0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)
)
_WIDE_LEADS = tuple(sorted({space[:1] for space in WIDE_SPACES}))


def _holds_wide_space(data: bytes) -> bool:
    return any(lead in data for lead in _WIDE_LEADS) and any(s in data for s in WIDE_SPACES)


class _LineCounter:
    def __init__(self) -> None:
        self.lf = self.cr = self.crlf = 0
        self.prev_cr = False
        self.last = b""
        self.present = dict.fromkeys(_FREE_BYTES, False)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.lf += chunk.count(b"\n")
        if b"\r" in chunk:  # most exports end lines with LF alone: one search, no count (D406)
            self.cr += chunk.count(b"\r")
            self.crlf += chunk.count(b"\r\n")
        if self.prev_cr and chunk[:1] == b"\n":
            self.crlf += 1
        self.prev_cr = chunk[-1:] == b"\r"
        self.last = chunk[-1:]
        for byte, seen in self.present.items():
            if not seen and byte in chunk:
                self.present[byte] = True

    def result(self) -> LineCounts:
        lone_cr = self.cr - self.crlf
        unterminated = 1 if self.last and self.last not in b"\r\n" else 0
        free = next((b.decode() for b, seen in self.present.items() if not seen), None)
        return LineCounts(
            lines=self.lf + lone_cr + unterminated,
            crlf=self.crlf,
            bare_lf=self.lf - self.crlf,
            lone_cr=lone_cr,
            free_byte=free,
        )


def count_lines(path: Path) -> LineCounts:
    """Count the physical lines of a UTF-8 (or single-byte) file, streaming."""
    counter = _LineCounter()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            counter.feed(chunk)
    return counter.result()


_TAIL = 1 << 16
_LINE_END = re.compile(rb"\r\n|\n|\r")


def trailing_blank_lines(path: Path, lines: int) -> int:
    """How many of a UTF-8 file's last lines are blank (empty, spaces or tabs), at most
    `lines - 1` (the header is not). DuckDB's reader skips them, so a file whose only blank
    lines are at its end still gives one record per line before them (D70)."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - _TAIL))
        tail = handle.read()
    parts = _LINE_END.split(tail)
    if parts and parts[-1] == b"":
        parts.pop()  # the file ends with a line end: no line after it
    if size > _TAIL and parts:
        parts.pop(0)  # the first piece may be the end of a longer line
    blank = 0
    for part in reversed(parts):
        if part.strip(b" \t"):
            break
        blank += 1
    return min(blank, max(0, lines - 1))


def _bom_encoding(first_chunk: bytes) -> str:
    """The encoding a file's byte order mark names; UTF-8 without one."""
    if first_chunk.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if first_chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _ends_whole(decoder: codecs.IncrementalDecoder) -> bool:
    """Whether the bytes fed to a UTF-8 decoder end with a whole character."""
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def scan(path: Path, count_lines: bool = True, sha256: str | None = None) -> FileScan:
    """Read a file once: sha256 (unless given), size, encoding and (unless UTF-16) its line
    counts.

    Raises:
        UnreadableFile: the file is empty, binary, or in no encoding the inbox accepts.
    """
    digest = None if sha256 else hashlib.sha256()
    counter = _LineCounter()
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    utf8 = True
    wide = False
    tail = b""
    encoding = "utf-8"
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if not size:
                encoding = _bom_encoding(chunk)
                utf8 = encoding != "utf-16"
            size += len(chunk)
            if digest:
                digest.update(chunk)
            if encoding == "utf-16":
                continue
            if b"\x00" in chunk:
                raise UnreadableFile(
                    f"{path.name}: binary content (NUL bytes); export the data as CSV text"
                )
            ascii = chunk.isascii()
            # ASCII bytes are whole UTF-8 characters: the decoder reads them only when it holds
            # the first bytes of a character cut at the end of the last chunk (D406)
            if utf8 and (not ascii or decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if not (wide or ascii):  # with the last chunk's end: a space cut in two (D405)
                wide = _holds_wide_space(tail + chunk)
            tail = chunk[-2:]
            if count_lines:
                counter.feed(chunk)
    if not size:
        raise UnreadableFile(f"{path.name}: the file is empty (a header row is required)")
    if encoding != "utf-16" and not (utf8 and _ends_whole(decoder)):
        encoding = single_byte_encoding(path)
    counts = counter.result() if count_lines and encoding != "utf-16" else None
    wide = wide or encoding not in ("utf-8", "utf-8-sig")  # the bytes of another encoding
    return FileScan(digest.hexdigest() if digest else sha256, size, encoding, counts, wide)


# A word: a run of letters (read as cp1251, every byte 0xC0-0xFF is a Cyrillic letter); those
# holding a Cyrillic letter are counted (D72). Words are found
# first and searched for Cyrillic after: a single pattern "letters, a Cyrillic letter, letters"
# tried at every position of a long run of other letters backtracks over the run from each
# position, quadratic in its length (a 1 MiB word hung the loader, D411)
_WORD = re.compile(r"[^\W\d_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# the letters of Russian (and Ukrainian, Belarusian) words; cp1251's other Cyrillic letters
# (Serbian, Macedonian) in a word make it implausible for an inbox export
_EAST_SLAVIC_WORD = re.compile(r"[А-Яа-яЁёІіЇїЄєҐґЎў]+")


def single_byte_encoding(path: Path) -> str:
    """Windows-1251 (Russian) or Windows-1252 (Western European) for a file that is not UTF-8.

    The rule (docs/decisions.md D72): read as cp1251, the words holding non-ASCII letters are
    counted. Russian words are Cyrillic throughout; Western text read as cp1251 puts Cyrillic
    letters inside Latin words (`Müller` reads `Mьller`). Mostly pure Cyrillic words: cp1251.
    Mostly mixed words: cp1252. No non-ASCII letter at all (only NBSP, `№`, quotes, dashes):
    cp1251, the Russian Excel export these bytes come from (both code pages read NBSP, quotes
    and dashes alike). Anything else is refused: guessing would mis-read names silently.

    Raises:
        UnreadableFile: neither code page is plausible.
    """
    pure = mixed = single = odd = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            text = chunk.decode("cp1251", errors="replace")
            for word in _WORD.findall(text):
                if not _CYRILLIC.search(word):
                    continue
                if _ASCII_LETTER.search(word):
                    mixed += 1
                elif not _EAST_SLAVIC_WORD.fullmatch(word):
                    odd += 1
                elif len(word) > 1:
                    pure += 1
                else:
                    single += 1
    if pure and mixed + odd <= pure / 20:
        return "cp1251"
    if mixed and pure + odd <= mixed / 20:
        try:
            with path.open("r", encoding="cp1252") as handle:
                while handle.read(CHUNK):
                    pass
            return "cp1252"
        except UnicodeDecodeError:
            return "latin-1"
    if not (pure or mixed or single or odd):
        return "cp1251"
    raise UnreadableFile(
        f"{path.name}: not valid UTF-8, and its letters read neither as Russian (Windows-1251) "
        "nor as Western European (Windows-1252) text; save the file as 'CSV UTF-8' "
        "(in Excel: Save As → CSV UTF-8)"
    )


def _split_outside_quotes(line: str, delimiter: str) -> list[str]:
    cells, current, quoted = [], [], False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            cells.append("".join(current))
            current = []
            continue
        current.append(char)
    cells.append("".join(current))
    return cells


def detect_delimiter(header_line: str) -> str:
    """Return the delimiter that splits the header line into the most cells (`,` on a tie)."""
    counts = {d: len(_split_outside_quotes(header_line, d)) for d in DELIMITERS}
    best = max(counts.values())
    if best == 1:
        return ","
    return next(d for d in DELIMITERS if counts[d] == best)


def sniff(path: Path, sample_lines: int = 200, encoding: str | None = None) -> CsvDialect:
    """Detect the encoding, delimiter, decimal comma and header of an inbox CSV file.

    The header is the first line that is not blank; `header_line` is its physical line number
    (lines end at LF, CRLF or a lone CR) and `header_text` its text.

    Args:
        path: the file.
        sample_lines: lines read after the header to detect a decimal comma.
        encoding: the file's encoding when already known (see :func:`scan`).

    Raises:
        UnreadableFile: the file cannot be read as CSV text with a header row.
    """
    encoding = encoding or detect_encoding(path)
    lines: list[str] = []
    header_line = 0
    number = 0
    with path.open("r", encoding=encoding, newline="") as handle:
        for line in handle:
            number += 1
            if line.strip():
                if not lines:
                    header_line = number
                lines.append(line.rstrip("\r\n"))
            if len(lines) > sample_lines:
                break
    if not lines:
        raise UnreadableFile(f"{path.name}: the file has no lines (a header row is required)")
    delimiter = detect_delimiter(lines[0])
    cells = _split_outside_quotes(lines[0], delimiter)
    header = tuple(cell.strip().strip('"').strip().lower() for cell in cells)
    decimal_comma = delimiter != "," and any(_DECIMAL_COMMA.search(line) for line in lines[1:])
    return CsvDialect(
        encoding=encoding,
        delimiter=delimiter,
        decimal_comma=decimal_comma,
        header=header,
        header_line=header_line,
        header_text=lines[0].lstrip("\ufeff"),
    )


def transcode_to_utf8(
    source: Path, target: Path, encoding: str, normalize_newlines: bool = False
) -> None:
    """Rewrite `source` in UTF-8 at `target`, streaming (bounded memory).

    With `normalize_newlines`, every line ending (CRLF, lone CR) becomes LF: the physical lines
    stay the same lines, and DuckDB's reader gets one line ending (D71).
    """
    with (
        source.open("r", encoding=encoding, newline=None if normalize_newlines else "") as reader,
        target.open("w", encoding="utf-8", newline="") as writer,
    ):
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
