{#- One row per amoCRM lead (сделка), its newest version, in the inbox deals' columns.
    status: status_id 142 = won, 143 = lost (amoCRM's fixed ids), else open. client: the lead's
    company, else its first linked contact. channel: the custom field named by var
    amocrm_channel_field (id, name or code; env VORONKA_AMOCRM_CHANNEL_FIELD); every custom field
    passes through as JSON text in custom_fields. amoCRM has no currency per lead: RUB. -#}

with

source as (
    {{ raw_source('amocrm', 'leads', [
        'id', 'name', 'price', 'responsible_user_id', 'status_id', 'pipeline_id',
        'created_at', 'updated_at', 'closed_at', 'custom_fields_values', '_embedded',
    ]) }}
),

stages as (
    select * from {{ ref('stg_amocrm__pipeline_stages') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(parse_integer('updated_at')) }}
    from source
),

renamed as (
    select
        ---------- ids
        {{ namespaced_id('amocrm', 'ranked.id') }} as deal_id,
        coalesce(
            {{ namespaced_id('amocrm:company', json_text('ranked._embedded', ['companies', 0, 'id'])) }},
            {{ namespaced_id('amocrm:contact', json_text('ranked._embedded', ['contacts', 0, 'id'])) }}
        ) as client_id,
        {{ namespaced_id('amocrm', 'ranked.responsible_user_id') }} as manager_id,
        ---------- attributes
        coalesce(stages.pipeline, 'amocrm:' || ranked.pipeline_id) as pipeline,
        coalesce(stages.stage, ranked.status_id) as stage,
        case ranked.status_id
            when '142' then 'won'
            when '143' then 'lost'
            else 'open'
        end as status,
        {{ amocrm_custom_field('ranked.custom_fields_values', var('amocrm_channel_field')) }} as channel,
        {{ json_text('ranked._embedded', ['loss_reason', 0, 'name']) }} as loss_reason,
        ---------- money
        {{ parse_decimal('ranked.price') }} as amount,
        'RUB' as currency,
        ---------- timestamps
        {{ epoch_to_timestamp('ranked.created_at') }} as created_at,
        {{ epoch_to_timestamp('ranked.closed_at') }} as closed_at_given,
        {{ epoch_to_timestamp('ranked.updated_at') }} as updated_at,
        ---------- custom fields as they came
        ranked.custom_fields_values as custom_fields,
        ---------- load metadata
        ranked._source,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join stages
        on ranked.pipeline_id = stages.pipeline_id
        and ranked.status_id = stages.status_id
    where ranked.version_rank = 1
),

{{ crm_deals_final(closed_at_given='closed_at_given') }}

select * from final
