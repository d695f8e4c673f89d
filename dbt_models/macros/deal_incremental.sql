{#- Deal-keyed tables rebuilt per touched deal (docs/decisions.md D310-D312).

    A table with one or more rows per deal (int_deal_stages_entered, int_deal_manager_periods)
    is incremental with the `append` strategy: a pre-hook deletes the rows of the deals touched
    since its last build and the model computes the rows of those deals only, from the same
    inputs and by the same SQL as a full build; the rows of every other deal are kept. Or, when
    per deal is not sound, the pre-hook deletes every row and the model computes them all.

    Touched since the last build: a deal with an input row loaded after it (D201's inputs seen,
    kept by `keep_inputs_seen`): a new version of the deal (its deletion too, D85: its rows go
    and none come back), a stage change loaded since, a stage of its pipeline loaded since. The
    touched deals are found by joins on those rows only, never by reading history.

    In full instead (`deal_rebuild_since` gives none): a first build or full refresh, no inputs
    seen kept, raw rows removed since (D205), and for a model that reads the as-of time, an as-of
    the kept rows may depend on otherwise: it moved backwards, or forwards while the last build
    read events after its as-of (var as_of set before the latest event). -#}


{#- The deals touched since `since` (a SQL timestamp), as a query of `deal_id`s, possibly
    repeated. `inputs` names what the model reads besides the deals (int_deals__unioned, always):
    'stage_changes' (fct_deal_stage_changes), 'pipeline_stages' (dim_pipeline_stages). -#}
{% macro deals_touched(since, inputs) -%}
    select deal_id from {{ ref('int_deals__unioned') }}
    where _loaded_at > {{ since }}
    {%- if 'stage_changes' in inputs %}
    union all
    select deal_id from {{ ref('fct_deal_stage_changes') }}
    where _last_loaded_at > {{ since }}
    {%- endif %}
    {%- if 'pipeline_stages' in inputs %}
    union all
    select deals.deal_id
    from {{ ref('int_deals__unioned') }} as deals
    inner join (
        select distinct pipeline from {{ ref('dim_pipeline_stages') }}
        where _loaded_at > {{ since }}
    ) as changed_pipelines
        on deals.pipeline = changed_pipelines.pipeline
    {%- endif %}
{%- endmacro %}


{#- The relation keeping the as-of time a model was built with -#}
{% macro as_of_seen_relation() -%}
    {{ return(kept_relation('__as_of_seen')) }}
{%- endmacro %}


{#- Post-hook of a per-deal model that reads the as-of time: keep the as-of it was built with and
    `events_until`, the latest of the event times it compares with the as-of (`events`: pairs of
    a relation and a column), as they were at this build. -#}
{% macro keep_as_of_seen(events) -%}
    {%- if not execute or this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set seen = as_of_seen_relation() %}
    drop table if exists {{ seen }};
    create table {{ seen }} as
    select
        as_of.as_of_at,
        (
            select max(event_at) from (
                {%- for relation, column in events %}
                select max({{ column }}) as event_at from {{ relation }}
                {%- if not loop.last %} union all{% endif %}
                {%- endfor %}
            ) as events
        ) as events_until
    from {{ ref('int_as_of') }} as as_of
    {%- endif -%}
{%- endmacro %}


{#- Whether the rows kept from the last build still hold under this run's as-of: the same as-of,
    or a later one while no event the last build read came after its own as-of (an untouched
    deal's rows compare only those events with the as-of). -#}
{% macro as_of_allows_per_deal() -%}
    {%- set seen = as_of_seen_relation() -%}
    {%- if adapter.get_relation(seen.database, seen.schema, seen.identifier) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*)
        from {{ seen }} as seen
        cross join {{ ref('int_as_of') }} as as_of
        where seen.as_of_at = as_of.as_of_at
            or (
                as_of.as_of_at > seen.as_of_at
                and (seen.events_until is null or seen.events_until <= seen.as_of_at)
            )
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int == 1) }}
{%- endmacro %}


{#- The time after which an input row touches a deal (a SQL timestamp), or none when the model
    must be built in full: not incremental (a first build, a full refresh, parsing, a dbt unit
    test), raw rows removed since (D205), no inputs seen kept (D201), or (`reads_as_of`) an
    as-of the kept rows may depend on. -#}
{% macro deal_rebuild_since(reads_as_of=false) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if removed_since_build() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if reads_as_of and not as_of_allows_per_deal() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(inputs_watermark(none)) }}
{%- endmacro %}


{#- Pre-hook of a per-deal model: delete the rows of the deals touched since its last build, or
    every row when it is built in full; nothing on a first build or a full refresh. -#}
{% macro delete_touched_deal_rows(inputs, reads_as_of=false) -%}
    {%- if not execute or this is none or not is_incremental() or '__dbt__cte__' in (this | string) -%}
    select 1
    {%- else -%}
    {%- set since = deal_rebuild_since(reads_as_of) -%}
    {%- if since is none -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }}
    where deal_id in (
        {{ deals_touched(since, inputs) }}
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}
