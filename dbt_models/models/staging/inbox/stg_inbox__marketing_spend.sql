{#- One row per (month, channel): the newest loaded row wins. -#}

with

source as (
    select * from {{ source('inbox', 'marketing_spend') }}
),

renamed as (
    select
        ---------- keys
        {{ parse_period('period') }} as month,
        channel,
        ---------- money
        {{ parse_decimal('amount') }} as amount,
        coalesce(upper(currency), 'RUB') as currency,
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
        {{ newest_version_rank(partition_by='month, channel', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        month,
        channel,
        amount,
        currency,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
