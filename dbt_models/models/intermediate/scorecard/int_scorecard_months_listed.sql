{#- The months of the scorecards (marts.kpi_manager_monthly and marts.kpi_company_monthly and
    their intermediates; the client-base KPIs have their own list,
    int_client_base_months_listed, D132). One row per month (business time zone): from the
    month of the earliest event in the data (deal created, call, activity created, request
    created, survey response) to the as-of month. With the UTC instants where the month starts
    and ends (exclusive), the snapshot time of CRM hygiene (the end of the month, or the as-of
    time for the current month) and the month's working days (dim_dates: Mon-Fri less the
    holidays of the calendar seed). -#}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

calls as (
    select * from {{ ref('fct_calls') }}
),

activities as (
    select * from {{ ref('fct_activities') }}
),

requests as (
    select * from {{ ref('fct_requests') }}
),

survey_responses as (
    select * from {{ ref('fct_survey_responses') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

event_starts as (
    select min(created_at) as event_at from deals
    union all
    select min(started_at) from calls
    union all
    select min(created_at) from activities
    union all
    select min(created_at) from requests
    union all
    select min(responded_at) from survey_responses
),

bounds as (
    select
        {{ business_month('min(event_starts.event_at)') }} as first_month,
        {{ business_month('max(as_of.as_of_at)') }} as last_month,
        max(as_of.as_of_at) as as_of_at
    from event_starts
    cross join as_of
),

months as (
    select
        dates.month,
        max(dates.working_days_in_month) as working_days_in_month
    from dates
    inner join bounds
        on dates.month >= bounds.first_month
        and dates.month <= bounds.last_month
    group by 1
),

final as (
    select
        months.month,
        cast(months.working_days_in_month as {{ dbt.type_int() }}) as working_days_in_month,
        {{ from_business_time('months.month') }} as month_start_at,
        {{ from_business_time(dbt.dateadd('month', 1, 'months.month')) }} as month_end_at,
        -- CRM hygiene looks at the end of the month, or at the as-of time in the as-of month
        case
            when bounds.as_of_at < {{ from_business_time(dbt.dateadd('month', 1, 'months.month')) }}
                then bounds.as_of_at
            else {{ from_business_time(dbt.dateadd('month', 1, 'months.month')) }}
        end as snapshot_at
    from months
    cross join bounds
)

select * from final
