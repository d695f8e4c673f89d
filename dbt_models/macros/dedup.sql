{#- Deduplication in staging, two rules, each written once here:

    - records that change (deals, clients, plans, reference rows, ...): the newest version wins,
      newest_version_rank below;
    - events that never change (calls, stage changes, survey responses): the first loaded copy
      wins, first_loaded_copies below. -#}


{#- "Newest version wins": the rank of a record's rows, newest first (1 = the row kept).
    `partition_by`: the record's key. `version_expr`: the version's time (e.g. the parsed
    updated_at), newest first; none = the rows carry no version time and the newest load wins.
    `load_order`: the load metadata that breaks ties, newest first: the latest load for API rows
    (the default); inbox rows also by the later file and line, inbox_load_order(). -#}
{% macro newest_version_rank(version_expr=none, partition_by='id', load_order=['_loaded_at']) -%}
    row_number() over (
            partition by {{ partition_by }}
            order by
                {%- if version_expr %} {{ version_expr }} desc,{% endif %}
                {%- for column in load_order %} {{ column }} desc{{ ',' if not loop.last }}{% endfor %}
        ) as version_rank
{%- endmacro %}


{#- The load order of an inbox row: its load, then its file's name, then its line. -#}
{% macro inbox_load_order() -%}
    {{ return(['_loaded_at', '_source_file', '_source_line']) }}
{%- endmacro %}


{#- "First loaded copy wins": deduplication of an event table (staging of calls, stage changes,
    survey responses). Renders the CTEs `single_copies`, `ranked_copies` and `first_loaded` (one
    row per key: `columns`, the load metadata and `_last_loaded_at`, the latest load that brought
    the key, which the incremental facts use).

    `relation` is the raw table itself (a source()), not a CTE: the CTEs read it, and a CTE read
    more than once is materialised by DuckDB, which on 36 M calls cost a third of fct_calls.
    Keys loaded more than once are rare, so only their rows are ranked: a window over every
    row of a big event table costs far more. Which keys those are is read from `duplicated`
    (stg_inbox__duplicated_event_keys, the rows of `event_table`; keys_loaded_more_than_once
    below, D402), not found by grouping every raw row on each read: a filter on the load time (an
    incremental fact's watermark) reaches the raw scan of the single copies, and no grouping of
    history is left under it. `duplicated` may hold keys loaded once (a key ranked alone keeps
    its one row), never miss a key loaded more than once (its copies would all be kept). -#}
{% macro first_loaded_copies(relation, key, columns, duplicated, event_table) -%}
{%- set metadata = ['_source_file', '_source_line', '_loaded_at', '_batch_id'] -%}
single_copies as (
    select
        {%- for column in columns + metadata %}
        copies.{{ column }},
        {%- endfor %}
        copies._loaded_at as _last_loaded_at
    from {{ relation }} as copies
    where not exists (
        select 1 from {{ duplicated }} as duplicated_keys
        where duplicated_keys.event_table = '{{ event_table }}'
            and duplicated_keys.event_key = copies.{{ key }}
    )
),

ranked_copies as (
    select
        {%- for column in columns + metadata %}
        copies.{{ column }},
        {%- endfor %}
        max(copies._loaded_at) over (partition by copies.{{ key }}) as _last_loaded_at,
        row_number() over (
            partition by copies.{{ key }}
            order by copies._loaded_at, copies._source_file, copies._source_line
        ) as load_rank
    from {{ relation }} as copies
    inner join {{ duplicated }} as duplicated_keys
        on duplicated_keys.event_table = '{{ event_table }}'
            and copies.{{ key }} = duplicated_keys.event_key
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


{#- The keys of the inbox event tables loaded more than once, each once (D402): the rows of
    stg_inbox__duplicated_event_keys, which `first_loaded_copies` reads, an incremental model
    with the `append` strategy. `tables`: (the raw table, a source(); its name; its key). In
    full (`since` none: a first build, a full refresh, other code or settings (D320), no inputs
    seen kept, raw rows removed since (D205): `deal_rebuild_since`), a grouping of every raw
    row; otherwise only the keys with a raw row loaded after `since` (the newest load of the
    three the last build saw, D201) are grouped, and those not kept yet are added. A key becomes
    loaded more than once only with a raw row of it loaded, so none is missed; one kept whose
    copies were removed since stays until the full rebuild a logged removal brings. The keys
    loaded since are the small side of a semi-join with raw, no grouping of every key; the kept
    keys are left out after the grouping, where they do not stop DuckDB from skipping the row
    groups of raw outside the keys loaded since. -#}
{% macro keys_loaded_more_than_once(tables, since) -%}
    {%- for relation, table, key in tables %}
    select
        cast('{{ table }}' as {{ dbt.type_string() }}) as event_table,
        grouped.event_key
    from (
        select copies.{{ key }} as event_key
        from {{ relation }} as copies
        {%- if since is not none %}
        where copies.{{ key }} in (
            {{ inbox_keys_loaded_since(relation, key, since) }}
        )
        {%- endif %}
        group by copies.{{ key }}
        having count(*) > 1
    ) as grouped
    {%- if since is not none %}
    where not exists (
        select 1 from {{ this }} as kept
        where kept.event_table = '{{ table }}'
            and kept.event_key = grouped.event_key
    )
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#- Pre-hook of stg_inbox__duplicated_event_keys: empty it when it is built in full (every key
    is grouped again); nothing on a first build or a full refresh, or when only keys loaded since
    are added. -#}
{% macro delete_keys_if_built_in_full() -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- elif deal_rebuild_since() is none -%}
    delete from {{ this }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}



{#- "Newest version wins" on a big table of records most of which have a single version (the
    inbox's activities). Renders the CTEs `versioned_keys` (the keys with several rows) and
    `split_rows`: every row of `relation` (the raw table itself, a source()) with
    `has_versions`, whether its key has several rows. The model parses `split_rows`, keeps the
    rows without versions as they are and ranks only the others (newest_version_rank above):
    the same rows as ranking every row, for a window over a few keys' rows, and a filter on the
    load time (an incremental fact's watermark, D300) reaches the raw scan of the rows without
    versions, which a window over every row stops. The model reads `split_rows` (and what it
    renames from it) `not materialized`, so that its filters reach the scans. Raw has no row
    without its key (a required column, D4). -#}
{% macro split_versioned_rows(relation, key) -%}
versioned_keys as (
    select {{ key }}
    from {{ relation }}
    group by 1
    having count(*) > 1
),

split_rows as not materialized (
    select
        copies.*,
        false as has_versions
    from {{ relation }} as copies
    where not exists (
        select 1 from versioned_keys
        where versioned_keys.{{ key }} = copies.{{ key }}
    )
    union all
    select
        copies.*,
        true as has_versions
    from {{ relation }} as copies
    where copies.{{ key }} in (select versioned_keys.{{ key }} from versioned_keys)
)
{%- endmacro %}
