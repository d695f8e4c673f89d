{#- One row per Bitrix24 deal, its newest version (DATE_MODIFY), in the inbox deals' columns.
    status: the deal's STAGE_SEMANTIC_ID (S = won, F = lost, P = open), else its stage's
    semantics (stg_bitrix24__pipeline_stages). client: the deal's company, else its contact.
    closed_at: CLOSEDATE of a won or lost deal (for an open deal it is only the planned date).
    channel: the field named by var bitrix24_channel_field (env VORONKA_BITRIX24_CHANNEL_FIELD,
    default SOURCE_ID), a source code replaced by its name from crm.status.list (ENTITY_ID
    SOURCE). Every UF_* user field passes through as JSON text in custom_fields. -#}

{%- set channel_field = (var('bitrix24_channel_field') or '') | string | trim | lower %}
{%- set user_fields = [] %}
{%- for name in raw_columns('bitrix24', 'deals') if name.startswith('uf_') %}
    {%- do user_fields.append(name) %}
{%- endfor %}
{%- set columns = [
    'id', 'title', 'category_id', 'stage_id', 'stage_semantic_id', 'opportunity', 'currency_id',
    'assigned_by_id', 'contact_id', 'company_id', 'date_create', 'date_modify', 'closedate',
    'closed',
] + user_fields + ([channel_field] if channel_field else []) %}

with

source as (
    {{ raw_source('bitrix24', 'deals', columns) }}
),

stages as (
    select * from {{ ref('stg_bitrix24__pipeline_stages') }}
),

sources_source as (
    {{ raw_source('bitrix24', 'statuses', ['id', 'entity_id', 'status_id', 'name']) }}
),

lead_sources as (
    select
        status_id,
        name,
        row_number() over (partition by id order by _loaded_at desc, _batch_id desc) as snapshot_rank
    from sources_source
    where entity_id = 'SOURCE'
),

ranked as (
    select
        *,
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
        coalesce(lead_sources.name, ranked.{{ adapter.quote(channel_field) }}) as channel,
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as channel,
        {%- endif %}
        cast(null as {{ dbt.type_string() }}) as loss_reason,
        ---------- money
        {{ parse_decimal('ranked.opportunity') }} as amount,
        coalesce(upper(nullif(ranked.currency_id, '')), 'RUB') as currency,
        ---------- timestamps
        {{ parse_timestamp_utc('ranked.date_create') }} as created_at,
        {{ parse_timestamp_utc('ranked.closedate') }} as closedate,
        ranked.modified_at as updated_at,
        ---------- custom fields as they came
        {{ json_object_of(user_fields) }} as custom_fields,
        ---------- load metadata
        ranked._source,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join stages
        on coalesce(ranked.category_id, '0') = stages.category_id
        and ranked.stage_id = stages.stage_id
    {%- if channel_field %}
    left join lead_sources
        on ranked.{{ adapter.quote(channel_field) }} = lead_sources.status_id
        and lead_sources.snapshot_rank = 1
    {%- else %}
    left join lead_sources
        on 1 = 0
    {%- endif %}
    where ranked.version_rank = 1
),

{{ crm_deals_final(closed_at_given='closedate') }}

select * from final
