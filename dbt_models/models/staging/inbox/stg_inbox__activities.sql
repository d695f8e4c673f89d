{#- One row per activity: the newest updated_at wins (ties: the latest loaded row).
    The newest version decides deletion too: deleted_at set = deleted in the source, and a
    newer version without it restores the record (D85). Only the activities with several rows
    are ranked, so that fct_activities' load watermark reaches the raw scan (D300); which those
    are is kept by stg_inbox__duplicated_event_keys, not grouped from every raw row (D416). -#}

with

{{ split_versioned_rows(source('inbox', 'activities'), 'activity_id', ref('stg_inbox__duplicated_event_keys'), 'activities') }},

renamed as not materialized (
    select
        ---------- ids
        activity_id,
        manager_id,
        deal_id,
        client_id,
        ---------- attributes
        {{ parse_enum('activity_type') }} as activity_type,
        {{ parse_enum('outcome') }} as outcome,
        ---------- timestamps
        {{ parse_timestamp_utc('created_at') }} as created_at,
        {{ parse_timestamp_utc('due_at') }} as due_at,
        {{ parse_timestamp_utc('completed_at') }} as completed_at,
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
        -- v1.1: set when this version says the record was deleted in its source (D85)
        {{ parse_timestamp_utc('deleted_at') }} as deleted_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        has_versions
    from split_rows
),

ranked as (
    select
        *,
        {{ newest_version_rank('updated_at', partition_by='activity_id', load_order=inbox_load_order()) }}
    from renamed
    where has_versions
),

newest as (
    select
        *,
        1 as version_rank
    from renamed
    where not has_versions
    union all
    select * from ranked
    where version_rank = 1
),

final as (
    select
        activity_id,
        manager_id,
        deal_id,
        client_id,
        activity_type,
        outcome,
        created_at,
        due_at,
        completed_at,
        updated_at,
        deleted_at,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from newest
)

select * from final
