{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_deal_rows(['stage_changes', 'pipeline_stages', 'client_merges', 'won_siblings']) }}",
        post_hook=[
            "{{ keep_inputs_seen([ref('int_deals__unioned'), ref('fct_deal_stage_changes'), ref('dim_pipeline_stages')]) }}",
            "{{ keep_removals_seen() }}",
        ]
    )
}}

{#- One row per deal, its current state, with the managers it is credited to at creation and at
    close (kpi-definitions, "Attribution": the manager_id of the deal's latest stage change at or
    before that time which carries one, otherwise deals.manager_id). Times in UTC; months in the
    business time zone. A deal deleted in its source is not here (D85).
    Incremental per deal (macros/deal_incremental.sql, D351): the pre-hook deletes the rows of the
    deals touched since the last build (a new version, a stage change or a stage of its pipeline
    loaded since: its manager periods and stage; a client whose chain of merges runs through a
    client loaded since: the client it counts for) and of the won deals numbered with them (the
    touched deals' clients before and now); the model computes every live deal that has no row
    left, the others are kept. In full after a removal (D205). No as-of time is read. -#}

-- depends_on: {{ ref('fct_deal_stage_changes') }}
-- depends_on: {{ ref('int_clients__unioned') }}

{%- set since = deal_rebuild_since() %}

with

-- not materialized: read more than once; DuckDB (and PostgreSQL) would otherwise copy the
-- whole table into a temporary result first instead of scanning it with each reader's filters
client_merges as (
    select * from {{ ref('int_client_merges_resolved') }}
),

-- the live deals, each with the client it counts for (D85)
live_deals as not materialized (
    select
        unioned.*,
        {{ counted_client_id('unioned.client_id', 'client_merges') }} as counted_client_id
    from {{ ref('int_deals__unioned') }} as unioned
    left join client_merges
        on unioned.client_id = client_merges.client_id
    where {{ is_live('unioned') }}
),

{% if since is none %}
deals as not materialized (
    select * from live_deals
),

won_deals as (
    select * from live_deals
    where status = 'won'
),
{% else %}
-- the live deals with no row kept: the pre-hook deleted the touched ones (D351). Materialized:
-- inlined, the anti-join came after the joins below, which then ran on every deal (D395)
deals as materialized (
    select live_deals.* from live_deals
    where not exists (
        select 1 from {{ this }} as kept
        where kept.deal_id = live_deals.deal_id
    )
),

-- the won deals of their clients, numbered with them
deal_clients as (
    select distinct counted_client_id from deals
    where counted_client_id is not null
),

won_deals as (
    select live_deals.*
    from live_deals
    inner join deal_clients
        on live_deals.counted_client_id = deal_clients.counted_client_id
    where live_deals.status = 'won'
    union all
    select live_deals.*
    from live_deals
    where live_deals.status = 'won'
        and live_deals.counted_client_id is null
        and exists (select 1 from deals where deals.counted_client_id is null)
),
{% endif %}

manager_periods as not materialized (
    select * from {{ ref('int_deal_manager_periods') }}
),

pipeline_stages as (
    select * from {{ ref('dim_pipeline_stages') }}
),

credited_at_creation as (
    select
        deals.deal_id,
        manager_periods.manager_id
    from deals
    inner join manager_periods
        on deals.deal_id = manager_periods.deal_id
        and (manager_periods.valid_from is null or manager_periods.valid_from <= deals.created_at)
        and (manager_periods.valid_to is null or deals.created_at < manager_periods.valid_to)
),

credited_at_close as (
    select
        deals.deal_id,
        manager_periods.manager_id
    from deals
    inner join manager_periods
        on deals.deal_id = manager_periods.deal_id
        and (manager_periods.valid_from is null or manager_periods.valid_from <= deals.closed_at)
        and (manager_periods.valid_to is null or deals.closed_at < manager_periods.valid_to)
    where deals.closed_at is not null
),

won_deal_numbers as (
    select
        deal_id,
        row_number() over (partition by counted_client_id order by closed_at, deal_id) as client_won_deal_number
    from won_deals
),

final as (
    select
        ---------- ids
        deals.deal_id,
        -- inbox, amocrm or bitrix24
        deals.source_system,
        -- the client it counts for: a merged client's survivor, none for a deleted one (D85)
        deals.counted_client_id as client_id,
        -- responsible now (deals.manager_id)
        deals.manager_id,
        credited_at_creation.manager_id as manager_id_at_creation,
        -- null while the deal is not closed
        credited_at_close.manager_id as manager_id_at_close,
        ---------- pipeline
        deals.pipeline,
        deals.stage,
        pipeline_stages.stage_order,
        pipeline_stages.stage_type,
        ---------- status
        deals.status,
        deals.status = 'open' as is_open,
        deals.status = 'won' as is_won,
        deals.status = 'lost' as is_lost,
        deals.loss_reason,
        -- 1 for the client's first won deal, 2 for the second, ... (null unless won)
        cast(won_deal_numbers.client_won_deal_number as {{ dbt.type_int() }}) as client_won_deal_number,
        ---------- money
        deals.amount,
        deals.currency,
        ---------- attributes
        deals.channel,
        -- the CRM's custom fields as JSON text (null for the inbox)
        deals.custom_fields,
        ---------- timestamps (UTC) and months (business time zone)
        deals.created_at,
        {{ business_month('deals.created_at') }} as created_month,
        deals.closed_at,
        {{ business_month('deals.closed_at') }} as closed_month,
        deals.updated_at,
        ---------- load metadata
        deals._source_file,
        deals._loaded_at
    from deals
    left join credited_at_creation
        on deals.deal_id = credited_at_creation.deal_id
    left join credited_at_close
        on deals.deal_id = credited_at_close.deal_id
    left join won_deal_numbers
        on deals.deal_id = won_deal_numbers.deal_id
    left join pipeline_stages
        on deals.pipeline = pipeline_stages.pipeline
        and deals.stage = pipeline_stages.stage
)

select * from final
