{#- The CRM hygiene measures of the scorecards (kpi-definitions, "CRM hygiene"), one row per
    scope, month and manager_id (scope `company`: manager_id null).
    overdue_tasks: activities of the manager with due_at in the month, by the as-of time, not
    completed by due_at (completed_at null or later).
    open_deals_without_next_task: deals open at the month's snapshot time (its end, or the as-of
    time in the as-of month: created by then and not closed by then), credited to the manager
    responsible for the deal at that time (int_deal_manager_periods), with no activity on the
    deal that existed then, was not completed then and is due after then. -#}

with

activities as (
    select * from {{ ref('fct_activities') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

deal_manager_periods as (
    select * from {{ ref('int_deal_manager_periods') }}
),

months as (
    select * from {{ ref('int_scorecard_months_listed') }}
),

overdue_activities as (
    select
        {{ business_month('due_at') }} as month,
        manager_id
    from activities
    where due_at <= {{ as_of() }}
        and created_at <= {{ as_of() }}
        and (completed_at is null or completed_at > due_at)
),

open_deals as (
    select
        months.month,
        months.snapshot_at,
        deals.deal_id
    from months
    inner join deals
        on deals.created_at <= months.snapshot_at
        and (deals.closed_at is null or deals.closed_at > months.snapshot_at)
),

deals_with_next_task as (
    select distinct
        open_deals.month,
        open_deals.deal_id
    from open_deals
    inner join activities
        on open_deals.deal_id = activities.deal_id
        and activities.created_at <= open_deals.snapshot_at
        and activities.due_at > open_deals.snapshot_at
        and (activities.completed_at is null or activities.completed_at > open_deals.snapshot_at)
),

open_deals_without_task as (
    select
        open_deals.month,
        deal_manager_periods.manager_id
    from open_deals
    left join deals_with_next_task
        on open_deals.month = deals_with_next_task.month
        and open_deals.deal_id = deals_with_next_task.deal_id
    left join deal_manager_periods
        on open_deals.deal_id = deal_manager_periods.deal_id
        and (deal_manager_periods.valid_from is null or deal_manager_periods.valid_from <= open_deals.snapshot_at)
        and (deal_manager_periods.valid_to is null or open_deals.snapshot_at < deal_manager_periods.valid_to)
    where deals_with_next_task.deal_id is null
),

-- counted per manager and for the company in one pass (grouping sets)
overdue_measures as (
    select
        case when grouping(manager_id) = 0 then 'manager' else 'company' end as scope,
        month,
        manager_id,
        count(*) as overdue_tasks
    from overdue_activities
    group by grouping sets ((month, manager_id), (month))
    -- events of no manager count for the company only
    having grouping(manager_id) = 1 or manager_id is not null
),

open_deal_measures as (
    select
        case when grouping(manager_id) = 0 then 'manager' else 'company' end as scope,
        month,
        manager_id,
        count(*) as open_deals_without_next_task
    from open_deals_without_task
    group by grouping sets ((month, manager_id), (month))
    -- events of no manager count for the company only
    having grouping(manager_id) = 1 or manager_id is not null
),

final as (
    {{ merge_measure_branches([
        ('overdue_measures', ['overdue_tasks']),
        ('open_deal_measures', ['open_deals_without_next_task']),
    ]) }}
)

select * from final
