{#- One row per call (CDR): the first loaded row of a call_id wins, later copies are ignored.
    `_last_loaded_at` (the latest load that brought this call_id) lets fct_calls pick up keys that
    arrived again, e.g. from a reloaded file. -#}

with

-- Deduplication: the first loaded copy of a key wins (macros/dedup.sql)
{{ first_loaded_copies(source('inbox', 'calls'), 'call_id', ['call_id', 'started_at', 'direction', 'client_phone', 'manager_extension', 'line', 'status', 'ring_seconds', 'talk_seconds'], ref('stg_inbox__duplicated_event_keys'), 'calls') }},

renamed as (
    select
        ---------- ids
        call_id,
        ---------- attributes
        {{ parse_enum('direction') }} as direction,
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        manager_extension,
        line,
        {{ parse_enum('status') }} as status,
        ---------- numerics (validated: raw text the loader checked by the same rules, D77)
        {{ parse_integer('ring_seconds', validated=true) }} as ring_seconds,
        {{ parse_integer('talk_seconds', validated=true) }} as talk_seconds,
        ---------- timestamps
        {{ parse_timestamp_utc('started_at', validated=true) }} as started_at,
        ---------- deletion (D85): calls are not deletable in the inbox contract
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _last_loaded_at
    from first_loaded
)

select * from renamed
