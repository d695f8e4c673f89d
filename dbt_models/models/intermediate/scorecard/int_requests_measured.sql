{#- One row per request created by the as-of time, with what the service measures need
    (kpi-definitions, "Service and surveys"): its response and resolution by the as-of time, the
    minutes to the first response, the hours to resolution, and the answered calls with the
    client's phone between created_at and resolved_at (calls of the request's client; a request
    with no known client: calls with its normalised phone). A resolved request with at most one
    such call is a first-call resolution. -#}

with

requests as (
    select * from {{ ref('fct_requests') }}
),

calls as (
    select * from {{ ref('fct_calls') }}
),

known_requests as (
    select
        request_id,
        manager_id,
        client_id,
        client_phone,
        is_complaint,
        created_at,
        case when first_response_at <= {{ as_of() }} then first_response_at end as first_response_at,
        case when resolved_at <= {{ as_of() }} then resolved_at end as resolved_at
    from requests
    where created_at <= {{ as_of() }}
),

answered_calls as (
    select
        client_id,
        client_phone,
        started_at
    from calls
    where is_answered
),

calls_by_client as (
    select
        known_requests.request_id,
        count(*) as answered_calls
    from known_requests
    inner join answered_calls
        on known_requests.client_id = answered_calls.client_id
        and answered_calls.started_at >= known_requests.created_at
        and answered_calls.started_at <= known_requests.resolved_at
    where known_requests.client_id is not null
    group by 1
),

calls_by_phone as (
    select
        known_requests.request_id,
        count(*) as answered_calls
    from known_requests
    inner join answered_calls
        on known_requests.client_phone = answered_calls.client_phone
        and answered_calls.started_at >= known_requests.created_at
        and answered_calls.started_at <= known_requests.resolved_at
    where known_requests.client_id is null
    group by 1
),

final as (
    select
        ---------- ids
        known_requests.request_id,
        known_requests.manager_id,
        -- a complaint from an unknown client counts as one client of its own
        coalesce(known_requests.client_id, 'request:' || known_requests.request_id) as client_key,
        known_requests.is_complaint,
        ---------- created
        {{ business_month('known_requests.created_at') }} as created_month,
        known_requests.first_response_at is not null as has_response,
        {{ seconds_between('known_requests.created_at', 'known_requests.first_response_at') }} / 60.0
            as first_response_minutes,
        ---------- resolved (null unless resolved by the as-of time)
        {{ business_month('known_requests.resolved_at') }} as resolved_month,
        {{ seconds_between('known_requests.created_at', 'known_requests.resolved_at') }} / 3600.0
            as resolution_hours,
        case
            when known_requests.resolved_at is not null
                then coalesce(calls_by_client.answered_calls, calls_by_phone.answered_calls, 0)
        end as answered_calls,
        case
            when known_requests.resolved_at is not null
                then coalesce(calls_by_client.answered_calls, calls_by_phone.answered_calls, 0) <= 1
        end as is_first_call_resolution
    from known_requests
    left join calls_by_client
        on known_requests.request_id = calls_by_client.request_id
    left join calls_by_phone
        on known_requests.request_id = calls_by_phone.request_id
)

select * from final
