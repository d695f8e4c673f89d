{#- One row per month finance has ever closed: its status now (the action of its latest
    period_log event: close -> closed, reopen -> open) and, while closed, when and by whom. -#}

with

period_events as (
    select * from {{ ref('stg_finance_ledger__period_events') }}
),

ranked as (
    select
        *,
        row_number() over (partition by month order by event_id desc) as recency_rank
    from period_events
),

final as (
    select
        month,
        case when action = 'close' then 'closed' else 'open' end as period_status,
        case when action = 'close' then event_id end as close_event_id,
        case when action = 'close' then acted_at end as closed_at,
        case when action = 'close' then acted_by end as closed_by
    from ranked
    where recency_rank = 1
)

select * from final
