{#- Acquisition cost and client value per month and acquisition channel (kpi-definitions,
    "Acquisition and value"). A client's channel is dim_clients.channel (acquisition_channel, else
    its first deal's channel); a lead's channel is the deal's channel; '(none)' when unknown.
    Rows: every client-base month (int_client_base_months_listed) of every channel from the first
    month it has a lead, a spend row or a new client, so channels with spend and no leads and
    with leads and no spend are both there. Churn per channel comes from int_client_months_classified, the
    same client-month states as kpi_churn_monthly. Money is RUB (spend and revenue in other
    currencies are left out until a rate table exists). A month and channel without a RUB spend
    row has marketing_spend, cost_per_lead and cac null (unknown), a spend row of 0 gives 0
    (kpi-definitions v1.1, D91). -#}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

clients as (
    select * from {{ ref('dim_clients') }}
),

marketing_spend as (
    select * from {{ ref('fct_marketing_spend') }}
),

months as (
    select * from {{ ref('int_client_base_months_listed') }}
),

client_months as (
    select * from {{ ref('int_client_months_classified') }}
),

as_of as (
    select max(as_of_at) as as_of_at from months
),

leads as (
    select
        deals.created_month as month,
        coalesce(deals.channel, '(none)') as channel,
        count(*) as leads
    from deals
    cross join as_of
    where deals.created_at <= as_of.as_of_at
    group by 1, 2
),

spend as (
    select
        month,
        coalesce(channel, '(none)') as channel,
        -- null without a RUB spend row: unknown, not 0 (kpi-definitions v1.1, D91)
        {{ rub_marketing_spend() }} as marketing_spend
    from marketing_spend
    group by 1, 2
),

won_deals as (
    select
        deals.deal_id,
        deals.client_id,
        coalesce(clients.channel, '(none)') as channel,
        deals.closed_at,
        deals.closed_month,
        case when deals.currency = 'RUB' then deals.amount else 0 end as revenue_amount
    from deals
    cross join as_of
    left join clients
        on deals.client_id = clients.client_id
    where deals.is_won
        and deals.closed_at is not null
        and deals.closed_at <= as_of.as_of_at
),

client_revenue as (
    select
        client_id,
        channel,
        min(closed_at) as first_won_at,
        sum(revenue_amount) as revenue_to_date
    from won_deals
    group by 1, 2
),

cohorts as (
    -- the acquisition cohort of m: clients of the channel whose first won deal closed in m
    select
        {{ business_month('first_won_at') }} as month,
        channel,
        count(*) as new_clients,
        sum(revenue_to_date) as cohort_revenue_to_date
    from client_revenue
    group by 1, 2
),

client_month_purchases as (
    select
        client_id,
        channel,
        closed_month,
        count(*) as won_deals,
        sum(revenue_amount) as revenue
    from won_deals
    group by 1, 2, 3
),

purchases_12m as (
    -- the 12 months ending with m (bounded range join: at most 12 months per client-month)
    select
        months.month,
        client_month_purchases.channel,
        sum(client_month_purchases.revenue) as revenue_12m,
        sum(client_month_purchases.won_deals) as won_deals_12m,
        count(distinct client_month_purchases.client_id) as buying_clients_12m
    from months
    inner join client_month_purchases
        on client_month_purchases.closed_month <= months.month
        and client_month_purchases.closed_month > cast({{ dbt.dateadd('month', -12, 'months.month') }} as date)
    group by 1, 2
),

channel_churn as (
    -- monthly churn_rate of the channel's clients (months with no active base have no row)
    select
        month,
        channel,
        (
            1.0 * sum(case when is_churned then 1 else 0 end)
            / sum(case when is_active_start then 1 else 0 end)
        ) as churn_rate
    from client_months
    group by 1, 2
    having sum(case when is_active_start then 1 else 0 end) > 0
),

