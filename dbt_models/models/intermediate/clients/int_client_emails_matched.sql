{#- One row per lowercased e-mail: the client a survey response with that e-mail belongs to (the
    earliest created client, then the smallest client_id, when several share it).
    A table, not a view: its key tests would each redo the ranking over every client.
    Deleted clients match nothing, merged ones match as the client they were merged into (D85). -#}

with

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

-- every client that counts for someone, as the client it counts for (D85): a deleted client's
-- email matches nobody, a merged client's matches the client it was merged into
clients as (
    select
        unioned.email,
        unioned.created_at,
        unioned.client_id as own_client_id,
        {{ counted_client_id('unioned.client_id', 'client_merges') }} as client_id
    from {{ ref('int_clients__unioned') }} as unioned
    left join client_merges
        on unioned.client_id = client_merges.client_id
),

ranked as (
    select
        email,
        client_id,
        row_number() over (partition by email order by created_at, own_client_id) as email_rank
    from clients
    where email is not null
        and client_id is not null
),

final as (
    select
        email,
        client_id
    from ranked
    where email_rank = 1
)

select * from final
