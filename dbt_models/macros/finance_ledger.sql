{#- The finance ledger: what `voronka close-period` froze and the adjustments found since.

    Not dbt models: dbt must never rebuild them (they survive `dbt build --full-refresh`), and
    they are the only tables of the warehouse that hold facts no inbox file can give back.
    Written by dagster_project/lib/finance_ledger.py (close, reopen, adjustment detection), read
    by dbt through the source `finance_ledger`. Created if missing by the on-run-start hook, so
    that the source resolves on a fresh warehouse, and by the Python code before it writes.
    This macro is the one definition of their DDL: the Python code renders it with Jinja, so
    it must stay plain SQL (DuckDB and PostgreSQL alike) with no dbt function in it. -#}
{% macro finance_ledger_ddl() -%}
create schema if not exists finance_ledger;
create table if not exists finance_ledger.period_log (
    event_id integer not null,
    month date not null,
    action varchar not null,
    acted_by varchar not null,
    acted_at timestamp not null,
    reason varchar
);
create table if not exists finance_ledger.closed_bonus_lines (
    month date not null,
    manager_id varchar not null,
    kpi_code varchar not null,
    role varchar,
    fact decimal(24,6),
    base decimal(18,4),
    norm decimal(18,4),
    kpi_pct decimal(18,6),
    band_lower_pct decimal(18,4),
    band_upper_pct decimal(18,4),
    premium_coefficient decimal(18,4) not null,
    weight decimal(18,4),
    pool_amount decimal(18,2),
    bonus_amount decimal(18,2) not null,
    reason varchar,
    close_event_id integer not null,
    closed_at timestamp not null,
    superseded_at timestamp
);
create table if not exists finance_ledger.closed_bonus_statements (
    month date not null,
    manager_id varchar not null,
    manager_name varchar,
    team varchar,
    lines integer not null,
    bonus_amount decimal(18,2) not null,
    close_event_id integer not null,
    closed_at timestamp not null,
    superseded_at timestamp
);
create table if not exists finance_ledger.bonus_adjustments (
    month_affected date not null,
    manager_id varchar not null,
    kpi_code varchar not null,
    detected_at timestamp not null,
    paid_amount decimal(18,2) not null,
    recomputed_amount decimal(18,2) not null,
    delta decimal(18,2) not null,
    payable_month date not null,
    voided_at timestamp
)
{%- endmacro %}


{#- The on-run-start hook: the ledger's DDL (every statement is `if not exists`). -#}
{% macro create_finance_ledger() -%}
{{ finance_ledger_ddl() }}
{%- endmacro %}
