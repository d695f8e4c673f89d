{#- One row per Bitrix24 contact (person, bitrix24:contact:<id>) and company (company,
    bitrix24:company:<id>), its newest version (DATE_MODIFY), in the inbox clients' columns.
    phone and email: the first of each in the newest version that has one (contact_channels /
    company_channels, split from the PHONE / EMAIL multi-fields by the extractor). -#}

with

contacts as (
    {{ raw_source('bitrix24', 'contacts', [
        'id', 'name', 'second_name', 'last_name', 'date_create', 'date_modify',
    ]) }}
),

companies as (
    {{ raw_source('bitrix24', 'companies', ['id', 'title', 'date_create', 'date_modify']) }}
),

{{ crm_client_channel_sources('bitrix24') }},

versions as (
    select
        'contact' as entity_type,
        'person' as client_type,
        id,
        nullif(trim(
            coalesce(last_name, '') || ' ' || coalesce(name, '') || ' ' || coalesce(second_name, '')
        ), '') as client_name,
        date_create,
        date_modify,
        _source,
        _loaded_at,
        _batch_id
    from contacts
    union all
    select
        'company' as entity_type,
        'company' as client_type,
        id,
        title as client_name,
        date_create,
        date_modify,
        _source,
        _loaded_at,
        _batch_id
    from companies
),

latest_versions as (
    select
        *,
        {{ newest_version_rank(parse_timestamp_utc('date_modify'), partition_by='entity_type, id') }}
    from versions
),

{{ crm_client_channels([parse_timestamp_utc('updated_at') ~ ' desc', '_loaded_at desc', 'value']) }},

{{ crm_clients_final(
    'bitrix24',
    client_name='latest_versions.client_name',
    created_at=parse_timestamp_utc('latest_versions.date_create'),
    updated_at=parse_timestamp_utc('latest_versions.date_modify'),
) }}

select * from final
