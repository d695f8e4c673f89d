{#- The bonus lines as the current data gives them, for every month, closed or not
    (kpi-definitions "Plan completion and bonus"). finance.bonus_lines shows them for open
    months; for closed months the pipeline's adjustment step compares them with the frozen lines
    (dagster_project/lib/finance_ledger.py).

    Lines: one per (month, manager_id, kpi_code) of a plan row (kpi_plan_completion) and one per
    KPI weighted > 0 for the manager's role that month without a plan row, for the manager-months
    that have a plan row or a bonus pool. The role (and so the weights) is the dim_managers
    version valid at the month's end, as in kpi_manager_monthly (one rule,
    macros/managers.sql; so are manager_name and team, which the statements show).

    weight: dim_kpi_weights row of the role and kpi_code valid in the month (latest valid_from
    <= month); band: the dim_premium_bands band valid in the month with lower_pct <= kpi_pct <
    upper_pct; bonus_amount = pool_amount x weight x premium_coefficient in decimals, rounded
    half-up (away from zero) to kopecks. Zero for a non-performance cause, with a reason, in
    precedence: missing_plan (a weight, no plan row), missing_weight (a plan row, no weight:
    reported, not paid), missing_pool (no bonus pool row), the plan's own reason
    (unknown_kpi_code, no_scorecard_row, no_fact, norm_equals_base: kpi_pct null), no_band
    (kpi_pct in no band of the month). A coefficient of 0 from a band (below 70 %) is
    performance: no reason.

    Held lines (D86): when a row the line is paid from has conflicting inbox rows (its plan, its
    pool, its weight, or any premium band of its month), bonus_amount is null, reason is
    conflicting_rows and hold_reason names the rows, instead of paying from one of them. -#}

with

plan_completion as (
    select * from {{ ref('kpi_plan_completion') }}
),

sales_plans as (
    select * from {{ ref('fct_sales_plans') }}
),

bonus_pools as (
    select * from {{ ref('fct_bonus_pools') }}
),

managers as (
    select * from {{ ref('dim_managers') }}
),

kpi_weights as (
    select * from {{ ref('dim_kpi_weights') }}
),

premium_bands as (
    select * from {{ ref('dim_premium_bands') }}
),

manager_months as (
    select
        month,
        manager_id
    from plan_completion
    union
    select
        month,
        manager_id
    from bonus_pools
),

-- the role (and so the weights), name and team: the manager's version at the month's end, as
-- in kpi_manager_monthly (macros/managers.sql)
{{ manager_versions_at_month_end(keys='manager_months', managers='managers') }},

manager_roles as (
    select
        manager_months.month,
        manager_months.manager_id,
        versions_at_month_end.role,
        versions_at_month_end.full_name as manager_name,
        versions_at_month_end.team
    from manager_months
    left join versions_at_month_end
        on manager_months.month = versions_at_month_end.month
        and manager_months.manager_id = versions_at_month_end.manager_id
),

weights_of_month as (
    select
        manager_roles.month,
        manager_roles.manager_id,
        kpi_weights.kpi_code,
        kpi_weights.weight,
        kpi_weights.hold_reason
    from manager_roles
    inner join kpi_weights
        on manager_roles.role = kpi_weights.role
        and kpi_weights.valid_from <= manager_roles.month
        and (kpi_weights.valid_to is null or manager_roles.month < kpi_weights.valid_to)
),

lines_keyed as (
    select
        coalesce(plan_completion.month, weights_of_month.month) as month,
        coalesce(plan_completion.manager_id, weights_of_month.manager_id) as manager_id,
        coalesce(plan_completion.kpi_code, weights_of_month.kpi_code) as kpi_code,
        plan_completion.month is not null as has_plan,
        plan_completion.fact,
        plan_completion.base,
        plan_completion.norm,
        plan_completion.kpi_pct,
        plan_completion.reason as plan_reason,
        weights_of_month.weight,
        weights_of_month.hold_reason as weight_hold_reason
    from plan_completion
    full outer join weights_of_month
        on plan_completion.month = weights_of_month.month
        and plan_completion.manager_id = weights_of_month.manager_id
        and plan_completion.kpi_code = weights_of_month.kpi_code
    where plan_completion.month is not null
        or weights_of_month.weight > 0
        or weights_of_month.hold_reason is not null
),

-- per month, the conflicting premium bands valid in it (every line of the month is held)
band_holds as (
    select
        months.month,
        {{ dbt.listagg('premium_bands.hold_reason', "' | '", 'order by premium_bands.lower_pct') }} as hold_reason
    from (select distinct month from lines_keyed) as months
    inner join premium_bands
        on premium_bands.valid_from <= months.month
        and (premium_bands.valid_to is null or months.month < premium_bands.valid_to)
    where premium_bands.hold_reason is not null
    group by months.month
),

