{#- One row per Bitrix24 deal stage (crm.status.list, ENTITY_ID DEAL_STAGE for pipeline 0 and
    DEAL_STAGE_<n> for pipeline n), its latest snapshot. pipeline = 'bitrix24:' and the
    pipeline's name (crm.category.list); stage = the stage's name. stage_type from the stage's
    semantics (EXTRA.SEMANTICS, or SEMANTICS): success = won, failure = lost, process = open;
    without semantics, Bitrix24's fixed ids WON / LOSE (C<n>:WON, C<n>:LOSE). category_id and
    stage_id are Bitrix24's ids, for the deals and the stage history. -#}

with

statuses_source as (
    {{ raw_source('bitrix24', 'statuses', [
        'id', 'entity_id', 'status_id', 'name', 'sort', 'category_id', 'semantics', 'extra',
    ]) }}
),

categories_source as (
    {{ raw_source('bitrix24', 'deal_categories', ['id', 'name']) }}
),

statuses_ranked as (
    select
        *,
        {{ newest_version_rank(partition_by='id', load_order=['_loaded_at', '_batch_id']) }}
    from statuses_source
    where entity_id = 'DEAL_STAGE' or entity_id like 'DEAL_STAGE\_%' escape '\'
),

categories_ranked as (
    select
        id,
        name,
        {{ newest_version_rank(partition_by='id', load_order=['_loaded_at', '_batch_id']) }}
    from categories_source
),

stages as (
    select
        coalesce(
            nullif(category_id, ''),
            case
                when entity_id = 'DEAL_STAGE' then '0'
                else substr(entity_id, 12)
            end
        ) as category_id,
        status_id as stage_id,
        name,
        sort,
        lower(coalesce(nullif(semantics, ''), {{ json_text('extra', ['SEMANTICS']) }})) as semantics,
        _source,
        _loaded_at,
        _batch_id
    from statuses_ranked
    where version_rank = 1
),

final as (
    select
        ---------- Bitrix24 ids
        stages.category_id,
        stages.stage_id,
        ---------- keys
        'bitrix24:' || coalesce(categories.name, stages.category_id) as pipeline,
        coalesce(stages.name, stages.stage_id) as stage,
        ---------- attributes
        {{ parse_integer('stages.sort') }} as stage_order,
        {{ bitrix24_stage_type('stages.semantics', 'stages.stage_id') }} as stage_type,
        ---------- load metadata
        {{ api_load_metadata('stages') }}
    from stages
    left join categories_ranked as categories
        on stages.category_id = categories.id
        and categories.version_rank = 1
)

select * from final
