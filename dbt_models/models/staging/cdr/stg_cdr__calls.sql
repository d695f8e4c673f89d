{#- One row per call of the mapped CDR CSV files (raw_cdr.calls: the inbox calls contract,
    checked by the loader, one row per call_id), typed like stg_inbox__calls. call_id:
    cdr:<call_id>; manager_extension as given (the managers' extensions). -#}

with

source as (
    {{ raw_source('cdr', 'calls', [
        'call_id', 'started_at', 'direction', 'client_phone', 'manager_extension', 'line',
        'status', 'ring_seconds', 'talk_seconds',
    ], meta=file_meta_columns()) }}
),

final as (
    select
        ---------- ids
        {{ namespaced_id('cdr', 'call_id') }} as call_id,
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
        ---------- deletion (D85): CDR files report no deletions
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id,
        _loaded_at as _last_loaded_at
    from source
)

select * from final
