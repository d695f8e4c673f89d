{#- The manager scorecard (docs/marts-contract.md, kpi-definitions.md): one row per month and
    manager_id, for every month from the first month of data to the as-of month in which the
    manager is employed (hired_on .. left_on) or has any credited event (a deal created, won or
    lost, a call, a request, a survey response or an overdue activity). Team, role and name: the
    manager's version valid at the end of the month, else the first version
    (macros/managers.sql). Counts and sums with no events are 0, ratios, means and medians stay
    null.

    Each measure's formula is written once, in the scorecard intermediate it is read from (scope
    `manager` here, `company` in marts.kpi_company_monthly); docs/kpi-definitions.md names the
    file and the tests of every KPI:
      sales.*      models/intermediate/scorecard/int_sales_measures_aggregated.sql
      telephony.*  models/intermediate/scorecard/int_telephony_measures_aggregated.sql
      service.*    models/intermediate/scorecard/int_service_measures_aggregated.sql
      hygiene.*    models/intermediate/scorecard/int_hygiene_measures_aggregated.sql -#}

{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    on_schema_change='fail',
    post_hook="{{ keep_built_fingerprints() }}"
) }}

{%- set rebuild_from = rebuild_from_month() %}

with

months as (
    select * from {{ ref('int_scorecard_months_listed') }}
    where true {{ rebuilt_months_filter('month', rebuild_from) }}
),

managers as (
    select * from {{ ref('dim_managers') }}
),

sales as (
    select * from {{ ref('int_sales_measures_aggregated') }}
    where scope = 'manager'
        {{ rebuilt_months_filter('month', rebuild_from) }}
        and manager_id is not null
),

telephony as (
    select * from {{ ref('int_telephony_measures_aggregated') }}
    where scope = 'manager'
        {{ rebuilt_months_filter('month', rebuild_from) }}
        and manager_id is not null
),

service as (
    select * from {{ ref('int_service_measures_aggregated') }}
    where scope = 'manager'
        {{ rebuilt_months_filter('month', rebuild_from) }}
        and manager_id is not null
),

hygiene as (
    select * from {{ ref('int_hygiene_measures_aggregated') }}
    where scope = 'manager'
        {{ rebuilt_months_filter('month', rebuild_from) }}
        and manager_id is not null
),

employment as (
    select distinct
        manager_id,
        hired_on,
        left_on
    from managers
),

employed_months as (
    select
        months.month,
        employment.manager_id
    from months
    cross join employment
    where (employment.hired_on is null or employment.hired_on < {{ dbt.dateadd('month', 1, 'months.month') }})
        and (employment.left_on is null or employment.left_on >= months.month)
),

active_keys as (
    select
        month,
        manager_id
    from employed_months
    union
    select
        month,
        manager_id
    from sales
    union
    select
        month,
        manager_id
    from telephony
    union
    select
        month,
        manager_id
    from service
    union
    -- a snapshot of open deals is no event: a manager who left is not listed for it
    select
        month,
        manager_id
    from hygiene
    where overdue_tasks is not null
),

scorecard_keys as (
    select
        active_keys.month,
        active_keys.manager_id
    from active_keys
    inner join months
        on active_keys.month = months.month
),

-- team, role and name: the manager's version at the month's end (macros/managers.sql)
{{ manager_versions_at_month_end(keys='scorecard_keys', managers='managers') }},

final as (
    select
        ---------- key
        scorecard_keys.month,
        scorecard_keys.manager_id,
        ---------- the manager at the end of the month
        versions_at_month_end.full_name as manager_name,
        versions_at_month_end.team,
        versions_at_month_end.role,
        ---------- sales
        cast(coalesce(sales.deals_created, 0) as bigint) as deals_created,
        cast(coalesce(sales.deals_won, 0) as bigint) as deals_won,
        cast(coalesce(sales.deals_lost, 0) as bigint) as deals_lost,
        cast(coalesce(sales.revenue, 0) as decimal(18, 2)) as revenue,
        cast(sales.avg_check as decimal(18, 2)) as avg_check,
        cast(sales.win_rate as decimal(18, 6)) as win_rate,
        cast(sales.lead_to_deal_conversion as decimal(18, 6)) as lead_to_deal_conversion,
        cast(sales.sales_cycle_days as decimal(18, 6)) as sales_cycle_days,
        cast(coalesce(sales.new_clients, 0) as bigint) as new_clients,
        cast(sales.repeat_client_share as decimal(18, 6)) as repeat_client_share,
        cast(coalesce(sales.productivity_per_day, 0) as decimal(18, 2)) as productivity_per_day,
        ---------- telephony
        cast(coalesce(telephony.calls_outbound, 0) as bigint) as calls_outbound,
        cast(coalesce(telephony.calls_inbound, 0) as bigint) as calls_inbound,
        cast(coalesce(telephony.successful_calls, 0) as bigint) as successful_calls,
        cast(coalesce(telephony.talk_minutes, 0) as decimal(18, 6)) as talk_minutes,
        cast(telephony.missed_call_rate as decimal(18, 6)) as missed_call_rate,
        ---------- speed to lead and touches
        cast(sales.speed_to_lead_minutes as decimal(18, 6)) as speed_to_lead_minutes,
        cast(sales.responded_within_1h_share as decimal(18, 6)) as responded_within_1h_share,
        cast(sales.touches_to_close as decimal(18, 6)) as touches_to_close,
        ---------- service and surveys
        cast(coalesce(service.requests, 0) as bigint) as requests,
        cast(service.complaint_rate_pct as decimal(18, 6)) as complaint_rate_pct,
        cast(service.first_response_minutes as decimal(18, 6)) as first_response_minutes,
        cast(service.resolution_hours as decimal(18, 6)) as resolution_hours,
        cast(service.first_call_resolution_rate as decimal(18, 6)) as first_call_resolution_rate,
        cast(service.nps as decimal(18, 6)) as nps,
        cast(coalesce(service.nps_responses, 0) as bigint) as nps_responses,
        cast(service.csat_avg as decimal(18, 6)) as csat_avg,
        cast(service.csat_satisfied_share as decimal(18, 6)) as csat_satisfied_share,
        ---------- CRM hygiene
        cast(coalesce(hygiene.overdue_tasks, 0) as bigint) as overdue_tasks,
        cast(coalesce(hygiene.open_deals_without_next_task, 0) as bigint) as open_deals_without_next_task
    from scorecard_keys
    left join versions_at_month_end
        on scorecard_keys.month = versions_at_month_end.month
        and scorecard_keys.manager_id = versions_at_month_end.manager_id
    left join sales
        on scorecard_keys.month = sales.month
        and scorecard_keys.manager_id = sales.manager_id
    left join telephony
        on scorecard_keys.month = telephony.month
        and scorecard_keys.manager_id = telephony.manager_id
    left join service
        on scorecard_keys.month = service.month
        and scorecard_keys.manager_id = service.manager_id
    left join hygiene
        on scorecard_keys.month = hygiene.month
        and scorecard_keys.manager_id = hygiene.manager_id
)

select * from final
{%- if rebuild_from == 'none' %}
where 1 = 0  -- no month changed: keep every row
{%- endif %}