bands_matched as (
    select
        lines_keyed.month,
        lines_keyed.manager_id,
        lines_keyed.kpi_code,
        premium_bands.lower_pct,
        premium_bands.upper_pct,
        premium_bands.coefficient,
        row_number() over (
            partition by lines_keyed.month, lines_keyed.manager_id, lines_keyed.kpi_code
            order by premium_bands.lower_pct desc
        ) as band_rank
    from lines_keyed
    inner join premium_bands
        on premium_bands.valid_from <= lines_keyed.month
        and (premium_bands.valid_to is null or lines_keyed.month < premium_bands.valid_to)
        and premium_bands.lower_pct <= lines_keyed.kpi_pct
        and (premium_bands.upper_pct is null or lines_keyed.kpi_pct < premium_bands.upper_pct)
),

lines_priced as (
    select
        lines_keyed.*,
        manager_roles.role,
        manager_roles.manager_name,
        manager_roles.team,
        bands_matched.lower_pct as band_lower_pct,
        bands_matched.upper_pct as band_upper_pct,
        coalesce(bands_matched.coefficient, 0) as premium_coefficient,
        bonus_pools.pool_amount,
        nullif(concat_ws(
            ' | ',
            sales_plans.hold_reason,
            bonus_pools.hold_reason,
            lines_keyed.weight_hold_reason,
            band_holds.hold_reason
        ), '') as hold_reason,
        case
            when sales_plans.hold_reason is not null
                or bonus_pools.hold_reason is not null
                or lines_keyed.weight_hold_reason is not null
                or band_holds.hold_reason is not null
                then 'conflicting_rows'
            when not lines_keyed.has_plan then 'missing_plan'
            when lines_keyed.weight is null then 'missing_weight'
            when bonus_pools.pool_amount is null then 'missing_pool'
            when lines_keyed.plan_reason is not null then lines_keyed.plan_reason
            when bands_matched.coefficient is null then 'no_band'
        end as reason
    from lines_keyed
    left join manager_roles
        on lines_keyed.month = manager_roles.month
        and lines_keyed.manager_id = manager_roles.manager_id
    left join bands_matched
        on lines_keyed.month = bands_matched.month
        and lines_keyed.manager_id = bands_matched.manager_id
        and lines_keyed.kpi_code = bands_matched.kpi_code
        and bands_matched.band_rank = 1
    left join bonus_pools
        on lines_keyed.month = bonus_pools.month
        and lines_keyed.manager_id = bonus_pools.manager_id
    left join sales_plans
        on lines_keyed.month = sales_plans.month
        and lines_keyed.manager_id = sales_plans.manager_id
        and lines_keyed.kpi_code = sales_plans.kpi_code
    left join band_holds
        on lines_keyed.month = band_holds.month
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        cast(role as {{ dbt.type_string() }}) as role,
        cast(fact as decimal(24, 6)) as fact,
        cast(base as decimal(18, 4)) as base,
        cast(norm as decimal(18, 4)) as norm,
        cast(kpi_pct as decimal(18, 6)) as kpi_pct,
        cast(band_lower_pct as decimal(18, 4)) as band_lower_pct,
        cast(band_upper_pct as decimal(18, 4)) as band_upper_pct,
        cast(premium_coefficient as decimal(18, 4)) as premium_coefficient,
        cast(weight as decimal(18, 4)) as weight,
        cast(pool_amount as decimal(18, 2)) as pool_amount,
        -- decimals all the way: round() on a decimal rounds half away from zero (on a double
        -- it would be binary-inexact); a missing plan, weight or pool pays 0
        cast(
            case
                -- held: not paid from a guess (D86)
                when reason = 'conflicting_rows' then null
                when reason in ('missing_plan', 'missing_weight', 'missing_pool') then 0
                else
                    round(
                        cast(pool_amount as decimal(38, 2))
                        * cast(weight as decimal(18, 4))
                        * cast(premium_coefficient as decimal(18, 4)),
                        2
                    )
            end
            as decimal(18, 2)
        ) as bonus_amount,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(hold_reason as {{ dbt.type_string() }}) as hold_reason,
        -- the manager at the month's end, for the statements
        cast(manager_name as {{ dbt.type_string() }}) as manager_name,
        cast(team as {{ dbt.type_string() }}) as team
    from lines_priced
)

select * from final
