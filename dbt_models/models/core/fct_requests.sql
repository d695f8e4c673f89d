{#- One row per inbound client request (обращение), its current state. client_id: the request's
    own, else the client with the request's normalised phone. -#}

with

requests as (
    select * from {{ ref('stg_inbox__requests') }}
),

client_phones as (
    select * from {{ ref('int_client_phones_matched') }}
),

final as (
    select
        ---------- ids
        requests.request_id,
        coalesce(requests.client_id, client_phones.client_id) as client_id,
        case
            when requests.client_id is not null then 'client_id'
            when client_phones.client_id is not null then 'phone'
        end as client_match,
        requests.manager_id,
        ---------- attributes
        requests.channel,
        requests.client_phone,
        requests.is_complaint,
        requests.first_response_at is not null as has_response,
        requests.resolved_at is not null as is_resolved,
        ---------- timestamps (UTC)
        requests.created_at,
        requests.first_response_at,
        requests.resolved_at,
        requests.updated_at,
        ---------- load metadata
        requests._source_file,
        requests._loaded_at
    from requests
    left join client_phones
        on requests.client_id is null
        and requests.client_phone = client_phones.phone
)

select * from final
