{#- One row per (month, manager_id, kpi_code): rows that agree are one (the newest
    loaded); rows that disagree are held back: values null, conflict_reason names every row's file
    and line (macros/conflicts.sql, D86). `period` (YYYY-MM)
    becomes `month`, the date of the month's first day. -#}

with

source as (
    select * from {{ source('inbox', 'sales_plans') }}
),

renamed as (
    select
        ---------- keys
        {{ parse_period('period') }} as month,
        manager_id,
        lower(kpi_code) as kpi_code,
        ---------- plan values (any KPI, not only money: four decimals)
        {{ parse_decimal('base', 18, 4) }} as base,
        {{ parse_decimal('norm', 18, 4) }} as norm,
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
        {{ newest_version_rank(partition_by='month, manager_id, kpi_code', load_order=inbox_load_order()) }}
    from renamed
),

{{ conflicting_rows(['month', 'manager_id', 'kpi_code'], ['base', 'norm']) }},

final as (
    select
        ranked.month,
        ranked.manager_id,
        ranked.kpi_code,
        {{ unless_conflicting('base') }} as base,
        {{ unless_conflicting('norm') }} as norm,
        conflicts.conflict_reason,
        ranked._source_file,
        ranked._source_line,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join conflicts
        on ranked.month = conflicts.month
        and ranked.manager_id = conflicts.manager_id
        and ranked.kpi_code = conflicts.kpi_code
    where ranked.version_rank = 1
)

select * from final
