{#- One row per inbound client request (обращение), its current state. client_id: the request's
    own (the client it counts for, D85), else the client with the request's normalised phone. A
    request deleted in its source is not here (D85). -#}

with

requests as (
    select * from {{ ref('stg_inbox__requests') }}
),

client_phones as (
    select * from {{ ref('int_client_phones_matched') }}
),

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

requests_counted as (
    select
        requests.*,
        {{ counted_client_id('requests.client_id', 'client_merges') }} as counted_client_id
    from requests
    left join client_merges
        on requests.client_id = client_merges.client_id
    where {{ is_live('requests') }}
),

final as (
    select
        ---------- ids
        requests.request_id,
        coalesce(requests.counted_client_id, client_phones.client_id) as client_id,
        case
            when requests.counted_client_id is not null then 'client_id'
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
    from requests_counted as requests
    left join client_phones
        on requests.counted_client_id is null
        and requests.client_phone = client_phones.phone
)

select * from final
