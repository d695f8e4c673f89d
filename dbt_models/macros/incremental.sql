{#- Helpers of the incremental facts (fct_calls, fct_deal_stage_changes, fct_survey_responses).

    A fact's watermark is the newest `_last_loaded_at` already in it: the raw layer's load time
    (never the wall clock) of the latest load that brought one of its keys. New rows are the
    staging rows with `_last_loaded_at` after it; `unique_key` + delete+insert replaces the rows
    of keys that come again. Rows whose other inputs (clients, managers, deals, ...) were loaded
    after the watermark are recomputed too, so a full refresh gives the same rows.

    The watermark is read once, when the model runs, and written into the SQL as a constant: a
    constant filter reaches the raw table's scan through the staging view (DuckDB skips the row
    groups loaded earlier), a subquery would not. -#}


{#- The watermark as a SQL timestamp literal (a very old time when the model is empty). During
    parsing, or when the model is not incremental, a harmless expression. -#}
{% macro loaded_watermark(column='_last_loaded_at') -%}
    {%- set fallback = "cast('1900-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- if execute and is_incremental() and '__dbt__cte__' in (this | string) -%}
        {#- A dbt unit test: `this` is the test's given rows, a CTE that a query cannot reach -#}
        {{ return("(select coalesce(max(" ~ column ~ "), " ~ fallback ~ ") from " ~ this ~ ")") }}
    {%- elif execute and is_incremental() -%}
        {%- set query -%}
            select cast(max({{ column }}) as {{ dbt.type_string() }}) from {{ this }}
        {%- endset -%}
        {%- set value = run_query(query).columns[0].values()[0] -%}
        {%- if value is none -%}
            {{ return(fallback) }}
        {%- else -%}
            {{ return("cast('" ~ value ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
        {%- endif -%}
    {%- else -%}
        {{ return(fallback) }}
    {%- endif -%}
{%- endmacro %}


{#- Whether any of the relations (staging models or dims with `_loaded_at`) has rows loaded
    after the watermark: when none has, an incremental fact needs only its own new rows. -#}
{% macro loaded_since(relations, watermark) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(true) }}
    {%- endif -%}
    {%- for relation in relations if '__dbt__cte__' in (relation | string) -%}
        {#- A dbt unit test: the inputs are given rows; recompute as if they were all new -#}
        {{ return(true) }}
    {%- endfor -%}
    {%- set query -%}
        {%- for relation in relations %}
        select count(*) as loaded_rows from {{ relation }} where _loaded_at > {{ watermark }}
        {%- if not loop.last %} union all{% endif -%}
        {%- endfor %}
    {%- endset -%}
    {%- set counts = run_query(query).columns[0].values() -%}
    {{ return(counts | sum > 0) }}
{%- endmacro %}


{#- Inputs seen by an incremental fact (D201). `loaded_since` and the rows to recompute compare
    the other inputs' `_loaded_at` with a time: the fact's own watermark counts every input row
    loaded after the fact's newest row as new, and the loads of one run come one after another
    (calls before clients before managers), so the run after a build took the inputs its previous
    run loaded after the fact's entity for new ones (all clients, all managers: every call). The
    fact keeps instead the newest `_loaded_at` of its inputs when it was built, in
    `intermediate.<fact>__inputs_seen` (a post-hook, in the same transaction as the fact's rows):
    an input row loaded after that build is loaded after it; one loaded before was read by it. -#}
{% macro inputs_seen_relation() -%}
    {{ return(kept_relation('__inputs_seen')) }}
{%- endmacro %}


{#- The table in `intermediate` where a model keeps what it was built from, named after it
    with `suffix` (`__inputs_seen`, `__removals_seen`, `__as_of_seen`, `__build_digest`,
    `__built_fingerprints`): written by a post-hook in the same transaction as its rows. -#}
{% macro kept_relation(suffix, model_relation=none) -%}
    {%- set target_relation = model_relation or this -%}
    {{ return(api.Relation.create(
        database=target_relation.database,
        schema=generate_schema_name('intermediate', model),
        identifier=target_relation.identifier ~ suffix,
        type='table')) }}
{%- endmacro %}


{#- The time after which an input row of the fact is new, as a SQL timestamp: the newest input
    load the last build saw; `watermark` (the fact's own) when no build kept it (a warehouse from
    before D201, a dbt unit test). -#}
{% macro inputs_watermark(watermark) -%}
    {%- if not execute or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(watermark) }}
    {%- endif -%}
    {%- set seen = inputs_seen_relation() -%}
    {%- if adapter.get_relation(seen.database, seen.schema, seen.identifier) is none -%}
        {{ return(watermark) }}
    {%- endif -%}
    {%- set query -%}
        select cast(max(loaded_until) as {{ dbt.type_string() }}) from {{ seen }}
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {%- if value is none -%}
        {{ return(watermark) }}
    {%- endif -%}
    {{ return("cast('" ~ value ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}


{#- Post-hook of an incremental fact: keep the newest `_loaded_at` of its inputs (`relations`,
    the ones it gives `loaded_since`) as they were at this build. -#}
{% macro keep_inputs_seen(relations) -%}
    {%- if this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set seen = inputs_seen_relation() %}
    drop table if exists {{ seen }};
    create table {{ seen }} as
    select max(loaded_until) as loaded_until
    from (
        {%- for relation in relations %}
        select max(_loaded_at) as loaded_until from {{ relation }}
        {%- if not loop.last %} union all{% endif %}
        {%- endfor %}
    ) as inputs
    {%- endif -%}
{%- endmacro %}
