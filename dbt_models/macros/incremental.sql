{#- Helpers of the incremental facts (fct_calls, fct_deal_stage_changes, fct_survey_responses).

    New rows are the staging rows loaded after the newest `_loaded_at` already in the fact (the
    raw layer's load time, never the wall clock); `unique_key` + delete+insert replaces rows that
    come again. A full refresh gives the same rows. -#}

{#- The newest `_loaded_at` in this model (a scalar subquery); a very old time when empty -#}
{% macro loaded_watermark(column="_last_loaded_at") -%}
    (select coalesce(max({{ column }}), cast('1900-01-01 00:00:00' as {{ dbt.type_timestamp() }})) from {{ this }})
{%- endmacro %}
