{{ config(materialized='table') }}

{#- One row per normalised phone: the client a call, request or survey response with that phone
    belongs to. When several clients share a phone, the earliest created one (then the smallest
    client_id) gets it, so a phone never matches two clients.
    A table, not a view: fct_calls, fct_requests and fct_survey_responses all read it, and its key
    tests would each redo the ranking over every client. -#}

with

clients as (
    select * from {{ ref('int_clients__unioned') }}
),

ranked as (
    select
        phone,
        client_id,
        row_number() over (partition by phone order by created_at, client_id) as phone_rank
    from clients
    where phone is not null
),

final as (
    select
        phone,
        client_id
    from ranked
    where phone_rank = 1
)

select * from final
