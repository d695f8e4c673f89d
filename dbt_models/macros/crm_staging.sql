{#-
    The parts of the CRM API sources' staging models (amoCRM, Bitrix24) that are the same logic
    in both: the load metadata of an API row, the clients' phone and e-mail from the *_channels
    tables, the clients' and deals' final columns and an activity's deal or client. What differs
    (column names, how a version's time is parsed) is passed in. The newest version of a record
    is newest_version_rank (macros/dedup.sql), shared with the inbox models.
-#}


{#- The load metadata columns of an API row in the inbox shape: the raw `_source` (the endpoint)
    as _source_file, no line. `relation`: the CTE to take them from, if it must be named. -#}
{% macro api_load_metadata(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    {{ prefix }}_source as _source_file,
        cast(null as {{ dbt.type_bigint() }}) as _source_line,
        {{ prefix }}_loaded_at,
        {{ prefix }}_batch_id
{%- endmacro %}


{#- The source CTEs `contact_channels` and `company_channels` of a CRM's clients (the phones
    and e-mails its extractor splits from the contacts and companies). -#}
{% macro crm_client_channel_sources(source_name) -%}
contact_channels as (
    {{ raw_source(source_name, 'contact_channels', ['entity_id', 'channel', 'value', 'updated_at']) }}
),

company_channels as (
    {{ raw_source(source_name, 'company_channels', ['entity_id', 'channel', 'value', 'updated_at']) }}
)
{%- endmacro %}


{#- The CTEs `channels`, `channels_ranked`, `phones` and `emails` of a CRM's clients (from
    crm_client_channel_sources): per contact or company (entity_type, entity_id) the first phone
    and the first e-mail of its newest version that has one. `order_by`: the terms ranking a
    channel's values, newest version first (e.g. the parsed updated_at desc, then value). -#}
{% macro crm_client_channels(order_by) -%}
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
            order by {{ order_by | join(', ') }}
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
)
{%- endmacro %}


{#- The `final` CTE of a CRM's clients: the newest version of each contact and company
    (`latest_versions`, ranked by newest_version_rank over entity_type, id) with its phone and
    e-mail (crm_client_channels), in the inbox clients' columns; client_id
    `<source>:<entity_type>:<id>`. `client_name`, `created_at`, `updated_at`: expressions on
    latest_versions. `deleted_at` and `merged_into_client_id` (D85): expressions on
    latest_versions saying the client was deleted (when) or merged (into which client_id), none
    = the source reports neither. -#}
{% macro crm_clients_final(source_name, client_name, created_at, updated_at, deleted_at=none, merged_into_client_id=none) -%}
final as (
    select
        ---------- ids
        '{{ source_name }}:' || latest_versions.entity_type || ':' || latest_versions.id as client_id,
        ---------- attributes
        latest_versions.client_type,
        {{ client_name }} as client_name,
        {{ normalize_phone('phones.value') }} as phone,
        phones.value as phone_raw,
        lower(emails.value) as email,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as acquisition_channel,
        ---------- timestamps
        {{ created_at }} as created_at,
        {{ updated_at }} as updated_at,
        ---------- deletion and merge (D85)
        {{ deleted_at or 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }} as deleted_at,
        {{ merged_into_client_id or 'cast(null as ' ~ dbt.type_string() ~ ')' }} as merged_into_client_id,
        ---------- load metadata
        {{ api_load_metadata('latest_versions') }}
    from latest_versions
    left join phones
        on latest_versions.entity_type = phones.entity_type
        and latest_versions.id = phones.entity_id
    left join emails
        on latest_versions.entity_type = emails.entity_type
        and latest_versions.id = emails.entity_id
    where latest_versions.version_rank = 1
)
{%- endmacro %}


{#- The `final` CTE of a CRM's deals from `renamed` (the newest version of each deal in the
    inbox deals' columns, with `closed_at_given`: the CRM's close time, if any). closed_at: that
    of a won or lost deal, else (rare: closed without one) its last update; none while open.
    `deleted_at` (D85): an expression on `renamed` saying the deal was deleted or merged away
    (when), none = the source reports no deletions. -#}
{% macro crm_deals_final(closed_at_given, deleted_at=none) -%}
final as (
    select
        deal_id,
        client_id,
        manager_id,
        pipeline,
        stage,
        status,
        channel,
        loss_reason,
        amount,
        currency,
        created_at,
        case
            when status in ('won', 'lost') then coalesce({{ closed_at_given }}, updated_at)
        end as closed_at,
        updated_at,
        {{ deleted_at or 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }} as deleted_at,
        custom_fields,
        {{ api_load_metadata() }}
    from renamed
)
{%- endmacro %}


{#- An activity's deal_id and client_id from its owner: `type_column` says what `id_column`
    is, by the CRM's values `types` (deal, contact, company); client ids are
    `<source>:contact:<id>` and `<source>:company:<id>`. -#}
{% macro crm_activity_owner_ids(source_name, type_column, id_column, types) -%}
    case when {{ type_column }} = '{{ types.deal }}' then {{ namespaced_id(source_name, id_column) }} end as deal_id,
        case
            when {{ type_column }} = '{{ types.contact }}' then {{ namespaced_id(source_name ~ ':contact', id_column) }}
            when {{ type_column }} = '{{ types.company }}' then {{ namespaced_id(source_name ~ ':company', id_column) }}
        end as client_id
{%- endmacro %}
