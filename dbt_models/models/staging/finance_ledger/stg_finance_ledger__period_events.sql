{#- One row per close or reopen of a month (finance_ledger.period_log), in event order. -#}

with

source as (
    select * from {{ source('finance_ledger', 'period_log') }}
),

final as (
    select
        event_id,
        month,
        action,
        acted_by,
        acted_at,
        reason
    from source
)

select * from final
