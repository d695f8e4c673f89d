{#- One row per CRM activity (task, meeting, e-mail, demo, proposal, call), its current state.
    client_id: the activity's own (the client it counts for, D85), else its deal's client. An
    activity deleted in its source is not here (D85). -#}

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

final as (
    select
        ---------- ids
        activities.activity_id,
        activities.source_system,
        activities.manager_id,
        activities.deal_id,
        coalesce(
            {{ counted_client_id('activities.client_id', 'client_merges') }}, deals.client_id
        ) as client_id,
        ---------- attributes
        activities.activity_type,
        activities.outcome,
        activities.completed_at is not null as is_completed,
        ---------- timestamps (UTC)
        activities.created_at,
        activities.due_at,
        activities.completed_at,
        activities.updated_at,
        ---------- load metadata
        activities._source_file,
        activities._loaded_at
    from activities
    left join deals
        on activities.deal_id = deals.deal_id
    left join client_merges
        on activities.client_id = client_merges.client_id
    where {{ is_live('activities') }}
)

select * from final
