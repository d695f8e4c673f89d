{#- One row per (month, manager_id, kpi_code): the newest loaded row wins. `period` (YYYY-MM)
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
        row_number() over (
            partition by month, manager_id, kpi_code
            order by _loaded_at desc, _source_file desc, _source_line desc
        ) as load_rank
    from renamed
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        base,
        norm,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where load_rank = 1
)

select * from final
