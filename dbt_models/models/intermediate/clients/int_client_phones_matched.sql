{#- One row per normalised phone: the client a call, request or survey response with that phone
    belongs to. When several clients share a phone, the earliest created one (then the smallest
    client_id) gets it, so a phone never matches two clients.
    A table, not a view: fct_calls, fct_requests and fct_survey_responses all read it, and its key
    tests would each redo the ranking over every client.
    Deleted clients match nothing, merged ones match as the client they were merged into (D85). -#}

with

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

-- every client that counts for someone, as the client it counts for (D85): a deleted client's
-- phone matches nobody, a merged client's matches the client it was merged into
clients as (
    select
        unioned.phone,
        unioned.created_at,
        unioned.client_id as own_client_id,
        {{ counted_client_id('unioned.client_id', 'client_merges') }} as client_id
    from {{ ref('int_clients__unioned') }} as unioned
    left join client_merges
        on unioned.client_id = client_merges.client_id
),

ranked as (
    select
        phone,
        client_id,
        row_number() over (partition by phone order by created_at, own_client_id) as phone_rank
    from clients
    where phone is not null
        and client_id is not null
),

final as (
    select
        phone,
        client_id
    from ranked
    where phone_rank = 1
)

select * from final
