{#- The service and survey measures of the scorecards (kpi-definitions, "Service and surveys"),
    one row per scope, month and manager_id: scope `manager` per manager the request is assigned
    to or the survey response is credited to (fct_survey_responses.credited_manager_id), scope
    `company` (manager_id null) over all requests and responses, those credited to no one too.
    Requests by the month they were created (requests, complaint_rate_pct,
    first_response_minutes) or resolved (resolution_hours, first_call_resolution_rate);
    responses by the month of responded_at. Events by the as-of time. Each formula is written
    once below for both scopes: the counts are grouped by month and manager and by month alone
    in one pass (grouping sets). -#}

with

requests as (
    select * from {{ ref('int_requests_measured') }}
),

survey_responses as (
    select * from {{ ref('fct_survey_responses') }}
),

known_responses as (
    select
        {{ business_month('responded_at') }} as responded_month,
        credited_manager_id,
        survey_type,
        score,
        is_promoter,
        is_detractor,
        is_satisfied
    from survey_responses
    where responded_at <= {{ as_of() }}
),

-- requests by the month they were created, per assigned manager and for the company
created_measures as (
    select
        scope,
        month,
        manager_id,
        requests,
        -- clients over requests, as the source states it ([003:L39]; kpi-definitions decision)
        {{ safe_ratio('100 * complaining_clients', 'requests') }} as complaint_rate_pct,
        cast(first_response_minutes as decimal(18, 6)) as first_response_minutes
    from (
        select
            case when grouping(manager_id) = 0 then 'manager' else 'company' end as scope,
            created_month as month,
            manager_id,
            count(*) as requests,
            count(distinct case when is_complaint then client_key end) as complaining_clients,
            {{ exact_median('first_response_minutes') }} as first_response_minutes
        from requests
        group by grouping sets ((created_month, manager_id), (created_month))
    ) as created_aggregates
    where scope = 'company' or manager_id is not null
),

-- requests by the month they were resolved
resolved_measures as (
    select
        scope,
        month,
        manager_id,
        cast(resolution_hours as decimal(18, 6)) as resolution_hours,
        {{ safe_ratio('first_call_resolutions', 'requests_resolved') }} as first_call_resolution_rate
    from (
        select
            case when grouping(manager_id) = 0 then 'manager' else 'company' end as scope,
            resolved_month as month,
            manager_id,
            count(*) as requests_resolved,
            {{ exact_median('resolution_hours') }} as resolution_hours,
            sum(case when is_first_call_resolution then 1 else 0 end) as first_call_resolutions
        from requests
        where resolved_month is not null
        group by grouping sets ((resolved_month, manager_id), (resolved_month))
    ) as resolved_aggregates
    where scope = 'company' or manager_id is not null
),

-- survey responses by the month of responded_at, per credited manager
survey_measures as (
    select
        scope,
        month,
        manager_id,
        {{ safe_ratio('100 * (promoters - detractors)', 'nps_responses') }} as nps,
        nps_responses,
        {{ safe_ratio('csat_score_sum', 'csat_responses') }} as csat_avg,
        {{ safe_ratio('csat_satisfied', 'csat_responses') }} as csat_satisfied_share
    from (
        select
            case when grouping(credited_manager_id) = 0 then 'manager' else 'company' end as scope,
            responded_month as month,
            credited_manager_id as manager_id,
            sum(case when survey_type = 'nps' then 1 else 0 end) as nps_responses,
            sum(case when survey_type = 'nps' and is_promoter then 1 else 0 end) as promoters,
            sum(case when survey_type = 'nps' and is_detractor then 1 else 0 end) as detractors,
            sum(case when survey_type = 'csat' then 1 else 0 end) as csat_responses,
            sum(case when survey_type = 'csat' then score else 0 end) as csat_score_sum,
            sum(case when survey_type = 'csat' and is_satisfied then 1 else 0 end) as csat_satisfied
        from known_responses
        group by grouping sets ((responded_month, credited_manager_id), (responded_month))
    ) as survey_aggregates
    where scope = 'company' or manager_id is not null
),

final as (
    {{ merge_measure_branches([
        ('created_measures', ['requests', 'complaint_rate_pct', 'first_response_minutes']),
        ('resolved_measures', ['resolution_hours', 'first_call_resolution_rate']),
        ('survey_measures', ['nps', 'nps_responses', 'csat_avg', 'csat_satisfied_share']),
    ]) }}
)

select * from final
