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

contact_channels as (
    {{ raw_source('amocrm', 'contact_channels', ['entity_id', 'channel', 'value', 'updated_at']) }}
),

company_channels as (
    {{ raw_source('amocrm', 'company_channels', ['entity_id', 'channel', 'value', 'updated_at']) }}
),

versions as (
    select 'contact' as entity_type, 'person' as client_type, contacts.* from contacts
    union all
    select 'company' as entity_type, 'company' as client_type, companies.* from companies
),

latest_versions as (
    select
        *,
        row_number() over (
            partition by entity_type, id
            order by {{ parse_integer('updated_at') }} desc, _loaded_at desc
        ) as version_rank
    from versions
),

channels as (
    select 'contact' as entity_type, contact_channels.* from contact_channels
    union all
    select 'company' as entity_type, company_channels.* from company_channels
),

channels_ranked as (
    select
        entity_type,
        entity_id,
        channel,
        value,
        row_number() over (
            partition by entity_type, entity_id, channel
            order by {{ parse_integer('updated_at') }} desc, value
        ) as value_rank
    from channels
),

phones as (
    select * from channels_ranked
    where channel = 'phone' and value_rank = 1
),

emails as (
    select * from channels_ranked
    where channel = 'email' and value_rank = 1
),

final as (
    select
        ---------- ids
        'amocrm:' || latest_versions.entity_type || ':' || latest_versions.id as client_id,
        ---------- attributes
        latest_versions.client_type,
        latest_versions.name as client_name,
        {{ normalize_phone('phones.value') }} as phone,
        phones.value as phone_raw,
        lower(emails.value) as email,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as acquisition_channel,
        ---------- timestamps
        {{ epoch_to_timestamp('latest_versions.created_at') }} as created_at,
        {{ epoch_to_timestamp('latest_versions.updated_at') }} as updated_at,
        ---------- load metadata
        latest_versions._source as _source_file,
        cast(null as {{ dbt.type_bigint() }}) as _source_line,
        latest_versions._loaded_at,
        latest_versions._batch_id
    from latest_versions
    left join phones
        on latest_versions.entity_type = phones.entity_type
        and latest_versions.id = phones.entity_id
    left join emails
        on latest_versions.entity_type = emails.entity_type
        and latest_versions.id = emails.entity_id
    where latest_versions.version_rank = 1
)

select * from final
