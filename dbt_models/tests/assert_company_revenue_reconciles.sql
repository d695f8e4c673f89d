{#- Revenue and won deals reconcile three ways, per month: the company scorecard
    (marts.kpi_company_monthly) = the sum of the managers' rows (marts.kpi_manager_monthly) plus
    the won deals credited to no manager (manager_id_at_close null: none while deals.manager_id is
    required, counted explicitly all the same) = fct_deals directly (won deals closed by the as-of
    time, by the month of closed_at; revenue in RUB as the marts count it). Returns the months
    that disagree. -#}

{#- A test of several models is a Dagster asset check only on the model named here (dagster-dbt's
    `meta.dagster.ref`); without it the test was logged as an observation (D108). -#}
{{ config(meta={'dagster': {'ref': {'name': 'kpi_company_monthly'}}}) }}

with

company as (
    select * from {{ ref('kpi_company_monthly') }}
),

managers as (
    select * from {{ ref('kpi_manager_monthly') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

won_deals as (
    select
        closed_month as month,
        manager_id_at_close,
        case when currency = 'RUB' then amount else 0 end as revenue
    from deals
    where is_won
        and closed_at <= {{ as_of() }}
),

from_facts as (
    select
        month,
        count(*) as deals_won,
        sum(revenue) as revenue
    from won_deals
    group by 1
),

uncredited as (
    select
        month,
        count(*) as deals_won,
        sum(revenue) as revenue
    from won_deals
    where manager_id_at_close is null
    group by 1
),

from_managers as (
    select
        month,
        sum(deals_won) as deals_won,
        sum(revenue) as revenue
    from managers
    group by 1
),

months as (
    select month from company
    union
    select month from from_facts
    union
    select month from from_managers
),

compared as (
    select
        months.month,
        coalesce(company.deals_won, 0) as company_deals_won,
        coalesce(from_managers.deals_won, 0) + coalesce(uncredited.deals_won, 0) as managers_deals_won,
        coalesce(from_facts.deals_won, 0) as facts_deals_won,
        coalesce(company.revenue, 0) as company_revenue,
        coalesce(from_managers.revenue, 0) + coalesce(uncredited.revenue, 0) as managers_revenue,
        coalesce(from_facts.revenue, 0) as facts_revenue
    from months
    left join company
        on months.month = company.month
    left join from_managers
        on months.month = from_managers.month
    left join uncredited
        on months.month = uncredited.month
    left join from_facts
        on months.month = from_facts.month
),

final as (
    select * from compared
    where company_deals_won <> managers_deals_won
        or company_deals_won <> facts_deals_won
        or company_revenue <> managers_revenue
        or company_revenue <> facts_revenue
)

select * from final
