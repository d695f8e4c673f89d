{#- The company scorecard (docs/marts-contract.md, kpi-definitions "Company level"): one row per
    month of the scorecards (int_scorecard_months_listed: from the month of the first event to
    the as-of month). Every scorecard measure recomputed over all events of the month, whoever
    they are credited to (calls of no manager and survey responses credited to no one
    included): the scorecard intermediates' scope `company`, not a sum of manager rows (ratios,
    medians and NPS are not additive). Each formula is written once, in the intermediate the
    column is read from (docs/kpi-definitions.md names the file and the tests of every KPI):
      sales.*      models/intermediate/scorecard/int_sales_measures_aggregated.sql
      telephony.*  models/intermediate/scorecard/int_telephony_measures_aggregated.sql (and
                   service_level: inbound calls answered within
                   var service_level_threshold_seconds of ring / inbound calls)
      service.*    models/intermediate/scorecard/int_service_measures_aggregated.sql
      hygiene.*    models/intermediate/scorecard/int_hygiene_measures_aggregated.sql
    Plus churn_rate (segment 'all' of marts.kpi_churn_monthly, whose months are the client-base
    months, int_client_base_months_listed: from the first deal or spend month; a scorecard month
    before it has no churn_rate) and cac (all marketing spend of the month / all new clients of
    the month, here; null when the month has no RUB spend row: unknown, not 0, kpi-definitions
    v1.1, D91). -#}

{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    fingerprint_extra_inputs=['kpi_churn_monthly', 'fct_marketing_spend'],
    on_schema_change='fail',
    post_hook="{{ keep_built_fingerprints(['kpi_churn_monthly', 'fct_marketing_spend']) }}"
) }}

{%- set rebuild_from = rebuild_from_month(['kpi_churn_monthly', 'fct_marketing_spend']) %}

with

months as (
    select * from {{ ref('int_scorecard_months_listed') }}
    where true {{ rebuilt_months_filter('month', rebuild_from) }}
),

sales as (
    select * from {{ ref('int_sales_measures_aggregated') }}
    where scope = 'company' {{ rebuilt_months_filter('month', rebuild_from) }}
),

telephony as (
    select * from {{ ref('int_telephony_measures_aggregated') }}
    where scope = 'company' {{ rebuilt_months_filter('month', rebuild_from) }}
),

service as (
    select * from {{ ref('int_service_measures_aggregated') }}
    where scope = 'company' {{ rebuilt_months_filter('month', rebuild_from) }}
),

hygiene as (
    select * from {{ ref('int_hygiene_measures_aggregated') }}
    where scope = 'company' {{ rebuilt_months_filter('month', rebuild_from) }}
),

churn as (
    select * from {{ ref('kpi_churn_monthly') }}
    where segment = 'all' {{ rebuilt_months_filter('month', rebuild_from) }}
),

marketing_spend as (
    select * from {{ ref('fct_marketing_spend') }}
),

monthly_spend as (
    -- RUB only, as revenue: no rate table yet; null without a RUB spend row (D91)
    select
        month,
        {{ rub_marketing_spend() }} as marketing_spend
    from marketing_spend
    group by 1
),

final as (
    select
        ---------- key
        months.month,
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
        cast(coalesce(hygiene.open_deals_without_next_task, 0) as bigint) as open_deals_without_next_task,
        ---------- company only
        cast(churn.churn_rate as decimal(18, 6)) as churn_rate,
        cast(telephony.service_level as decimal(18, 6)) as service_level,
        {{ safe_ratio('monthly_spend.marketing_spend', 'sales.new_clients', 'decimal(18, 2)') }} as cac
    from months
    left join sales
        on months.month = sales.month
    left join telephony
        on months.month = telephony.month
    left join service
        on months.month = service.month
    left join hygiene
        on months.month = hygiene.month
    left join churn
        on months.month = churn.month
    left join monthly_spend
        on months.month = monthly_spend.month
)

select * from final
{%- if rebuild_from == 'none' %}
where 1 = 0  -- no month changed: keep every row
{%- endif %}
