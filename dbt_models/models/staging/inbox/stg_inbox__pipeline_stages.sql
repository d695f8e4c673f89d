{#- One row per (pipeline, stage): the newest loaded row wins. -#}

with

source as (
    select * from {{ source('inbox', 'pipeline_stages') }}
),

renamed as (
    select
        ---------- keys
        pipeline,
        stage,
        ---------- attributes
        {{ parse_integer('stage_order') }} as stage_order,
        {{ parse_enum('stage_type') }} as stage_type,
        ---------- load metadata
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from source
),

ranked as (
    select
        *,
        {{ newest_version_rank(partition_by='pipeline, stage', load_order=inbox_load_order()) }}
    from renamed
),

final as (
    select
        pipeline,
        stage,
        stage_order,
        stage_type,
        _source_file,
        _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
