{#- The calls' part of the month fingerprints, kept from run to run (docs/decisions.md D415).

    `int_months_fingerprinted` keeps, in its own rows, each month's count and hash sum of the
    calls started in it (`calls_row_count`, `calls_hash_sum`). The next build hashes again only
    the months whose calls may differ, which are exactly (a) the months whose count of calls now
    differs from the kept one and (b) the months the calls written by `fct_calls` since then
    started in: a call that enters a month was written (b); one that leaves a month no written
    call enters lowers its count (a); one rewritten in place was written (b). `fct_calls` changes
    its rows only by its own build: its pre-hooks delete, its strategy deletes and inserts.

    (b) is kept in `intermediate.fct_calls__months_written`: the strategy
    `delete_insert_noting_months` adds the months of the rows it inserts, in the same transaction
    as the rows; `int_months_fingerprinted`'s post-hook empties it (creates it when missing) in
    the transaction of the kept sums. When `fct_calls` is built as a table (first build, full
    refresh, a changed code, D320) its pre-hook drops it, and while it is missing every call is
    hashed again. Every call is also hashed again when the kept sums were made by another
    engine version (the row hash may differ, D241), other columns of `fct_calls` (a column
    appended changes every row's hash and writes no row), or another code or settings
    (`shared_build_digest`, the fingerprints' own code). -#}


{#- Where `fct_calls` notes the months of the rows it wrote since the last fingerprints -#}
{% macro months_written_relation(model_relation) -%}
    {{ return(kept_relation('__months_written', model_relation)) }}
{%- endmacro %}


{#- Custom incremental strategy `delete_insert_noting_months`: dbt's delete+insert, after noting
    the UTC months of the new rows' `month_source` (a timestamp column) when the table of months
    written exists (a missing one means everything is hashed again anyway; creating it here
    would hide the rows a table build wrote) -#}
{% macro get_incremental_delete_insert_noting_months_sql(arg_dict) -%}
    {%- set written = months_written_relation(arg_dict['target_relation']) -%}
    {%- set month_source = config.get('month_source') -%}
    {%- if relation_exists(written) %}
    insert into {{ written }} (month)
    select distinct {{ utc_month(month_source) }}
    from {{ arg_dict['temp_relation'] }}
    where {{ month_source }} is not null;
    {%- endif %}
    {{ get_incremental_delete_insert_sql(arg_dict) }}
{%- endmacro %}


{#- Pre-hook of `fct_calls`: a build as a table writes rows no strategy notes, so the months
    written are forgotten and the next fingerprints hash every call -#}
{% macro forget_months_written() -%}
    {%- if execute and not is_incremental() and '__dbt__cte__' not in (this | string) -%}
    {%- set written = months_written_relation(this) %}
    drop table if exists {{ written }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}


{#- What the kept calls' sums were made by: the engine's version, the columns of `fct_calls`,
    the code and settings of the run (an md5 in hex) -#}
{% macro calls_hashed_by() -%}
    {%- set calls = ref('fct_calls') -%}
    {%- set parts = [run_query('select version()').columns[0].values()[0]] -%}
    {%- for column in adapter.get_columns_in_relation(calls) -%}
        {%- do parts.append(column.name ~ ' ' ~ column.data_type) -%}
    {%- endfor -%}
    {%- do parts.append(shared_build_digest()) -%}
    {%- do parts.append(model.checksum.checksum) -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}


{#- The months whose calls `int_months_fingerprinted` hashes again, as ISO dates, or 'all' -#}
{% macro calls_months_to_hash(hashed_by) -%}
    {%- if not execute or flags.FULL_REFRESH or '__dbt__cte__' in (this | string) -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set written = months_written_relation(ref('fct_calls')) -%}
    {%- set kept = this -%}
    {%- if not relation_exists(written) or not relation_exists(kept, 'calls_hashed_by') -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set query -%}
        select count(*) from {{ kept }} where calls_hashed_by <> '{{ hashed_by }}'
    {%- endset -%}
    {%- if run_query(query).columns[0].values()[0] != 0 -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set query -%}
        with counted as (
            select {{ utc_month('started_at') }} as month, count(*) as row_count
            from {{ ref('fct_calls') }}
            where started_at is not null
            group by 1
        ),
        kept as (
            select month, calls_row_count as row_count
            from {{ kept }}
            where calls_row_count > 0
        ),
        touched as (
            select coalesce(counted.month, kept.month) as month
            from counted
            full outer join kept
                on counted.month = kept.month
            where counted.row_count is distinct from kept.row_count
            union
            select month from {{ written }}
            where month is not null
        )
        select cast(month as {{ dbt.type_string() }}) from touched order by 1
    {%- endset -%}
    {%- set months = [] -%}
    {%- for value in run_query(query).columns[0].values() -%}
        {%- do months.append(value[:10]) -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}


{#- Whether `relation` is a table now (and has `column`), asked of the database: dbt's relation
    cache does not see the tables the hooks above create and drop -#}
{% macro relation_exists(relation, column=none) -%}
    {%- set query -%}
        select count(*) from information_schema.columns
        where table_catalog = '{{ relation.database }}'
            and table_schema = '{{ relation.schema }}'
            and table_name = '{{ relation.identifier }}'
            {%- if column is not none %}
            and column_name = '{{ column }}'
            {%- endif %}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] > 0) }}
{%- endmacro %}


{#- Post-hook of `int_months_fingerprinted`: the months written so far are in its kept sums -#}
{% macro clear_months_written() -%}
    {%- if this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set written = months_written_relation(ref('fct_calls')) %}
    create table if not exists {{ written }} (month date);
    delete from {{ written }}
    {%- endif -%}
{%- endmacro %}
