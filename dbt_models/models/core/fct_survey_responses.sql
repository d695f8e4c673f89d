{{
    config(
        materialized='incremental',
        unique_key='response_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_all_rows_if_removed() }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('int_clients__unioned'), source('inbox', 'requests'), ref('fct_deal_stage_changes')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per NPS or CSAT survey response, matched to a client and credited to a manager
    (kpi-definitions, "Service and surveys").
    Client: the response's client_id, else the client with its normalised phone, else the client
    with its e-mail. Manager (credited_manager_id): the response's manager_id; else the manager of
    its deal at responded_at; else the manager of its request; else the manager credited at close
    with the client's latest won deal closed before responded_at; else none (the response still
    counts in company totals). credited_via says which.

    Incremental: responses loaded since the last build, plus those whose deal, request or client
    (by id, phone or e-mail, also the client they were matched to before) changed since: loaded
    after the last build (D201's inputs seen, D396). A full
    refresh gives the same rows; after raw rows were removed, the run rebuilds it in full
    (macros/removals.sql, D205). Deleted deals, requests and clients are not found; a merged
    client's responses count for the client it was merged into (D85). -#}

with

survey_responses as (
    select * from {{ ref('int_survey_responses__unioned') }}
),

client_phones as (
    select * from {{ ref('int_client_phones_matched') }}
),

client_emails as (
    select * from {{ ref('int_client_emails_matched') }}
),

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

deal_manager_periods as (
    select * from {{ ref('int_deal_manager_periods') }}
),

requests as (
    select * from {{ ref('stg_inbox__requests') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

staged_deals as (
    select * from {{ ref('int_deals__unioned') }}
),

staged_clients as (
    select * from {{ ref('int_clients__unioned') }}
),

stage_changes as (
    select * from {{ ref('fct_deal_stage_changes') }}
),

-- deals and requests deleted in their source: a response names neither (D85)
deleted_deals as (
    select staged_deals.deal_id from staged_deals
    where not {{ is_live('staged_deals') }}
),

deleted_requests as (
    select requests.request_id from requests
    where not {{ is_live('requests') }}
),

{% if is_incremental() %}
{%- set watermark = loaded_watermark() %}
{%- set recompute_all = lacks_columns(['source_system']) or removed_since_build() %}
{#- the inputs are new when loaded after the last build (D201, D396), not after the newest
    response: the deals of a full run are loaded after its responses -#}
{%- set inputs_since = inputs_watermark(watermark) %}
{%- set inputs_changed = loaded_since(
    [ref('int_deals__unioned'), ref('int_clients__unioned'), ref('stg_inbox__requests'), ref('fct_deal_stage_changes')],
    inputs_since
) %}
changed_deals as (
    select
        deal_id,
        client_id
    from staged_deals
    where _loaded_at > {{ inputs_since }}
    union
    select
        staged_deals.deal_id,
        staged_deals.client_id
    from stage_changes
    inner join staged_deals
        on stage_changes.deal_id = staged_deals.deal_id
    where stage_changes._last_loaded_at > {{ inputs_since }}
),

changed_client_ids as (
    select client_id from staged_clients
    where _loaded_at > {{ inputs_since }}
    union
    select client_id from changed_deals
),

changed_clients as (
    select
        staged_clients.client_id,
        staged_clients.phone,
        staged_clients.email
    from staged_clients
    inner join changed_client_ids
        on staged_clients.client_id = changed_client_ids.client_id
),

previously_matched as (
    select previous_responses.response_id
    from {{ this }} as previous_responses
    inner join changed_client_ids
        on previous_responses.client_id = changed_client_ids.client_id
),

-- the keys whose responses are recomputed, each set distinct and left joined: a test
-- `key in (select ...)` under an `or` is a subquery PostgreSQL runs once per response when it
-- expects the set not to fit in work_mem (D240)
recomputed_deals as (
    select distinct deal_id from changed_deals
),

recomputed_requests as (
    select distinct request_id from requests
    where _loaded_at > {{ inputs_since }}
),

recomputed_clients as (
    select distinct client_id from changed_clients
),

recomputed_phones as (
    select distinct phone from changed_clients
),

recomputed_emails as (
    select distinct email from changed_clients
),

recomputed_responses as (
    select distinct response_id from previously_matched
),
{% endif %}

new_responses as (
    select survey_responses.* from survey_responses
    {% if is_incremental() and not recompute_all %}
    {% if inputs_changed %}
    left join recomputed_deals
        on survey_responses.deal_id = recomputed_deals.deal_id
    left join recomputed_requests
        on survey_responses.request_id = recomputed_requests.request_id
    left join recomputed_clients
        on survey_responses.client_id = recomputed_clients.client_id
    left join recomputed_phones
        on survey_responses.client_phone = recomputed_phones.phone
    left join recomputed_emails
        on survey_responses.client_email = recomputed_emails.email
    left join recomputed_responses
        on survey_responses.response_id = recomputed_responses.response_id
    {% endif %}
    where (
        survey_responses._last_loaded_at > {{ watermark }}
        {% if inputs_changed %}
        or recomputed_deals.deal_id is not null
        or recomputed_requests.request_id is not null
        or recomputed_clients.client_id is not null
        or recomputed_phones.phone is not null
        or recomputed_emails.email is not null
        or recomputed_responses.response_id is not null
        {% endif %}
    )
    {% endif %}
),

clients_matched as (
    select
        new_responses.*,
        coalesce(
            {{ counted_client_id('new_responses.client_id', 'client_merges') }},
            client_phones.client_id,
            client_emails.client_id
        ) as matched_client_id,
        case
            when {{ counted_client_id('new_responses.client_id', 'client_merges') }} is not null then 'client_id'
            when client_phones.client_id is not null then 'phone'
            when client_emails.client_id is not null then 'email'
        end as client_match,
        case when deleted_deals.deal_id is null then new_responses.deal_id end as live_deal_id,
        case
            when deleted_requests.request_id is null then new_responses.request_id
        end as live_request_id
    from new_responses
    left join deleted_deals
        on new_responses.deal_id = deleted_deals.deal_id
    left join deleted_requests
        on new_responses.request_id = deleted_requests.request_id
    left join client_merges
        on new_responses.client_id = client_merges.client_id
    left join client_phones
        on new_responses.client_phone = client_phones.phone
    left join client_emails
        on new_responses.client_email = client_emails.email
),

won_deal_periods as (
    -- the client's won deals, each "latest before t" for t in (closed_at, next closed_at]
    select
        client_id,
        deal_id,
        manager_id_at_close,
        closed_at,
        lead(closed_at) over (partition by client_id order by closed_at, deal_id) as next_closed_at
    from deals
    where is_won
),

managers_found as (
    select
        clients_matched.*,
        deal_manager_periods.manager_id as deal_manager_id,
        requests.manager_id as request_manager_id,
        won_deal_periods.manager_id_at_close as last_won_deal_manager_id
    from clients_matched
    left join deal_manager_periods
        on clients_matched.live_deal_id = deal_manager_periods.deal_id
        and (deal_manager_periods.valid_from is null or deal_manager_periods.valid_from <= clients_matched.responded_at)
        and (deal_manager_periods.valid_to is null or clients_matched.responded_at < deal_manager_periods.valid_to)
    left join requests
        on clients_matched.live_request_id = requests.request_id
    left join won_deal_periods
        on clients_matched.matched_client_id = won_deal_periods.client_id
        and won_deal_periods.closed_at < clients_matched.responded_at
        and (won_deal_periods.next_closed_at is null or clients_matched.responded_at <= won_deal_periods.next_closed_at)
),

final as (
    select
        ---------- ids
        response_id,
        source_system,
        matched_client_id as client_id,
        -- client_id, phone, email: how the client was found (null: not found)
        client_match,
        live_deal_id as deal_id,
        live_request_id as request_id,
        -- as given in the response
        manager_id,
        coalesce(
            manager_id, deal_manager_id, request_manager_id, last_won_deal_manager_id
        ) as credited_manager_id,
        case
            when manager_id is not null then 'response'
            when deal_manager_id is not null then 'deal'
            when request_manager_id is not null then 'request'
            when last_won_deal_manager_id is not null then 'client_last_won_deal'
        end as credited_via,
        ---------- survey
        survey_type,
        score,
        case when survey_type = 'nps' then score >= 9 end as is_promoter,
        case when survey_type = 'nps' then score between 7 and 8 end as is_passive,
        case when survey_type = 'nps' then score <= 6 end as is_detractor,
        case when survey_type = 'csat' then score >= 4 end as is_satisfied,
        client_phone,
        client_email,
        comment,
        ---------- timestamps (UTC)
        responded_at,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _last_loaded_at
    from managers_found
)

select * from final
