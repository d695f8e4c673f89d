{#- Deduplication of an event table: the first loaded copy of a key wins (staging of calls,
    stage changes, survey responses). Renders the CTEs `duplicated_keys`, `single_copies`,
    `ranked_copies` and `first_loaded` (one row per key: `columns`, the load metadata and
    `_last_loaded_at`, the latest load that brought the key, which the incremental facts use).

    Keys loaded more than once are rare, so only their rows are ranked: a window over every
    row of a big event table costs far more. -#}
{% macro first_loaded_copies(relation, key, columns) -%}
{%- set metadata = ['_source_file', '_source_line', '_loaded_at', '_batch_id'] -%}
duplicated_keys as (
    select {{ key }}
    from {{ relation }}
    group by 1
    having count(*) > 1
),

single_copies as (
    select
        {%- for column in columns + metadata %}
        {{ relation }}.{{ column }},
        {%- endfor %}
        {{ relation }}._loaded_at as _last_loaded_at
    from {{ relation }}
    left join duplicated_keys
        on {{ relation }}.{{ key }} = duplicated_keys.{{ key }}
    where duplicated_keys.{{ key }} is null
),

ranked_copies as (
    select
        {%- for column in columns + metadata %}
        {{ relation }}.{{ column }},
        {%- endfor %}
        max({{ relation }}._loaded_at) over (partition by {{ relation }}.{{ key }}) as _last_loaded_at,
        row_number() over (
            partition by {{ relation }}.{{ key }}
            order by {{ relation }}._loaded_at, {{ relation }}._source_file, {{ relation }}._source_line
        ) as load_rank
    from {{ relation }}
    inner join duplicated_keys
        on {{ relation }}.{{ key }} = duplicated_keys.{{ key }}
),

first_loaded as (
    select * from single_copies
    union all
    select
        {%- for column in columns + metadata %}
        {{ column }},
        {%- endfor %}
        _last_loaded_at
    from ranked_copies
    where load_rank = 1
)
{%- endmacro %}
