{#- One row per client request (обращение): the newest updated_at wins (ties: the latest loaded
    row).
    The newest version decides deletion too: deleted_at set = deleted in the source, and a
    newer version without it restores the record (D85). -#}

with

source as (
    select * from {{ source('inbox', 'requests') }}
),

renamed as (
    select
        ---------- ids
        request_id,
        client_id,
        manager_id,
        ---------- attributes
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        {{ parse_enum('channel') }} as channel,
        {{ parse_bool('is_complaint') }} as is_complaint,
        ---------- timestamps
        {{ parse_timestamp_utc('created_at') }} as created_at,
        {{ parse_timestamp_utc('first_response_at') }} as first_response_at,
        {{ parse_timestamp_utc('resolved_at') }} as resolved_at,
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
        -- v1.1: set when this version says the record was deleted in its source (D85)
        {{ parse_timestamp_utc('deleted_at') }} as deleted_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from source
),

ranked as (
    select
        *,
        {{ newest_version_rank('updated_at', partition_by='request_id', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        request_id,
        client_id,
        manager_id,
        client_phone,
        client_phone_raw,
        channel,
        is_complaint,
        created_at,
        first_response_at,
        resolved_at,
        updated_at,
        deleted_at,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
