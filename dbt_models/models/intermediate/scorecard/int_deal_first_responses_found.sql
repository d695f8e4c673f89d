{#- One row per deal created by the as-of time: its first response (kpi-definitions,
    speed_to_lead_minutes): the earliest of an outbound call (any status) to a phone of the
    deal's client (fct_calls.client_id, matched by normalised phone) and a completed activity on
    the deal, at or after created_at and at most var response_window_days after it, by the as-of
    time. No response in the window: first_response_at null. Calls are joined on the client and
    aggregated with min() (no per-deal subquery). -#}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

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
        client_id,
        started_at
    from calls
    where direction = 'outbound'
        and client_id is not null
        and started_at <= {{ as_of() }}
),

completed_activities as (
    select
        deal_id,
        completed_at
    from activities
    where deal_id is not null
        and completed_at is not null
        and completed_at <= {{ as_of() }}
),

call_responses as (
    select
        created_deals.deal_id,
        min(outbound_calls.started_at) as first_call_at
    from created_deals
    inner join outbound_calls
        on created_deals.client_id = outbound_calls.client_id
        and outbound_calls.started_at >= created_deals.created_at
        and outbound_calls.started_at <= created_deals.window_end_at
    group by 1
),

activity_responses as (
    select
        created_deals.deal_id,
        min(completed_activities.completed_at) as first_activity_at
    from created_deals
    inner join completed_activities
        on created_deals.deal_id = completed_activities.deal_id
        and completed_activities.completed_at >= created_deals.created_at
        and completed_activities.completed_at <= created_deals.window_end_at
    group by 1
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
        end as first_response_at
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
        {{ seconds_between('created_at', 'first_response_at') }} / 60.0 as response_minutes
    from first_responses
)

select * from final
