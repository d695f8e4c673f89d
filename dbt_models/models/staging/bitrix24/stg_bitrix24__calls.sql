{#- One row per call of Bitrix24 telephony (voximplant.statistic.get), in the inbox calls'
    columns. direction from CALL_TYPE: 1 outbound, 2 inbound, 3 inbound with redirection,
    4 callback (outbound). status from CALL_FAILED_CODE: 200 answered, 486 busy, 304 and 603
    (not answered, declined) missed (inbound) / no_answer (outbound), others failed.
    talk_seconds: CALL_DURATION of an answered call; ring_seconds unknown. manager_extension:
    the extension of the call's user (stg_bitrix24__managers: internal number, else
    bitrix24:<id>). Calls are immutable: `_last_loaded_at` is their load time. -#}

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
        row_number() over (partition by id order by _loaded_at desc, _batch_id desc) as snapshot_rank
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
        case when first_loaded.call_type in ('2', '3') then 'inbound' else 'outbound' end as direction,
        users.uf_phone_inner
    from first_loaded
    left join users
        on first_loaded.portal_user_id = users.id
        and users.snapshot_rank = 1
    where first_loaded.load_rank = 1
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
            when call_failed_code in ('304', '603') and direction = 'inbound' then 'missed'
            when call_failed_code in ('304', '603') then 'no_answer'
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
        ---------- deletion (D85): Bitrix24 deletions: filled by the Bitrix24 source (D85)
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        {{ api_load_metadata() }},
        _loaded_at as _last_loaded_at
    from classified
)

select * from final
