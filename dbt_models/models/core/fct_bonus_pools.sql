{#- One row per (month, manager_id): the manager's variable-pay budget for the month (RUB). -#}

with

bonus_pools as (
    select * from {{ ref('stg_inbox__bonus_pools') }}
),

final as (
    select
        month,
        manager_id,
        pool_amount,
        _source_file,
        _loaded_at
    from bonus_pools
)

select * from final
