{{
    config(
        materialized='incremental',
        unique_key='change_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{{ delete_deleted_rows('deal_id', 'select deal_id from ' ~ ref('int_deals__unioned') ~ ' where deleted_at is not null') }}",
            "{{ delete_all_rows_if_removed() }}",
        ],
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('dim_pipeline_stages')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per stage change of a deal, with the order and type of the stages it left and
    entered (in the deal's pipeline). Incremental: the changes loaded since the last build, plus
    the changes of deals loaded since (a deal may move to another pipeline), plus all of them
    when pipeline stages were loaded since (deals and stages loaded after the last build, D201);
    a full refresh gives the same rows.
    The changes of a deal deleted in its source are not here (D85): the pre-hook removes those of
    deals deleted since; a restored deal's changes come back with the load that restored it.
    After raw rows were removed, the run rebuilds it in full (macros/removals.sql, D205). -#}

with

stage_changes as (
    select * from {{ ref('int_deal_stage_changes__unioned') }}
),

deals as (
    select * from {{ ref('int_deals__unioned') }}
),

pipeline_stages as (
    select * from {{ ref('dim_pipeline_stages') }}
),

{% if is_incremental() %}
{%- set watermark = loaded_watermark() %}
{%- set recompute_all = lacks_columns(['source_system']) or removed_since_build() %}
{%- set inputs_since = inputs_watermark(watermark) %}
{%- set deals_changed = loaded_since([ref('int_deals__unioned')], inputs_since) %}
{#- the deals loaded since as constants (D340's list; any relation with `_loaded_at` serves),
    a filter of their own that reaches the raw scan through the staging view (D397, D414); more
    than `inbox_keys_listed_max()` are a semi-join -#}
{%- set deals_listed = none %}
{%- if execute and deals_changed and '__dbt__cte__' not in (ref('int_deals__unioned') | string) %}
{%- set deals_listed = inbox_keys_listed(ref('int_deals__unioned'), 'deal_id', inputs_since) %}
{%- endif %}
{%- set stages_changed = loaded_since([ref('dim_pipeline_stages')], inputs_since) %}
{% endif %}

deleted_deals as (
    select deals.deal_id from deals
    where not {{ is_live('deals') }}
),

new_stage_changes as (
    select stage_changes.*
    from stage_changes
    left join deleted_deals
        on stage_changes.deal_id = deleted_deals.deal_id
    where deleted_deals.deal_id is null
    {% if is_incremental() and not stages_changed and not recompute_all %}
        and stage_changes._last_loaded_at > {{ watermark }}
    {% if deals_changed and deals_listed != '' %}
    union all
    {# the other changes of the deals loaded since: a second branch, not an `or` (D414). Under
        the `or` neither filter reached the raw scan: the staging view parsed every change of
        history and DuckDB tested each against the listed deals one by one. Alone, each filter
        is applied to the raw rows. The view is read here again, not through `stage_changes`:
        DuckDB materializes a CTE read twice, with the two filters joined by an `or` again. #}
    select changes_of_deals.*
    from {{ ref('int_deal_stage_changes__unioned') }} as changes_of_deals
    left join deleted_deals
        on changes_of_deals.deal_id = deleted_deals.deal_id
    where deleted_deals.deal_id is null
        and (changes_of_deals._last_loaded_at > {{ watermark }}) is not true
        {% if deals_listed is none %}
        and changes_of_deals.deal_id in (
            select deals.deal_id from deals
            where deals._loaded_at > {{ inputs_since }}
        )
        {% else %}
        and changes_of_deals.deal_id in ({{ deals_listed }})
        {% endif %}
    {% endif %}
    {% endif %}
),

joined as (
    select
        ---------- ids
        new_stage_changes.change_id,
        new_stage_changes.source_system,
        new_stage_changes.deal_id,
        new_stage_changes.manager_id,
        ---------- stages
        deals.pipeline,
        new_stage_changes.from_stage,
        from_stages.stage_order as from_stage_order,
        from_stages.stage_type as from_stage_type,
        new_stage_changes.to_stage,
        to_stages.stage_order as to_stage_order,
        to_stages.stage_type as to_stage_type,
        ---------- timestamps
        new_stage_changes.changed_at,
        ---------- load metadata
        new_stage_changes._source_file,
        new_stage_changes._source_line,
        new_stage_changes._loaded_at,
        new_stage_changes._last_loaded_at
    from new_stage_changes
    left join deals
        on new_stage_changes.deal_id = deals.deal_id
    left join pipeline_stages as from_stages
        on deals.pipeline = from_stages.pipeline
        and new_stage_changes.from_stage = from_stages.stage
    left join pipeline_stages as to_stages
        on deals.pipeline = to_stages.pipeline
        and new_stage_changes.to_stage = to_stages.stage
),

final as (
    select * from joined
)

select * from final
