{#- The sales funnel per pipeline, open stage, cohort month and manager (kpi-definitions,
    "Funnel"): the deals created in the cohort month (business time zone, up to as-of), credited
    to the manager at creation (fct_deals.manager_id_at_creation). A deal reached an open stage
    when it was won by as-of, or entered that stage or one of higher stage_order that is not a
    lost stage (a skipped stage counts as passed; a lost deal reached the stages up to the highest
    open stage it entered). Every open stage of the pipeline has a row for every (cohort month,
    manager) with deals in that pipeline; won and lost stages are outcomes, not rows. Days in a
    stage: over the cohort's deals that entered the stage and left it by as-of, from the first
    entry to the next stage change (int_deal_stages_entered). -#}

{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    month_column='cohort_month',
    on_schema_change='fail',
    post_hook="{{ keep_built_fingerprints() }}"
) }}

{%- set rebuild_from = rebuild_from_month() %}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

-- not materialized: read more than once; DuckDB (and PostgreSQL) would otherwise copy the
-- whole table into a temporary result first instead of scanning it with each reader's filters
stages_entered as not materialized (
    select * from {{ ref('int_deal_stages_entered') }}
),

pipeline_stages as (
    select * from {{ ref('dim_pipeline_stages') }}
),

as_of as (
    select as_of_at from {{ ref('int_as_of') }}
),

cohort_deals as (
    select
        deals.deal_id,
        deals.pipeline,
        deals.created_month as cohort_month,
        deals.manager_id_at_creation as manager_id,
        deals.is_won and (deals.closed_at is null or deals.closed_at <= as_of.as_of_at) as is_won_by_as_of
    from deals
    cross join as_of
    where deals.created_at <= as_of.as_of_at
        {{ rebuilt_months_filter('deals.created_month', rebuild_from) }}
        and deals.pipeline in (select pipeline from pipeline_stages)
),

deal_reach as (
    -- the highest stage entered that is not a lost stage
    select
        deal_id,
        max(stage_order) as max_reached_order
    from stages_entered
    where stage_type <> 'lost'
    group by 1
),

deal_groups as (
    select
        cohort_deals.pipeline,
        cohort_deals.cohort_month,
        cohort_deals.manager_id,
        deal_reach.max_reached_order,
        cohort_deals.is_won_by_as_of,
        count(*) as deals
    from cohort_deals
    left join deal_reach
        on cohort_deals.deal_id = deal_reach.deal_id
    group by 1, 2, 3, 4, 5
),

open_stages as (
    select
        pipeline_stages.pipeline,
        pipeline_stages.stage,
        pipeline_stages.stage_order,
        next_stages.stage_order as next_stage_order
    from pipeline_stages
    left join pipeline_stages as next_stages
        on pipeline_stages.pipeline = next_stages.pipeline
        and pipeline_stages.next_open_stage = next_stages.stage
    where pipeline_stages.stage_type = 'open'
),

reach_counts as (
    select
        open_stages.pipeline,
        open_stages.stage,
        open_stages.stage_order,
        deal_groups.cohort_month,
        deal_groups.manager_id,
        sum(
            case
                when deal_groups.is_won_by_as_of then deal_groups.deals
                when deal_groups.max_reached_order >= open_stages.stage_order then deal_groups.deals
                else 0
            end
        ) as deals_reached,
        sum(
            case
                when deal_groups.is_won_by_as_of then deal_groups.deals
                when deal_groups.max_reached_order >= open_stages.next_stage_order then deal_groups.deals
                else 0
            end
        ) as deals_reached_next,
        sum(case when deal_groups.is_won_by_as_of then deal_groups.deals else 0 end) as deals_won
    from open_stages
    inner join deal_groups
        on open_stages.pipeline = deal_groups.pipeline
    group by 1, 2, 3, 4, 5
),

stage_durations as (
    select
        cohort_deals.pipeline,
        stages_entered.stage,
        cohort_deals.cohort_month,
        cohort_deals.manager_id,
        {{ exact_mean(seconds_between('stages_entered.entered_at', 'stages_entered.left_at') ~ ' / 86400.0') }}
            as avg_days_in_stage,
        {# the median in seconds (whole seconds or halves, exact in a double), then days exactly:
            a median of days as a double can fall either side of a 6th-decimal half (D290) #}
        {{ safe_ratio(exact_median(seconds_between('stages_entered.entered_at', 'stages_entered.left_at')), '86400') }}
            as median_days_in_stage
    from stages_entered
    inner join cohort_deals
        on stages_entered.deal_id = cohort_deals.deal_id
    where stages_entered.stage_type = 'open'
        and stages_entered.left_at is not null
    group by 1, 2, 3, 4
),

final as (
    select
        ---------- keys
        cast(reach_counts.pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(reach_counts.stage as {{ dbt.type_string() }}) as stage,
        cast(reach_counts.cohort_month as date) as cohort_month,
        cast(reach_counts.manager_id as {{ dbt.type_string() }}) as manager_id,
        ---------- attributes
        cast(reach_counts.stage_order as {{ dbt.type_int() }}) as stage_order,
        ---------- counts and rates
        cast(reach_counts.deals_reached as {{ dbt.type_int() }}) as deals_reached,
        cast(reach_counts.deals_reached_next as {{ dbt.type_int() }}) as deals_reached_next,
        {{ safe_ratio('reach_counts.deals_reached_next', 'reach_counts.deals_reached') }} as conversion_to_next,
        {{ safe_ratio('reach_counts.deals_won', 'reach_counts.deals_reached') }} as conversion_to_won,
        ---------- time in stage (days)
        cast(stage_durations.avg_days_in_stage as decimal(18, 6)) as avg_days_in_stage,
        cast(stage_durations.median_days_in_stage as decimal(18, 6)) as median_days_in_stage
    from reach_counts
    left join stage_durations
        on reach_counts.pipeline = stage_durations.pipeline
        and reach_counts.stage = stage_durations.stage
        and reach_counts.cohort_month = stage_durations.cohort_month
        and reach_counts.manager_id = stage_durations.manager_id
)

select * from final
{%- if rebuild_from == 'none' %}
where 1 = 0  -- no month changed: keep every row
{%- endif %}
