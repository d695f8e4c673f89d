{{
    config(
        materialized='incremental',
        unique_key='client_id',
        incremental_strategy='delete+insert',
        pre_hook="{{ delete_loaded_client_rows() }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('int_clients__unioned'), ref('int_deals__unioned')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per client, its current attributes, with the acquisition channel resolved
    (kpi-definitions: clients.acquisition_channel, else the channel of its first deal) and the
    first deal and first won deal, which new-client and cohort KPIs start from. Only clients that
    count as themselves: a deleted client is not here, a merged one's deals are its survivor's
    (D85).

    Incremental per touched client (macros/client_incremental.sql, D361): the rows of the
    clients loaded since the last build, of those whose chain of merges runs through one, and of
    the clients that gained or lost a deal loaded since (or of those clients) are computed again,
    the others kept; in full after a removal (D205). -#}

{%- set since = dim_clients_rebuild_since() %}

with

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),
{% if since is none %}
clients as (
    select unioned.*
    from {{ ref('int_clients__unioned') }} as unioned
    left join client_merges
        on unioned.client_id = client_merges.client_id
    where {{ counts_as_itself('unioned.client_id', 'client_merges') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),
{% else %}
touched_clients as (
    select distinct client_id
    from ({{ dim_clients_touched(since) }}) as touched
    where client_id is not null
),

clients as (
    select unioned.*
    from {{ ref('int_clients__unioned') }} as unioned
    inner join touched_clients
        on unioned.client_id = touched_clients.client_id
    left join client_merges
        on unioned.client_id = client_merges.client_id
    where {{ counts_as_itself('unioned.client_id', 'client_merges') }}
),

deals as (
    select fct_deals.*
    from {{ ref('fct_deals') }} as fct_deals
    inner join touched_clients
        on fct_deals.client_id = touched_clients.client_id
),
{% endif %}

deals_ranked as (
    select
        client_id,
        deal_id,
        channel,
        created_at,
        row_number() over (partition by client_id order by created_at, deal_id) as deal_rank
    from deals
),

first_deals as (
    select * from deals_ranked
    where deal_rank = 1
),

won_deals_ranked as (
    select
        client_id,
        deal_id,
        closed_at,
        row_number() over (partition by client_id order by closed_at, deal_id) as won_rank
    from deals
    where is_won
),

first_won_deals as (
    select * from won_deals_ranked
    where won_rank = 1
),

final as (
    select
        ---------- ids
        clients.client_id,
        clients.source_system,
        ---------- attributes
        clients.client_type,
        clients.client_name,
        clients.phone,
        clients.phone_raw,
        clients.email,
        clients.segment,
        clients.acquisition_channel,
        coalesce(clients.acquisition_channel, first_deals.channel) as channel,
        case
            when clients.acquisition_channel is not null then 'client'
            when first_deals.channel is not null then 'first_deal'
        end as channel_source,
        ---------- first deals
        first_deals.deal_id as first_deal_id,
        first_deals.created_at as first_deal_created_at,
        first_won_deals.deal_id as first_won_deal_id,
        first_won_deals.closed_at as first_won_at,
        ---------- timestamps
        clients.created_at,
        clients.updated_at,
        ---------- load metadata
        clients._loaded_at
    from clients
    left join first_deals
        on clients.client_id = first_deals.client_id
    left join first_won_deals
        on clients.client_id = first_won_deals.client_id
)

select * from final
