"""Detect how an inbox CSV file is written: encoding, delimiter and decimal comma.

Russian Excel exports are the usual trouble: Windows-1251 text, `;` delimiters and decimal
commas. Everything here reads the file in chunks (bounded memory) and either returns a
:class:`CsvDialect` or raises :class:`UnreadableFile` with a message that names the file and
says what to change. Nothing is guessed silently: a file that is neither valid UTF-8 nor
plausibly Windows-1251 is refused.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# cp1251 bytes 0x80-0xBF that an Excel export may hold besides letters: quotes, dashes, №, ...
_CP1251_PUNCTUATION = set("«»–—№…‘’‚“”„•€\u00a0°±§©®")
_DECIMAL_COMMA = re.compile(r"(?:^|[;\t|])\s*\"?-?\d[\d \u00a0]{0,20},\d{1,6}\"?\s*(?=[;\t|]|$)")


class UnreadableFile(ValueError):
    """The file cannot be read as an inbox CSV; the message says why and what to change."""


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written.

    Attributes:
        encoding: Python codec name: `utf-8`, `utf-8-sig`, `cp1251` or `utf-16`.
        delimiter: the field delimiter.
        decimal_comma: numbers in the sampled lines use a decimal comma.
        header: the header cells, stripped and lowercased.
    """

    encoding: str
    delimiter: str
    decimal_comma: bool
    header: tuple[str, ...]

    @property
    def needs_transcoding(self) -> bool:
        """DuckDB reads UTF-8 (with or without BOM) itself; anything else is transcoded first."""
        return self.encoding not in ("utf-8", "utf-8-sig")


def detect_encoding(path: Path) -> str:
    """Return the encoding of a text file: BOM first, then strict UTF-8, then Windows-1251.

    The whole file is checked in 1 MiB chunks, so a cp1251 character deep in a large file is
    still found.

    Raises:
        UnreadableFile: the file is empty, binary, or in no encoding the inbox accepts.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
        if not head:
            raise UnreadableFile(f"{path.name}: the file is empty (a header row is required)")
        if head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        else:
            encoding = "utf-8"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(CHUNK):
                if b"\x00" in chunk:
                    raise UnreadableFile(
                        f"{path.name}: binary content (NUL bytes); export the data as CSV text"
                    )
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            pass
    if _looks_like_cp1251(path):
        return "cp1251"
    raise UnreadableFile(
        f"{path.name}: not valid UTF-8 and not Windows-1251 text; save the file as "
        "'CSV UTF-8' (in Excel: Save As → CSV UTF-8)"
    )


def _looks_like_cp1251(path: Path) -> bool:
    """True when the non-ASCII characters of the file, read as cp1251, are mostly Cyrillic."""
    cyrillic = other = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            text = chunk.decode("cp1251", errors="replace")
            for char in text:
                if ord(char) < 128:
                    continue
                if _CYRILLIC.match(char):
                    cyrillic += 1
                elif char not in _CP1251_PUNCTUATION:
                    other += 1
    return cyrillic > 0 and other <= 0.05 * (cyrillic + other)


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


def sniff(path: Path, sample_lines: int = 200) -> CsvDialect:
    """Detect the encoding, delimiter, decimal comma and header of an inbox CSV file.

    Raises:
        UnreadableFile: the file cannot be read as CSV text with a header row.
    """
    encoding = detect_encoding(path)
    lines: list[str] = []
    with path.open("r", encoding=encoding, newline="") as handle:
        for line in handle:
            if line.strip():
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
        encoding=encoding, delimiter=delimiter, decimal_comma=decimal_comma, header=header
    )


def transcode_to_utf8(source: Path, target: Path, encoding: str) -> None:
    """Rewrite `source` in UTF-8 at `target`, streaming (bounded memory)."""
    with (
        source.open("r", encoding=encoding, newline="") as reader,
        target.open("w", encoding="utf-8", newline="") as writer,
    ):
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
