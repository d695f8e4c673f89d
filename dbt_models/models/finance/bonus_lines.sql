{#- One row per (month, manager_id, kpi_code) bonus line (kpi-definitions "Plan completion and
    bonus"; the formula and the reasons: intermediate int_bonus_lines_computed). Open months show
    the lines as the current data gives them; closed months the lines frozen by
    `voronka close-period` (finance_ledger.closed_bonus_lines), whatever arrived since: a later
    difference appears in finance.bonus_adjustments instead. -#}

with

computed_lines as (
    select * from {{ ref('int_bonus_lines_computed') }}
),

closed_lines as (
    select * from {{ ref('stg_finance_ledger__closed_bonus_lines') }}
),

periods as (
    select * from {{ ref('int_finance_periods_classified') }}
),

closed_periods as (
    select * from periods
    where period_status = 'closed'
),

open_month_lines as (
    select
        computed_lines.month,
        computed_lines.manager_id,
        computed_lines.kpi_code,
        computed_lines.role,
        computed_lines.fact,
        computed_lines.base,
        computed_lines.norm,
        computed_lines.kpi_pct,
        computed_lines.band_lower_pct,
        computed_lines.band_upper_pct,
        computed_lines.premium_coefficient,
        computed_lines.weight,
        computed_lines.pool_amount,
        computed_lines.bonus_amount,
        computed_lines.reason,
        computed_lines.hold_reason,
        'open' as period_status
    from computed_lines
    left join closed_periods
        on computed_lines.month = closed_periods.month
    where closed_periods.month is null
),

closed_month_lines as (
    select
        closed_lines.month,
        closed_lines.manager_id,
        closed_lines.kpi_code,
        closed_lines.role,
        closed_lines.fact,
        closed_lines.base,
        closed_lines.norm,
        closed_lines.kpi_pct,
        closed_lines.band_lower_pct,
        closed_lines.band_upper_pct,
        closed_lines.premium_coefficient,
        closed_lines.weight,
        closed_lines.pool_amount,
        closed_lines.bonus_amount,
        closed_lines.reason,
        -- a month with held lines cannot be closed (D86)
        cast(null as {{ dbt.type_string() }}) as hold_reason,
        'closed' as period_status
    from closed_lines
    inner join closed_periods
        on closed_lines.month = closed_periods.month
        and closed_lines.close_event_id = closed_periods.close_event_id
),

unioned as (
    select * from open_month_lines
    union all
    select * from closed_month_lines
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        cast(fact as decimal(24, 6)) as fact,
        cast(base as decimal(18, 4)) as base,
        cast(norm as decimal(18, 4)) as norm,
        cast(kpi_pct as decimal(18, 6)) as kpi_pct,
        cast(band_lower_pct as decimal(18, 4)) as band_lower_pct,
        cast(band_upper_pct as decimal(18, 4)) as band_upper_pct,
        cast(premium_coefficient as decimal(18, 4)) as premium_coefficient,
        cast(weight as decimal(18, 4)) as weight,
        cast(pool_amount as decimal(18, 2)) as pool_amount,
        cast(bonus_amount as decimal(18, 2)) as bonus_amount,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(period_status as {{ dbt.type_string() }}) as period_status,
        cast(role as {{ dbt.type_string() }}) as role,
        cast(hold_reason as {{ dbt.type_string() }}) as hold_reason
    from unioned
)

select * from final
