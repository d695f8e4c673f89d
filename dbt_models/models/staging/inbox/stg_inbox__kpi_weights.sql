{#- Overrides of the default KPI weights (seed default_kpi_weights). One row per (valid_from,
    role, kpi_code): rows that agree are one (the newest
    loaded); rows that disagree are held back: values null, conflict_reason names every row's file
    and line (macros/conflicts.sql, D86). -#}

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
        {{ newest_version_rank(partition_by='valid_from, role, kpi_code', load_order=inbox_load_order()) }}
    from renamed
),

{{ conflicting_rows(['valid_from', 'role', 'kpi_code'], ['weight']) }},

final as (
    select
        ranked.valid_from,
        ranked.role,
        ranked.kpi_code,
        {{ unless_conflicting('weight') }} as weight,
        conflicts.conflict_reason,
        ranked._source_file,
        ranked._source_line,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join conflicts
        on ranked.valid_from = conflicts.valid_from
        and ranked.role = conflicts.role
        and ranked.kpi_code = conflicts.kpi_code
    where ranked.version_rank = 1
)

select * from final
