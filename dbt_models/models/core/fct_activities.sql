{#- One row per CRM activity (task, meeting, e-mail, demo, proposal, call), its current state.
    client_id: the activity's own (the client it counts for, D85), else its deal's client. An
    activity deleted in its source is not here, and one naming a deleted deal names none (D85). -#}

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

-- deals deleted in their source: an activity names none (D85)
deleted_deals as (
    select unioned.deal_id from {{ ref('int_deals__unioned') }} as unioned
    where not {{ is_live('unioned') }}
),

final as (
    select
        ---------- ids
        activities.activity_id,
        activities.source_system,
        activities.manager_id,
        case when deleted_deals.deal_id is null then activities.deal_id end as deal_id,
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
    left join deleted_deals
        on activities.deal_id = deleted_deals.deal_id
    left join client_merges
        on activities.client_id = client_merges.client_id
    where {{ is_live('activities') }}
)

select * from final
