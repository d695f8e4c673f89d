{#- One row per Bitrix24 deal, its newest version (DATE_MODIFY), in the inbox deals' columns.
    status: the deal's STAGE_SEMANTIC_ID (S = won, F = lost, P = open), else its stage's
    semantics (stg_bitrix24__pipeline_stages). client: the deal's company, else its contact.
    closed_at of a won or lost deal: when it moved to its current stage, from the stage
    history (the deal's latest entry, when that entry is its current stage), else MOVED_TIME
    (the time of its last stage change), else its last update. CLOSEDATE is not read: it is a
    date (the planned close day), not a time (decision D104).
    deleted_at: when the extractor's live-id pass saw the deal vanish (deleted, or merged into
    another; D100), null while it exists; _loaded_at: its version's load, or the load of its
    latest deletion or restoration when later (D85: a restored deal comes back with it).
    channel: the field named by var bitrix24_channel_field (env VORONKA_BITRIX24_CHANNEL_FIELD,
    default SOURCE_ID), a source code replaced by its name from crm.status.list (ENTITY_ID
    SOURCE); a multiple field (a multi-select list: a JSON array) gives its first value.
    Every UF_* user field, the multiple ones included (D101), passes through as JSON text in
    custom_fields. -#}

{%- set channel_field = (var('bitrix24_channel_field') or '') | string | trim | lower %}
{%- set user_fields = [] %}
{%- for name in raw_columns('bitrix24', 'deals') if name.startswith('uf_') %}
    {%- do user_fields.append(name) %}
{%- endfor %}
{%- set columns = [
    'id', 'title', 'category_id', 'stage_id', 'stage_semantic_id', 'opportunity', 'currency_id',
    'assigned_by_id', 'contact_id', 'company_id', 'date_create', 'date_modify', 'moved_time',
    'closed',
] + user_fields + ([channel_field] if channel_field else []) %}

with

source as (
    {{ raw_source('bitrix24', 'deals', columns) }}
),

stages as (
    select * from {{ ref('stg_bitrix24__pipeline_stages') }}
),

history_source as (
    {{ raw_source('bitrix24', 'deal_stage_history', ['id', 'owner_id', 'created_time', 'stage_id']) }}
),

latest_moves as (
    select
        owner_id,
        stage_id,
        {{ parse_timestamp_utc('created_time') }} as moved_at,
        row_number() over (
            partition by owner_id
            order by {{ parse_timestamp_utc('created_time') }} desc, {{ parse_integer('id') }} desc
        ) as move_rank
    from history_source
),

deletion_events as (
    {{ bitrix24_deletion_events('deals') }}
),

sources_source as (
    {{ raw_source('bitrix24', 'statuses', ['id', 'entity_id', 'status_id', 'name']) }}
),

lead_sources as (
    select
        status_id,
        name,
        {{ newest_version_rank(partition_by='id', load_order=['_loaded_at', '_batch_id']) }}
    from sources_source
    where entity_id = 'SOURCE'
),

ranked as (
    select
        *,
        {%- if channel_field %}
        {%- set channel_column = adapter.quote(channel_field) %}
        case
            when {{ channel_column }} like '[%' then {{ json_text(channel_column, [0]) }}
            else {{ channel_column }}
        end as channel_code,
        {%- endif %}
        {{ parse_timestamp_utc('date_modify') }} as modified_at,
        {{ newest_version_rank(parse_timestamp_utc('date_modify')) }}
    from source
),

renamed as (
    select
        ---------- ids
        {{ namespaced_id('bitrix24', 'ranked.id') }} as deal_id,
        coalesce(
            {{ namespaced_id('bitrix24:company', 'ranked.company_id') }},
            {{ namespaced_id('bitrix24:contact', 'ranked.contact_id') }}
        ) as client_id,
        {{ namespaced_id('bitrix24', 'ranked.assigned_by_id') }} as manager_id,
        ---------- attributes
        coalesce(stages.pipeline, 'bitrix24:' || coalesce(ranked.category_id, '0')) as pipeline,
        coalesce(stages.stage, ranked.stage_id) as stage,
        case
            when ranked.stage_semantic_id in ('S', 'F', 'P')
                then {{ bitrix24_stage_type('ranked.stage_semantic_id', 'ranked.stage_id') }}
            when stages.stage_type is not null then stages.stage_type
            else {{ bitrix24_stage_type('null', 'ranked.stage_id') }}
        end as status,
        {%- if channel_field %}
        coalesce(lead_sources.name, ranked.channel_code) as channel,
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as channel,
        {%- endif %}
        cast(null as {{ dbt.type_string() }}) as loss_reason,
        ---------- money
        {{ parse_decimal('ranked.opportunity') }} as amount,
        coalesce(upper(nullif(ranked.currency_id, '')), 'RUB') as currency,
        ---------- timestamps
        {{ parse_timestamp_utc('ranked.date_create') }} as created_at,
        coalesce(
            case when latest_moves.stage_id = ranked.stage_id then latest_moves.moved_at end,
            {{ parse_timestamp_utc('ranked.moved_time') }}
        ) as moved_to_stage_at,
        ---------- deletion (D85): the live-id pass's (D100)
        deletion_events.deleted_at,
        ranked.modified_at as updated_at,
        ---------- custom fields as they came
        {{ json_object_of(user_fields) }} as custom_fields,
        ---------- load metadata
        ranked._source,
        {{ bitrix24_loaded_at('ranked._loaded_at', 'deletion_events') }} as _loaded_at,
        ranked._batch_id
    from ranked
    left join stages
        on coalesce(ranked.category_id, '0') = stages.category_id
        and ranked.stage_id = stages.stage_id
    {%- if channel_field %}
    left join lead_sources
        on ranked.channel_code = lead_sources.status_id
        and lead_sources.version_rank = 1
    {%- else %}
    left join lead_sources
        on 1 = 0
    {%- endif %}
    left join latest_moves
        on ranked.id = latest_moves.owner_id
        and latest_moves.move_rank = 1
    left join deletion_events
        on ranked.id = deletion_events.id
    where ranked.version_rank = 1
),

{{ crm_deals_final(closed_at_given='moved_to_stage_at', deleted_at='deleted_at') }}

select * from final
