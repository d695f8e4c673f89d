{#- One row per call (CDR): the first loaded row of a call_id wins, later copies are ignored.
    `_last_loaded_at` (the latest load that brought this call_id) lets fct_calls pick up keys that
    arrived again, e.g. from a reloaded file. -#}

with

source as (
    select * from {{ source('inbox', 'calls') }}
),

-- Deduplication: the first loaded copy of a key wins. Keys loaded more than once are rare, so
-- only their rows are ranked (a window over every row of a big event table costs far more).
duplicated_keys as (
    select call_id
    from source
    group by 1
    having count(*) > 1
),

single_copies as (
    select
        source.call_id,
        source.started_at,
        source.direction,
        source.client_phone,
        source.manager_extension,
        source.line,
        source.status,
        source.ring_seconds,
        source.talk_seconds,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        source._loaded_at as _last_loaded_at
    from source
    left join duplicated_keys
        on source.call_id = duplicated_keys.call_id
    where duplicated_keys.call_id is null
),

ranked_copies as (
    select
        source.call_id,
        source.started_at,
        source.direction,
        source.client_phone,
        source.manager_extension,
        source.line,
        source.status,
        source.ring_seconds,
        source.talk_seconds,
        source._source_file,
        source._source_line,
        source._loaded_at,
        source._batch_id,
        max(source._loaded_at) over (partition by source.call_id) as _last_loaded_at,
        row_number() over (
            partition by source.call_id
            order by source._loaded_at, source._source_file, source._source_line
        ) as load_rank
    from source
    inner join duplicated_keys
        on source.call_id = duplicated_keys.call_id
),

first_loaded as (
    select * from single_copies
    union all
    select
        call_id,
        started_at,
        direction,
        client_phone,
        manager_extension,
        line,
        status,
        ring_seconds,
        talk_seconds,
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
        call_id,
        ---------- attributes
        {{ parse_enum('direction') }} as direction,
        {{ normalize_phone('client_phone') }} as client_phone,
        client_phone as client_phone_raw,
        manager_extension,
        line,
        {{ parse_enum('status') }} as status,
        ---------- numerics
        {{ parse_integer('ring_seconds') }} as ring_seconds,
        {{ parse_integer('talk_seconds') }} as talk_seconds,
        ---------- timestamps
        {{ parse_timestamp_utc('started_at') }} as started_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _last_loaded_at
    from first_loaded
)

select * from renamed
