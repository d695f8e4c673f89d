"""The postgresql:// warehouse URL (D181, D182): parsing, refusing a password, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.lib import postgres
from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings


def test_a_url_selects_postgresql_and_a_path_duckdb():
    target = wh.parse_target("postgresql://bi@db.example:6432/sales?sslmode=require")
    assert isinstance(target, postgres.PostgresTarget)
    assert (target.host, target.port, target.user, target.dbname) == (
        "db.example",
        "6432",
        "bi",
        "sales",
    )
    assert target.params == (("sslmode", "require"),)
    assert wh.parse_target("postgres://u@h/d").dbname == "d"
    assert wh.parse_target("data/warehouse.duckdb") == Path("data/warehouse.duckdb")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bi:s3cret-Pass@db.example:5432/sales",
        "postgresql://bi@db.example/sales?password=s3cret-Pass&sslmode=require",
    ],
)
def test_a_password_in_the_url_is_refused_without_echoing_it(url):
    with pytest.raises(wh.WarehouseError) as caught:
        wh.parse_target(url)
    message = str(caught.value)
    assert "s3cret-Pass" not in message
    assert "PGPASSWORD" in message and "***" in message


def test_settings_refuse_it_as_a_usage_error(monkeypatch):
    monkeypatch.setenv("VORONKA_WAREHOUSE", "postgresql://bi:s3cret-Pass@h/d")
    with pytest.raises(ValueError) as caught:
        Settings.from_env()
    assert "s3cret-Pass" not in str(caught.value)


def test_a_url_without_a_database_is_refused():
    with pytest.raises(wh.WarehouseError, match="names no database"):
        wh.parse_target("postgresql://bi@h:5432")


def test_mask_hides_every_password():
    text = "a postgresql://u:pw1@h/d and postgres://v:pw2@h2:1/e?password=pw3&x=1"
    masked = postgres.mask(text)
    assert "pw1" not in masked and "pw2" not in masked and "pw3" not in masked
    assert "postgresql://u:***@h/d" in masked


def test_settings_keep_the_url_and_export_it_unchanged(monkeypatch):
    url = "postgresql://bi@127.0.0.1:5433/sales?sslmode=disable"
    for name in (  # export_env writes these: monkeypatch restores them after the test
        "VORONKA_INBOX", "VORONKA_TIMEZONE", "VORONKA_MEMORY_LIMIT", "VORONKA_LANGUAGE",
        "VORONKA_LOCK_WAIT", "VORONKA_AS_OF", "DBT_TARGET", "VORONKA_PG_HOST",
        "VORONKA_PG_PORT", "VORONKA_PG_USER", "VORONKA_PG_DBNAME", "PGSSLMODE",
    ):  # fmt: skip
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("VORONKA_WAREHOUSE", url)
    settings = Settings.from_env()
    assert settings.warehouse.url == url
    settings.export_env()
    import os

    assert os.environ["VORONKA_WAREHOUSE"] == url
    assert os.environ["DBT_TARGET"] == "postgres" and os.environ["PGSSLMODE"] == "disable"


def test_dbt_gets_the_connection_by_variables_and_libpq_params(monkeypatch):
    target = wh.parse_target(
        "postgresql://bi@db:6432/sales?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        "&connect_timeout=5"
    )
    env = target.dbt_env()
    assert env == {
        "DBT_TARGET": "postgres",
        "VORONKA_PG_HOST": "db",
        "VORONKA_PG_PORT": "6432",
        "VORONKA_PG_USER": "bi",
        "VORONKA_PG_DBNAME": "sales",
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/ca.pem",
        "PGCONNECT_TIMEOUT": "5",
    }
    monkeypatch.delenv("DBT_TARGET", raising=False)
    with wh.dbt_target(target):
        import os

        assert os.environ["DBT_TARGET"] == "postgres"
    assert "DBT_TARGET" not in os.environ


def test_local_files_of_a_postgresql_warehouse_have_their_own_folder():
    target = wh.parse_target("postgresql://bi@db:6432/sales")
    assert wh.local_folder(target) == (Path("data/postgres/db-6432-sales")).resolve()
    assert wh.local_folder("w/x.duckdb") == Path("w").resolve()


@pytest.mark.parametrize(
    ("sql", "named", "expected"),
    [
        ("select * from t where a = ? and b like '%?'", False, "select * from t where a = %s "
         "and b like '%%?'"),
        ("select $x, '$x', \"$x\" -- $x ?\n, 5 % 2", True,
         "select %(x)s, '$x', \"$x\" -- $x ?\n, 5 %% 2"),
        ("select 'it''s ?', ?", False, "select 'it''s ?', %s"),
    ],
)  # fmt: skip
def test_placeholders_are_rewritten_outside_quotes_and_comments(sql, named, expected):
    assert postgres.to_psycopg(sql, named) == expected
