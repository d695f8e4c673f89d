{#- The sales measures and speed to lead of the scorecards (kpi-definitions, "Sales" and
    "Telephony"), one row per scope, month and manager_id: scope `manager` per credited manager
    (at creation for deals_created, lead_to_deal_conversion, speed_to_lead_minutes and
    responded_within_1h_share; at close for the rest), scope `company` (manager_id null) over
    all deals. Each formula is written once below (the CTEs `created_measures` and
    `closed_measures`) for both scopes: the counts are grouped by month and manager and by month
    alone in one pass (grouping sets). marts.kpi_manager_monthly and marts.kpi_company_monthly
    read it. -#}

with

deals as (
    select * from {{ ref('int_deals_credited') }}
),

months as (
    select * from {{ ref('int_scorecard_months_listed') }}
),

-- deals by the month they were created, credited to the manager at creation
created_counts as (
    select
        case when grouping(manager_id_at_creation) = 0 then 'manager' else 'company' end as scope,
        created_month as month,
        manager_id_at_creation as manager_id,
        count(*) as deals_created,
        sum(case when is_won_by_as_of then 1 else 0 end) as deals_won_by_as_of,
        {{ exact_median('response_minutes') }} as speed_to_lead_minutes,
        -- a deal without a response in the window counts as not responded
        sum(case when response_minutes <= 60 then 1 else 0 end) as responded_within_1h
    from deals
    group by grouping sets ((created_month, manager_id_at_creation), (created_month))
),

created_measures as (
    select
        scope,
        month,
        manager_id,
        deals_created,
        {{ safe_ratio('deals_won_by_as_of', 'deals_created') }} as lead_to_deal_conversion,
        cast(speed_to_lead_minutes as decimal(18, 6)) as speed_to_lead_minutes,
        {{ safe_ratio('responded_within_1h', 'deals_created') }} as responded_within_1h_share
    from created_counts
),

-- deals by the month they were closed, credited to the manager at close
closed_counts as (
    select
        case when grouping(manager_id_at_close) = 0 then 'manager' else 'company' end as scope,
        closed_month as month,
        manager_id_at_close as manager_id,
        sum(case when is_won then 1 else 0 end) as deals_won,
        sum(case when is_lost then 1 else 0 end) as deals_lost,
        coalesce(sum(case when is_won then won_amount end), 0) as revenue,
        {{ exact_mean('case when is_won then cycle_days end') }} as sales_cycle_days,
        sum(case when is_won and is_first_won_deal then 1 else 0 end) as new_clients,
        count(distinct case when is_won and is_repeat_client_at_close then client_id end)
            as repeat_clients,
        count(distinct case when is_won then client_id end) as clients_won,
        {{ exact_mean('case when is_won then touches end') }} as touches_to_close
    from deals
    where closed_month is not null
    group by grouping sets ((closed_month, manager_id_at_close), (closed_month))
),

closed_measures as (
    select
        scope,
        month,
        manager_id,
        deals_won,
        deals_lost,
        cast(revenue as decimal(18, 2)) as revenue,
        {{ safe_ratio('revenue', 'deals_won', 'decimal(18, 2)') }} as avg_check,
        {{ safe_ratio('deals_won', 'deals_won + deals_lost') }} as win_rate,
        cast(sales_cycle_days as decimal(18, 6)) as sales_cycle_days,
        new_clients,
        {{ safe_ratio('repeat_clients', 'clients_won') }} as repeat_client_share,
        cast(touches_to_close as decimal(18, 6)) as touches_to_close
    from closed_counts
),

merged as (
    select
        coalesce(created_measures.scope, closed_measures.scope) as scope,
        coalesce(created_measures.month, closed_measures.month) as month,
        coalesce(created_measures.manager_id, closed_measures.manager_id) as manager_id,
        created_measures.deals_created,
        created_measures.lead_to_deal_conversion,
        created_measures.speed_to_lead_minutes,
        created_measures.responded_within_1h_share,
        closed_measures.deals_won,
        closed_measures.deals_lost,
        closed_measures.revenue,
        closed_measures.avg_check,
        closed_measures.win_rate,
        closed_measures.sales_cycle_days,
        closed_measures.new_clients,
        closed_measures.repeat_client_share,
        closed_measures.touches_to_close
    from created_measures
    full outer join closed_measures
        on created_measures.scope = closed_measures.scope
        and created_measures.month = closed_measures.month
        and created_measures.manager_id is not distinct from closed_measures.manager_id
),

final as (
    select
        merged.*,
        -- revenue per working day of the month (Mon-Fri less the calendar seed's holidays)
        {{ safe_ratio('coalesce(merged.revenue, 0)', 'months.working_days_in_month', 'decimal(18, 2)') }}
            as productivity_per_day
    from merged
    inner join months
        on merged.month = months.month
)

select * from final
