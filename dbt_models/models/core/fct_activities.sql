{{
    config(
        materialized='incremental',
        unique_key='activity_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{{ delete_deleted_rows('activity_id', 'select activity_id from ' ~ ref('int_activities__unioned') ~ ' where deleted_at is not null and _loaded_at > ' ~ loaded_watermark('_loaded_at')) }}",
            "{{ delete_all_rows_if_removed() }}",
        ],
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('int_clients__unioned')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per CRM activity (task, meeting, e-mail, demo, proposal, call), its current state.
    client_id: the activity's own (the client it counts for, D85), else its deal's client. An
    activity deleted in its source is not here, and one naming a deleted deal names none (D85).
    given_deal_id and given_client_id keep the ids as the activity names them, which deal_id and
    client_id are computed from.

    Incremental (D300): the activities loaded since the last build, plus the activities built
    before whose deal or client may count otherwise now, computed again from their own rows
    (given_deal_id, given_client_id), as fct_calls does (D200): those naming a deal loaded since
    (another client, deleted, restored) or a deal of a client below, and those naming a client
    loaded since or a client whose chain of merges runs through one (the client each counts for
    may have changed). Deals and clients count as loaded since when loaded after the last build
    (D201). A full refresh gives the same rows.

    The pre-hook removes the rows of activities deleted since; a restored activity comes back
    with the load that restored it. After raw rows were removed, the run rebuilds it in full
    (macros/removals.sql, D205). -#}

-- depends_on: {{ ref('int_clients__unioned') }}

with

activities as (
    select * from {{ ref('int_activities__unioned') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

staged_deals as (
    select * from {{ ref('int_deals__unioned') }}
),

-- deals deleted in their source: an activity names none (D85)
deleted_deals as (
    select staged_deals.deal_id from staged_deals
    where not {{ is_live('staged_deals') }}
),

{% if is_incremental() %}
{%- set watermark = loaded_watermark('_loaded_at') %}
{%- set recompute_all = lacks_columns(['source_system', 'given_deal_id', 'given_client_id']) or removed_since_build() %}
{%- set inputs_since = inputs_watermark(watermark) %}
{%- set inputs_changed = loaded_since([ref('int_deals__unioned'), ref('int_clients__unioned')], inputs_since) %}
-- the clients loaded since, and every client whose chain of merges runs through one of them:
-- those whose counted client may have changed (macros/deal_incremental.sql)
recounted_clients as (
    {{ clients_recounted(inputs_since) }}
),

-- deals loaded since, and the deals of the recounted clients (their client in fct_deals)
recomputed_deals as (
    select deal_id from staged_deals
    where _loaded_at > {{ inputs_since }}
    union
    select staged_deals.deal_id
    from staged_deals
    inner join recounted_clients
        on staged_deals.client_id = recounted_clients.client_id
),
{% endif %}

loaded_activities as (
    select
        activities.activity_id,
        activities.source_system,
        activities.manager_id,
        activities.deal_id,
        activities.client_id,
        activities.activity_type,
        activities.outcome,
        activities.created_at,
        activities.due_at,
        activities.completed_at,
        activities.updated_at,
        activities._source_file,
        activities._loaded_at
    from activities
    where {{ is_live('activities') }}
        {% if is_incremental() and not recompute_all %}
        and activities._loaded_at > {{ watermark }}
        {% endif %}
),

{% if is_incremental() and not recompute_all and inputs_changed %}
{#- The activities built before whose deal or client may count otherwise are computed again from
    their own rows, not read again through staging: an activity's staged columns change only
    with a new load of its key (loaded_activities), and a deleted one has left the table in the
    pre-hook (D300). Key sets left joined, not `in (select ...)` under an `or` (D240). -#}
recomputed_activities as (
    select
        previous_activities.activity_id,
        previous_activities.source_system,
        previous_activities.manager_id,
        previous_activities.given_deal_id as deal_id,
        previous_activities.given_client_id as client_id,
        previous_activities.activity_type,
        previous_activities.outcome,
        previous_activities.created_at,
        previous_activities.due_at,
        previous_activities.completed_at,
        previous_activities.updated_at,
        previous_activities._source_file,
        previous_activities._loaded_at
    from {{ this }} as previous_activities
    left join recomputed_deals
        on previous_activities.given_deal_id = recomputed_deals.deal_id
    left join recounted_clients
        on previous_activities.given_client_id = recounted_clients.client_id
    where (recomputed_deals.deal_id is not null or recounted_clients.client_id is not null)
        and not exists (
            select 1 from loaded_activities
            where loaded_activities.activity_id = previous_activities.activity_id
        )
),

new_activities as (
    select * from loaded_activities
    union all
    select * from recomputed_activities
),
{% else %}
new_activities as (
    select * from loaded_activities
),
{% endif %}

final as (
    select
        ---------- ids
        new_activities.activity_id,
        new_activities.source_system,
        new_activities.manager_id,
        case when deleted_deals.deal_id is null then new_activities.deal_id end as deal_id,
        coalesce(
            {{ counted_client_id('new_activities.client_id', 'client_merges') }}, deals.client_id
        ) as client_id,
        ---------- attributes
        new_activities.activity_type,
        new_activities.outcome,
        new_activities.completed_at is not null as is_completed,
        ---------- timestamps (UTC)
        new_activities.created_at,
        new_activities.due_at,
        new_activities.completed_at,
        new_activities.updated_at,
        ---------- load metadata
        new_activities._source_file,
        new_activities._loaded_at,
        ---------- ids as the activity names them (D300), last: a table built before them
        ---------- gets them appended
        new_activities.deal_id as given_deal_id,
        new_activities.client_id as given_client_id
    from new_activities
    left join deals
        on new_activities.deal_id = deals.deal_id
    left join deleted_deals
        on new_activities.deal_id = deleted_deals.deal_id
    left join client_merges
        on new_activities.client_id = client_merges.client_id
)

select * from final
