{#- One row per pipeline stage, with its order and what comes next in the pipeline. -#}

with

stages as (
    select * from {{ ref('int_pipeline_stages__unioned') }}
),

open_stages as (
    select
        pipeline,
        stage,
        lead(stage) over (partition by pipeline order by stage_order, stage) as next_open_stage
    from stages
    where stage_type = 'open'
),

first_orders as (
    select
        pipeline,
        min(stage_order) as first_stage_order
    from stages
    group by 1
),

final as (
    select
        ---------- keys
        stages.pipeline,
        stages.source_system,
        stages.stage,
        ---------- attributes
        stages.stage_order,
        stages.stage_type,
        stages.stage_order = first_orders.first_stage_order as is_first_stage,
        -- the open stage that follows (null after the last open stage and for won/lost stages)
        open_stages.next_open_stage,
        ---------- load metadata
        stages._loaded_at
    from stages
    inner join first_orders
        on stages.pipeline = first_orders.pipeline
    left join open_stages
        on stages.pipeline = open_stages.pipeline
        and stages.stage = open_stages.stage
)

select * from final
