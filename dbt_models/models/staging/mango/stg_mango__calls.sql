{#- One row per Mango Office call (the legs of one entry_id), in the inbox calls' columns.
    Mango's statistics give one line per leg: an inbound call that rang several extensions has
    a leg per extension, and the caller's time in the voice menu or the queue is a leg with no
    extension. The call is its answered leg, else its first leg that rang an extension, else its
    first. direction: a leg from an extension to an outside number is outbound, from an outside
    number to an extension inbound, and from an outside number to no extension (abandoned in the
    voice menu or the queue before any employee) inbound too: a missed call on the line with no
    manager (D95); internal calls (extension to extension) are not client calls and are left out.
    status: answered when `answer` is set, else missed (inbound) / no_answer (outbound).
    started_at: the call's first leg's start, voice menu and queue included; ring_seconds: from
    then to the answer (to the finish when unanswered), what the caller waited; talk_seconds:
    answer to finish. `_last_loaded_at`: the latest load that brought a leg of the call. -#}

with

source as (
    {{ raw_source('mango', 'calls', [
        'start', 'finish', 'answer', 'from_extension', 'from_number', 'to_extension',
        'to_number', 'line_number', 'entry_id',
    ], meta={
        '_loaded_at': dbt.type_timestamp(), '_batch_id': dbt.type_string(),
        '_source': dbt.type_string(), '_row_hash': dbt.type_string(),
    }) }}
),

legs as (
    select
        coalesce(entry_id, _row_hash) as entry_key,
        case
            when from_extension is not null and to_extension is null then 'outbound'
            when to_extension is not null and from_extension is null then 'inbound'
            when from_extension is null and to_extension is null and from_number is not null
                then 'inbound'
        end as direction,
        {{ parse_integer('start') }} as start_epoch,
        {{ parse_integer('finish') }} as finish_epoch,
        case when {{ parse_integer('answer') }} > 0 then {{ parse_integer('answer') }} end as answer_epoch,
        from_extension,
        from_number,
        to_extension,
        to_number,
        line_number,
        start,
        _row_hash,
        _source,
        _loaded_at,
        _batch_id
    from source
),

calls as (
    select
        *,
        -- over every leg of the call, the voice menu and the queue included
        min(start_epoch) over (partition by entry_key) as call_start_epoch,
        max(_loaded_at) over (partition by entry_key) as _last_loaded_at
    from legs
),

ranked as (
    select
        *,
        row_number() over (
            partition by entry_key
            order by
                case when answer_epoch is not null then 0 else 1 end,
                case when coalesce(to_extension, from_extension) is not null then 0 else 1 end,
                start_epoch,
                _row_hash
        ) as leg_rank
    from calls
    where direction is not null
),

final as (
    select
        ---------- ids
        'mango:' || entry_key as call_id,
        ---------- attributes
        direction,
        {{ normalize_phone("case when direction = 'inbound' then from_number else to_number end") }} as client_phone,
        case when direction = 'inbound' then from_number else to_number end as client_phone_raw,
        case when direction = 'inbound' then to_extension else from_extension end as manager_extension,
        line_number as line,
        case
            when answer_epoch is not null then 'answered'
            when direction = 'inbound' then 'missed'
            else 'no_answer'
        end as status,
        ---------- numerics
        coalesce(answer_epoch, finish_epoch) - call_start_epoch as ring_seconds,
        case when answer_epoch is not null then finish_epoch - answer_epoch else 0 end as talk_seconds,
        ---------- timestamps
        {{ dbt.dateadd('second', 'call_start_epoch', "cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")") }} as started_at,
        ---------- deletion (D85): Mango Office reports no deletions
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        {{ api_load_metadata() }},
        _last_loaded_at
    from ranked
    where leg_rank = 1
)

select * from final
