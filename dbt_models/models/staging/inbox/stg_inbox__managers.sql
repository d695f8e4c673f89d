{#- One row per manager version: every distinct (manager_id, updated_at) in raw; the same version
    loaded twice keeps the newest loaded row. dim_managers builds the validity ranges. -#}

with

source as (
    select * from {{ source('inbox', 'managers') }}
),

renamed as (
    select
        ---------- ids
        manager_id,
        ---------- attributes
        full_name,
        team,
        coalesce({{ parse_enum('role') }}, 'sales') as role,
        extension,
        lower(email) as email,
        ---------- dates
        {{ parse_date('hired_on') }} as hired_on,
        {{ parse_date('left_on') }} as left_on,
        ---------- timestamps
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
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
        {{ newest_version_rank(partition_by='manager_id, updated_at', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        manager_id,
        full_name,
        team,
        role,
        extension,
        email,
        hired_on,
        left_on,
        updated_at,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
