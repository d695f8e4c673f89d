{#- One row per deal won by the as-of time: its touches to close (kpi-definitions,
    touches_to_close): answered calls (both directions) with a phone of the deal's client
    (fct_calls.client_id) plus completed activities of type meeting, email, demo, proposal or
    call on the deal, between created_at and closed_at inclusive. -#}

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

won_deals as (
    select
        deal_id,
        client_id,
        created_at,
        closed_at
    from deals
    where is_won
        and closed_at <= {{ as_of() }}
),

answered_calls as (
    select
        client_id,
        started_at
    from calls
    where is_answered
        and client_id is not null
),

touching_activities as (
    select
        deal_id,
        completed_at
    from activities
    where deal_id is not null
        and completed_at is not null
        and activity_type in ('meeting', 'email', 'demo', 'proposal', 'call')
),

call_touches as (
    select
        won_deals.deal_id,
        count(*) as call_touches
    from won_deals
    inner join answered_calls
        on won_deals.client_id = answered_calls.client_id
        and answered_calls.started_at >= won_deals.created_at
        and answered_calls.started_at <= won_deals.closed_at
    group by 1
),

activity_touches as (
    select
        won_deals.deal_id,
        count(*) as activity_touches
    from won_deals
    inner join touching_activities
        on won_deals.deal_id = touching_activities.deal_id
        and touching_activities.completed_at >= won_deals.created_at
        and touching_activities.completed_at <= won_deals.closed_at
    group by 1
),

final as (
    select
        won_deals.deal_id,
        coalesce(call_touches.call_touches, 0) as call_touches,
        coalesce(activity_touches.activity_touches, 0) as activity_touches,
        (
            coalesce(call_touches.call_touches, 0)
            + coalesce(activity_touches.activity_touches, 0)
        ) as touches
    from won_deals
    left join call_touches
        on won_deals.deal_id = call_touches.deal_id
    left join activity_touches
        on won_deals.deal_id = activity_touches.deal_id
)

select * from final
