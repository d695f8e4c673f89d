{#- One row per survey response: the first loaded row of a response_id wins, later copies are
    ignored. `_last_loaded_at`: the latest load that brought this response_id. -#}

with

-- Deduplication: the first loaded copy of a key wins (macros/dedup.sql)
{{ first_loaded_copies(source('inbox', 'survey_responses'), 'response_id', ['response_id', 'survey_type', 'score', 'responded_at', 'client_id', 'client_phone', 'client_email', 'deal_id', 'request_id', 'manager_id', 'comment'], ref('stg_inbox__duplicated_event_keys'), 'survey_responses') }},

renamed as (
    select
        ---------- ids
        response_id,
        client_id,
        deal_id,
        request_id,
        manager_id,
        ---------- attributes
        {{ parse_enum('survey_type') }} as survey_type,
        {{ parse_integer('score') }} as score,
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        lower(client_email) as client_email,
        comment,
        ---------- timestamps
        {{ parse_timestamp_utc('responded_at') }} as responded_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _last_loaded_at
    from first_loaded
)

select * from renamed
