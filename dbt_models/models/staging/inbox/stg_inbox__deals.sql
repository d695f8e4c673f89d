{#- One row per deal, its current state: the newest updated_at wins (ties: the latest loaded row).
    The newest version decides deletion too: deleted_at set = deleted in the source, and a
    newer version without it restores the record (D85). -#}

with

source as (
    select * from {{ source('inbox', 'deals') }}
),

renamed as (
    select
        ---------- ids
        deal_id,
        client_id,
        manager_id,
        ---------- attributes
        pipeline,
        stage,
        {{ parse_enum('status') }} as status,
        channel,
        loss_reason,
        ---------- money
        {{ parse_decimal('amount') }} as amount,
        coalesce(upper(currency), 'RUB') as currency,
        ---------- timestamps
        {{ parse_timestamp_utc('created_at') }} as created_at,
        {{ parse_timestamp_utc('closed_at') }} as closed_at,
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
        {{ newest_version_rank('updated_at', partition_by='deal_id', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        deal_id,
        client_id,
        manager_id,
        pipeline,
        stage,
        status,
        channel,
        loss_reason,
        amount,
        currency,
        created_at,
        closed_at,
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
