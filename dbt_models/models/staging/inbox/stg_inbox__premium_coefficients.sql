{#- Overrides of the default premium-coefficient bands (seed default_premium_coefficients).
    One row per (valid_from, lower_pct): rows that agree are one (the newest
    loaded); rows that disagree are held back: values null, conflict_reason names every row's file
    and line (macros/conflicts.sql, D86). -#}

with

source as (
    select * from {{ source('inbox', 'premium_coefficients') }}
),

renamed as (
    select
        ---------- keys
        -- an empty valid_from means "always": the seed's sentinel month, 2000-01
        coalesce({{ parse_period('valid_from') }}, cast('2000-01-01' as date)) as valid_from,
        {{ parse_decimal('lower_pct', 18, 4) }} as lower_pct,
        ---------- band
        {{ parse_decimal('upper_pct', 18, 4) }} as upper_pct,
        {{ parse_decimal('coefficient', 18, 4) }} as coefficient,
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
        {{ newest_version_rank(partition_by='valid_from, lower_pct', load_order=inbox_load_order()) }}
    from renamed
),

{{ conflicting_rows(['valid_from', 'lower_pct'], ['upper_pct', 'coefficient']) }},

final as (
    select
        ranked.valid_from,
        ranked.lower_pct,
        {{ unless_conflicting('upper_pct') }} as upper_pct,
        {{ unless_conflicting('coefficient') }} as coefficient,
        conflicts.conflict_reason,
        ranked._source_file,
        ranked._source_line,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join conflicts
        on ranked.valid_from = conflicts.valid_from
        and ranked.lower_pct = conflicts.lower_pct
    where ranked.version_rank = 1
)

select * from final
