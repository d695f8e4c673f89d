{#- The sales measures and speed to lead of the scorecards (kpi-definitions, "Sales" and
    "Telephony"), one row per scope, month and manager_id: scope `manager` per credited manager
    (at creation for deals_created, lead_to_deal_conversion, speed_to_lead_minutes and
    responded_within_1h_share; at close for the rest), scope `company` (manager_id null) over
    all deals. marts.kpi_manager_monthly and marts.kpi_company_monthly read it, so each formula
    is written once. -#}

{#- A table, not a view: its key test and the two scorecard marts read it, and as a view each
    of them computed it again (on the large demo ~3 s per reading). -#}
{{ config(materialized='table') }}

{%- set created_measures = [
    'deals_created', 'lead_to_deal_conversion', 'speed_to_lead_minutes', 'responded_within_1h_share'
] -%}
{%- set closed_measures = [
    'deals_won', 'deals_lost', 'revenue', 'avg_check', 'win_rate', 'sales_cycle_days',
    'new_clients', 'repeat_client_share', 'touches_to_close'
] -%}

with

deals as (
    select * from {{ ref('int_deals_credited') }}
),

months as (
    select * from {{ ref('int_scorecard_months_listed') }}
),

{% for scope in ['manager', 'company'] %}
created_{{ scope }} as (
    select
        '{{ scope }}' as scope,
        created_month as month,
        manager_id,
        deals_created,
        {{ safe_ratio('deals_won_by_as_of', 'deals_created') }} as lead_to_deal_conversion,
        cast(speed_to_lead_minutes as decimal(18,6)) as speed_to_lead_minutes,
        {{ safe_ratio('responded_within_1h', 'deals_created') }} as responded_within_1h_share
    from (
        select
            created_month,
            {{ scope_key(scope, 'manager_id_at_creation') }} as manager_id,
            count(*) as deals_created,
            sum(case when is_won_by_as_of then 1 else 0 end) as deals_won_by_as_of,
            {{ exact_median('response_minutes') }} as speed_to_lead_minutes,
            -- a deal without a response in the window counts as not responded
            sum(case when response_minutes <= 60 then 1 else 0 end) as responded_within_1h
        from deals
        group by 1, 2
    ) as created_aggregates
),

closed_{{ scope }} as (
    select
        '{{ scope }}' as scope,
        closed_month as month,
        manager_id,
        deals_won,
        deals_lost,
        cast(revenue as decimal(18,2)) as revenue,
        {{ safe_ratio('revenue', 'deals_won', 'decimal(18,2)') }} as avg_check,
        {{ safe_ratio('deals_won', 'deals_won + deals_lost') }} as win_rate,
        cast(sales_cycle_days as decimal(18,6)) as sales_cycle_days,
        new_clients,
        {{ safe_ratio('repeat_clients', 'clients_won') }} as repeat_client_share,
        cast(touches_to_close as decimal(18,6)) as touches_to_close
    from (
        select
            closed_month,
            {{ scope_key(scope, 'manager_id_at_close') }} as manager_id,
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
        group by 1, 2
    ) as closed_aggregates
),
{% endfor %}

merged as (
    {{ merge_measure_branches([
        ('created_manager', created_measures),
        ('closed_manager', closed_measures),
    ]) }}
    union all
    {{ merge_measure_branches([
        ('created_company', created_measures),
        ('closed_company', closed_measures),
    ]) }}
),

final as (
    select
        merged.scope,
        merged.month,
        merged.manager_id,
        {%- for measure in created_measures + closed_measures %}
        merged.{{ measure }},
        {%- endfor %}
        -- revenue per working day of the month (Mon-Fri less the calendar seed's holidays)
        {{ safe_ratio('coalesce(merged.revenue, 0)', 'months.working_days_in_month', 'decimal(18,2)') }}
            as productivity_per_day
    from merged
    inner join months
        on merged.month = months.month
)

select * from final
