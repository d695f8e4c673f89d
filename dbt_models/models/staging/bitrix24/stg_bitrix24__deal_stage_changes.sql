{#- One row per Bitrix24 deal stage history entry (crm.stagehistory.list), in the inbox
    deal_stage_changes' columns. to_stage: the entry's stage name; from_stage: the deal's
    previous entry's (null for the creation entry). manager_id null: the history names no
    user, so attribution falls back to the deal's responsible user. Entries are immutable:
    `_last_loaded_at` is their load time. -#}

with

source as (
    {{ raw_source('bitrix24', 'deal_stage_history', [
        'id', 'owner_id', 'created_time', 'category_id', 'stage_id',
    ]) }}
),

stages as (
    select * from {{ ref('stg_bitrix24__pipeline_stages') }}
),

first_loaded as (
    select
        *,
        row_number() over (partition by id order by _loaded_at, _batch_id) as load_rank
    from source
),

named as (
    select
        first_loaded.id,
        first_loaded.owner_id,
        {{ parse_timestamp_utc('first_loaded.created_time') }} as changed_at,
        coalesce(stages.stage, first_loaded.stage_id) as to_stage,
        first_loaded._source,
        first_loaded._loaded_at,
        first_loaded._batch_id
    from first_loaded
    left join stages
        on coalesce(first_loaded.category_id, '0') = stages.category_id
        and first_loaded.stage_id = stages.stage_id
    where first_loaded.load_rank = 1
),

final as (
    select
        ---------- ids
        {{ namespaced_id('bitrix24', 'id') }} as change_id,
        {{ namespaced_id('bitrix24', 'owner_id') }} as deal_id,
        cast(null as {{ dbt.type_string() }}) as manager_id,
        ---------- attributes
        lag(to_stage) over (
            partition by owner_id
            order by changed_at, {{ parse_integer('id') }}
        ) as from_stage,
        to_stage,
        ---------- timestamps
        changed_at,
        ---------- load metadata
        {{ api_load_metadata() }},
        _loaded_at as _last_loaded_at
    from named
)

select * from final
