{#- One row per survey response: the first loaded row of a response_id wins, later copies are
    ignored. `_last_loaded_at`: the latest load that brought this response_id. -#}

with

source as (
    select * from {{ source('inbox', 'survey_responses') }}
),

-- Deduplication: the first loaded copy of a key wins. Keys loaded more than once are rare, so
-- only their rows are ranked (a window over every row of a big event table costs far more).
duplicated_keys as (
    select response_id
    from source
    group by 1
    having count(*) > 1
),

single_copies as (
    select
        source.response_id,
        source.survey_type,
        source.score,
        source.responded_at,
        source.client_id,
        source.client_phone,
        source.client_email,
        source.deal_id,
        source.request_id,
        source.manager_id,
        source.comment,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        source._loaded_at as _last_loaded_at
    from source
    left join duplicated_keys
        on source.response_id = duplicated_keys.response_id
    where duplicated_keys.response_id is null
),

ranked_copies as (
    select
        source.response_id,
        source.survey_type,
        source.score,
        source.responded_at,
        source.client_id,
        source.client_phone,
        source.client_email,
        source.deal_id,
        source.request_id,
        source.manager_id,
        source.comment,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        max(source._loaded_at) over (partition by source.response_id) as _last_loaded_at,
        row_number() over (
            partition by source.response_id
            order by source._loaded_at, source._source_file, source._source_line
        ) as load_rank
    from source
    inner join duplicated_keys
        on source.response_id = duplicated_keys.response_id
),

first_loaded as (
    select * from single_copies
    union all
    select
        response_id,
        survey_type,
        score,
        responded_at,
        client_id,
        client_phone,
        client_email,
        deal_id,
        request_id,
        manager_id,
        comment,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _last_loaded_at
    from ranked_copies
    where load_rank = 1
),

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
