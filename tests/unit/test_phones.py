import pytest

from dagster_project.lib.phones import normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["8 (916) 123-45-67", "+7 916 123 45 67", "9161234567", "79161234567", "+7(916)1234567"],
)
def test_russian_formats_give_the_same_key(raw):
    assert normalize_phone(raw) == "79161234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("скрыт", None),
        ("+44 20 7946 0958", "442079460958"),  # foreign numbers keep their digits
        ("88001234567", "78001234567"),  # 8-800 toll-free: leading 8 of 11 digits -> 7
        ("123", "123"),  # short internal numbers are left alone
    ],
)
def test_edge_cases(raw, expected):
    assert normalize_phone(raw) == expected