annual_churn as (
    -- annual churn = 1 - product(1 - r) over the 12 months ending with m, as exp(sum(ln(1 - r)));
    -- a month with r = 1 makes the product 0
    select
        months.month,
        channel_churn.channel,
        count(*) as churn_months,
        max(case when channel_churn.churn_rate >= 1 then 1 else 0 end) as has_full_churn,
        -- summed as decimals, not doubles: the same whatever order the months are added in (D92)
        {{ exact_sum('case when channel_churn.churn_rate < 1 then ln(1 - channel_churn.churn_rate) else 0 end', 18) }}
            as log_retention
    from months
    inner join channel_churn
        on channel_churn.month <= months.month
        and channel_churn.month > cast({{ dbt.dateadd('month', -12, 'months.month') }} as date)
    group by 1, 2
),

lifetimes as (
    select
        month,
        channel,
        case
            when has_full_churn = 1 then 1.0
            else 1 - exp(log_retention)
        end as annual_churn_rate
    from annual_churn
),

channel_months as (
    select
        month,
        channel
    from leads
    union
    select
        month,
        channel
    from spend
    union
    select
        month,
        channel
    from cohorts
),

channel_first_months as (
    select
        channel,
        min(month) as first_month
    from channel_months
    group by 1
),

grid as (
    select
        months.month,
        channel_first_months.channel
    from months
    inner join channel_first_months
        on months.month >= channel_first_months.first_month
),

joined as (
    select
        grid.month,
        grid.channel,
        coalesce(leads.leads, 0) as leads,
        spend.marketing_spend,
        coalesce(cohorts.new_clients, 0) as new_clients,
        cohorts.cohort_revenue_to_date,
        purchases_12m.revenue_12m,
        purchases_12m.won_deals_12m,
        purchases_12m.buying_clients_12m,
        case
            when lifetimes.annual_churn_rate is null then null
            when lifetimes.annual_churn_rate <= 0 then {{ var('clv_max_lifetime_years') }}
            when 1.0 / lifetimes.annual_churn_rate > {{ var('clv_max_lifetime_years') }}
                then {{ var('clv_max_lifetime_years') }}
            else 1.0 / lifetimes.annual_churn_rate
        end as expected_lifetime_years
    from grid
    left join leads
        on grid.month = leads.month
        and grid.channel = leads.channel
    left join spend
        on grid.month = spend.month
        and grid.channel = spend.channel
    left join cohorts
        on grid.month = cohorts.month
        and grid.channel = cohorts.channel
    left join purchases_12m
        on grid.month = purchases_12m.month
        and grid.channel = purchases_12m.channel
    left join lifetimes
        on grid.month = lifetimes.month
        and grid.channel = lifetimes.channel
),

measures as (
    select
        *,
        1.0 * marketing_spend / nullif(new_clients, 0) as cac_value,
        (
            1.0 * revenue_12m / nullif(won_deals_12m, 0)
            * won_deals_12m / nullif(buying_clients_12m, 0)
            * expected_lifetime_years
        ) as clv_value
    from joined
),

final as (
    select
        ---------- keys
        cast(month as date) as month,
        cast(channel as {{ dbt.type_string() }}) as channel,
        ---------- acquisition
        cast(leads as {{ dbt.type_int() }}) as leads,
        cast(marketing_spend as decimal(18, 2)) as marketing_spend,
        {{ safe_ratio("marketing_spend", "leads", "decimal(18,2)") }} as cost_per_lead,
        cast(new_clients as {{ dbt.type_int() }}) as new_clients,
        {{ safe_ratio('marketing_spend', 'new_clients', 'decimal(18, 2)') }} as cac,
        ---------- value over the 12 months ending with m
        {{ safe_ratio('revenue_12m', 'won_deals_12m', 'decimal(18,2)') }} as avg_check_12m,
        {{ safe_ratio('won_deals_12m', 'buying_clients_12m') }} as purchases_per_client_12m,
        cast(expected_lifetime_years as decimal(18, 6)) as expected_lifetime_years,
        cast(clv_value as decimal(18, 2)) as clv,
        {{ safe_ratio('cohort_revenue_to_date', 'new_clients', 'decimal(18,2)') }} as clv_historical,
        {{ safe_ratio('clv_value', 'cac_value') }} as clv_to_cac
    from measures
)

select * from final
