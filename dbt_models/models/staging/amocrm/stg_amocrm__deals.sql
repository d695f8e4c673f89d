{#- One row per amoCRM lead (сделка), its newest version, in the inbox deals' columns.
    status: status_id 142 = won, 143 = lost (amoCRM's fixed ids), else open. A lead in an
    incoming-leads stage (неразобранное, status type 1) is not a deal yet: left out until
    somebody accepts it into the pipeline (D95). client: the lead's company, else its main
    contact (`is_main`), else its first linked contact (D95). channel: the custom field named by
    var amocrm_channel_field (id, name or code; env VORONKA_AMOCRM_CHANNEL_FIELD); every custom
    field passes through as JSON text in custom_fields. amount: price_with_minor_units where the
    API gives it (kopecks kept), else price; currency: the account's (GET /api/v4/account),
    amoCRM has one currency per account, none per lead (D95). deleted_at (D85, D96): set when
    the lead's latest signal is a deletion: a lead_deleted event (merging deals deletes the
    merged ones) or its version in the trash (deleted_leads); a lead_restored event or a newer
    live version clears it. -#}

with

source as (
    {{ raw_source('amocrm', 'leads', [
        'id', 'name', 'price', 'responsible_user_id', 'status_id', 'pipeline_id',
        'created_at', 'updated_at', 'closed_at', 'custom_fields_values', '_embedded',
        'price_with_minor_units',
    ]) }}
),

account as (
    {{ raw_source('amocrm', 'account', ['id', 'currency']) }}
),

account_currency as (
    select upper(currency) as currency
    from account
    where currency is not null
    order by _loaded_at desc, _batch_id desc
    limit 1
),

events as (
    {{ raw_source('amocrm', 'events', ['id', 'type', 'entity_id', 'created_at']) }}
),

trash as (
    {{ raw_source('amocrm', 'deleted_leads', ['id', 'updated_at']) }}
),

deletion_signals as (
    select
        entity_id as lead_id,
        {{ parse_integer('created_at') }} as signal_epoch,
        {{ epoch_to_timestamp('created_at') }} as signal_at,
        case type when 'lead_deleted' then 1 else 0 end as is_deletion
    from events
    where type in ('lead_deleted', 'lead_restored')
    union all
    select
        id as lead_id,
        {{ parse_integer('updated_at') }} as signal_epoch,
        {{ epoch_to_timestamp('updated_at') }} as signal_at,
        1 as is_deletion
    from trash
    union all
    select
        id as lead_id,
        {{ parse_integer('updated_at') }} as signal_epoch,
        {{ epoch_to_timestamp('updated_at') }} as signal_at,
        0 as is_deletion
    from source
),

deletions as (
    {{ amocrm_deletions('deletion_signals', ['lead_id']) }}
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
            {{ namespaced_id('amocrm:contact', amocrm_main_contact_id('ranked._embedded')) }}
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
        coalesce(
            {{ parse_decimal('ranked.price_with_minor_units') }},
            {{ parse_decimal('ranked.price') }}
        ) as amount,
        account_currency.currency,
        ---------- timestamps
        {{ epoch_to_timestamp('ranked.created_at') }} as created_at,
        {{ epoch_to_timestamp('ranked.closed_at') }} as closed_at_given,
        {{ epoch_to_timestamp('ranked.updated_at') }} as updated_at,
        ---------- custom fields as they came
        ranked.custom_fields_values as custom_fields,
        ---------- deletion (D96)
        deletions.deleted_at,
        ---------- load metadata
        ranked._source,
        ranked._loaded_at,
        ranked._batch_id
    from ranked
    left join stages
        on ranked.pipeline_id = stages.pipeline_id
        and ranked.status_id = stages.status_id
    left join account_currency
        on 1 = 1
    left join deletions
        on ranked.id = deletions.lead_id
    where ranked.version_rank = 1
        and coalesce(stages.status_type, '0') <> '1'
),

{{ crm_deals_final(closed_at_given='closed_at_given', deleted_at='deleted_at') }}

select * from final
