{#- Month-incremental marts (docs/decisions.md D11).

    A monthly mart is rebuilt from two months before the first month whose inputs changed (one
    month for rows fingerprinted by their UTC month, one for the look-back windows of the
    scorecard: 7 days of speed to lead, 60 minutes of callbacks) up to the as-of month; the
    months before are kept. Every later effect of a row (churn windows, open-deal snapshots,
    cohort conversion by the as-of time) falls in the rebuilt months. "Inputs changed" is decided by
    fingerprints: intermediate.int_months_fingerprinted hashes every fact row into each month it
    counts in (plus the dimensions, the settings and the as-of time), and each mart keeps the
    fingerprints it was last built from in `intermediate.<mart>__built_fingerprints` (written by
    a post-hook in the same transaction as the mart). A full refresh, a missing fingerprint table
    or a change of the dimensions or settings rebuilds everything, so the incremental path gives
    the rows of a full refresh (tests/integration/test_incremental.py). -#}


{#- The relation holding the fingerprints a mart was built from -#}
{% macro built_fingerprints_relation(model_relation=none) -%}
    {{ return(kept_relation('__built_fingerprints', model_relation)) }}
{%- endmacro %}


{#- Per month, the fingerprint of the inputs of this run, as a query. `extra_inputs` names further
    small models with a `month` column whose rows are hashed into their month. -#}
{% macro current_fingerprints_sql(extra_inputs=[]) -%}
    {%- if extra_inputs | length == 0 -%}
        select month, fingerprint from {{ ref('int_months_fingerprinted') }}
    {%- else -%}
        with extra as (
            {%- for relation in extra_inputs %}
            select month, {{ row_hash('extra_' ~ loop.index) }} as row_hash
            from {{ ref(relation) }} as extra_{{ loop.index }}
            {%- if not loop.last %} union all{% endif %}
            {%- endfor %}
        ),
        extra_monthly as (
            select month, count(*) as row_count, sum(row_hash) as hash_sum
            from extra
            group by 1
        )
        select
            fingerprints.month,
            md5(concat_ws('|',
                fingerprints.fingerprint,
                cast(coalesce(extra_monthly.row_count, 0) as {{ dbt.type_string() }}),
                cast(coalesce(extra_monthly.hash_sum, 0) as {{ dbt.type_string() }})
            )) as fingerprint
        from {{ ref('int_months_fingerprinted') }} as fingerprints
        left join extra_monthly
            on fingerprints.month = extra_monthly.month
    {%- endif -%}
{%- endmacro %}


{#- The first month to rebuild, as a date literal; 'all' when everything must be built (not
    incremental, a full refresh, no fingerprints kept, a dbt unit test) and 'none' when no month
    changed. -#}
{% macro rebuild_from_month(extra_inputs=[]) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set built = built_fingerprints_relation() -%}
    {%- if adapter.get_relation(built.database, built.schema, built.identifier) is none -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set query -%}
        with current_fingerprints as (
            {{ current_fingerprints_sql(extra_inputs) }}
        ),
        changed as (
            select coalesce(current_fingerprints.month, built.month) as month
            from current_fingerprints
            full outer join {{ built }} as built
                on current_fingerprints.month = built.month
            where current_fingerprints.fingerprint is distinct from built.fingerprint
        )
        select cast(min(month) as {{ dbt.type_string() }}), count(*) from changed
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[1] == 0 -%}
        {{ return('none') }}
    {%- endif -%}
    {%- set first_changed = modules.datetime.date.fromisoformat(row[0][:10]) -%}
    {#- two months earlier: one for the UTC month a row is fingerprinted in (its business month
        may be the one before), one for the look-back of speed to lead (7 days) and callbacks -#}
    {%- set month_start = first_changed.replace(day=1) -%}
    {%- set previous = (month_start - modules.datetime.timedelta(days=1)).replace(day=1) -%}
    {%- set before_previous = (previous - modules.datetime.timedelta(days=1)).replace(day=1) -%}
    {{ return(before_previous.isoformat()) }}
{%- endmacro %}


{#- `and <column> >= <first month to rebuild>` (nothing when everything is built; never true when
    nothing changed), to add to the month filters of a month-incremental mart -#}
{% macro rebuilt_months_filter(column, rebuild_from) -%}
    {%- if rebuild_from == 'all' -%}
    {%- elif rebuild_from == 'none' -%}
        and 1 = 0
    {%- else -%}
        and {{ column }} >= cast('{{ rebuild_from }}' as date)
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of a month-incremental mart: keep the fingerprints it was built from -#}
{% macro keep_built_fingerprints(extra_inputs=[]) -%}
    {%- if this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set built = built_fingerprints_relation() %}
    drop table if exists {{ built }};
    create table {{ built }} as
    {{ current_fingerprints_sql(extra_inputs) }}
    {%- endif -%}
{%- endmacro %}


{#- Custom incremental strategy `replace_months`: delete the rebuilt months (and any later one,
    so months past a moved-back as-of disappear), insert the new rows. Config `month_column`
    names the month column (default `month`). -#}
{% macro get_incremental_replace_months_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set month_column = config.get('month_column', 'month') -%}
    {%- set rebuild_from = rebuild_from_month(config.get('fingerprint_extra_inputs', [])) -%}
    {%- if rebuild_from == 'all' %}
    delete from {{ target }};
    {%- elif rebuild_from != 'none' %}
    delete from {{ target }} where {{ month_column }} >= cast('{{ rebuild_from }}' as date);
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}


{#- The UTC calendar month of a timestamp (a date) -#}
{% macro utc_month(ts_utc) -%}
    cast({{ dbt.date_trunc('month', ts_utc) }} as date)
{%- endmacro %}


{#- A row's hash, a 64-bit number (unsigned on DuckDB, signed on PostgreSQL: D241), `relation_alias`
    the row's table alias -#}
{% macro row_hash(relation_alias) -%}
    {{ return(adapter.dispatch('row_hash')(relation_alias)) }}
{%- endmacro %}

{% macro postgres__row_hash(relation_alias) -%}
    hash_record_extended({{ relation_alias }}, 0)
{%- endmacro %}

{% macro duckdb__row_hash(relation_alias) -%}
    hash({{ relation_alias }})
{%- endmacro %}
