{{ config(materialized='table') }}

{#- One row per lowercased e-mail: the client a survey response with that e-mail belongs to (the
    earliest created client, then the smallest client_id, when several share it).
    A table, not a view: its key tests would each redo the ranking over every client. -#}

with

clients as (
    select * from {{ ref('int_clients__unioned') }}
),

ranked as (
    select
        email,
        client_id,
        row_number() over (partition by email order by created_at, client_id) as email_rank
    from clients
    where email is not null
),

final as (
    select
        email,
        client_id
    from ranked
    where email_rank = 1
)

select * from final
