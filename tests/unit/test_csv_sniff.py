import pytest

from dagster_project.lib.csv_sniff import (
    UnreadableFile,
    detect_delimiter,
    detect_encoding,
    sniff,
    transcode_to_utf8,
)


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_utf8_comma(tmp_path):
    path = _write(tmp_path, "a.csv", "id,name\n1,Иван\n".encode())
    dialect = sniff(path)
    assert (dialect.encoding, dialect.delimiter, dialect.decimal_comma) == ("utf-8", ",", False)
    assert dialect.header == ("id", "name")
    assert not dialect.needs_transcoding


def test_utf8_bom(tmp_path):
    path = _write(tmp_path, "a.csv", b"\xef\xbb\xbf" + b" ID ,Name\n1,x\n")
    dialect = sniff(path)
    assert dialect.encoding == "utf-8-sig"
    assert dialect.header == ("id", "name")


def test_excel_russian_export(tmp_path):
    text = "period;channel;amount\n2026-01;Сайт;1 234,50\n2026-02;Выставка;99,5\n"
    path = _write(tmp_path, "a.csv", text.encode("cp1251"))
    dialect = sniff(path)
    assert (dialect.encoding, dialect.delimiter, dialect.decimal_comma) == ("cp1251", ";", True)
    assert dialect.needs_transcoding
    target = tmp_path / "utf8.csv"
    transcode_to_utf8(path, target, dialect.encoding)
    assert target.read_text(encoding="utf-8") == text


def test_cp1251_deep_in_a_large_file_is_found(tmp_path):
    body = "id,name\n" + "1,abc\n" * 300_000 + "2,Ёлка\n"
    path = _write(tmp_path, "a.csv", body.encode("cp1251"))
    assert detect_encoding(path) == "cp1251"


def test_semicolon_without_decimals(tmp_path):
    path = _write(tmp_path, "a.csv", b"a;b\n1;2\n")
    dialect = sniff(path)
    assert (dialect.delimiter, dialect.decimal_comma) == (";", False)


def test_quoted_delimiters_do_not_count():
    assert detect_delimiter('name,"a;b;c;d"') == ","
    assert detect_delimiter('"x,y";"z"') == ";"
    assert detect_delimiter("a\tb\tc") == "\t"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        ("id,name\n1,日本語\n".encode("shift_jis"), "not valid UTF-8"),
    ],
)
def test_unreadable_files_say_why(tmp_path, data, message):
    path = _write(tmp_path, "bad.csv", data)
    with pytest.raises(UnreadableFile, match=message) as info:
        sniff(path)
    assert "bad.csv" in str(info.value)
