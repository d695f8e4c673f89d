{{
    config(
        materialized='incremental',
        unique_key='call_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_all_rows_if_removed() }}",
        post_hook="{{ keep_removals_seen() }}"
    )
}}

{#- Call-centre figures per line, date and hour of started_at in the business time zone
    (kpi-definitions, Telephony, kpi_calls_hourly). A call without a line is keyed '(none)'.
    A row exists for every line-hour with a call of either direction (an hour with outbound calls
    only has offered = 0 and null ratios).

    callback_within_1h_rate (kpi-definitions v1.1, "Followed within 60 minutes"; D90): a missed
    inbound call (inbound, not answered) is called back when an outbound call (any line, any
    manager) to the same normalised phone starts strictly after the missed call's ringing ended
    (ring_ended_at = started_at + ring_seconds) and at most var callback_window_minutes after that
    moment; a call dialled while the missed call was still ringing is not a callback. A missed
    call whose source does not report ring_seconds (amoCRM, Bitrix24) stopped ringing at
    started_at for this rule (D90). No join on phone: the missed and outbound calls of a phone are
    sorted once, a missed call at its ring_ended_at and an outbound call at its started_at, and
    the first outbound call after each missed call is a window minimum over the following rows
    (an outbound call at the same instant as the ring end sorts before the missed call and does
    not count), so a phone with thousands of calls costs a sort, not a product. A missed call
    from a hidden number (null phone) counts in the denominator and is never called back.

    Incremental by call_date (delete+insert): a run recomputes the dates of the calls loaded, or
    deleted in their source (D85), since the newest _last_loaded_at in this table (fct_calls'
    load time, never the wall clock), plus the dates of the missed calls such an outbound call
    may call back (same phone, ringing ended within the callback window before it). After raw
    rows were removed, every date is rebuilt (a removed call leaves no row to find its date by;
    macros/removals.sql, D205). A full refresh gives the same rows. Not limited by as-of: every
    loaded call counts. -#}

-- depends_on: {{ ref('int_calls__unioned') }}

with

-- not materialized: read more than once; DuckDB (and PostgreSQL) would otherwise copy the
-- whole table into a temporary result first instead of scanning it with each reader's filters
calls as not materialized (
    select
        *,
        -- the moment the call stopped ringing; the one place of the callback rule's start (D90)
        {{ dbt.dateadd('second', 'coalesce(ring_seconds, 0)', 'started_at') }} as ring_ended_at
    from {{ ref('fct_calls') }}
),

{%- set rebuild_all = removed_since_build() %}
{% if is_incremental() and not rebuild_all %}
{%- set watermark = loaded_watermark() %}
new_calls as (
    -- the calls loaded since, and the calls deleted since (D85): a deleted call has left
    -- fct_calls, but the hours it counted in, and the missed calls it called back, change
    select
        call_date,
        direction,
        client_phone,
        started_at
    from calls
    where _last_loaded_at > {{ watermark }}
    union all
    select
        {{ business_date('started_at') }} as call_date,
        direction,
        client_phone,
        started_at
    from {{ ref('int_calls__unioned') }}
    where deleted_at is not null
        and _last_loaded_at > {{ watermark }}
),

changed_dates as (
    select call_date from new_calls
    union
    -- the missed calls a new (or deleted) outbound call may call back (the rule: called_back)
    select missed_calls.call_date
    from new_calls
    inner join calls as missed_calls
        on new_calls.client_phone = missed_calls.client_phone
    where new_calls.direction = 'outbound'
        and missed_calls.direction = 'inbound'
        and not missed_calls.is_answered
        and missed_calls.ring_ended_at < new_calls.started_at
        and (
            new_calls.started_at
            <= {{ dbt.dateadd('minute', var('callback_window_minutes'), 'missed_calls.ring_ended_at') }}
        )
),
{% endif %}

scoped_calls as (
    select * from calls
    {% if is_incremental() and not rebuild_all %}
    where call_date in (select call_date from changed_dates)
    {% endif %}
),

scoped_missed_calls as (
    select
        call_id,
        client_phone,
        ring_ended_at
    from scoped_calls
    where direction = 'inbound'
        and not is_answered
        and client_phone is not null
),

phone_calls as (
    -- the scoped missed calls at the end of their ringing and the outbound calls of their
    -- phones from the first of those moments on, each at its started_at
    select
        call_id,
        client_phone,
        ring_ended_at as event_at,
        'inbound' as direction
    from scoped_missed_calls
    union all
    select
        calls.call_id,
        calls.client_phone,
        calls.started_at as event_at,
        calls.direction
    from calls
    where calls.direction = 'outbound'
        and calls.client_phone in (select client_phone from scoped_missed_calls)
        and calls.started_at >= (select min(ring_ended_at) from scoped_missed_calls)
),

next_outbound as (
    select
        call_id,
        direction,
        event_at,
        -- strictly after the ring end: an outbound call at the same instant sorts before it
        min(case when direction = 'outbound' then event_at end) over (
            partition by client_phone
            order by event_at, case when direction = 'outbound' then 0 else 1 end, call_id
            rows between current row and unbounded following
        ) as next_outbound_at
    from phone_calls
),

called_back as (
    select call_id
    from next_outbound
    where direction = 'inbound'
        and (
            next_outbound_at
            <= {{ dbt.dateadd('minute', var('callback_window_minutes'), 'event_at') }}
        )
),

classified as (
    select
        coalesce(scoped_calls.line, '(none)') as line,
        scoped_calls.call_date,
        scoped_calls.call_hour,
        scoped_calls.is_inbound,
        scoped_calls.is_answered,
        -- macros/kpi_math.sql: the one "answered within the threshold" rule
        {{ is_answered_in_time('scoped_calls') }} as is_answered_in_time,
        scoped_calls.is_inbound and not scoped_calls.is_answered as is_missed,
        called_back.call_id is not null as is_called_back,
        scoped_calls.ring_seconds,
        scoped_calls.talk_seconds,
        scoped_calls._last_loaded_at
    from scoped_calls
    left join called_back
        on scoped_calls.call_id = called_back.call_id
),

aggregated as (
    select
        line,
        call_date,
        call_hour,
        sum(case when is_inbound then 1 else 0 end) as offered,
        sum(case when is_inbound and is_answered then 1 else 0 end) as answered,
        sum(case when is_missed then 1 else 0 end) as missed,
        sum(case when is_answered_in_time then 1 else 0 end) as answered_in_time,
        {{ exact_mean('case when is_inbound and is_answered then ring_seconds end') }} as avg_ring_seconds,
        sum(case when is_answered then talk_seconds else 0 end) / 60.0 as talk_minutes,
        sum(case when is_missed and is_called_back then 1 else 0 end) as called_back,
        max(_last_loaded_at) as _last_loaded_at
    from classified
    group by 1, 2, 3
),

final as (
    select
        ---------- keys
        cast(line as {{ dbt.type_string() }}) as line,
        cast(call_date as date) as call_date,
        cast(call_hour as {{ dbt.type_int() }}) as call_hour,
        ---------- counts
        cast(offered as {{ dbt.type_int() }}) as offered,
        cast(answered as {{ dbt.type_int() }}) as answered,
        cast(missed as {{ dbt.type_int() }}) as missed,
        ---------- rates and durations
        {{ safe_ratio('answered_in_time', 'offered') }} as service_level,
        cast(avg_ring_seconds as decimal(18, 6)) as avg_ring_seconds,
        cast(talk_minutes as decimal(18, 6)) as talk_minutes,
        {{ safe_ratio('called_back', 'missed') }} as callback_within_1h_rate,
        ---------- load metadata: the newest load of the hour's calls (the incremental watermark)
        cast(_last_loaded_at as {{ dbt.type_timestamp() }}) as _last_loaded_at
    from aggregated
)

select * from final
