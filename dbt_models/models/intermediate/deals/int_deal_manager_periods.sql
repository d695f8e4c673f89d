{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_deal_rows(['stage_changes']) }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('fct_deal_stage_changes')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- Who was responsible for a deal when (kpi-definitions, "Attribution"): the manager_id of the
    deal's latest stage change at or before t that carries one, otherwise deals.manager_id.
    One row per deal and period [valid_from, valid_to): period 0 runs from always (valid_from
    null) to the first stage change that names a manager (or for ever when none does) and
    belongs to deals.manager_id; every stage change with a manager_id opens the next period.
    The periods of a deal never overlap, so "the manager at t" is one range join:
        valid_from is null or valid_from <= t, and valid_to is null or t < valid_to.
    Stage changes at the same instant: the one with the larger change_id wins (the other's
    period is empty). A table, not a view: fct_deals, fct_survey_responses and marts read it.
    Incremental per deal (macros/deal_incremental.sql, D311): the periods of the deals touched
    since the last build (a new version, a stage change loaded since) are computed again, the
    others kept; in full after a removal (D205). No as-of time is read. -#}

{%- set since = deal_rebuild_since() %}

with

{% if since is not none %}
touched_deals as (
    select distinct deal_id
    from ({{ deals_touched(since, ['stage_changes']) }}) as touched
),
{% endif %}

-- live deals only: a deleted deal has no manager at any time (D85)
deals as (
    select unioned.* from {{ ref('int_deals__unioned') }} as unioned
    {%- if since is not none %}
    inner join touched_deals
        on unioned.deal_id = touched_deals.deal_id
    {%- endif %}
    where unioned.deleted_at is null
),

stage_changes as (
    select * from {{ ref('fct_deal_stage_changes') }}
),

manager_changes as (
    select
        stage_changes.deal_id,
        stage_changes.change_id,
        stage_changes.manager_id,
        stage_changes.changed_at
    from stage_changes
    inner join deals
        on stage_changes.deal_id = deals.deal_id
    where stage_changes.manager_id is not null
),

change_periods as (
    select
        deal_id,
        manager_id,
        change_id,
        changed_at as valid_from,
        lead(changed_at) over (
            partition by deal_id
            order by changed_at, change_id
        ) as valid_to,
        row_number() over (
            partition by deal_id
            order by changed_at, change_id
        ) as period_number
    from manager_changes
),

first_changes as (
    select
        deal_id,
        min(changed_at) as first_changed_at
    from manager_changes
    group by 1
),

initial_periods as (
    select
        deals.deal_id,
        deals.manager_id,
        cast(null as {{ dbt.type_string() }}) as change_id,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from,
        first_changes.first_changed_at as valid_to,
        0 as period_number
    from deals
    left join first_changes
        on deals.deal_id = first_changes.deal_id
),

unioned as (
    select
        deal_id,
        manager_id,
        change_id,
        valid_from,
        valid_to,
        period_number,
        'deal' as manager_source
    from initial_periods
    union all
    select
        deal_id,
        manager_id,
        change_id,
        valid_from,
        valid_to,
        period_number,
        'stage_change' as manager_source
    from change_periods
),

final as (
    select
        deal_id || '#' || cast(period_number as {{ dbt.type_string() }}) as deal_manager_period_id,
        deal_id,
        cast(period_number as {{ dbt.type_int() }}) as period_number,
        manager_id,
        -- deal: deals.manager_id (no earlier stage change names one); stage_change: change_id's
        manager_source,
        change_id,
        valid_from,
        valid_to
    from unioned
)

select * from final
