{#- One row per client any source knows: the client it counts as (kpi-definitions, "Deleted
    records"; D85). counted_client_id: itself while it lives; the client it was merged into,
    followed along a chain of merges (a into b, b into c: c), when merged; null when deleted, when
    the chain ends in a deleted client, or when it does not end within 20 merges (a cycle). A merge
    into a client id no source knows (yet) counts for that id. Core reads it through the macro
    counted_client_id (macros/deletions.sql). A table: every core model with a client reads it. -#}

with recursive

clients as (
    select
        client_id,
        deleted_at,
        merged_into_client_id
    from {{ ref('int_clients__unioned') }}
),

-- one row per client and merge followed: (the client, where the chain has got to, hops so far)
chain as (
    select
        client_id,
        client_id as reached_client_id,
        0 as hops
    from clients
    union all
    select
        chain.client_id,
        clients.merged_into_client_id as reached_client_id,
        chain.hops + 1 as hops
    from chain
    inner join clients
        on chain.reached_client_id = clients.client_id
    where clients.merged_into_client_id is not null
        and chain.hops < 20
),

chain_ends as (
    select
        client_id,
        reached_client_id,
        hops,
        row_number() over (partition by client_id order by hops desc) as end_rank
    from chain
),

final as (
    select
        chain_ends.client_id,
        case
            -- still merged after 20 hops: a cycle
            when reached.merged_into_client_id is not null then null
            when reached.deleted_at is not null then null
            else chain_ends.reached_client_id
        end as counted_client_id,
        chain_ends.hops as merges_followed
    from chain_ends
    left join clients as reached
        on chain_ends.reached_client_id = reached.client_id
    where chain_ends.end_rank = 1
)

select * from final
