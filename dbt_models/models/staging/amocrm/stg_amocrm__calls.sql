{#- One row per call logged in amoCRM by a telephony integration (call_in / call_out notes of
    leads, contacts, companies and customers), in the inbox calls' columns. A call logged on
    several entities has one params.uniq: it counts once (call_id amocrm:<uniq>; the first loaded
    note wins). status from params.call_status, amoCRM's codes (docs/sources.md, D95): somebody
    picked up on 2 (call back later), 3 (the person asked for is not there) and 4 (conversation):
    answered; 7 busy; 5 (wrong number) failed; 1 (a voice message was left) and 6 (not reached)
    missed (inbound) / no_answer (outbound); no status or 8 (undefined): answered when it has a
    duration, else missed / no_answer. talk_seconds: params.duration of an answered call;
    ring_seconds unknown.
    started_at: the note's creation (amoCRM keeps no call start). manager_extension: the
    note's responsible user (amocrm:<id>, the extension stg_amocrm__managers gives a user). -#}

with

source as (
    {{ raw_source('amocrm', 'call_notes', [
        'id', 'entity_type', 'entity_id', 'note_type', 'responsible_user_id', 'created_at',
        'params',
    ]) }}
),

notes as (
    select
        coalesce({{ json_text('params', ['uniq']) }}, entity_type || ':' || id) as call_key,
        case note_type when 'call_in' then 'inbound' when 'call_out' then 'outbound' end as direction,
        {{ json_text('params', ['phone']) }} as client_phone,
        {{ json_text('params', ['call_status']) }} as call_status,
        {{ parse_integer(json_text('params', ['duration'])) }} as duration_seconds,
        responsible_user_id,
        created_at,
        _source,
        _loaded_at,
        _batch_id
    from source
    where note_type in ('call_in', 'call_out')
),

ranked as (
    select
        *,
        max(_loaded_at) over (partition by call_key) as _last_loaded_at,
        row_number() over (
            partition by call_key
            order by _loaded_at, _batch_id, created_at
        ) as load_rank
    from notes
),

classified as (
    select
        *,
        case
            when call_status in ('2', '3', '4') then 'answered'
            when call_status = '7' then 'busy'
            when call_status = '5' then 'failed'
            when call_status in ('1', '6') then case direction when 'inbound' then 'missed' else 'no_answer' end
            when duration_seconds > 0 then 'answered'
            when direction = 'inbound' then 'missed'
            else 'no_answer'
        end as status
    from ranked
    where load_rank = 1
),

final as (
    select
        ---------- ids
        'amocrm:' || call_key as call_id,
        ---------- attributes
        direction,
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        {{ namespaced_id('amocrm', 'responsible_user_id') }} as manager_extension,
        cast(null as {{ dbt.type_string() }}) as line,
        status,
        ---------- numerics
        cast(null as {{ dbt.type_bigint() }}) as ring_seconds,
        case when status = 'answered' then coalesce(duration_seconds, 0) else 0 end as talk_seconds,
        ---------- timestamps
        {{ epoch_to_timestamp('created_at') }} as started_at,
        ---------- deletion (D85): amoCRM deletions: filled by the amoCRM source (D85)
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        {{ api_load_metadata() }},
        _last_loaded_at
    from classified
)

select * from final
