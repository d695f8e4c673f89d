{#- One row per (month, manager_id): the newest loaded row wins. -#}

with

source as (
    select * from {{ source('inbox', 'bonus_pools') }}
),

renamed as (
    select
        ---------- keys
        {{ parse_period('period') }} as month,
        manager_id,
        ---------- money
        {{ parse_decimal('pool_amount') }} as pool_amount,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by month, manager_id
            order by _loaded_at desc, _source_file desc, _source_line desc
        ) as load_rank
    from renamed
),

final as (
    select
        month,
        manager_id,
        pool_amount,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where load_rank = 1
)

select * from final
