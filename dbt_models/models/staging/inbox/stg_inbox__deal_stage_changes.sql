{#- One row per stage change: the first loaded row of a change_id wins, later copies are ignored.
    `_last_loaded_at`: the latest load that brought this change_id (for the incremental fact). -#}

with

source as (
    select * from {{ source('inbox', 'deal_stage_changes') }}
),

-- Deduplication: the first loaded copy of a key wins. Keys loaded more than once are rare, so
-- only their rows are ranked (a window over every row of a big event table costs far more).
duplicated_keys as (
    select change_id
    from source
    group by 1
    having count(*) > 1
),

single_copies as (
    select
        source.change_id,
        source.deal_id,
        source.from_stage,
        source.to_stage,
        source.changed_at,
        source.manager_id,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        source._loaded_at as _last_loaded_at
    from source
    left join duplicated_keys
        on source.change_id = duplicated_keys.change_id
    where duplicated_keys.change_id is null
),

ranked_copies as (
    select
        source.change_id,
        source.deal_id,
        source.from_stage,
        source.to_stage,
        source.changed_at,
        source.manager_id,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        max(source._loaded_at) over (partition by source.change_id) as _last_loaded_at,
        row_number() over (
            partition by source.change_id
            order by source._loaded_at, source._source_file, source._source_line
        ) as load_rank
    from source
    inner join duplicated_keys
        on source.change_id = duplicated_keys.change_id
),

first_loaded as (
    select * from single_copies
    union all
    select
        change_id,
        deal_id,
        from_stage,
        to_stage,
        changed_at,
        manager_id,
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
