{#- The frozen statements of closed months: the current close of each month only. -#}

with

source as (
    select * from {{ source('finance_ledger', 'closed_bonus_statements') }}
),

final as (
    select
        month,
        manager_id,
        manager_name,
        team,
        lines,
        bonus_amount,
        close_event_id,
        closed_at
    from source
    where superseded_at is null
)

select * from final
