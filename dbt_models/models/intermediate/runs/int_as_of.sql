{#- The run's as-of time, one row (read through the macro as_of()). var as_of when set (ISO 8601;
    naive = business time zone), otherwise the latest event timestamp in the data: the latest of
    deals created/closed/updated, calls started, stage changes, activities and requests created,
    completed, resolved or updated, and survey responses. Due dates are plans, not events, and do
    not count. A table: every mart reads it and the maximum over the calls should be taken once.
    Null when the warehouse holds no event and no var is set. -#}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

calls as (
    select * from {{ ref('fct_calls') }}
),

stage_changes as (
    select * from {{ ref('fct_deal_stage_changes') }}
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

event_times as (
    select max(created_at) as event_at from deals
    union all
    select max(closed_at) from deals
    union all
    select max(updated_at) from deals
    union all
    select max(started_at) from calls
    union all
    select max(changed_at) from stage_changes
    union all
    select max(created_at) from activities
    union all
    select max(completed_at) from activities
    union all
    select max(updated_at) from activities
    union all
    select max(created_at) from requests
    union all
    select max(first_response_at) from requests
    union all
    select max(resolved_at) from requests
    union all
    select max(updated_at) from requests
    union all
    select max(responded_at) from survey_responses
),

latest_event as (
    select max(event_at) as latest_event_at
    from event_times
),

final as (
    select
        coalesce({{ as_of_var() }}, latest_event_at) as as_of_at,
        latest_event_at,
        case
            when {{ as_of_var() }} is not null then 'var'
            else 'latest_event'
        end as as_of_source
    from latest_event
)

select * from final
