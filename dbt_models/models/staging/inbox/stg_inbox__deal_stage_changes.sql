{#- One row per stage change: the first loaded row of a change_id wins, later copies are ignored.
    `_last_loaded_at`: the latest load that brought this change_id (for the incremental fact). -#}

with

-- Deduplication: the first loaded copy of a key wins (macros/dedup.sql)
{{ first_loaded_copies(source('inbox', 'deal_stage_changes'), 'change_id', ['change_id', 'deal_id', 'from_stage', 'to_stage', 'changed_at', 'manager_id'], ref('stg_inbox__duplicated_event_keys'), 'deal_stage_changes') }},

renamed as (
    select
        ---------- ids
        change_id,
        deal_id,
        manager_id,
        ---------- attributes
        from_stage,
        to_stage,
        ---------- timestamps
        {{ parse_timestamp_utc('changed_at') }} as changed_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _last_loaded_at
    from first_loaded
)

select * from renamed
