{#- The unions of the CRM records (int_deals__unioned, int_clients__unioned) rebuilt per touched
    key (docs/decisions.md D340).

    Each union is an incremental table with the `append` strategy. Its inbox rows are the newest
    version of each key (stg_inbox__deals, stg_inbox__clients: a window over every version of
    history). A key's newest version changes only with a raw row of that key loaded since the
    last build (a new version: a change, a deletion or a restoration, D85), or with a raw row
    removed (D205's log: the run rebuilds in full). So a pre-hook deletes the rows of the inbox
    keys with a raw row loaded after the last build (D201's inputs seen: the newest raw
    `_loaded_at` that build read, kept by `keep_inputs_seen`), and the model ranks the versions
    of those keys only, by the same staging SQL as a full build; every other inbox row is kept.
    The keys are found in raw by the load time alone, never by reading history, and written into
    the model's SQL as constants, a filter that reaches the staging view's raw scan through its
    window (partitioned by that key).

    The API sources' rows (amoCRM, Bitrix24) are computed again in full every run, as before:
    their newest version also follows deletion events, the trash, stage histories, pipeline
    stages and the account's currency, each loaded on its own.

    In full instead (`deal_rebuild_since` gives none, macros/deal_incremental.sql): a first
    build or a full refresh, other code or settings (D320), no inputs seen kept, raw rows
    removed since (D205). -#}


{#- The keys of an inbox raw table (`raw`, a source()) with a row loaded after `since` (a SQL
    timestamp), each once -#}
{% macro inbox_keys_loaded_since(raw, key, since) -%}
    select distinct {{ key }} from {{ raw }}
    where _loaded_at > {{ since }}
{%- endmacro %}


{#- At most this many keys loaded since are written into the model's SQL as constants; more (a
    large load) are read by a semi-join. -#}
{% macro inbox_keys_listed_max() -%}
    {{ return(10000) }}
{%- endmacro %}


{#- The keys loaded since `since` as SQL string literals (`'d1', 'd2'`; '' for none), or none when
    there are more than `inbox_keys_listed_max()`. Quoted in SQL, so that no key comes back to
    Jinja as a number or a date. -#}
{% macro inbox_keys_listed(raw, key, since) -%}
    {%- set query -%}
        select
            count(*) as touched_keys,
            coalesce(
                string_agg('''' || replace({{ key }}, '''', '''''') || '''', ', ' order by {{ key }}),
                ''
            ) as listed
        from ({{ inbox_keys_loaded_since(raw, key, since) }}) as touched
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] | int > inbox_keys_listed_max() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(row[1] | string) }}
{%- endmacro %}


{#- The rows of `staging` (an inbox staging model, one row per key) to insert: those of the keys
    loaded since `since`, or all of them when `since` is none. The keys are constants: a filter
    on the window's partition key, which both engines apply to the raw scan below the staging
    view's window (a semi-join is applied above it: on PostgreSQL after ranking every version,
    on DuckDB first as a range of keys). A large load's keys are a semi-join alone (D240). -#}
{% macro inbox_rows_to_build(staging, raw, key, since) -%}
    {%- if since is none -%}
    select * from {{ staging }}
    {%- else -%}
    {%- set listed = inbox_keys_listed(raw, key, since) -%}
    select * from {{ staging }}
    {%- if listed is none %}
    where {{ key }} in (
        {{ inbox_keys_loaded_since(raw, key, since) }}
    )
    {%- elif listed == '' %}
    where 1 = 0
    {%- else %}
    where {{ key }} in ({{ listed }})
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of a union: delete the API sources' rows and the rows of the inbox keys loaded since
    the last build, or every row when it is built in full; nothing on a first build or a full
    refresh. Two statements, each key set alone (D240). -#}
{% macro delete_touched_unioned_rows(raw, key) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- else -%}
    {%- set since = deal_rebuild_since() -%}
    {%- if since is none -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }}
    where source_system <> 'inbox';
    delete from {{ this }}
    where {{ key }} in (
        {{ inbox_keys_loaded_since(raw, key, since) }}
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of a union (D408): keep what its rows of `source_system` were built from, in
    `intermediate.<union>__staging_seen` (one row, in the same transaction as the rows): the
    staging view they are the rows of (`staging`, one row per key), the view's SQL as DuckDB
    holds it, and the state of its raw table (`raw`) as D340 follows it: how many rows, the
    newest `_loaded_at`, and how many removals the log holds (D204). While the view's SQL and
    that state are the same, the union's rows of that source are the view's rows (D340 builds
    them from the view), and the view's Great Expectations suite reads them there instead of
    computing the view again (ge_runner.layers, D408). On PostgreSQL nothing is kept: the suite
    reads the view. -#}
{% macro keep_staging_seen(staging, raw, source_system) -%}
    {{ return(adapter.dispatch('keep_staging_seen', 'voronka')(staging, raw, source_system)) }}
{%- endmacro %}


{% macro duckdb__keep_staging_seen(staging, raw, source_system) -%}
    {%- if not execute or this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set seen = kept_relation('__staging_seen') %}
    drop table if exists {{ seen }};
    create table {{ seen }} as
    select
        '{{ staging.schema }}' as staging_schema,
        '{{ staging.identifier }}' as staging_table,
        (
            select views.sql from duckdb_views() as views
            where views.schema_name = '{{ staging.schema }}'
                and views.view_name = '{{ staging.identifier }}'
        ) as staging_sql,
        '{{ source_system }}' as source_system,
        '{{ raw.schema }}' as raw_schema,
        '{{ raw.identifier }}' as raw_table,
        (select count(*) from {{ raw }}) as raw_rows,
        (select max(_loaded_at) from {{ raw }}) as raw_loaded_until,
        cast({{ removals_logged() }} as {{ dbt.type_bigint() }}) as removals_logged
    {%- endif -%}
{%- endmacro %}


{% macro postgres__keep_staging_seen(staging, raw, source_system) -%}
    select 1
{%- endmacro %}
