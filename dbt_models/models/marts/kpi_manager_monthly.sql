{#- The manager scorecard (docs/marts-contract.md, kpi-definitions.md): one row per month and
    manager_id, for every month from the first month of data to the as-of month in which the
    manager is employed (hired_on .. left_on) or has any credited event (a deal created, won or
    lost, a call, a request, a survey response or an overdue activity). Team, role and name: the
    manager's version valid at the end of the month, else the first version. The measures come
    from the scorecard intermediates (scope `manager`), which marts.kpi_company_monthly shares;
    counts and sums with no events are 0, ratios, means and medians stay null. -#}

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
    select month, manager_id from employed_months
    union
    select month, manager_id from sales
    union
    select month, manager_id from telephony
    union
    select month, manager_id from service
    union
    -- a snapshot of open deals is no event: a manager who left is not listed for it
    select month, manager_id from hygiene
    where overdue_tasks is not null
),

scorecard_keys as (
    select
        active_keys.month,
        active_keys.manager_id,
        months.month_end_at
    from active_keys
    inner join months
        on active_keys.month = months.month
),

versions_ranked as (
    select
        scorecard_keys.month,
        scorecard_keys.manager_id,
        managers.full_name,
        managers.team,
        managers.role,
        row_number() over (
            partition by scorecard_keys.month, scorecard_keys.manager_id
            order by
                case when managers.valid_from < scorecard_keys.month_end_at then 0 else 1 end,
                case when managers.valid_from < scorecard_keys.month_end_at then managers.valid_from end desc,
                managers.version_number
        ) as version_rank
    from scorecard_keys
    inner join managers
        on scorecard_keys.manager_id = managers.manager_id
),

versions_at_month_end as (
    select * from versions_ranked
    where version_rank = 1
),

final as (
    select
        ---------- key
        scorecard_keys.month,
        scorecard_keys.manager_id,
        ---------- the manager at the end of the month
        versions_at_month_end.full_name as manager_name,
        versions_at_month_end.team,
        versions_at_month_end.role,
        ---------- measures (kpi-definitions; macros/aggregates.sql, scorecard_measures)
        {{ scorecard_measure_columns() }}
    from scorecard_keys
    left join versions_at_month_end
        on scorecard_keys.month = versions_at_month_end.month
        and scorecard_keys.manager_id = versions_at_month_end.manager_id
    {%- for source_name in ['sales', 'telephony', 'service', 'hygiene'] %}
    left join {{ source_name }}
        on scorecard_keys.month = {{ source_name }}.month
        and scorecard_keys.manager_id = {{ source_name }}.manager_id
    {%- endfor %}
)

select * from final
{%- if rebuild_from == 'none' %}
where 1 = 0  -- no month changed: keep every row
{%- endif %}
