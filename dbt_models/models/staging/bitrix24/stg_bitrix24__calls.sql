{#- One row per call of Bitrix24 telephony (voximplant.statistic.get), in the inbox calls'
    columns. direction from CALL_TYPE (docs/sources.md, "Bitrix24 call codes"): 1 outgoing and
    4 callback (a call Bitrix24 places to a client who asked to be called back, with a manager
    on the line) outbound; 2 incoming and 3 incoming with redirection inbound. 5
    (informational call: a robot playing a message, no manager) and any other code are no
    manager's call: they stay in raw and are left out here, counted in no KPI, talk time
    included (decision D104). status from CALL_FAILED_CODE: 200 answered, 486 busy, 304, 603
    and 603-S (missed, declined, cancelled) missed (inbound) / no_answer (outbound), others
    failed. talk_seconds: CALL_DURATION of an answered call; ring_seconds unknown.
    manager_extension: the extension of the call's user (stg_bitrix24__managers: internal
    number, else bitrix24:<id>). Calls are immutable (never deleted: deleted_at is null);
    `_last_loaded_at` is their load time. -#}

with

source as (
    {{ raw_source('bitrix24', 'calls', [
        'id', 'call_id', 'portal_user_id', 'portal_number', 'phone_number', 'call_type',
        'call_duration', 'call_start_date', 'call_failed_code',
    ]) }}
),

users_source as (
    {{ raw_source('bitrix24', 'users', ['id', 'uf_phone_inner']) }}
),

users as (
    select
        id,
        uf_phone_inner,
        {{ newest_version_rank(partition_by='id', load_order=['_loaded_at', '_batch_id']) }}
    from users_source
),

first_loaded as (
    select
        *,
        row_number() over (
            partition by coalesce(call_id, id)
            order by _loaded_at, _batch_id, {{ parse_integer('id') }}
        ) as load_rank
    from source
),

classified as (
    select
        first_loaded.*,
        case
            when first_loaded.call_type in ('1', '4') then 'outbound'
            when first_loaded.call_type in ('2', '3') then 'inbound'
        end as direction,
        users.uf_phone_inner
    from first_loaded
    left join users
        on first_loaded.portal_user_id = users.id
        and users.version_rank = 1
    where first_loaded.load_rank = 1
        -- 5 (informational robot call) and unknown types are no manager's call (D104)
        and first_loaded.call_type in ('1', '2', '3', '4')
),

final as (
    select
        ---------- ids
        'bitrix24:' || coalesce(call_id, id) as call_id,
        ---------- attributes
        direction,
        {{ normalize_phone('phone_number') }} as client_phone,
        phone_number as client_phone_raw,
        {{ bitrix24_extension('uf_phone_inner', 'portal_user_id') }} as manager_extension,
        portal_number as line,
        case
            when call_failed_code = '200' then 'answered'
            when call_failed_code = '486' then 'busy'
            when call_failed_code in ('304', '603', '603-S') and direction = 'inbound' then 'missed'
            when call_failed_code in ('304', '603', '603-S') then 'no_answer'
            else 'failed'
        end as status,
        ---------- numerics
        cast(null as {{ dbt.type_bigint() }}) as ring_seconds,
        case
            when call_failed_code = '200' then coalesce({{ parse_integer('call_duration') }}, 0)
            else 0
        end as talk_seconds,
        ---------- timestamps
        {{ parse_timestamp_utc('call_start_date') }} as started_at,
        ---------- deletion (D85): never (voximplant statistics are not deleted)
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        {{ api_load_metadata() }},
        _loaded_at as _last_loaded_at
    from classified
)

select * from final
