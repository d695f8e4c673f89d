{#- One row per client: the newest updated_at wins (ties: the latest loaded row).
    The newest version decides deletion too: deleted_at set = deleted in the source, and a
    newer version without it restores the record (D85). -#}

with

source as (
    select * from {{ source('inbox', 'clients') }}
),

renamed as (
    select
        ---------- ids
        client_id,
        ---------- attributes
        {{ parse_enum('client_type') }} as client_type,
        name as client_name,
        {{ normalize_phone('phone') }} as phone,
        phone as phone_raw,
        lower(email) as email,
        segment,
        acquisition_channel,
        ---------- timestamps
        {{ parse_timestamp_utc('created_at') }} as created_at,
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
        {{ newest_version_rank('updated_at', partition_by='client_id', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        client_id,
        client_type,
        client_name,
        phone,
        phone_raw,
        email,
        segment,
        acquisition_channel,
        created_at,
        updated_at,
        deleted_at,
        -- the inbox has no merges (D85)
        cast(null as {{ dbt.type_string() }}) as merged_into_client_id,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
