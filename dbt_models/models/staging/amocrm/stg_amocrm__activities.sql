{#- One row per amoCRM task, its newest version, in the inbox activities' columns.
    activity_type: task type 1 (Связаться) = call, 2 (Встреча) = meeting, others task.
    completed_at: the update that completed it (amoCRM keeps no completion time). The task's
    entity gives deal_id (leads) or client_id (contacts, companies). -#}

with

source as (
    {{ raw_source('amocrm', 'tasks', [
        'id', 'entity_id', 'entity_type', 'responsible_user_id', 'task_type_id',
        'is_completed', 'complete_till', 'created_at', 'updated_at',
    ]) }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(parse_integer('updated_at')) }}
    from source
),

final as (
    select
        ---------- ids
        {{ namespaced_id('amocrm:task', 'id') }} as activity_id,
        {{ namespaced_id('amocrm', 'responsible_user_id') }} as manager_id,
        {{ crm_activity_owner_ids(
            'amocrm',
            'entity_type',
            'entity_id',
            {'deal': 'leads', 'contact': 'contacts', 'company': 'companies'},
        ) }},
        ---------- attributes
        case task_type_id
            when '1' then 'call'
            when '2' then 'meeting'
            else 'task'
        end as activity_type,
        cast(null as {{ dbt.type_string() }}) as outcome,
        ---------- timestamps
        {{ epoch_to_timestamp('created_at') }} as created_at,
        {{ epoch_to_timestamp('complete_till') }} as due_at,
        case
            when {{ parse_bool('is_completed') }} then {{ epoch_to_timestamp('updated_at') }}
        end as completed_at,
        {{ epoch_to_timestamp('updated_at') }} as updated_at,
        ---------- deletion (D85): amoCRM deletions: filled by the amoCRM source (D85)
        cast(null as {{ dbt.type_timestamp() }}) as deleted_at,
        ---------- load metadata
        {{ api_load_metadata() }}
    from ranked
    where version_rank = 1
)

select * from final
