{#- One row per Bitrix24 CRM activity, its newest version (LAST_UPDATED), in the inbox
    activities' columns. activity_type from TYPE_ID: 1 meeting, 2 call, 4 email, others
    (3 task, 6 provider activities such as to-dos) task. The owner gives deal_id (OWNER_TYPE_ID
    2) or client_id (3 contact, 4 company). completed_at: the update that completed it. -#}

with

source as (
    {{ raw_source('bitrix24', 'activities', [
        'id', 'owner_id', 'owner_type_id', 'type_id', 'responsible_id', 'completed', 'created',
        'deadline', 'last_updated',
    ]) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by id
            order by {{ parse_timestamp_utc('last_updated') }} desc, _loaded_at desc
        ) as version_rank
    from source
),

final as (
    select
        ---------- ids
        {{ namespaced_id('bitrix24:activity', 'id') }} as activity_id,
        {{ namespaced_id('bitrix24', 'responsible_id') }} as manager_id,
        case when owner_type_id = '2' then {{ namespaced_id('bitrix24', 'owner_id') }} end as deal_id,
        case
            when owner_type_id = '3' then {{ namespaced_id('bitrix24:contact', 'owner_id') }}
            when owner_type_id = '4' then {{ namespaced_id('bitrix24:company', 'owner_id') }}
        end as client_id,
        ---------- attributes
        case type_id
            when '1' then 'meeting'
            when '2' then 'call'
            when '4' then 'email'
            else 'task'
        end as activity_type,
        cast(null as {{ dbt.type_string() }}) as outcome,
        ---------- timestamps
        {{ parse_timestamp_utc('created') }} as created_at,
        {{ parse_timestamp_utc('deadline') }} as due_at,
        case when completed = 'Y' then {{ parse_timestamp_utc('last_updated') }} end as completed_at,
        {{ parse_timestamp_utc('last_updated') }} as updated_at,
        ---------- load metadata
        _source as _source_file,
        cast(null as {{ dbt.type_bigint() }}) as _source_line,
        _loaded_at,
        _batch_id
    from ranked
    where version_rank = 1
)

select * from final
