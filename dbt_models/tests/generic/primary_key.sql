{#- The column is a primary key: no null, no value twice. One pass over the model where
    `unique` and `not_null` take two: on a view each pass recomputes it, and on the 36 M calls of
    the large demo each pass is a scan or a hash of every key. A failing row is a duplicated key
    with its number of copies, or the null key with its count. -#}
{% test primary_key(model, column_name) %}

with

counted as (
    select
        {{ column_name }} as key_value,
        count(*) as copies
    from {{ model }}
    group by 1
),

final as (
    select * from counted
    where copies > 1 or key_value is null
)

select * from final

{% endtest %}
