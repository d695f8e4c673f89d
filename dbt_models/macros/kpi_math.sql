{#- KPI rules read by more than one model (DuckDB and PostgreSQL alike): the month boundaries of
    the churn and CLV marts, the marketing spend in RUB, "answered within the threshold". Ratios,
    medians and durations use macros/aggregates.sql (safe_ratio, exact_median, seconds_between);
    where each KPI's formula is: docs/kpi-definitions.md. -#}


{#- The first instant (UTC) of a business-time-zone month given as a date. -#}
{% macro business_month_start_at(month_date) -%}
    {{ from_business_time(month_date) }}
{%- endmacro %}


{#- The month (a date) whose start is the first month boundary at or after the UTC timestamp:
    for the (t - W, t] windows evaluated at month starts, an event at 00:00 on the 1st counts at
    that month's start, any later event at the next month's start. -#}
{% macro boundary_month(ts_utc) -%}
    case
        when {{ to_business_time(ts_utc) }} = cast({{ business_month(ts_utc) }} as {{ dbt.type_timestamp() }})
            then {{ business_month(ts_utc) }}
        else cast({{ dbt.dateadd('month', 1, business_month(ts_utc)) }} as date)
    end
{%- endmacro %}


{#- The marketing spend of a group of fct_marketing_spend rows, in RUB (no rate table yet: rows
    in other currencies are left out, as revenue). Null when the group has no RUB spend row: a
    month and channel without spend rows has unknown spend, not 0; only a spend row of 0 means
    "spent nothing" (kpi-definitions v1.1, D91). Shared by kpi_clv_cac_monthly and
    kpi_company_monthly, so cost per lead and both CACs read one rule. -#}
{% macro rub_marketing_spend(amount='amount', currency='currency') -%}
    sum(case when {{ currency }} = 'RUB' then {{ amount }} end)
{%- endmacro %}


{#- "Answered within the threshold", the numerator of service_level (kpi-definitions,
    "Telephony"): an inbound call answered with ring_seconds <= var
    service_level_threshold_seconds, on a row of fct_calls (its is_inbound and is_answered;
    `calls`: the relation's alias, if it must be named). A call whose source reports no ring
    time is not (null: counted as not in time). One rule, read by the scorecards' service level
    (int_telephony_measures_aggregated) and by marts.kpi_calls_hourly. Not a column of fct_calls:
    fct_calls is incremental and would keep the flag of the old threshold when the setting
    changes, where the month fingerprints (D11) rebuild every month's scorecard (D131). -#}
{% macro is_answered_in_time(calls=none) -%}
    {%- set prefix = calls ~ '.' if calls else '' -%}
    ({{ prefix }}is_inbound and {{ prefix }}is_answered and {{ prefix }}ring_seconds <= {{ var('service_level_threshold_seconds') }})
{%- endmacro %}
