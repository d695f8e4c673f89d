{#- One row per Bitrix24 CRM activity, its newest version (LAST_UPDATED), in the inbox
    activities' columns. activity_type from TYPE_ID: 1 meeting, 2 call, 4 email, others
    (3 task, 6 provider activities such as to-dos) task. The owner gives deal_id (OWNER_TYPE_ID
    2) or client_id (3 contact, 4 company). completed_at: the update that completed it.
    deleted_at: when the extractor's live-id pass saw it vanish (D100), null while it exists. -#}

with

source as (
    {{ raw_source('bitrix24', 'activities', [
        'id', 'owner_id', 'owner_type_id', 'type_id', 'responsible_id', 'completed', 'created',
        'deadline', 'last_updated',
    ]) }}
),

deletion_events as (
    {{ bitrix24_deletion_events('activities') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(parse_timestamp_utc('last_updated')) }}
    from source
),

final as (
    select
        ---------- ids
        {{ namespaced_id('bitrix24:activity', 'ranked.id') }} as activity_id,
        {{ namespaced_id('bitrix24', 'responsible_id') }} as manager_id,
        {{ crm_activity_owner_ids(
            'bitrix24', 'owner_type_id', 'owner_id', {'deal': '2', 'contact': '3', 'company': '4'}
        ) }},
        ---------- attributes
        case ranked.type_id
            when '1' then 'meeting'
            when '2' then 'call'
            when '4' then 'email'
            else 'task'
        end as activity_type,
        cast(null as {{ dbt.type_string() }}) as outcome,
        ---------- timestamps
        {{ parse_timestamp_utc('created') }} as created_at,
        {{ parse_timestamp_utc('deadline') }} as due_at,
        case when ranked.completed = 'Y' then {{ parse_timestamp_utc('last_updated') }} end as completed_at,
        {{ parse_timestamp_utc('ranked.last_updated') }} as updated_at,
        ---------- deletion (D85): the live-id pass's (D100)
        deletion_events.deleted_at,
        ---------- load metadata (the latest deletion event's load when later, D85)
        ranked._source as _source_file,
        cast(null as {{ dbt.type_bigint() }}) as _source_line,
        {{ bitrix24_loaded_at('ranked._loaded_at', 'deletion_events') }} as _loaded_at,
        ranked._batch_id
    from ranked
    left join deletion_events
        on ranked.id = deletion_events.id
    where ranked.version_rank = 1
)

select * from final
