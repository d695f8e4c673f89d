{#- Month-boundary helpers of the churn and CLV marts (DuckDB and PostgreSQL alike). Ratios,
    medians and durations use macros/aggregates.sql (safe_ratio, exact_median, seconds_between). -#}


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
