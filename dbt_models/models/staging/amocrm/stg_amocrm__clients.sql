{#- One row per amoCRM contact (client_type person, id amocrm:contact:<id>) and company
    (company, amocrm:company:<id>), its newest version, in the inbox clients' columns. phone and
    email: the first of each in the newest version that has one (contact_channels /
    company_channels, split from the PHONE / EMAIL multi-fields by the extractor). -#}

with

contacts as (
    {{ raw_source('amocrm', 'contacts', ['id', 'name', 'created_at', 'updated_at']) }}
),

companies as (
    {{ raw_source('amocrm', 'companies', ['id', 'name', 'created_at', 'updated_at']) }}
),

{{ crm_client_channel_sources('amocrm') }},

versions as (
    select 'contact' as entity_type, 'person' as client_type, contacts.* from contacts
    union all
    select 'company' as entity_type, 'company' as client_type, companies.* from companies
),

latest_versions as (
    select
        *,
        {{ newest_version_rank(parse_integer('updated_at'), partition_by='entity_type, id') }}
    from versions
),

{{ crm_client_channels([parse_integer('updated_at') ~ ' desc', 'value']) }},

{{ crm_clients_final(
    'amocrm',
    client_name='latest_versions.name',
    created_at=epoch_to_timestamp('latest_versions.created_at'),
    updated_at=epoch_to_timestamp('latest_versions.updated_at'),
) }}

select * from final
