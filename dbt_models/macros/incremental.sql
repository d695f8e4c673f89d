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
