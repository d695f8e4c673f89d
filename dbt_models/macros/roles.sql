{#- The readers' roles on PostgreSQL (issue 19, D170).

    Two group roles (NOLOGIN), created if missing at the start of every run: `voronka_bi` reads
    the schema `marts`; `voronka_finance` reads `marts` and `finance`. Neither reads `raw`,
    `quarantine`, `staging`, `intermediate`, `core` or `finance_ledger`, which hold phones,
    e-mails and names: nothing there is ever granted to them. A person or a BI tool logs in as
    its own LOGIN role made a member of one (README, "PostgreSQL").

    The grants survive every rebuild: `alter default privileges` gives each table or view the
    run's role creates in `marts` or `finance` its SELECT at creation, so a table dbt builds
    beside and swaps in is readable the moment it appears (a grant after the swap would leave a
    moment of "permission denied"); `grant ... on all tables` covers the ones built before.

    The run's role needs CREATEROLE only while a role is missing: a DBA may create the two roles
    once instead. Nothing to do on DuckDB (one file, no users). -#}
{% macro reader_roles() -%}
    {{ return(adapter.dispatch('reader_roles', 'voronka')()) }}
{%- endmacro %}

{% macro duckdb__reader_roles() -%}
{%- endmacro %}

{% macro postgres__reader_roles() -%}
do $voronka_roles$
declare
    wanted text;
begin
    foreach wanted in array array['voronka_bi', 'voronka_finance'] loop
        if not exists (select from pg_catalog.pg_roles where rolname = wanted) then
            execute format('create role %I nologin', wanted);
        end if;
    end loop;
exception when insufficient_privilege then
    raise exception 'role % may not create the reader roles voronka_bi and voronka_finance (D170)', current_user
        using hint = 'Create them once as a superuser: CREATE ROLE voronka_bi NOLOGIN; '
            || 'CREATE ROLE voronka_finance NOLOGIN; or give this role CREATEROLE.';
end
$voronka_roles$;
create schema if not exists marts;
create schema if not exists finance;
grant usage on schema marts to voronka_bi, voronka_finance;
grant usage on schema finance to voronka_finance;
alter default privileges in schema marts grant select on tables to voronka_bi, voronka_finance;
alter default privileges in schema finance grant select on tables to voronka_finance;
grant select on all tables in schema marts to voronka_bi, voronka_finance;
grant select on all tables in schema finance to voronka_finance
{%- endmacro %}
