{#- One row per amoCRM pipeline status (stage), its latest snapshot. pipeline = 'amocrm:' and
    the pipeline's name (so that two sources' pipelines never share a key); stage = the status's
    name. stage_type: status 142 is won and 143 lost in every pipeline (amoCRM's fixed ids), the
    others open. pipeline_id and status_id are amoCRM's ids, for the deals and events;
    status_type is amoCRM's `type` of the status (0 an ordinary stage, 1 incoming leads,
    неразобранное: its leads are not deals yet, D95). -#}

with

statuses_source as (
    {{ raw_source('amocrm', 'statuses', ['pipeline_id', 'id', 'name', 'sort', 'type']) }}
),

pipelines_source as (
    {{ raw_source('amocrm', 'pipelines', ['id', 'name']) }}
),

statuses_ranked as (
    select
        *,
        {{ newest_version_rank(partition_by='pipeline_id, id', load_order=['_loaded_at', '_batch_id']) }}
    from statuses_source
),

pipelines_ranked as (
    select
        id,
        name,
        {{ newest_version_rank(partition_by='id', load_order=['_loaded_at', '_batch_id']) }}
    from pipelines_source
),

final as (
    select
        ---------- amoCRM ids
        statuses.pipeline_id,
        statuses.id as status_id,
        ---------- keys
        'amocrm:' || coalesce(pipelines.name, statuses.pipeline_id) as pipeline,
        coalesce(statuses.name, statuses.id) as stage,
        ---------- attributes
        {{ parse_integer('statuses.sort') }} as stage_order,
        case statuses.id
            when '142' then 'won'
            when '143' then 'lost'
            else 'open'
        end as stage_type,
        statuses.type as status_type,
        ---------- load metadata
        {{ api_load_metadata('statuses') }}
    from statuses_ranked as statuses
    left join pipelines_ranked as pipelines
        on statuses.pipeline_id = pipelines.id
        and pipelines.version_rank = 1
    where statuses.version_rank = 1
)

select * from final
