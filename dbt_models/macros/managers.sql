{#- The manager's version at the end of a month (kpi-definitions, "Attribution": a month's
    team, role and name are the manager's version valid at its end). One rule, read by the
    manager scorecard (marts.kpi_manager_monthly) and the bonus lines
    (int_bonus_lines_computed), where the role decides the KPI weights. -#}


{#- The CTEs `month_ends`, `versions_ranked` and `versions_at_month_end` (one row per row of
    `keys`, a CTE of distinct month and manager_id: full_name, team, role): the
    dim_managers version (`managers`, a CTE) with the latest valid_from before the month's end
    (the next month's first instant in the business time zone), else the manager's first
    version. A manager_id unknown to dim_managers gets no row. -#}
{% macro manager_versions_at_month_end(keys='keys', managers='managers') -%}
month_ends as (
    select
        month,
        manager_id,
        {{ business_month_start_at(dbt.dateadd('month', 1, 'month')) }} as month_end_at
    from {{ keys }}
),

versions_ranked as (
    select
        month_ends.month,
        month_ends.manager_id,
        {{ managers }}.full_name,
        {{ managers }}.team,
        {{ managers }}.role,
        row_number() over (
            partition by month_ends.month, month_ends.manager_id
            order by
                case when {{ managers }}.valid_from < month_ends.month_end_at then 0 else 1 end,
                case when {{ managers }}.valid_from < month_ends.month_end_at then {{ managers }}.valid_from end desc,
                {{ managers }}.version_number
        ) as version_rank
    from month_ends
    inner join {{ managers }}
        on month_ends.manager_id = {{ managers }}.manager_id
),

versions_at_month_end as (
    select
        month,
        manager_id,
        full_name,
        team,
        role
    from versions_ranked
    where version_rank = 1
)
{%- endmacro %}
