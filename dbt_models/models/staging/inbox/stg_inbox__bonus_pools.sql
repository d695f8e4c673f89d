{#- One row per (month, manager_id): rows that agree are one (the newest
    loaded); rows that disagree are held back: values null, conflict_reason names every row's file
    and line (macros/conflicts.sql, D86). -#}

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
        {{ newest_version_rank(partition_by='month, manager_id', load_order=inbox_load_order()) }}
    from renamed
),

{{ conflicting_rows(['month', 'manager_id'], ['pool_amount']) }},

final as (
    select
        ranked.month,
        ranked.manager_id,
        {{ unless_conflicting('pool_amount') }} as pool_amount,
        conflicts.conflict_reason,
        ranked._source_file,
        ranked._source_line,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join conflicts
        on ranked.month = conflicts.month
        and ranked.manager_id = conflicts.manager_id
    where ranked.version_rank = 1
)

select * from final
