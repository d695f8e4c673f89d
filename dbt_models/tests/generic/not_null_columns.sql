{#- The columns hold no null: one test, and one pass over the model, for all the columns a
    model's YAML names (D261). A test per column cost dbt a node and Dagster an asset check
    each, whatever the table's size. A failing row names a column and its number of null rows.
    A not-null test with its own config (a `where`) stays a column's `not_null`. -#}
{% test not_null_columns(model, columns) %}

with

counted as (
    select
{%- for column in columns %}
        count(*) - count({{ column }}) as null_rows_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
),

final as (
{%- for column in columns %}
    select
        '{{ column }}' as column_name,
        null_rows_{{ loop.index }} as null_rows
    from counted
    where null_rows_{{ loop.index }} > 0
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final

{% endtest %}
