{#- The months of the client-base KPIs (churn, lifecycle, CLV and CAC by channel: the marts
    kpi_churn_monthly and kpi_clv_cac_monthly and int_client_months_classified), one row per
    month from the first month of client-base data (the earliest month of a deal's creation or
    of a marketing spend row) to the as-of month, with the month's boundaries in UTC: its start
    (the first midnight of the month in the business time zone) and its end (the next month's
    start, or the as-of time for the as-of month: a month in progress is measured up to as-of).
    The scorecards have their own month list, int_scorecard_months_listed (from the first event
    of any kind; the end of a month is always the next month's start, the as-of month's
    snapshot is its snapshot_at): two purposes, two lists (D132). -#}

with

dates as (
    select * from {{ ref('dim_dates') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

marketing_spend as (
    select * from {{ ref('fct_marketing_spend') }}
),

as_of as (
    select
        as_of_at,
        {{ business_month('as_of_at') }} as as_of_month
    from {{ ref('int_as_of') }}
),

data_months as (
    select created_month as month from deals
    union all
    select month from marketing_spend
),

first_month as (
    select min(month) as first_month
    from data_months
),

months as (
    select distinct dates.month
    from dates
    cross join first_month
    cross join as_of
    where dates.month >= first_month.first_month
        and dates.month <= as_of.as_of_month
),

final as (
    select
        months.month,
        cast({{ dbt.dateadd('month', 1, 'months.month') }} as date) as next_month,
        {{ business_month_start_at('months.month') }} as month_start_at,
        case
            when months.month = as_of.as_of_month then as_of.as_of_at
            else {{ business_month_start_at(dbt.dateadd('month', 1, 'months.month')) }}
        end as month_end_at,
        months.month = as_of.as_of_month as is_as_of_month,
        as_of.as_of_at
    from months
    cross join as_of
)

select * from final
