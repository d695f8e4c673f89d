{#- One row per stage change: the first loaded row of a change_id wins, later copies are ignored.
    `_last_loaded_at`: the latest load that brought this change_id (for the incremental fact). -#}

with

source as (
    select * from {{ source('inbox', 'deal_stage_changes') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by change_id
            order by _loaded_at, _source_file, _source_line
        ) as load_rank,
        max(_loaded_at) over (partition by change_id) as _last_loaded_at
    from source
),

first_loaded as (
    select * from ranked
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
