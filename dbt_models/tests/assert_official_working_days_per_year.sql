{#- The production calendars' published totals of working days: 2024 248, 2025 247, 2026 247.
    A wrong or missing row of the seed ru_working_calendar changes one of them. -#}

with

dates as (
    select * from {{ ref('dim_dates') }}
),

published as (
    select
        decrees.calendar_year,
        decrees.working_days
    from (values (2024, 248), (2025, 247), (2026, 247)) as decrees (calendar_year, working_days)
),

counted as (
    select
        calendar_year,
        sum(case when is_working_day then 1 else 0 end) as working_days
    from dates
    group by 1
),

final as (
    select
        published.calendar_year,
        published.working_days as published_working_days,
        counted.working_days
    from published
    left join counted
        on published.calendar_year = counted.calendar_year
    where counted.working_days is null
        or counted.working_days <> published.working_days
)

select * from final
