{#- One row per CRM activity (task, meeting, e-mail, demo, proposal, call), its current state.
    client_id: the activity's own, else its deal's client. -#}

with

activities as (
    select * from {{ ref('int_activities__unioned') }}
),

deals as (
    select * from {{ ref('fct_deals') }}
),

final as (
    select
        ---------- ids
        activities.activity_id,
        activities.source_system,
        activities.manager_id,
        activities.deal_id,
        coalesce(activities.client_id, deals.client_id) as client_id,
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
)

select * from final
