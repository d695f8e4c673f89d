{#- One row per amoCRM lead_status_changed event, in the inbox deal_stage_changes' columns.
    from/to stage: the names of the statuses in value_before / value_after. manager_id is null:
    the event's author is not the responsible manager, so attribution falls back to the deal's
    responsible user (kpi-definitions, "Attribution"). Events are immutable: the first loaded
    copy wins; `_last_loaded_at` is its load time. -#}

with

source as (
    {{ raw_source('amocrm', 'events', [
        'id', 'type', 'entity_id', 'entity_type', 'created_at', 'value_before', 'value_after',
    ]) }}
),

stages as (
    select * from {{ ref('stg_amocrm__pipeline_stages') }}
),

status_changes as (
    select
        id,
        entity_id,
        created_at,
        {{ json_text('value_before', [0, 'lead_status', 'id']) }} as from_status_id,
        {{ json_text('value_before', [0, 'lead_status', 'pipeline_id']) }} as from_pipeline_id,
        {{ json_text('value_after', [0, 'lead_status', 'id']) }} as to_status_id,
        {{ json_text('value_after', [0, 'lead_status', 'pipeline_id']) }} as to_pipeline_id,
        _source,
        _loaded_at,
        _batch_id,
        row_number() over (partition by id order by _loaded_at, _batch_id) as load_rank
    from source
    where type = 'lead_status_changed'
),

final as (
    select
        ---------- ids
        {{ namespaced_id('amocrm', 'status_changes.id') }} as change_id,
        {{ namespaced_id('amocrm', 'status_changes.entity_id') }} as deal_id,
        cast(null as {{ dbt.type_string() }}) as manager_id,
        ---------- attributes
        coalesce(from_stages.stage, status_changes.from_status_id) as from_stage,
        coalesce(to_stages.stage, status_changes.to_status_id) as to_stage,
        ---------- timestamps
        {{ epoch_to_timestamp('status_changes.created_at') }} as changed_at,
        ---------- load metadata
        {{ api_load_metadata('status_changes') }},
        status_changes._loaded_at as _last_loaded_at
    from status_changes
    left join stages as from_stages
        on status_changes.from_pipeline_id = from_stages.pipeline_id
        and status_changes.from_status_id = from_stages.status_id
    left join stages as to_stages
        on status_changes.to_pipeline_id = to_stages.pipeline_id
        and status_changes.to_status_id = to_stages.status_id
    where status_changes.load_rank = 1
)

select * from final
