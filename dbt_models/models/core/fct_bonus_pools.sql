{#- One row per (month, manager_id): the manager's variable-pay budget for the month (RUB). A
    month whose pool rows disagree is held back: pool_amount null, hold_reason names the rows
    (D86). -#}

with

bonus_pools as (
    select * from {{ ref('stg_inbox__bonus_pools') }}
),

final as (
    select
        month,
        manager_id,
        pool_amount,
        -- conflicting pool rows: pool_amount null, the rows named (D86)
        conflict_reason as hold_reason,
        _source_file,
        _loaded_at
    from bonus_pools
)

select * from final
