{#- One row per premium-coefficient band (valid_from, lower_pct): a KPI attainment kpi_pct with
    lower_pct <= kpi_pct < upper_pct (upper_pct null: no upper bound) gives the coefficient, for
    the months valid_from <= m < valid_to. From the seed default_premium_coefficients, replaced
    as a whole by inbox files premium_coefficients/*.csv when there are any (decision: bands only
    make sense as a set). The default's lowest band starts at the sentinel -1000000000 (no lower
    bound; kpi_pct is not clamped). A band whose inbox rows disagree is held back: upper_pct and
    coefficient null, hold_reason names the rows, and every line of its months is held (D86). -#}

with

default_bands as (
    select * from {{ ref('default_premium_coefficients') }}
),

inbox_bands as (
    select * from {{ ref('stg_inbox__premium_coefficients') }}
),

inbox_band_count as (
    select count(*) as bands from inbox_bands
),

unioned as (
    select
        valid_from,
        lower_pct,
        upper_pct,
        coefficient,
        'inbox' as band_source,
        conflict_reason as hold_reason
    from inbox_bands
    union all
    select
        cast(default_bands.valid_from as date) as valid_from,
        cast(default_bands.lower_pct as decimal(18, 4)) as lower_pct,
        cast(default_bands.upper_pct as decimal(18, 4)) as upper_pct,
        cast(default_bands.coefficient as decimal(18, 4)) as coefficient,
        'default' as band_source,
        cast(null as {{ dbt.type_string() }}) as hold_reason
    from default_bands
    cross join inbox_band_count
    where inbox_band_count.bands = 0
),

band_sets as (
    select
        valid_from,
        lead(valid_from) over (order by valid_from) as valid_to
    from (select distinct valid_from from unioned) as set_starts
),

final as (
    select
        unioned.valid_from,
        band_sets.valid_to,
        unioned.lower_pct,
        unioned.upper_pct,
        unioned.coefficient,
        -- default (seed) or inbox
        unioned.band_source,
        -- conflicting inbox rows: upper_pct and coefficient null, the rows named (D86)
        unioned.hold_reason
    from unioned
    inner join band_sets
        on unioned.valid_from = band_sets.valid_from
)

select * from final
