{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_deal_rows(['stage_changes', 'pipeline_stages'], reads_as_of=true) }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('fct_deal_stage_changes'), ref('dim_pipeline_stages')]) }}",
            "{{ keep_as_of_seen([(ref('fct_deals'), 'created_at'), (ref('fct_deal_stage_changes'), 'changed_at')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per deal and stage of its pipeline that the deal entered up to the as-of time (its
    first entry), with when it entered and when it left (kpi-definitions, "Funnel"):

    - creation is entering the stage the deal was created in: the from_stage of its earliest stage
      change when that names a stage of the pipeline, else (no change at all) its current stage
      when that is open, else the pipeline's first stage ("creation counts as entering the
      pipeline's first stage when no change says otherwise");
    - every stage change up to as-of enters its to_stage;
    - left_at is the first stage change after that entry (up to as-of), null while the deal is
      still in the stage. Stage changes at the same instant are ordered by change_id.
    Stages unknown to dim_pipeline_stages are ignored.
    Incremental per deal (macros/deal_incremental.sql, D310): the rows of the deals touched since
    the last build (a new version, a stage change, a stage of its pipeline loaded since) are
    computed again, the others kept; in full after a removal (D205) or when the as-of moved in a
    way the kept rows may depend on. -#}

{%- set since = deal_rebuild_since(reads_as_of=true) %}

with

{% if since is none %}
deals as (
    select * from {{ ref('fct_deals') }}
),

stage_changes as (
    select * from {{ ref('fct_deal_stage_changes') }}
),
{% else %}
touched_deals as (
    select distinct deal_id
    from ({{ deals_touched(since, ['stage_changes', 'pipeline_stages']) }}) as touched
),

deals as (
    select fct_deals.*
    from {{ ref('fct_deals') }} as fct_deals
    inner join touched_deals
        on fct_deals.deal_id = touched_deals.deal_id
),

stage_changes as (
    select fct_deal_stage_changes.*
    from {{ ref('fct_deal_stage_changes') }} as fct_deal_stage_changes
    inner join touched_deals
        on fct_deal_stage_changes.deal_id = touched_deals.deal_id
),
{% endif %}

pipeline_stages as (
    select * from {{ ref('dim_pipeline_stages') }}
),

as_of as (
    select as_of_at from {{ ref('int_as_of') }}
),

changes_ranked as (
    select
        change_id,
        deal_id,
        from_stage,
        to_stage,
        changed_at,
        row_number() over (partition by deal_id order by changed_at, change_id) as change_number
    from stage_changes
),

first_stages as (
    select
        pipeline,
        stage
    from pipeline_stages
    where is_first_stage
),

created_deals as (
    select
        deals.deal_id,
        deals.pipeline,
        deals.created_at,
        coalesce(
            first_change_stages.stage,
            case when first_changes.deal_id is null and deals.stage_type = 'open' then deals.stage end,
            first_stages.stage
        ) as creation_stage
    from deals
    cross join as_of
    left join changes_ranked as first_changes
        on deals.deal_id = first_changes.deal_id
        and first_changes.change_number = 1
    left join pipeline_stages as first_change_stages
        on deals.pipeline = first_change_stages.pipeline
        and first_changes.from_stage = first_change_stages.stage
    left join first_stages
        on deals.pipeline = first_stages.pipeline
    where deals.created_at <= as_of.as_of_at
),

entries as (
    select
        deal_id,
        pipeline,
        creation_stage as stage,
        created_at as entered_at,
        cast(null as {{ dbt.type_string() }}) as change_id,
        0 as entry_sequence
    from created_deals
    union all
    select
        changes_ranked.deal_id,
        created_deals.pipeline,
        changes_ranked.to_stage as stage,
        changes_ranked.changed_at as entered_at,
        changes_ranked.change_id,
        changes_ranked.change_number as entry_sequence
    from changes_ranked
    inner join created_deals
        on changes_ranked.deal_id = created_deals.deal_id
    cross join as_of
    where changes_ranked.changed_at <= as_of.as_of_at
),

entries_sequenced as (
    select
        *,
        lead(entered_at) over (partition by deal_id order by entry_sequence) as left_at,
        row_number() over (partition by deal_id, stage order by entry_sequence) as stage_entry_number
    from entries
),

final as (
    select
        entries_sequenced.deal_id,
        entries_sequenced.pipeline,
        entries_sequenced.stage,
        pipeline_stages.stage_order,
        pipeline_stages.stage_type,
        entries_sequenced.entered_at,
        entries_sequenced.left_at,
        -- the change that entered the stage; null for the creation stage
        entries_sequenced.change_id
    from entries_sequenced
    inner join pipeline_stages
        on entries_sequenced.pipeline = pipeline_stages.pipeline
        and entries_sequenced.stage = pipeline_stages.stage
    where entries_sequenced.stage_entry_number = 1
)

select * from final
