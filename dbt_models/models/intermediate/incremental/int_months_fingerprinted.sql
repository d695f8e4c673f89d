{#- One row per month with the fingerprint of everything the month-incremental marts read for
    it (macros/month_incremental.sql, docs/decisions.md D11): every fact row (all its columns)
    hashed into each month it counts in (a deal in the months it was created and closed and in
    which its stage changed, a call in the month it started, an activity in the months it was
    created, due and completed, ...); the dimensions and the settings (one hash shared by all
    months: a change rebuilds everything); the as-of time in the as-of month.

    Rows are placed by their UTC month (`date_trunc`, no time-zone conversion of millions of
    timestamps): a business month differs from it by at most one month, which the marts absorb
    by rebuilding from two months before the first changed one. A table, built once per run.

    The calls' count and hash sum per month are kept in the table's rows and hashed again only
    for the months whose calls may have changed since (macros/months_written.sql, D415). -#}

{{
    config(
        post_hook=["{{ clear_months_written() }}"]
    )
}}

{%- set calls_hashed_by_now = calls_hashed_by() if execute else '' %}
{%- set calls_months = calls_months_to_hash(calls_hashed_by_now) %}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

stage_changes as (
    select * from {{ ref('fct_deal_stage_changes') }}
),

calls as (
    select * from {{ ref('fct_calls') }}
),

activities as (
    select * from {{ ref('fct_activities') }}
),

requests as (
    select * from {{ ref('fct_requests') }}
),

survey_responses as (
    select * from {{ ref('fct_survey_responses') }}
),

managers as (
    select * from {{ ref('dim_managers') }}
),

pipeline_stages as (
    select * from {{ ref('dim_pipeline_stages') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

-- each row hashed once (`materialized`: read by several of the unions below, a CTE inlined
-- into each would hash every row again, D362)
deal_rows as materialized (
    select
        deals.deal_id,
        deals.created_at,
        deals.closed_at,
        {{ row_hash('deals') }} as row_hash
    from deals
),

stage_change_rows as materialized (
    select
        stage_changes.deal_id,
        stage_changes.changed_at,
        {{ row_hash('stage_changes') }} as row_hash
    from stage_changes
),

activity_rows as materialized (
    select
        activities.created_at,
        activities.due_at,
        activities.completed_at,
        {{ row_hash('activities') }} as row_hash
    from activities
),

request_rows as materialized (
    select
        requests.created_at,
        requests.first_response_at,
        requests.resolved_at,
        {{ row_hash('requests') }} as row_hash
    from requests
),

attributed as (
    select
        {{ utc_month('created_at') }} as month,
        row_hash
    from deal_rows
    union all
    select
        {{ utc_month('closed_at') }},
        row_hash
    from deal_rows
    where closed_at is not null
    union all
    select
        {{ utc_month('changed_at') }},
        row_hash
    from stage_change_rows
    union all
    -- the deal's creation month: funnel cohorts count a stage in the month the deal was created
    select
        {{ utc_month('deal_rows.created_at') }},
        stage_change_rows.row_hash
    from stage_change_rows
    inner join deal_rows
        on stage_change_rows.deal_id = deal_rows.deal_id
    union all
    select
        {{ utc_month('created_at') }},
        row_hash
    from activity_rows
    union all
    select
        {{ utc_month('due_at') }},
        row_hash
    from activity_rows
    where due_at is not null
    union all
    select
        {{ utc_month('completed_at') }},
        row_hash
    from activity_rows
    where completed_at is not null
    union all
    select
        {{ utc_month('created_at') }},
        row_hash
    from request_rows
    union all
    select
        {{ utc_month('first_response_at') }},
        row_hash
    from request_rows
    where first_response_at is not null
    union all
    select
        {{ utc_month('resolved_at') }},
        row_hash
    from request_rows
    where resolved_at is not null
    union all
    select
        {{ utc_month('responded_at') }},
        {{ row_hash('survey_responses') }}
    from survey_responses
),

-- the calls per month: every month hashed again, or the kept sums of the months no call
-- entered or left since and those of the others hashed again (D415)
call_months as (
    {%- if calls_months == 'all' %}
    select
        {{ utc_month('started_at') }} as month,
        count(*) as row_count,
        sum({{ row_hash('calls') }}) as hash_sum
    from calls
    where started_at is not null
    group by 1
    {%- else %}
    select
        month,
        calls_row_count as row_count,
        calls_hash_sum as hash_sum
    from {{ this }}
    where calls_row_count > 0
        {%- if calls_months %}
        and month not in (
            {%- for month in calls_months %}
            cast('{{ month }}' as date){% if not loop.last %},{% endif %}
            {%- endfor %}
        )
        {%- endif %}
    union all
    select
        {{ utc_month('started_at') }} as month,
        count(*) as row_count,
        sum({{ row_hash('calls') }}) as hash_sum
    from calls
    {%- if calls_months %}
    -- ranges on the column itself, which the scan can skip by
    where started_at >= cast('{{ calls_months[0] }}' as timestamp)
        and started_at < cast('{{ calls_months[-1] }}' as timestamp) + interval '1 month'
        and (
            {%- for month in calls_months %}
            (
                started_at >= cast('{{ month }}' as timestamp)
                and started_at < cast('{{ month }}' as timestamp) + interval '1 month'
            ){% if not loop.last %} or{% endif %}
            {%- endfor %}
        )
    {%- else %}
    where 1 = 0
    {%- endif %}
    group by 1
    {%- endif %}
),

monthly as (
    select
        month,
        sum(row_count) as row_count,
        sum(hash_sum) as hash_sum
    from (
        select
            month,
            count(*) as row_count,
            sum(row_hash) as hash_sum
        from attributed
        where month is not null
        group by 1
        union all
        select
            month,
            row_count,
            hash_sum
        from call_months
    ) as parts
    group by 1
),

dimensions as (
    select
        'managers' as dimension,
        {{ row_hash('managers') }} as row_hash
    from managers
    union all
    select
        'pipeline_stages' as dimension,
        {{ row_hash('pipeline_stages') }} as row_hash
    from pipeline_stages
    union all
    select
        'dates' as dimension,
        {{ row_hash('dates') }} as row_hash
    from dates
),

shared as (
    select
        md5(concat_ws(
            '|',
            -- the settings that change results (macros/build_digest.sql) and the run's bounds
            '{{ settings_digest() }}',
            '{{ var("as_of", "") }}',
            '{{ var("min_date") }}',
            '{{ var("max_date") }}',
            cast(count(*) as {{ dbt.type_string() }}),
            cast(sum(row_hash) as {{ dbt.type_string() }})
        )) as fingerprint
    from dimensions
),

bounds as (
    select
        min(monthly.month) as first_month,
        max(monthly.month) as last_month,
        max({{ business_month('as_of.as_of_at') }}) as as_of_month,
        max(as_of.as_of_at) as as_of_at
    from monthly
    cross join as_of
),

months as (
    select distinct dates.month
    from dates
    inner join bounds
        on dates.month >= bounds.first_month
        and (dates.month <= bounds.last_month or dates.month <= bounds.as_of_month)
),

final as (
    select
        months.month,
        md5(concat_ws(
            '|',
            shared.fingerprint,
            cast(coalesce(monthly.row_count, 0) as {{ dbt.type_string() }}),
            cast(coalesce(monthly.hash_sum, 0) as {{ dbt.type_string() }}),
            case
                when months.month = bounds.as_of_month
                    then cast(bounds.as_of_at as {{ dbt.type_string() }})
            end
        )) as fingerprint,
        coalesce(call_months.row_count, 0) as calls_row_count,
        coalesce(call_months.hash_sum, 0) as calls_hash_sum,
        '{{ calls_hashed_by_now }}' as calls_hashed_by
    from months
    cross join shared
    cross join bounds
    left join monthly
        on months.month = monthly.month
    left join call_months
        on months.month = call_months.month
)

select * from final
