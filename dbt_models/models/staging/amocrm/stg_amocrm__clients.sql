{#- One row per amoCRM contact (client_type person, id amocrm:contact:<id>) and company
    (company, amocrm:company:<id>), its newest version, in the inbox clients' columns. phone and
    email: the first of each in the newest version that has one (contact_channels /
    company_channels, split from the PHONE / EMAIL multi-fields by the extractor).
    deleted_at (D85, D96): set when the contact's (company's) latest signal is a
    contact_deleted (company_deleted) event (merging contacts deletes the duplicates); a
    *_restored event or a newer version clears it. amoCRM names no survivor of a merge:
    merged_into_client_id stays empty. -#}

with

contacts as (
    {{ raw_source('amocrm', 'contacts', ['id', 'name', 'created_at', 'updated_at']) }}
),

companies as (
    {{ raw_source('amocrm', 'companies', ['id', 'name', 'created_at', 'updated_at']) }}
),

{{ crm_client_channel_sources('amocrm') }},

versions as (
    select
        'contact' as entity_type,
        'person' as client_type,
        contacts.*
    from contacts
    union all
    select
        'company' as entity_type,
        'company' as client_type,
        companies.*
    from companies
),

events as (
    {{ raw_source('amocrm', 'events', ['id', 'type', 'entity_id', 'created_at']) }}
),

deletion_signals as (
    select
        case when type like 'contact%' then 'contact' else 'company' end as signal_entity_type,
        entity_id as signal_id,
        {{ parse_integer('created_at') }} as signal_epoch,
        {{ epoch_to_timestamp('created_at') }} as signal_at,
        case when type like '%deleted' then 1 else 0 end as is_deletion
    from events
    where type in ('contact_deleted', 'contact_restored', 'company_deleted', 'company_restored')
    union all
    select
        entity_type as signal_entity_type,
        id as signal_id,
        {{ parse_integer('updated_at') }} as signal_epoch,
        {{ epoch_to_timestamp('updated_at') }} as signal_at,
        0 as is_deletion
    from versions
),

deletions as (
    {{ amocrm_deletions('deletion_signals', ['signal_entity_type', 'signal_id']) }}
),

latest_versions as (
    select
        versions.*,
        deletions.deleted_at,
        {{ newest_version_rank(
            parse_integer('versions.updated_at'),
            partition_by='versions.entity_type, versions.id',
        ) }}
    from versions
    left join deletions
        on versions.entity_type = deletions.signal_entity_type
        and versions.id = deletions.signal_id
),

{{ crm_client_channels([parse_integer('updated_at') ~ ' desc', 'value']) }},

{{ crm_clients_final(
    'amocrm',
    client_name='latest_versions.name',
    created_at=epoch_to_timestamp('latest_versions.created_at'),
    updated_at=epoch_to_timestamp('latest_versions.updated_at'),
    deleted_at='latest_versions.deleted_at',
) }}

select * from final
