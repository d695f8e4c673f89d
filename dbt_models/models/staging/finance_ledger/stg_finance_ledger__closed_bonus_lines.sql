{#- The frozen bonus lines of closed months: the current close of each month only (rows of a
    close undone by a reopen carry superseded_at and are left out). -#}

with

source as (
    select * from {{ source('finance_ledger', 'closed_bonus_lines') }}
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        role,
        fact,
        base,
        norm,
        kpi_pct,
        band_lower_pct,
        band_upper_pct,
        premium_coefficient,
        weight,
        pool_amount,
        bonus_amount,
        reason,
        close_event_id,
        closed_at
    from source
    where superseded_at is null
)

select * from final
