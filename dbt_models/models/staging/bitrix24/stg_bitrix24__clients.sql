{#- One row per Bitrix24 contact (person, bitrix24:contact:<id>) and company (company,
    bitrix24:company:<id>), its newest version (DATE_MODIFY), in the inbox clients' columns.
    phone and email: the first of each in the newest version that has one (contact_channels /
    company_channels, split from the PHONE / EMAIL multi-fields by the extractor).
    deleted_at: when the extractor's live-id pass saw the contact or company vanish (deleted,
    or merged into another: Bitrix24 deletes the records merged away; D100), null while it
    exists. merged_into_client_id: null, Bitrix24's lists do not say into which record a
    merged one went (its deals are re-bound to the surviving record by Bitrix24 itself and
    arrive so when they next change). -#}

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

deletion_events as (
    select
        'contact' as entity_type,
        contact_events.*
    from ({{ bitrix24_deletion_events('contacts') }}) as contact_events
    union all
    select
        'company' as entity_type,
        company_events.*
    from ({{ bitrix24_deletion_events('companies') }}) as company_events
),

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

ranked_versions as (
    select
        *,
        {{ newest_version_rank(parse_timestamp_utc('date_modify'), partition_by='entity_type, id') }}
    from versions
),

latest_versions as (
    select
        ranked_versions.entity_type,
        ranked_versions.client_type,
        ranked_versions.id,
        ranked_versions.client_name,
        ranked_versions.date_create,
        ranked_versions.date_modify,
        ranked_versions.version_rank,
        deletion_events.deleted_at,
        ranked_versions._source,
        {{ bitrix24_loaded_at('ranked_versions._loaded_at', 'deletion_events') }} as _loaded_at,
        ranked_versions._batch_id
    from ranked_versions
    left join deletion_events
        on ranked_versions.entity_type = deletion_events.entity_type
        and ranked_versions.id = deletion_events.id
),

{{ crm_client_channels([parse_timestamp_utc('updated_at') ~ ' desc', '_loaded_at desc', 'value']) }},

{{ crm_clients_final(
    'bitrix24',
    client_name='latest_versions.client_name',
    created_at=parse_timestamp_utc('latest_versions.date_create'),
    updated_at=parse_timestamp_utc('latest_versions.date_modify'),
    deleted_at='latest_versions.deleted_at',
) }}

select * from final
