{#- One row per deal created by the as-of time: its first response (kpi-definitions,
    speed_to_lead_minutes): the earliest of an outbound call (any status) to a phone of the
    deal's client (fct_calls.client_id, matched by normalised phone) and a completed activity on
    the deal, at or after created_at and at most var response_window_days after it, by the as-of
    time. No response in the window: first_response_at null. Calls are joined on the client and
    ranked per deal (no per-deal subquery). first_call_id and first_activity_id name the earliest
    call and the earliest activity of the window (the smallest id at the same time), whichever is
    the response.
    Incremental per deal (macros/deal_incremental.sql, D350): the pre-hook deletes the rows of the
    deals touched since the last build (a new version; a client whose chain of merges runs
    through a client loaded since; a call loaded since for its client, a phone matched to
    another client than at the last build, kept in `__phones_seen`; an activity loaded since on
    it; its first call or first activity loaded again) and the model computes every deal created
    by the as-of time that has no row left. In full after a removal (D205), or when the as-of
    moved in a way the kept rows may depend on (D310). -#}

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_deal_rows(['client_merges', 'responses'], reads_as_of=true) }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('fct_deals'), ref('fct_calls'), ref('fct_activities')]) }}",
            "{{ keep_as_of_seen([(ref('fct_deals'), 'created_at'), (ref('fct_calls'), 'started_at'), (ref('fct_activities'), 'completed_at')]) }}",
            "{{ keep_phones_seen() }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

-- depends_on: {{ ref('int_deals__unioned') }}
-- depends_on: {{ ref('int_clients__unioned') }}
-- depends_on: {{ ref('int_calls__unioned') }}
-- depends_on: {{ ref('int_activities__unioned') }}
-- depends_on: {{ ref('int_client_phones_matched') }}

{%- set since = deal_rebuild_since(reads_as_of=true, inputs=['client_merges', 'responses']) %}

with

{% if since is none %}
deals as (
    select * from {{ ref('fct_deals') }}
),
{% else %}
-- the deals with no row kept: the pre-hook deleted the touched ones (D350)
deals as (
    select fct_deals.* from {{ ref('fct_deals') }} as fct_deals
    where not exists (
        select 1 from {{ this }} as kept
        where kept.deal_id = fct_deals.deal_id
    )
),
{% endif %}

calls as (
    select * from {{ ref('fct_calls') }}
),

activities as (
    select * from {{ ref('fct_activities') }}
),

created_deals as (
    select
        deal_id,
        client_id,
        created_at,
        {{ dbt.dateadd('day', var('response_window_days'), 'created_at') }} as window_end_at
    from deals
    where created_at <= {{ as_of() }}
),

outbound_calls as (
    select
        call_id,
        client_id,
        started_at
    from calls
    where direction = 'outbound'
        and client_id is not null
        and started_at <= {{ as_of() }}
),

completed_activities as (
    select
        activity_id,
        deal_id,
        completed_at
    from activities
    where deal_id is not null
        and completed_at is not null
        and completed_at <= {{ as_of() }}
),

call_responses_ranked as (
    select
        created_deals.deal_id,
        outbound_calls.call_id as first_call_id,
        outbound_calls.started_at as first_call_at,
        row_number() over (
            partition by created_deals.deal_id
            order by outbound_calls.started_at, outbound_calls.call_id
        ) as call_rank
    from created_deals
    inner join outbound_calls
        on created_deals.client_id = outbound_calls.client_id
        and outbound_calls.started_at >= created_deals.created_at
        and outbound_calls.started_at <= created_deals.window_end_at
),

call_responses as (
    select * from call_responses_ranked
    where call_rank = 1
),

activity_responses_ranked as (
    select
        created_deals.deal_id,
        completed_activities.activity_id as first_activity_id,
        completed_activities.completed_at as first_activity_at,
        row_number() over (
            partition by created_deals.deal_id
            order by completed_activities.completed_at, completed_activities.activity_id
        ) as activity_rank
    from created_deals
    inner join completed_activities
        on created_deals.deal_id = completed_activities.deal_id
        and completed_activities.completed_at >= created_deals.created_at
        and completed_activities.completed_at <= created_deals.window_end_at
),

activity_responses as (
    select * from activity_responses_ranked
    where activity_rank = 1
),

first_responses as (
    select
        created_deals.deal_id,
        created_deals.created_at,
        case
            when activity_responses.first_activity_at is null then call_responses.first_call_at
            when call_responses.first_call_at is null then activity_responses.first_activity_at
            when call_responses.first_call_at <= activity_responses.first_activity_at
                then call_responses.first_call_at
            else activity_responses.first_activity_at
        end as first_response_at,
        call_responses.first_call_id,
        activity_responses.first_activity_id
    from created_deals
    left join call_responses
        on created_deals.deal_id = call_responses.deal_id
    left join activity_responses
        on created_deals.deal_id = activity_responses.deal_id
),

final as (
    select
        deal_id,
        first_response_at,
        {{ seconds_between('created_at', 'first_response_at') }} / 60.0 as response_minutes,
        -- the earliest call and activity of the window: a deal's first response may change
        -- when one of them does (D350)
        first_call_id,
        first_activity_id
    from first_responses
)

select * from final
