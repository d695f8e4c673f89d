{#- Overrides of the default KPI weights (seed default_kpi_weights). One row per (valid_from,
    role, kpi_code): the newest loaded row wins. -#}

with

source as (
    select * from {{ source('inbox', 'kpi_weights') }}
),

renamed as (
    select
        ---------- keys
        {{ parse_period('valid_from') }} as valid_from,
        {{ parse_enum('role') }} as role,
        lower(kpi_code) as kpi_code,
        ---------- weight (a fraction of the bonus pool, four decimals)
        {{ parse_decimal('weight', 18, 4) }} as weight,
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
            partition by valid_from, role, kpi_code
            order by _loaded_at desc, _source_file desc, _source_line desc
        ) as load_rank
    from renamed
),

final as (
    select
        valid_from,
        role,
        kpi_code,
        weight,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where load_rank = 1
)

select * from final
