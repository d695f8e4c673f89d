{#- One row per (month, manager_id): the sum of the manager's bonus lines of the month
    (kpi-definitions: "with several KPIs compute each and add them"). Open months: from the lines
    the current data gives; closed months: the statements frozen by `voronka close-period`
    (finance_ledger.closed_bonus_statements), with closed_at. Name and team: the manager's
    version at the month's end (int_bonus_lines_computed; macros/managers.sql). An open month's
    statement with a held line (D86) has no bonus_amount and says why in hold_reason. -#}

with

computed_lines as (
    select * from {{ ref('int_bonus_lines_computed') }}
),

closed_statements as (
    select * from {{ ref('stg_finance_ledger__closed_bonus_statements') }}
),

periods as (
    select * from {{ ref('int_finance_periods_classified') }}
),

closed_periods as (
    select * from periods
    where period_status = 'closed'
),

open_month_statements as (
    select
        computed_lines.month,
        computed_lines.manager_id,
        computed_lines.manager_name,
        computed_lines.team,
        count(*) as lines,
        -- a held line holds the statement: no total from a guess (D86)
        case
            when count(computed_lines.hold_reason) = 0 then sum(computed_lines.bonus_amount)
        end as bonus_amount,
        'open' as period_status,
        cast(null as {{ dbt.type_timestamp() }}) as closed_at,
        case
            when count(computed_lines.hold_reason) > 0
                then cast(count(computed_lines.hold_reason) as {{ dbt.type_string() }})
                    || ' of its lines held back by conflicting input rows (finance.bonus_lines.hold_reason)'
        end as hold_reason
    from computed_lines
    left join closed_periods
        on computed_lines.month = closed_periods.month
    where closed_periods.month is null
    group by 1, 2, 3, 4
),

closed_month_statements as (
    select
        closed_statements.month,
        closed_statements.manager_id,
        closed_statements.manager_name,
        closed_statements.team,
        closed_statements.lines,
        closed_statements.bonus_amount,
        'closed' as period_status,
        closed_statements.closed_at,
        cast(null as {{ dbt.type_string() }}) as hold_reason
    from closed_statements
    inner join closed_periods
        on closed_statements.month = closed_periods.month
        and closed_statements.close_event_id = closed_periods.close_event_id
),

unioned as (
    select * from open_month_statements
    union all
    select * from closed_month_statements
),

final as (
    select
        month,
        manager_id,
        cast(manager_name as {{ dbt.type_string() }}) as manager_name,
        cast(team as {{ dbt.type_string() }}) as team,
        cast(lines as {{ dbt.type_int() }}) as lines,
        cast(bonus_amount as decimal(18, 2)) as bonus_amount,
        cast(period_status as {{ dbt.type_string() }}) as period_status,
        cast(closed_at as {{ dbt.type_timestamp() }}) as closed_at,
        cast(hold_reason as {{ dbt.type_string() }}) as hold_reason
    from unioned
)

select * from final
