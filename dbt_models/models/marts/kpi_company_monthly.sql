{#- The company scorecard (docs/marts-contract.md, kpi-definitions "Company level"): one row per
    month from the first month of data to the as-of month. Every scorecard measure recomputed
    over all events of the month, whoever they are credited to (calls of no manager and survey
    responses credited to no one included): the scorecard intermediates' scope `company`, not a
    sum of manager rows (ratios, medians and NPS are not additive). Plus churn_rate (segment
    'all' of marts.kpi_churn_monthly), service_level (inbound calls of all lines answered within
    var service_level_threshold_seconds of ring / inbound calls) and cac (all marketing spend of
    the month / all new clients of the month; null when the month has no RUB spend row: unknown,
    not 0, kpi-definitions v1.1, D91). -#}

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
    where scope = 'company'
        {{ rebuilt_months_filter('month', rebuild_from) }}
),

telephony as (
    select * from {{ ref('int_telephony_measures_aggregated') }}
    where scope = 'company'
        {{ rebuilt_months_filter('month', rebuild_from) }}
),

service as (
    select * from {{ ref('int_service_measures_aggregated') }}
    where scope = 'company'
        {{ rebuilt_months_filter('month', rebuild_from) }}
),

hygiene as (
    select * from {{ ref('int_hygiene_measures_aggregated') }}
    where scope = 'company'
        {{ rebuilt_months_filter('month', rebuild_from) }}
),

churn as (
    select * from {{ ref('kpi_churn_monthly') }}
    where segment = 'all'
        {{ rebuilt_months_filter('month', rebuild_from) }}
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
        ---------- measures (kpi-definitions; macros/aggregates.sql, scorecard_measures)
        {{ scorecard_measure_columns() }},
        ---------- company only
        cast(churn.churn_rate as decimal(18,6)) as churn_rate,
        cast(telephony.service_level as decimal(18,6)) as service_level,
        {{ safe_ratio('monthly_spend.marketing_spend', 'sales.new_clients', 'decimal(18,2)') }} as cac
    from months
    {%- for source_name in ['sales', 'telephony', 'service', 'hygiene'] %}
    left join {{ source_name }}
        on months.month = {{ source_name }}.month
    {%- endfor %}
    left join churn
        on months.month = churn.month
    left join monthly_spend
        on months.month = monthly_spend.month
)

select * from final
{%- if rebuild_from == 'none' %}
where 1 = 0  -- no month changed: keep every row
{%- endif %}
