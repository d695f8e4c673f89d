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
    'stage_changes' (fct_deal_stage_changes), 'pipeline_stages' (dim_pipeline_stages),
    'client_merges' (the client a deal counts for, int_client_merges_resolved), 'responses' (the
    calls and activities of int_deal_first_responses_found, D350; reads its kept rows). -#}
{% macro deals_touched(since, inputs) -%}
    select deal_id from {{ ref('int_deals__unioned') }}
    where _loaded_at > {{ since }}
        -- every deal of the API sources, every run: a deletion or a restoration comes from
        -- other raw tables (events, the trash) and does not move the deal's _loaded_at (D384;
        -- the unions rebuild those rows every run for the same reason, D340)
        or source_system <> 'inbox'
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
    {%- if 'client_merges' in inputs %}
    union all
    select deals.deal_id
    from {{ ref('int_deals__unioned') }} as deals
    inner join ({{ clients_recounted(since) }}) as recounted
        on deals.client_id = recounted.client_id
    {%- endif %}
    {%- if 'responses' in inputs %}
    union all
    {{ deals_responses_touched(since) }}
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
{% macro deal_rebuild_since(reads_as_of=false, inputs=[]) -%}
    {%- if not builds_on_kept_rows() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if reads_as_of and not as_of_allows_per_deal() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if 'responses' in inputs and not kept_exists(phones_seen_relation()) -%}
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
    {%- set since = deal_rebuild_since(reads_as_of, inputs) -%}
    {%- if since is none -%}
    delete from {{ this }}
    {%- elif 'won_siblings' in inputs -%}
    delete from {{ this }}
    where deal_id in (
        {{ deals_and_won_siblings_touched(since, inputs) }}
    )
    {%- else -%}
    delete from {{ this }}
    where deal_id in (
        {{ deals_touched(since, inputs) }}
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- The clients whose counted client (int_client_merges_resolved) may have changed since `since`,
    as a query of `client_id`s: the clients loaded since and every client whose chain of merges
    runs through one of them (a chain changes only at a client loaded since, and the links
    before it are the same before and after; D300, D351). -#}
{% macro clients_recounted(since) -%}
    with recursive

    merged_clients as (
        select
            client_id,
            merged_into_client_id
        from {{ ref('int_clients__unioned') }}
        where merged_into_client_id is not null
    ),

    recounted_clients as (
        select client_id from {{ ref('int_clients__unioned') }}
        where _loaded_at > {{ since }}
        union
        select merged_clients.client_id
        from merged_clients
        inner join recounted_clients
            on merged_clients.merged_into_client_id = recounted_clients.client_id
    )

    select client_id from recounted_clients
{%- endmacro %}


{#- fct_deals (D351): the deals touched since `since`, and the won deals numbered with one of them
    (client_won_deal_number, per counted client): the won deals kept in the model whose client is
    a touched deal's client before (its kept row) or now. Read before the pre-hook deletes. -#}
{% macro deals_and_won_siblings_touched(since, inputs) -%}
    with

    touched as (
        {{ deals_touched(since, inputs) }}
    ),

    affected_clients as (
        select kept.client_id
        from {{ this }} as kept
        inner join touched
            on kept.deal_id = touched.deal_id
        union
        select {{ counted_client_id('unioned.client_id', 'client_merges') }} as client_id
        from {{ ref('int_deals__unioned') }} as unioned
        inner join touched
            on unioned.deal_id = touched.deal_id
        left join {{ ref('int_client_merges_resolved') }} as client_merges
            on unioned.client_id = client_merges.client_id
    )

    select deal_id from touched
    union all
    select won.deal_id
    from {{ this }} as won
    inner join affected_clients
        on won.client_id = affected_clients.client_id
    where won.is_won
    union all
    -- the won deals that count for no client are numbered together
    select won.deal_id
    from {{ this }} as won
    where won.is_won
        and won.client_id is null
        and exists (select 1 from affected_clients where affected_clients.client_id is null)
{%- endmacro %}


{#- int_deal_first_responses_found (D350): the deals whose first response may have changed since
    `since` besides their own version and client: the deals of a client with a call loaded since
    or with a phone matched otherwise than at the last build (its calls moved to or from it),
    the deals of the activities loaded since, and the deals whose first call or first activity
    (kept in the model's rows) was loaded again since: changed, moved or deleted. The calls
    loaded again are read from fct_calls (the live ones) and the union's deleted calls (D398), the
    activities from fct_activities and the union's deleted activities (D416). -#}
{% macro deals_responses_touched(since) -%}
    select deals.deal_id
    from {{ ref('fct_deals') }} as deals
    inner join (
        select distinct client_id from {{ ref('fct_calls') }}
        where _last_loaded_at > {{ since }}
    ) as called_clients
        on deals.client_id = called_clients.client_id
    union all
    select deals.deal_id
    from {{ ref('fct_deals') }} as deals
    inner join ({{ phones_rematched_clients() }}) as rematched_clients
        on deals.client_id = rematched_clients.client_id
    union all
    select deal_id from {{ ref('fct_activities') }}
    where _loaded_at > {{ since }}
        and deal_id is not null
    union all
    select kept.deal_id
    from {{ this }} as kept
    inner join (
        -- a live call loaded again since has its row in fct_calls, built before this model, with
        -- the staged _last_loaded_at; only the deleted ones are read from the union, whose
        -- deduplication of every call of history a filter on the load time does not cross
        -- (D398: a source that gives no deletion gives nothing to read)
        select call_id from {{ ref('fct_calls') }}
        where _last_loaded_at > {{ since }}
        union all
        select call_id from {{ ref('int_calls__unioned') }}
        where deleted_at is not null
            and _last_loaded_at > {{ since }}
    ) as reloaded_calls
        on kept.first_call_id = reloaded_calls.call_id
    union all
    select kept.deal_id
    from {{ this }} as kept
    inner join (
        -- likewise the activities (D416): a live one loaded again since has its row in
        -- fct_activities with the staged _loaded_at; only the deleted ones are read from the
        -- union, whose newest version of each activity a filter on the load time does not cross
        select activity_id from {{ ref('fct_activities') }}
        where _loaded_at > {{ since }}
        union all
        select activity_id from {{ ref('int_activities__unioned') }}
        where deleted_at is not null
            and _loaded_at > {{ since }}
    ) as reloaded_activities
        on kept.first_activity_id = reloaded_activities.activity_id
{%- endmacro %}


{#- The relation keeping the phones matched to clients (int_client_phones_matched) as they were
    at the model's last build: a phone's client changes with no load of a call (D200), and the
    client it had before is known only from there. -#}
{% macro phones_seen_relation() -%}
    {{ return(kept_relation('__phones_seen')) }}
{%- endmacro %}


{% macro kept_exists(relation) -%}
    {{ return(adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none) }}
{%- endmacro %}


{#- The clients of the phones matched otherwise now than at the last build (`phones_seen_relation`):
    the client before and the client now, as a query of `client_id`s. -#}
{% macro phones_rematched_clients() -%}
    select seen.client_id
    from {{ phones_seen_relation() }} as seen
    left join {{ ref('int_client_phones_matched') }} as matched
        on seen.phone = matched.phone
    where matched.client_id is null
        or matched.client_id <> seen.client_id
    union all
    select matched.client_id
    from {{ ref('int_client_phones_matched') }} as matched
    left join {{ phones_seen_relation() }} as seen
        on matched.phone = seen.phone
    where seen.client_id is null
        or seen.client_id <> matched.client_id
{%- endmacro %}


{#- Post-hook of int_deal_first_responses_found: keep the phones matched as they are at this build. -#}
{% macro keep_phones_seen() -%}
    {%- if not execute or this is none or '__dbt__cte__' in (this | string) -%}
        select 1
    {%- else -%}
    {%- set seen = phones_seen_relation() %}
    drop table if exists {{ seen }};
    create table {{ seen }} as
    select
        phone,
        client_id
    from {{ ref('int_client_phones_matched') }}
    {%- endif -%}
{%- endmacro %}
