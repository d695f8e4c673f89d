{#- The grain of a model with a composite key: no two rows share the values of these columns.
    (dbt_utils has the same test; this project installs no packages.) -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (
    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as rows_with_this_key
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
),

final as (
    select * from grouped
    where rows_with_this_key > 1
)

select * from final

{% endtest %}
