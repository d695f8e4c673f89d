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


{#- The keys of `relation` (an inbox raw table, a source()) whose rows a reader ranks, as a query
    of `event_key`s: the keys of `event_table` that `duplicated` (stg_inbox__duplicated_event_keys,
    keys_loaded_more_than_once below) found with more than one raw row at its last build, and
    every key with a raw row loaded after that build (after its `loaded_until`, or every key when
    it has none), which the model has not grouped yet (D402, D416). Never misses a key with
    several rows; may hold keys with one (ranked alone, such a key keeps its row). -#}
{% macro keys_to_rank(relation, key, duplicated, event_table) -%}
    select kept.event_key
    from {{ duplicated }} as kept
    where kept.event_table = '{{ event_table }}'
        and kept.event_key is not null
    union
    select loaded.{{ key }} as event_key
    from {{ relation }} as loaded
    where loaded._loaded_at > coalesce(
        (
            select max(seen.loaded_until) from {{ duplicated }} as seen
            where seen.event_table = '{{ event_table }}'
        ),
        cast('1900-01-01 00:00:00' as {{ dbt.type_timestamp() }})
    )
{%- endmacro %}


{#- "First loaded copy wins": deduplication of an event table (staging of calls, stage changes,
    survey responses). Renders the CTEs `duplicated_keys`, `single_copies`, `ranked_copies` and
    `first_loaded` (one row per key: `columns`, the load metadata and `_last_loaded_at`, the
    latest load that brought the key, which the incremental facts use).

    `relation` is the raw table itself (a source()), not a CTE: the CTEs read it, and a CTE read
    more than once is materialised by DuckDB, which on 36 M calls cost a third of fct_calls.
    Keys loaded more than once are rare, so only their rows are ranked: a window over every
    row of a big event table costs far more. Which keys may be those is not found by grouping
    every raw row on each read (D402): a filter on the load time (an incremental fact's
    watermark) would not cross that grouping to the raw scan of the single copies. They are
    `duplicated_keys`: the keys of `event_table` that `duplicated` (stg_inbox__duplicated_event_keys,
    keys_loaded_more_than_once below) found loaded more than once at its last build, and every key
    with a raw row loaded after that build (after its `loaded_until`, or every key when it has
    none), which the model has not grouped yet: a build of a selection without the model (a
    `dbt run --select`, a Dagster subset) reads a key loaded a second time since as ranked, not
    as two single copies. The set may hold keys loaded once (a key ranked alone keeps its one
    row), never miss a key loaded more than once (its copies would all be kept). -#}
{% macro first_loaded_copies(relation, key, columns, duplicated, event_table) -%}
{%- set metadata = ['_source_file', '_source_line', '_loaded_at', '_batch_id'] -%}
duplicated_keys as (
    {{ keys_to_rank(relation, key, duplicated, event_table) }}
),

single_copies as (
    select
        {%- for column in columns + metadata %}
        copies.{{ column }},
        {%- endfor %}
        copies._loaded_at as _last_loaded_at
    from {{ relation }} as copies
    where not exists (
        select 1 from duplicated_keys
        where duplicated_keys.event_key = copies.{{ key }}
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
    inner join duplicated_keys
        on copies.{{ key }} = duplicated_keys.event_key
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


{#- The inbox raw tables whose keys with more than one row stg_inbox__duplicated_event_keys keeps:
    the event tables deduplicated by `first_loaded_copies` (D402) and the activities, whose
    versions `split_versioned_rows` ranks (D416). Each as (the raw table, a source(); its name, the
    model's `event_table`; its key). -#}
{% macro duplicated_event_tables() -%}
    {{ return([
        (source('inbox', 'calls'), 'calls', 'call_id'),
        (source('inbox', 'deal_stage_changes'), 'deal_stage_changes', 'change_id'),
        (source('inbox', 'survey_responses'), 'survey_responses', 'response_id'),
        (source('inbox', 'activities'), 'activities', 'activity_id'),
    ]) }}
{%- endmacro %}


{#- The rows of stg_inbox__duplicated_event_keys (D402), an incremental model with the `append`
    strategy, which `first_loaded_copies` reads. `tables`: (the raw table, a source(); its name;
    its key). Per table, its keys loaded more than once, each once (`event_key`), and one row
    without a key whose `loaded_until` is the newest load of the raw table this build read (null
    when it is empty): the watermark after which a reader takes every key loaded since as
    possibly loaded more than once. `since`: none to build in full (a grouping of every raw row;
    `duplicated_keys_since`), or per table the `loaded_until` of the last build, after which
    only the keys with a raw row loaded are grouped, and those not kept yet are added. A key
    becomes loaded more than once only with a raw row of it loaded, so none is missed; one kept
    whose copies were removed since stays until the full rebuild a logged removal brings. The
    keys loaded since are the small side of a semi-join with raw, no grouping of every key; the
    kept keys are left out after the grouping, where they do not stop DuckDB from skipping the
    row groups of raw outside the keys loaded since. -#}
{% macro keys_loaded_more_than_once(tables, since) -%}
    {%- for relation, table, key in tables %}
    select
        cast('{{ table }}' as {{ dbt.type_string() }}) as event_table,
        grouped.event_key,
        cast(null as {{ dbt.type_timestamp() }}) as loaded_until
    from (
        select copies.{{ key }} as event_key
        from {{ relation }} as copies
        {%- if since is not none %}
        where copies.{{ key }} in (
            {{ inbox_keys_loaded_since(relation, key, since[table]) }}
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
    union all
    select
        cast('{{ table }}' as {{ dbt.type_string() }}) as event_table,
        cast(null as {{ dbt.type_string() }}) as event_key,
        cast(max(loads._loaded_at) as {{ dbt.type_timestamp() }}) as loaded_until
    from {{ relation }} as loads
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#- Per table of `tables` (as in keys_loaded_more_than_once), the `loaded_until` the last build
    of stg_inbox__duplicated_event_keys kept, as a SQL timestamp (a very old time when its raw
    table was empty); or none when the model is built in full: not incremental (a first build, a
    full refresh, other code or settings: D320, parsing, a dbt unit test), raw rows removed since
    (D205), or a table without its row. -#}
{% macro duplicated_keys_since(tables) -%}
    {%- if not builds_on_kept_rows() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select event_table, cast(max(loaded_until) as {{ dbt.type_string() }})
        from {{ this }}
        where event_key is null
        group by event_table
    {%- endset -%}
    {%- set kept = {} -%}
    {%- for row in run_query(query).rows -%}
        {%- do kept.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- set since = {} -%}
    {%- for relation, table, key in tables -%}
        {%- if table not in kept -%}
            {{ return(none) }}
        {%- endif -%}
        {%- do since.update({table: "cast('" ~ (kept[table] or '1900-01-01 00:00:00') ~ "' as " ~ dbt.type_timestamp() ~ ")"}) -%}
    {%- endfor -%}
    {{ return(since) }}
{%- endmacro %}


{#- Pre-hook of stg_inbox__duplicated_event_keys: empty it when it is built in full (every key
    is grouped again), and otherwise delete its rows of `loaded_until` (this build adds them
    again); nothing on a first build or a full refresh. Before the model's query, in the same
    transaction. -#}
{% macro delete_keys_if_built_in_full(tables) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- elif duplicated_keys_since(tables) is none -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }} where event_key is null
    {%- endif -%}
{%- endmacro %}



{#- "Newest version wins" on a big table of records most of which have a single version (the
    inbox's activities). Renders the CTEs `versioned_keys` (the keys that may have several rows)
    and `split_rows`: every row of `relation` (the raw table itself, a source()) with
    `has_versions`, whether its key is among those. The model parses `split_rows`, keeps the rows
    without versions as they are and ranks only the others (newest_version_rank above): the same
    rows as ranking every row, for a window over a few keys' rows, and a filter on the load time
    (an incremental fact's watermark, D300) reaches the raw scan of the rows without versions,
    which a window over every row stops. The keys with several rows are not found by grouping
    every raw row on each read (D416): they are `keys_to_rank`, those `duplicated`
    (stg_inbox__duplicated_event_keys) holds for `event_table` and those loaded since its last
    build, as for the event tables (D402); a key ranked with its one row keeps it. The model
    reads `split_rows` (and what it renames from it) `not materialized`, so that its filters
    reach the scans. Raw has no row without its key (a required column, D4). -#}
{% macro split_versioned_rows(relation, key, duplicated, event_table) -%}
versioned_keys as (
    {{ keys_to_rank(relation, key, duplicated, event_table) }}
),

split_rows as not materialized (
    select
        copies.*,
        false as has_versions
    from {{ relation }} as copies
    where not exists (
        select 1 from versioned_keys
        where versioned_keys.event_key = copies.{{ key }}
    )
    union all
    select
        copies.*,
        true as has_versions
    from {{ relation }} as copies
    where copies.{{ key }} in (select versioned_keys.event_key from versioned_keys)
)
{%- endmacro %}
