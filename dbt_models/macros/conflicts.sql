{#- Conflicting plan and reference rows (sales_plans, bonus_pools, kpi_weights,
    premium_coefficients; docs/decisions.md D86).

    Raw keeps every row of every file in the inbox. Rows with the same key and the same values
    (after parsing: 150 and 150.00 agree) are one row, the newest loaded. Rows with the same key
    and different values are never resolved by load order: the key is held back, its values null,
    with `conflict_reason` naming every row's file and line, and the bonus lines they would feed
    are held (int_bonus_lines_computed). Renders the CTEs `key_versions`, `conflicting_keys` and
    `conflicts` (one row per conflicting key: the key and conflict_reason) from the CTE `renamed`
    of a staging model. -#}
{% macro conflicting_rows(key_columns, value_columns) -%}
key_versions as (
    select
        {{ (key_columns + value_columns) | join(',\n        ') }}
    from renamed
    group by {{ (key_columns + value_columns) | join(', ') }}
),

conflicting_keys as (
    select
        {{ key_columns | join(',\n        ') }}
    from key_versions
    group by {{ key_columns | join(', ') }}
    having count(*) > 1
),

conflicts as (
    select
        {%- for column in key_columns %}
        renamed.{{ column }},
        {%- endfor %}
        'conflicting rows (same key, different values): '
            || {{ dbt.listagg(
                "renamed._source_file || ' line ' || cast(renamed._source_line as " ~ dbt.type_string() ~ ")",
                "'; '",
                "order by renamed._source_file, renamed._source_line"
            ) }}
            || '. Make the rows agree or remove all but one, then run again' as conflict_reason
    from renamed
    inner join conflicting_keys
        on {% for column in key_columns -%}
        renamed.{{ column }} = conflicting_keys.{{ column }}{% if not loop.last %}
        and {% endif %}
        {%- endfor %}
    group by {% for column in key_columns %}renamed.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
)
{%- endmacro %}


{#- `<value>` while the key is not held back, else null (`conflicts`: the CTE above, left joined) -#}
{% macro unless_conflicting(column) -%}
    case when conflicts.conflict_reason is null then ranked.{{ column }} end
{%- endmacro %}
