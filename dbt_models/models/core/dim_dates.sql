{#- One row per date from 2015-01-01 to 2035-12-31: the Russian working-day calendar.
    A date is a working day when it is Monday to Friday, unless the seed ru_working_calendar
    lists it (holidays, transferred days off, working weekend days). Years the seed does not
    cover (before 2024, after 2027) get Mon-Fri less the fixed holidays of Labour Code art. 112,
    without transfers. calendar_quality says which: official (a year with its government decree:
    2024-2026), labour_code_only (2027: holidays and automatic transfers, no decree yet),
    fixed_holidays_only (outside the seed). -#}

with

calendar_exceptions as (
    select * from {{ ref('ru_working_calendar') }}
),

digits as (
    select digit_values.digit
    from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) as digit_values (digit)
),

day_numbers as (
    select
        thousands.digit * 1000 + hundreds.digit * 100 + tens.digit * 10 + units.digit
            as day_number
    from digits as thousands
    cross join digits as hundreds
    cross join digits as tens
    cross join digits as units
),

spine as (
    select
        cast({{ dbt.dateadd('day', 'day_number', "cast('2015-01-01' as date)") }} as date)
            as calendar_date
    from day_numbers
),

dates_in_range as (
    select * from spine
    where calendar_date <= cast('2035-12-31' as date)
),

covered_years as (
    -- a year with a government decree on transfers is official; without one (2027 so far) the
    -- seed holds the Labour Code's holidays and automatic transfers only
    select
        cast(extract(year from calendar_date) as {{ dbt.type_int() }}) as calendar_year,
        max(case when basis like 'decree%' then 1 else 0 end) = 1 as has_decree
    from calendar_exceptions
    group by 1
),

fixed_holidays as (
    -- Labour Code art. 112: used only for the years the seed does not cover
    select
        labour_code_holidays.holiday_month,
        labour_code_holidays.holiday_day,
        labour_code_holidays.holiday_name
    from (
        values
        (1, 1, 'Новогодние каникулы'),
        (1, 2, 'Новогодние каникулы'),
        (1, 3, 'Новогодние каникулы'),
        (1, 4, 'Новогодние каникулы'),
        (1, 5, 'Новогодние каникулы'),
        (1, 6, 'Новогодние каникулы'),
        (1, 7, 'Рождество Христово'),
        (1, 8, 'Новогодние каникулы'),
        (2, 23, 'День защитника Отечества'),
        (3, 8, 'Международный женский день'),
        (5, 1, 'Праздник Весны и Труда'),
        (5, 9, 'День Победы'),
        (6, 12, 'День России'),
        (11, 4, 'День народного единства')
    ) as labour_code_holidays (holiday_month, holiday_day, holiday_name)
),

date_parts as (
    select
        calendar_date,
        cast(extract(year from calendar_date) as {{ dbt.type_int() }}) as calendar_year,
        cast(extract(month from calendar_date) as {{ dbt.type_int() }}) as month_number,
        cast(extract(day from calendar_date) as {{ dbt.type_int() }}) as day_of_month,
        cast(extract(isodow from calendar_date) as {{ dbt.type_int() }}) as iso_weekday,
        cast({{ dbt.date_trunc('month', 'calendar_date') }} as date) as month
    from dates_in_range
),

classified as (
    select
        date_parts.*,
        date_parts.iso_weekday >= 6 as is_weekend,
        covered_years.calendar_year is not null as is_in_calendar_seed,
        covered_years.has_decree,
        calendar_exceptions.is_working_day as seed_is_working_day,
        calendar_exceptions.day_kind,
        calendar_exceptions.day_name,
        fixed_holidays.holiday_name as fixed_holiday_name
    from date_parts
    left join calendar_exceptions
        on date_parts.calendar_date = calendar_exceptions.calendar_date
    left join covered_years
        on date_parts.calendar_year = covered_years.calendar_year
    left join fixed_holidays
        on date_parts.month_number = fixed_holidays.holiday_month
        and date_parts.day_of_month = fixed_holidays.holiday_day
        and covered_years.calendar_year is null
),

working_days as (
    select
        *,
        case
            when seed_is_working_day is not null then seed_is_working_day
            when fixed_holiday_name is not null then false
            else not is_weekend
        end as is_working_day,
        case
            when day_kind = 'holiday' then day_name
            when fixed_holiday_name is not null then fixed_holiday_name
        end as holiday_name
    from classified
),

final as (
    select
        calendar_date,
        calendar_year,
        month,
        month_number,
        day_of_month,
        iso_weekday,
        is_weekend,
        is_working_day,
        holiday_name,
        -- holiday, transferred_day_off, working_weekend (from the seed), or null
        day_kind,
        day_name,
        sum(case when is_working_day then 1 else 0 end) over (partition by month)
            as working_days_in_month,
        case
            when has_decree then 'official'
            when is_in_calendar_seed then 'labour_code_only'
            else 'fixed_holidays_only'
        end as calendar_quality
    from working_days
)

select * from final
