{#- KPI attainment per plan row (kpi-definitions, "Plan completion and bonus"): one row per
    fct_sales_plans row (month, manager_id, kpi_code). fact = the manager's value of the column
    kpi_code of marts.kpi_manager_monthly for that month; kpi_pct = 100 * (fact - base) /
    (norm - base), not clamped (below base: negative; lower-is-better plans have norm < base).
    kpi_pct is null with a reason: conflicting_rows (the plan's rows disagree: base and norm
    null, D86), unknown_kpi_code (kpi_code names no numeric scorecard
    column), no_scorecard_row (no scorecard row for that manager-month), no_fact (the measure is
    null), norm_equals_base. The plannable columns are the scorecard's measure columns, listed
    below in the mart's order; tests/unit/test_dbt_structure.py fails when a measure column of
    marts.kpi_manager_monthly is missing here (a new scorecard column is added to both). -#}

{%- set kpi_columns = [
    'deals_created',
    'deals_won',
    'deals_lost',
    'revenue',
    'avg_check',
    'win_rate',
    'lead_to_deal_conversion',
    'sales_cycle_days',
    'new_clients',
    'repeat_client_share',
    'productivity_per_day',
    'calls_outbound',
    'calls_inbound',
    'successful_calls',
    'talk_minutes',
    'missed_call_rate',
    'speed_to_lead_minutes',
    'responded_within_1h_share',
    'touches_to_close',
    'requests',
    'complaint_rate_pct',
    'first_response_minutes',
    'resolution_hours',
    'first_call_resolution_rate',
    'nps',
    'nps_responses',
    'csat_avg',
    'csat_satisfied_share',
    'overdue_tasks',
    'open_deals_without_next_task',
] -%}

with

sales_plans as (
    select * from {{ ref('fct_sales_plans') }}
),

scorecard as (
    select * from {{ ref('kpi_manager_monthly') }}
),

facts_looked_up as (
    select
        sales_plans.month,
        sales_plans.manager_id,
        sales_plans.kpi_code,
        sales_plans.base,
        sales_plans.norm,
        sales_plans.hold_reason is not null as is_held,
        scorecard.manager_id is not null as has_scorecard_row,
        {% if kpi_columns | length > 0 -%}
        sales_plans.kpi_code in ('{{ kpi_columns | join("', '") }}') as is_known_kpi_code,
        case sales_plans.kpi_code
            {%- for column in kpi_columns %}
            when '{{ column }}' then cast(scorecard.{{ column }} as decimal(24, 6))
            {%- endfor %}
        end as fact
        {%- else -%}
        false as is_known_kpi_code,
        cast(null as decimal(24,6)) as fact
        {%- endif %}
    from sales_plans
    left join scorecard
        on sales_plans.month = scorecard.month
        and sales_plans.manager_id = scorecard.manager_id
),

reasons as (
    select
        *,
        case
            when is_held then 'conflicting_rows'
            when not is_known_kpi_code then 'unknown_kpi_code'
            when not has_scorecard_row then 'no_scorecard_row'
            when fact is null then 'no_fact'
            when norm = base then 'norm_equals_base'
        end as reason
    from facts_looked_up
),

final as (
    select
        month,
        manager_id,
        kpi_code,
        cast(base as decimal(18, 4)) as base,
        cast(norm as decimal(18, 4)) as norm,
        case when is_known_kpi_code and has_scorecard_row then fact end as fact,
        case
            when reason is null
                then {{ safe_ratio('100 * (fact - base)', 'norm - base', 'decimal(18, 6)') }}
        end as kpi_pct,
        reason
    from reasons
)

select * from final
