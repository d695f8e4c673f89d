{#- The telephony measures of the scorecards (kpi-definitions, "Telephony"), one row per scope,
    month and manager_id: scope `manager` per manager credited through the extension
    (fct_calls.manager_id; calls of no manager left out), scope `company` (manager_id null) over
    all calls of all lines, with the service level (inbound answered within
    var service_level_threshold_seconds of ring, macros/kpi_math.sql is_answered_in_time /
    inbound). Calls started by the as-of time. -#}

with

calls as (
    select * from {{ ref('fct_calls') }}
),

known_calls as (
    select * from calls
    where started_at <= {{ as_of() }}
),

-- one pass, grouped by month and manager and by month alone (grouping sets)
aggregated as (
    select
        case when grouping(manager_id) = 0 then 'manager' else 'company' end as scope,
        call_month as month,
        manager_id,
        sum(case when is_outbound then 1 else 0 end) as calls_outbound,
        sum(case when is_inbound then 1 else 0 end) as calls_inbound,
        sum(
            case
                when is_answered and talk_seconds > {{ var('successful_call_min_seconds') }} then 1
                else 0
            end
        ) as successful_calls,
        sum(case when is_answered then talk_seconds else 0 end) / 60.0 as talk_minutes,
        sum(case when is_inbound and not is_answered then 1 else 0 end) as missed_inbound,
        -- macros/kpi_math.sql: the one "answered within the threshold" rule
        sum(case when {{ is_answered_in_time() }} then 1 else 0 end) as inbound_answered_in_time
    from known_calls
    group by grouping sets ((call_month, manager_id), (call_month))
),

final as (
    select
        scope,
        month,
        manager_id,
        calls_outbound,
        calls_inbound,
        successful_calls,
        cast(talk_minutes as decimal(18, 6)) as talk_minutes,
        {{ safe_ratio('missed_inbound', 'calls_inbound') }} as missed_call_rate,
        {{ safe_ratio('inbound_answered_in_time', 'calls_inbound') }} as service_level
    from aggregated
    -- calls of no manager count for the company only
    where scope = 'company' or manager_id is not null
)

select * from final
