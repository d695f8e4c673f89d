{#- One row per (month, channel): marketing spend on a lead channel (channel as in
    deals.channel and clients.acquisition_channel). -#}

with

marketing_spend as (
    select * from {{ ref('stg_inbox__marketing_spend') }}
),

final as (
    select
        month,
        channel,
        amount,
        currency,
        _source_file,
        _loaded_at
    from marketing_spend
)

select * from final
