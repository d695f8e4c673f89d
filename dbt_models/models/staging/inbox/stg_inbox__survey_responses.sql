{#- One row per survey response: the first loaded row of a response_id wins, later copies are
    ignored. `_last_loaded_at`: the latest load that brought this response_id. -#}

with

source as (
    select * from {{ source('inbox', 'survey_responses') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by response_id
            order by _loaded_at, _source_file, _source_line
        ) as load_rank,
        max(_loaded_at) over (partition by response_id) as _last_loaded_at
    from source
),

first_loaded as (
    select * from ranked
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
