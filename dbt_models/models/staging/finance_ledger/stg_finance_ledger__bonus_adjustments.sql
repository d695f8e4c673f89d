{#- The adjustments in force: every recorded one except those voided by a reopen. -#}

with

source as (
    select * from {{ source('finance_ledger', 'bonus_adjustments') }}
),

final as (
    select
        month_affected,
        manager_id,
        kpi_code,
        detected_at,
        paid_amount,
        recomputed_amount,
        delta,
        payable_month
    from source
    where voided_at is null
)

select * from final
